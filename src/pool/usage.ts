// Usage counted per quota day, account and model (requests, tokens in, tokens
// out). Quota protection reads it, the dashboard charts it. Two stores: in
// memory, and a file (`<dataDir>/usage.json`, written atomically, debounced)
// that survives restarts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsx/atomic-write.ts';
import type { DayUsage } from './quota.ts';

export interface UsageRecord extends DayUsage {
  /** Quota day, `YYYY-MM-DD` (America/Los_Angeles). */
  date: string;
  account_id: string;
  model: string;
}

export interface UsageStore {
  /** Reads what was saved (no-op for memory). Call once before use. */
  load(): Promise<void>;
  add(date: string, accountId: string, model: string, delta: Partial<DayUsage>): void;
  /** Usage of one account and model on one day (zeros when none). Must be cheap: quota checks call it per selection. */
  get(date: string, accountId: string, model: string): DayUsage;
  /** Every record whose date is >= fromDate (string order), optionally for one account. */
  records(fromDate: string, accountId?: string): UsageRecord[];
  /** Forget days before `date`. */
  prune(beforeDate: string): void;
  /** Write pending changes now (no-op for memory). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const ZERO: DayUsage = Object.freeze({ requests: 0, tokens_in: 0, tokens_out: 0 });

/**
 * day -> model -> account -> usage. Models are few and accounts many, so this
 * order keeps one small map per model instead of one per account.
 */
type Table = Map<string, Map<string, Map<string, DayUsage>>>;

export class MemoryUsageStore implements UsageStore {
  protected table: Table = new Map();

  async load(): Promise<void> {}

  add(date: string, accountId: string, model: string, delta: Partial<DayUsage>): void {
    let day = this.table.get(date);
    if (!day) this.table.set(date, (day = new Map()));
    let byAccount = day.get(model);
    if (!byAccount) day.set(model, (byAccount = new Map()));
    let u = byAccount.get(accountId);
    if (!u) byAccount.set(accountId, (u = { requests: 0, tokens_in: 0, tokens_out: 0 }));
    u.requests += nonNegative(delta.requests);
    u.tokens_in += nonNegative(delta.tokens_in);
    u.tokens_out += nonNegative(delta.tokens_out);
    this.changed();
  }

  get(date: string, accountId: string, model: string): DayUsage {
    return this.table.get(date)?.get(model)?.get(accountId) ?? ZERO;
  }

  records(fromDate: string, accountId?: string): UsageRecord[] {
    const out: UsageRecord[] = [];
    const days = [...this.table].filter(([date]) => date >= fromDate).sort((a, b) => (a[0] < b[0] ? -1 : 1));
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

export interface FileUsageStoreOptions {
  /** Wait this long after a change before writing (changes in between are batched). Default 2000. */
  debounceMs?: number;
  /** Called when a write fails (the data stays in memory and is written again later). */
  onError?: (e: Error) => void;
}

/** `<dataDir>/usage.json`: `{"version":1,"days":{"YYYY-MM-DD":{"<account id>":{"<model>":{requests,tokens_in,tokens_out}}}}}`. */
export class FileUsageStore extends MemoryUsageStore {
  readonly path: string;
  private readonly debounceMs: number;
  private readonly onError: (e: Error) => void;
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(dataDir: string, opts: FileUsageStoreOptions = {}) {
    super();
    this.path = join(dataDir, 'usage.json');
    this.debounceMs = opts.debounceMs ?? 2000;
    this.onError = opts.onError ?? (() => {});
  }

  override async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      this.onError(new Error(`${this.path} is not valid JSON; usage counting starts again from zero`));
      return;
    }
    const days = (data as { days?: unknown })?.days;
    if (!days || typeof days !== 'object') return;
    const table: Table = new Map();
    for (const [date, accounts] of Object.entries(days as Record<string, unknown>)) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || !accounts || typeof accounts !== 'object') continue;
      const day = new Map<string, Map<string, DayUsage>>();
      for (const [acct, models] of Object.entries(accounts as Record<string, unknown>)) {
        if (!models || typeof models !== 'object') continue;
        for (const [model, u] of Object.entries(models as Record<string, Record<string, unknown>>)) {
          let byAccount = day.get(model);
          if (!byAccount) day.set(model, (byAccount = new Map()));
          byAccount.set(acct, { requests: nonNegative(u?.requests), tokens_in: nonNegative(u?.tokens_in), tokens_out: nonNegative(u?.tokens_out) });
        }
      }
      table.set(date, day);
    }
    this.table = table;
  }

  override async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // chain writes so that they never overlap and the last one wins
    this.writing = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      try {
        await writeFileAtomic(this.path, this.serialize());
      } catch (e) {
        this.dirty = true;
        this.onError(e as Error);
      }
    });
    return this.writing;
  }

  override async close(): Promise<void> {
    await this.flush();
  }

  protected override changed(): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.debounceMs);
    this.timer.unref();
  }

  private serialize(): string {
    const days: Record<string, Record<string, Record<string, DayUsage>>> = Object.create(null);
    for (const [date, day] of this.table) {
      // Null-prototype objects: an account or model named "__proto__" is just a key.
      const d: Record<string, Record<string, DayUsage>> = (days[date] = Object.create(null));
      for (const [model, byAccount] of day) {
        for (const [acct, u] of byAccount) (d[acct] ??= Object.create(null))[model] = u;
      }
    }
    return `${JSON.stringify({ version: 1, days })}\n`;
  }
}

export function nonNegative(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}
