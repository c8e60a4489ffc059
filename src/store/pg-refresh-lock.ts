// The refresh lock on PostgreSQL: a session advisory lock taken on a
// reserved connection and held for the refresh. At most one refresh per
// account across every gateway; the server releases it when the holder's
// connection ends, so a gateway killed mid-refresh locks nobody out.
// A waiter blocks in pg_advisory_lock rather than polling: the server grants
// the lock the moment the holder lets go (or its session ends), so the other
// gateways' requests wait for the refresh and nothing more. lock_timeout
// bounds the wait. A database that is down or silent costs a refresh at most
// one deadline: it then goes ahead without the cross-gateway lock.
import type { Sql } from 'postgres';
import type postgres from 'postgres';
import { StoreUnavailableError } from './errors.ts';
import { answeredWithin, NoAnswerError } from './pg-answer.ts';
import type { DbCounters } from './pg-stats.ts';

/** Advisory lock keys: (class, key) pairs; the class keeps Grantpool's locks apart from anyone else's. */
const LOCK_CLASS_REFRESH = 0x67707266; // "gprf"

/** PostgreSQL's SQLSTATE for a lock wait that ran out of lock_timeout. */
const LOCK_NOT_AVAILABLE = '55P03';

export interface AdvisoryLockOptions {
  lockWaitMs: number;
  /** How long the database may take to answer the lock's own queries (pg-answer.ts). */
  answerTimeoutMs: number;
  stats: DbCounters;
  /** The error that made the database count as unusable right now, or null: while it is not null no lock is tried. */
  down: () => string | null;
  unreachable: (e: Error) => void;
}

/**
 * Runs `fn` holding the account's refresh lock (waiting up to `lockWaitMs` for
 * another gateway's refresh); without the lock when the database cannot be
 * reached or does not answer, so that a refresh never waits on a silent
 * database for longer than `answerTimeoutMs`.
 */
export async function underAdvisoryLock<T>(sql: Sql, id: string, fn: () => Promise<T>, o: AdvisoryLockOptions): Promise<T> {
  const down = o.down();
  if (down !== null) {
    o.unreachable(new Error(down));
    return fn();
  }
  const taking = tryLock(sql, id);
  let taken: { conn: postgres.ReservedSql; free: boolean };
  try {
    taken = await answeredWithin(taking, o.answerTimeoutMs, (late) => letGo(late.conn, id, late.free));
  } catch (e) {
    o.unreachable(e as Error);
    return fn();
  }
  const { conn } = taken;
  if (!taken.free) {
    // The wait has lock_timeout on the server; this deadline is for a server that answers nothing at all.
    const waiting = waitForLock(conn, id, o);
    try {
      await answeredWithin(waiting, o.lockWaitMs + o.answerTimeoutMs, () => letGo(conn, id, true));
    } catch (e) {
      if (e instanceof NoAnswerError) {
        waiting.catch(() => conn.release());
        o.unreachable(e);
        return fn();
      }
      conn.release();
      throw e;
    }
  }
  o.stats.refreshLocksHeld++;
  try {
    return await fn();
  } finally {
    o.stats.refreshLocksHeld--;
    // Not waited for: the refresh is done whether or not the database answers the unlock now.
    letGo(conn, id, true);
  }
}

/** A connection of its own and, uncontended, the lock in one query (also the check that the database can be used). */
async function tryLock(sql: Sql, id: string): Promise<{ conn: postgres.ReservedSql; free: boolean }> {
  const conn = await sql.reserve();
  try {
    const [r] = await conn<{ ok: boolean }[]>`SELECT pg_try_advisory_lock(${LOCK_CLASS_REFRESH}, hashtext(${id})) AS ok`;
    return { conn, free: r!.ok };
  } catch (e) {
    conn.release();
    throw e;
  }
}

/** Unlocks (when held) and gives the connection back once the database has answered. */
function letGo(conn: postgres.ReservedSql, id: string, held: boolean): void {
  if (!held) return conn.release();
  void conn`SELECT pg_advisory_unlock(${LOCK_CLASS_REFRESH}, hashtext(${id}))`.catch(() => {}).finally(() => conn.release());
}

/** Blocks until another gateway's refresh of `id` ends; fails after `lockWaitMs`. */
async function waitForLock(conn: postgres.ReservedSql, id: string, o: { lockWaitMs: number; stats: DbCounters }): Promise<void> {
  o.stats.refreshLockWaiters++;
  try {
    await conn`SELECT set_config('lock_timeout', ${`${Math.max(1, Math.round(o.lockWaitMs))}ms`}, false)`;
    await conn`SELECT pg_advisory_lock(${LOCK_CLASS_REFRESH}, hashtext(${id}))`;
  } catch (e) {
    if ((e as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw e;
    throw new StoreUnavailableError(`another gateway has been refreshing account ${id} for over ${Math.round(o.lockWaitMs / 1000)} s`, { cause: e });
  } finally {
    o.stats.refreshLockWaiters--;
    // Back to the connection's own setting (lock_timeout of pg-store.ts) before the connection is used for anything else.
    await conn`RESET lock_timeout`.catch(() => {});
  }
}
