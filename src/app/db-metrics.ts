// The database's share of /metrics (gateways on PostgreSQL): this gateway's
// connections as the server sees them (one query per scrape, bounded by a
// 2 s wait), queries sent and connection failures, refresh locks held and
// awaited, how long NOTIFY takes to come back, and usage counts not yet sent.
import { Gauge, type Registry } from 'prom-client';
import type { DbCounters, DbPoolStats } from '../store/pg-store.ts';

export interface DbSource {
  poolStats(): Promise<DbPoolStats>;
  readonly stats: DbCounters;
  notifyLagMs(): number | null;
  /** The shared usage counts (round trips and what waits to be sent), when usage is shared. */
  usage?: { readonly roundTrips: number; readonly failures: number; unsentRequests(): number } | null;
}

const SCRAPE_WAIT_MS = 2000;

export function registerDbMetrics(registers: Registry[], source: () => DbSource | null): void {
  const gauge = (name: string, help: string, read: (db: DbSource) => number | null) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const db = source();
        const v = db ? read(db) : null;
        if (v === null) this.reset();
        else this.set(v);
      },
    });
  new Gauge({
    name: 'grantpool_db_connections',
    help: "This gateway's database connections by server state (active, idle, idle_in_transaction, waiting_on_lock) and the pool's maximum (max)",
    labelNames: ['state'] as const,
    registers,
    async collect() {
      this.reset();
      const db = source();
      if (!db) return;
      let t: NodeJS.Timeout | undefined;
      const stats = await Promise.race([db.poolStats().catch(() => null), new Promise<null>((r) => (t = setTimeout(() => r(null), SCRAPE_WAIT_MS)))]);
      clearTimeout(t);
      if (!stats) return;
      this.set({ state: 'max' }, stats.max);
      for (const [state, n] of Object.entries(stats.connections)) this.set({ state: state.replace(/\W+/g, '_') }, n);
      this.set({ state: 'waiting_on_lock' }, stats.waitingOnLocks);
    },
  });
  gauge('grantpool_db_queries_total', 'Queries this gateway sent to the database (counter)', (db) => db.stats.queries);
  gauge('grantpool_db_errors_total', 'Times the database could not be reached: failed queries and usage syncs (counter)', (db) => db.stats.errors + (db.usage?.failures ?? 0));
  gauge('grantpool_db_refresh_locks_held', 'Refresh locks this gateway holds now (a refresh under way)', (db) => db.stats.refreshLocksHeld);
  gauge('grantpool_db_refresh_lock_waiters', "Refreshes waiting for another gateway's refresh of the same account", (db) => db.stats.refreshLockWaiters);
  gauge('grantpool_db_notify_lag_seconds', "How long this gateway's last probe took to come back through LISTEN/NOTIFY (every 15 s)", (db) => {
    const ms = db.notifyLagMs();
    return ms === null ? null : ms / 1000;
  });
  gauge('grantpool_db_usage_round_trips_total', 'Round trips of the shared usage counts (one send and one read a second at most; none per request) (counter)', (db) => db.usage?.roundTrips ?? null);
  gauge('grantpool_usage_unsent_requests', 'Requests counted here and not yet in the database (grows while it is unreachable)', (db) => db.usage?.unsentRequests() ?? null);
}
