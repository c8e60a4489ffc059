// Usage counted per quota day, account and model (requests, tokens in, tokens
// out). Quota protection reads it, the dashboard charts it. The interface and
// the store in memory; the one in files that survives restarts and crashes is
// usage-file.ts, gateways on one database share their counts through
// shared-usage.ts. Only the open days (today: what quota protection reads and
// requests count on) are held in memory; older days are retired to storage
// and read from there when the history is asked for, so memory follows one
// day of use, not 90.
import type { DayUsage } from './quota.ts';
import { nonNegative, type UsageRecord } from './usage-days.ts';

export { nonNegative, type UsageRecord };


export interface UsageStore {
  /** Reads what was saved (no-op for memory). Call once before use. */
  load(): Promise<void>;
  add(date: string, accountId: string, model: string, delta: Partial<DayUsage>): void;
  /** Usage of one account and model on one day (zeros when none). Must be cheap: quota checks call it per selection. */
  get(date: string, accountId: string, model: string): DayUsage;
  /** Every record held in memory (the days not retired) whose date is >= fromDate (string order), optionally for one account. */
  records(fromDate: string, accountId?: string): UsageRecord[];
  /** Every record whose date is >= fromDate, retired days included (read from storage), optionally for one account. */
  history(fromDate: string, accountId?: string): Promise<UsageRecord[]>;
  /**
   * Days before `beforeDate` leave memory for storage (where history() reads
   * them); records() no longer shows them. A store with no storage keeps them.
   */
  retire(beforeDate: string): void;
  /** Forget days before `date`. */
  prune(beforeDate: string): void;
  /**
   * Goes up whenever counts made elsewhere (another gateway) arrive, so that
   * sums kept over these counts (a lane's) know to be built again.
   */
  readonly revision: number;
  /** Write pending changes now (no-op for memory). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const ZERO: DayUsage = Object.freeze({ requests: 0, tokens_in: 0, tokens_out: 0 });

/**
 * day -> model -> account -> usage. Models are few and accounts many, so this
 * order keeps one small map per model instead of one per account.
 */
export type Table = Map<string, Map<string, Map<string, DayUsage>>>;

export class MemoryUsageStore implements UsageStore {
  protected table: Table = new Map();
  revision = 0;

  async load(): Promise<void> {}

  add(date: string, accountId: string, model: string, delta: Partial<DayUsage>): void {
    this.apply(date, accountId, model, delta);
    this.changed();
  }

  /** Adds to the table only (no persistence hook); returns the cell added to. */
  protected apply(date: string, accountId: string, model: string, delta: Partial<DayUsage>): DayUsage {
    let day = this.table.get(date);
    if (!day) this.table.set(date, (day = new Map()));
    let byAccount = day.get(model);
    if (!byAccount) day.set(model, (byAccount = new Map()));
    let u = byAccount.get(accountId);
    if (!u) byAccount.set(accountId, (u = { requests: 0, tokens_in: 0, tokens_out: 0 }));
    u.requests += nonNegative(delta.requests);
    u.tokens_in += nonNegative(delta.tokens_in);
    u.tokens_out += nonNegative(delta.tokens_out);
    return u;
  }

  /** Sets one cell of the table (no persistence hook). */
  protected put(date: string, accountId: string, model: string, u: DayUsage): void {
    let day = this.table.get(date);
    if (!day) this.table.set(date, (day = new Map()));
    let byAccount = day.get(model);
    if (!byAccount) day.set(model, (byAccount = new Map()));
    byAccount.set(accountId, u);
  }

  get(date: string, accountId: string, model: string): DayUsage {
    return this.table.get(date)?.get(model)?.get(accountId) ?? ZERO;
  }

  records(fromDate: string, accountId?: string): UsageRecord[] {
    return recordsOf(this.table, fromDate, accountId);
  }

  async history(fromDate: string, accountId?: string): Promise<UsageRecord[]> {
    return this.records(fromDate, accountId);
  }

  /** Nothing to retire to: the days stay in memory. */
  retire(_beforeDate: string): void {}

  /** The days held in memory (oldest first). */
  protected days(): string[] {
    return [...this.table.keys()].sort();
  }

  protected holdsDay(date: string): boolean {
    return this.table.has(date);
  }

  /** Removes one day from memory and returns it. */
  protected takeDay(date: string): Map<string, Map<string, DayUsage>> | undefined {
    const day = this.table.get(date);
    this.table.delete(date);
    return day;
  }

  prune(beforeDate: string): void {
    let any = false;
    for (const date of [...this.table.keys()]) {
      if (date < beforeDate) {
        this.table.delete(date);
        any = true;
      }
    }
    if (any) this.changed();
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {}

  /** Hook for persistence. */
  protected changed(): void {}
}

/** The records of a table whose date is >= fromDate, oldest day first, optionally for one account. */
function recordsOf(table: Table, fromDate: string, accountId?: string): UsageRecord[] {
  const out: UsageRecord[] = [];
  const days = [...table].filter(([date]) => date >= fromDate).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (const [date, day] of days) {
    for (const [model, byAccount] of day) {
      if (accountId !== undefined) {
        // One account: a lookup per model, not a walk over every account of the day.
        const u = byAccount.get(accountId);
        if (u) out.push({ date, account_id: accountId, model, ...u });
        continue;
      }
      for (const [acct, u] of byAccount) out.push({ date, account_id: acct, model, ...u });
    }
  }
  return out;
}
