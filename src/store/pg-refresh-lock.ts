// The refresh lock on PostgreSQL: a session advisory lock taken on a
// reserved connection and held for the refresh. At most one refresh per
// account across every gateway; the server releases it when the holder's
// connection ends, so a gateway killed mid-refresh locks nobody out.
// A waiter blocks in pg_advisory_lock rather than polling: the server grants
// the lock the moment the holder lets go (or its session ends), so the other
// gateways' requests wait for the refresh and nothing more. lock_timeout
// bounds the wait.
import type { Sql } from 'postgres';
import type postgres from 'postgres';
import { StoreUnavailableError } from './errors.ts';
import type { DbCounters } from './pg-stats.ts';

/** Advisory lock keys: (class, key) pairs; the class keeps Grantpool's locks apart from anyone else's. */
const LOCK_CLASS_REFRESH = 0x67707266; // "gprf"

/** PostgreSQL's SQLSTATE for a lock wait that ran out of lock_timeout. */
const LOCK_NOT_AVAILABLE = '55P03';

/** Runs `fn` holding the account's refresh lock (waiting up to `lockWaitMs`); without the lock when the database cannot be reached. */
export async function underAdvisoryLock<T>(
  sql: Sql,
  id: string,
  fn: () => Promise<T>,
  o: { lockWaitMs: number; stats: DbCounters; unreachable: (e: Error) => void },
): Promise<T> {
  let conn: postgres.ReservedSql | null = null;
  let free: boolean;
  try {
    conn = await sql.reserve();
    // Also the check that the database can be used: uncontended, this one query takes the lock.
    const [r] = await conn<{ ok: boolean }[]>`SELECT pg_try_advisory_lock(${LOCK_CLASS_REFRESH}, hashtext(${id})) AS ok`;
    free = r!.ok;
  } catch (e) {
    conn?.release();
    o.unreachable(e as Error);
    return fn();
  }
  try {
    if (!free) await waitForLock(conn, id, o);
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
