// The refresh lock on PostgreSQL: a session advisory lock taken on a
// reserved connection and held for the refresh. At most one refresh per
// account across every gateway; the server releases it when the holder's
// connection ends, so a gateway killed mid-refresh locks nobody out.
import type { Sql } from 'postgres';
import type postgres from 'postgres';
import { StoreUnavailableError } from './errors.ts';
import type { DbCounters } from './pg-stats.ts';

/** Advisory lock keys: (class, key) pairs; the class keeps Grantpool's locks apart from anyone else's. */
const LOCK_CLASS_REFRESH = 0x67707266; // "gprf"

/** Runs `fn` holding the account's refresh lock (waiting up to `lockWaitMs`); without the lock when the database cannot be reached. */
export async function underAdvisoryLock<T>(
  sql: Sql,
  id: string,
  fn: () => Promise<T>,
  o: { lockWaitMs: number; stats: DbCounters; unreachable: (e: Error) => void },
): Promise<T> {
  let conn: postgres.ReservedSql;
  try {
    conn = await sql.reserve();
    await conn`SELECT 1`;
  } catch (e) {
    o.unreachable(e as Error);
    return fn();
  }
  try {
    const deadline = Date.now() + o.lockWaitMs;
    let wait = 20;
    o.stats.refreshLockWaiters++;
    try {
      for (;;) {
        const [r] = await conn<{ ok: boolean }[]>`SELECT pg_try_advisory_lock(${LOCK_CLASS_REFRESH}, hashtext(${id})) AS ok`;
        if (r!.ok) break;
        if (Date.now() >= deadline) throw new StoreUnavailableError(`another gateway has been refreshing account ${id} for over ${Math.round(o.lockWaitMs / 1000)} s`);
        await new Promise((res) => setTimeout(res, wait));
        wait = Math.min(wait * 2, 250);
      }
    } finally {
      o.stats.refreshLockWaiters--;
    }
    o.stats.refreshLocksHeld++;
    try {
      return await fn();
    } finally {
      o.stats.refreshLocksHeld--;
      await conn`SELECT pg_advisory_unlock(${LOCK_CLASS_REFRESH}, hashtext(${id}))`.catch(() => {});
    }
  } finally {
    conn.release();
  }
}
