// Usage counts in PostgreSQL (see usage-counters.ts): one row of totals per
// quota day, account and model. A batch of increments is one transaction of
// upserts (rows in key order, so two gateways' batches never deadlock),
// recorded by its id so that a batch sent again after a lost reply counts
// once. Each row carries the id of the transaction that last changed it; a
// reader's cursor is the oldest transaction its snapshot could not see yet
// (pg_snapshot_xmin), so the next read from there misses no commit, however
// the transactions of several gateways interleave.
import type { Sql } from 'postgres';
import type { UsageCount, UsageCounters } from './usage-counters.ts';
import { unguarded, type Guard } from './pg-answer.ts';

const COLUMNS = 'day AS date, account_id, model, requests::float8 AS requests, tokens_in::float8 AS tokens_in, tokens_out::float8 AS tokens_out';

export class PgUsageCounters implements UsageCounters {
  private readonly sql: Sql;
  private readonly guard: Guard;

  constructor(sql: Sql, guard: Guard = unguarded) {
    this.sql = sql;
    this.guard = guard;
  }

  async add(batchId: string, increments: readonly UsageCount[]): Promise<UsageCount[]> {
    if (increments.length === 0) return [];
    // One row per key (an upsert cannot touch a row twice), in key order.
    const merged = new Map<string, UsageCount>();
    for (const r of increments) {
      const k = `${r.date}\u0000${r.account_id}\u0000${r.model}`;
      const m = merged.get(k);
      if (!m) merged.set(k, { ...r });
      else {
        m.requests += r.requests;
        m.tokens_in += r.tokens_in;
        m.tokens_out += r.tokens_out;
      }
    }
    const sorted = [...merged.values()].sort((a, b) => cmp(a.date, b.date) || cmp(a.account_id, b.account_id) || cmp(a.model, b.model));
    const col = <K extends keyof UsageCount>(k: K) => sorted.map((r) => r[k]);
    return this.guard(() => this.sql.begin(async (tx) => {
      const fresh = await tx`INSERT INTO grantpool_usage_batches (id) VALUES (${batchId}) ON CONFLICT (id) DO NOTHING RETURNING id`;
      if (fresh.length === 0) {
        // Counted already (the reply to an earlier try was lost): just say where the rows stand.
        return tx<UsageCount[]>`
          SELECT ${tx.unsafe(COLUMNS)} FROM grantpool_usage u
          JOIN unnest(${col('date')}::text[], ${col('account_id')}::text[], ${col('model')}::text[]) AS k(day, account_id, model) USING (day, account_id, model)`;
      }
      return tx<UsageCount[]>`
        INSERT INTO grantpool_usage AS u (day, account_id, model, requests, tokens_in, tokens_out)
        SELECT i.day, i.account_id, i.model, i.requests, i.tokens_in, i.tokens_out FROM unnest(${col('date')}::text[], ${col('account_id')}::text[], ${col('model')}::text[], ${col('requests')}::bigint[], ${col('tokens_in')}::bigint[], ${col('tokens_out')}::bigint[]) WITH ORDINALITY AS i(day, account_id, model, requests, tokens_in, tokens_out, n)
        ORDER BY n
        ON CONFLICT (day, account_id, model) DO UPDATE SET
          requests = u.requests + EXCLUDED.requests,
          tokens_in = u.tokens_in + EXCLUDED.tokens_in,
          tokens_out = u.tokens_out + EXCLUDED.tokens_out,
          xid = pg_current_xact_id()
        RETURNING ${tx.unsafe(COLUMNS)}`;
    }) as Promise<UsageCount[]>);
  }

  async changes(cursor: string | null, fromDate: string): Promise<{ rows: UsageCount[]; cursor: string }> {
    // One statement, one snapshot: the rows and the horizon come from the same view of the table.
    const found = await this.guard(() => this.sql<(Partial<UsageCount> & { horizon: string })[]>`
      WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon)
      SELECT h.horizon, ${this.sql.unsafe(COLUMNS)} FROM h
      LEFT JOIN grantpool_usage ON ${cursor === null ? this.sql`day >= ${fromDate}` : this.sql`xid >= ${cursor}::xid8`}`);
    const rows: UsageCount[] = [];
    for (const r of found) if (r.date !== null && r.date !== undefined) rows.push(r as UsageCount);
    return { rows, cursor: found[0]!.horizon };
  }

  async totals(fromDate: string, beforeDate: string, accountId?: string): Promise<UsageCount[]> {
    return this.guard(() => this.sql<UsageCount[]>`
      SELECT ${this.sql.unsafe(COLUMNS)} FROM grantpool_usage
      WHERE day >= ${fromDate} AND day < ${beforeDate}${accountId === undefined ? this.sql`` : this.sql` AND account_id = ${accountId}`}
      ORDER BY day`, null); // every account's days: the longer deadline of bulk reads
  }

  async prune(beforeDate: string): Promise<void> {
    await this.guard(async () => {
      await this.sql`DELETE FROM grantpool_usage WHERE day < ${beforeDate}`;
      await this.sql`DELETE FROM grantpool_usage_batches WHERE at < now() - interval '2 days'`;
    });
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
