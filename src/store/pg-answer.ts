// A database that stops answering without closing anything (a host that
// hangs, a network that drops packets) leaves queries pending for ever: the
// connections stay open and TCP sees nothing wrong. Every query a caller
// waits for is raced against a deadline; past it, the database counts as
// unreachable. The query itself is not cancelled (a cancel would need the same
// silent server): it may still end later, so a write past its deadline is
// reported as not confirmed, not as not made.

/** The database sent no answer within the deadline; the query may still complete. */
export class NoAnswerError extends Error {
  constructor(ms: number) {
    super(`no answer from the database within ${ms / 1000} s`);
    this.name = 'NoAnswerError';
  }
}

/**
 * `pending`'s outcome, or a NoAnswerError after `ms`. A late outcome of
 * `pending` is dropped (a late failure too, so it is never unhandled); `late`
 * is given a late success, to let go of what it holds.
 */
export async function answeredWithin<T>(pending: Promise<T>, ms: number, late?: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      reject(new NoAnswerError(ms));
    }, ms);
    timer.unref();
  });
  pending.then(
    (value) => {
      if (expired) late?.(value);
    },
    () => {},
  );
  try {
    return await Promise.race([pending, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a query the way its store does (PgStore: refused while down, bounded,
 * a clear 503). `deadlineMs` null: a bulk read whose time grows with the data
 * (a longer deadline); undefined: the store's own.
 */
export type Guard = <T>(query: () => Promise<T>, deadlineMs?: number | null) => Promise<T>;

/** The query as it is (tests and tools that use the SQL classes alone). */
export const unguarded: Guard = (query) => query();
