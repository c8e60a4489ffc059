// Waiting for something another process, gateway or timer makes true: poll a
// check until it returns a truthy value (returned), and fail with what was
// awaited, for how long, and the last value seen when it does not in time.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

export interface EventuallyOptions {
  /** Give up after this long. Default 3 s. */
  timeoutMs?: number;
  /** Pause between checks. Default 20 ms. */
  intervalMs?: number;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/** Polls `check` until it returns a truthy value and returns it; fails after the timeout (an error thrown by `check` ends the wait at once). */
export async function eventually<T>(what: string, check: () => T | Promise<T>, opts: EventuallyOptions | number = {}): Promise<Truthy<T>> {
  const { timeoutMs = 3000, intervalMs = 20 } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() - start > timeoutMs) {
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${inspect(value, { depth: 2, breakLength: Infinity }).slice(0, 300)})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
