// What /metrics shows of the database (src/app/db-metrics.ts): this
// gateway's own counters, and the server's view of its connections.
import type { Sql } from 'postgres';

/** What /metrics shows of the database (src/app/db-metrics.ts). */
export interface DbPoolStats {
  /** Connections the pool may open. */
  max: number;
  /** This gateway's connections by server state (active, idle, idle in transaction, …), and those waiting for a lock. */
  connections: Record<string, number>;
  waitingOnLocks: number;
}

export interface DbCounters {
  /** Queries sent. */
  queries: number;
  /** Times the database could not be reached. */
  errors: number;
  /** Refresh locks held now, and refreshes waiting for one. */
  refreshLocksHeld: number;
  refreshLockWaiters: number;
}

/** The connections of the gateway whose connections carry `appName`, as the server sees them (one query). */
export async function readPoolStats(sql: Sql, appName: string, max: number): Promise<DbPoolStats> {
  const rows = await sql<{ state: string; waiting: boolean; n: number }[]>`
    SELECT coalesce(state, 'unknown') AS state, coalesce(wait_event_type = 'Lock', false) AS waiting, count(*)::int AS n
    FROM pg_stat_activity WHERE application_name = ${appName} AND pid <> pg_backend_pid() GROUP BY 1, 2`;
  // The connection asking is idle but for this question.
  const connections: Record<string, number> = { active: 0, idle: 1, 'idle in transaction': 0 };
  let waitingOnLocks = 0;
  for (const r of rows) {
    connections[r.state] = (connections[r.state] ?? 0) + r.n;
    if (r.waiting) waitingOnLocks += r.n;
  }
  return { max, connections, waitingOnLocks };
}
