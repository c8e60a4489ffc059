// Usage counts that several gateways add to (src/pool/shared-usage.ts keeps
// the hot path in memory and talks to these once a second): a table of
// totals per quota day, account and model, that takes batches of increments
// and tells what changed since a cursor. PostgreSQL provides it for gateways
// on one database (pg-usage-counters.ts); the in-process one here is what the
// tests run the same contract against.

export interface UsageCount {
  /** Quota day, `YYYY-MM-DD`. */
  date: string;
  account_id: string;
  model: string;
  requests: number;
  tokens_in: number;
  tokens_out: number;
}

export interface UsageCounters {
  /**
   * Adds one batch of increments, at most once per `batchId`: a batch sent
   * again after its reply was lost is not counted twice. Returns the totals of
   * the rows the batch touched, as they are now.
   */
  add(batchId: string, increments: readonly UsageCount[]): Promise<UsageCount[]>;
  /**
   * The totals of every row changed since `cursor` (null: every row dated
   * `fromDate` or later), and the cursor for the next call. A row may come
   * again; none is missed.
   */
  changes(cursor: string | null, fromDate: string): Promise<{ rows: UsageCount[]; cursor: string }>;
  /** The totals of the rows dated from `fromDate` up to (not including) `beforeDate`, optionally of one account. */
  totals(fromDate: string, beforeDate: string, accountId?: string): Promise<UsageCount[]>;
  /** Forgets the days before `beforeDate`. */
  prune(beforeDate: string): Promise<void>;
}

const key = (c: { date: string; account_id: string; model: string }) => `${c.date}\u0000${c.account_id}\u0000${c.model}`;

/** Totals in this process (one "database" that several SharedUsageStores can share in a test). */
export class MemoryUsageCounters implements UsageCounters {
  private readonly rows = new Map<string, UsageCount & { version: number }>();
  private readonly batches = new Set<string>();
  private version = 0;

  async add(batchId: string, increments: readonly UsageCount[]): Promise<UsageCount[]> {
    const fresh = !this.batches.has(batchId);
    this.batches.add(batchId);
    const version = ++this.version;
    const out: UsageCount[] = [];
    for (const inc of increments) {
      const k = key(inc);
      let row = this.rows.get(k);
      if (fresh) {
        if (!row) this.rows.set(k, (row = { date: inc.date, account_id: inc.account_id, model: inc.model, requests: 0, tokens_in: 0, tokens_out: 0, version }));
        row.requests += inc.requests;
        row.tokens_in += inc.tokens_in;
        row.tokens_out += inc.tokens_out;
        row.version = version;
      }
      if (row) out.push(plain(row));
    }
    return out;
  }

  async changes(cursor: string | null, fromDate: string): Promise<{ rows: UsageCount[]; cursor: string }> {
    const since = cursor === null ? -1 : Number(cursor);
    const rows = [...this.rows.values()].filter((r) => (cursor === null ? r.date >= fromDate : r.version > since)).map(plain);
    return { rows, cursor: String(this.version) };
  }

  async totals(fromDate: string, beforeDate: string, accountId?: string): Promise<UsageCount[]> {
    return [...this.rows.values()].filter((r) => r.date >= fromDate && r.date < beforeDate && (accountId === undefined || r.account_id === accountId)).map(plain);
  }

  async prune(beforeDate: string): Promise<void> {
    for (const [k, r] of this.rows) if (r.date < beforeDate) this.rows.delete(k);
  }
}

function plain(r: UsageCount): UsageCount {
  return { date: r.date, account_id: r.account_id, model: r.model, requests: r.requests, tokens_in: r.tokens_in, tokens_out: r.tokens_out };
}
