// The database's share of a load (bench/scale.ts, 7c): every statement the
// server ran in the database during a window (pg_stat_statements, by
// statement) and what the gateways say they sent (grantpool_db_queries_total
// in /metrics), and what a load window added over an idle one.
import { performance } from 'node:perf_hooks';
import type postgres from 'postgres';

export interface DbWindow {
  ms: number;
  /** What the gateways say they sent (grantpool_db_queries_total, summed). */
  gatewayQueries: number;
  /** What the server executed in this database, by statement (pg_stat_statements: calls). */
  statements: Map<string, number>;
}

/** The queries the gateways sent (their /metrics counter) and the statements the server executed during `fn`. */
export async function dbWindow(db: postgres.Sql, gateways: { url: string }[], adminToken: string, fn: () => Promise<void>): Promise<DbWindow> {
  const read = async () => {
    const queries = (await Promise.all(gateways.map((g) => scrapeQueries(g.url, adminToken)))).reduce((n, q) => n + q, 0);
    const rows = await db<{ query: string; calls: number }[]>`
      SELECT query, sum(calls)::float8 AS calls FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) GROUP BY query`;
    return { queries, statements: new Map(rows.map((r) => [r.query, r.calls])) };
  };
  const before = await read();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const after = await read();
  const statements = new Map<string, number>();
  for (const [q, n] of after.statements) {
    const d = n - (before.statements.get(q) ?? 0);
    if (d > 0) statements.set(q, d);
  }
  return { ms, gatewayQueries: after.queries - before.queries, statements };
}

/**
 * What a load window added over the idle rate: in all, per request, and the
 * statements that grew with the requests (called at least once per 100
 * proxied requests beyond their idle rate: a query on the hot path would be
 * about one per request; the batched usage counts are one per gateway a second).
 */
export function dbShare(idle: DbWindow, loaded: DbWindow, requests: number) {
  const scale = loaded.ms / idle.ms;
  const excess = [...loaded.statements].map(([query, calls]) => ({ query, calls, excess: calls - (idle.statements.get(query) ?? 0) * scale })).sort((a, b) => b.excess - a.excess);
  const total = excess.reduce((n, s) => n + Math.max(0, s.excess), 0);
  const hot = excess.filter((s) => s.excess / requests >= 0.01);
  return {
    statementsPerRequest: total / requests,
    gatewayQueriesPerRequest: (loaded.gatewayQueries - idle.gatewayQueries * scale) / requests,
    hot,
    top: excess.slice(0, 5).map((s) => ({ ...s, query: s.query.replace(/\s+/g, ' ').slice(0, 120), perRequest: s.excess / requests })),
  };
}

/** grantpool_db_queries_total from a gateway's /metrics. */
async function scrapeQueries(url: string, adminToken: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  const m = /^grantpool_db_queries_total (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  if (!m) throw new Error(`${url}/metrics has no grantpool_db_queries_total`);
  return Number(m[1]);
}
