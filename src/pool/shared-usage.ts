// Usage counts shared by every gateway on one database, with the same
// interface (and the same cheap reads) as the data directory's: the counts
// live in memory, where quota checks read them per request; increments are
// sent in one batch per second (an upsert per row), and the totals that other
// gateways added are read once a second from the change cursor. A database
// that cannot be reached costs nothing on the hot path: the counts stay in
// memory, and the batch is sent again (it counts once) when it is back.
// Only the open days are held in memory (usage.ts); the history of retired
// days is read from the database when asked for.
import { randomUUID } from 'node:crypto';
import type { UsageCount, UsageCounters } from '../store/usage-counters.ts';
import type { DayUsage } from './quota.ts';
import { MemoryUsageStore, nonNegative, type UsageRecord } from './usage.ts';
import { recordKey } from './usage-days.ts';

export interface SharedUsageOptions {
  /** How often increments are sent and others' totals read. Default 1000 ms. */
  intervalMs?: number;
  /** Longest wait between tries while the database cannot be reached. Default 30 s. */
  maxRetryMs?: number;
  /** Called once when sending or reading starts failing (the counts stay in memory). */
  onError?: (e: Error) => void;
  /** Called once when it works again after a failure. */
  onRecovered?: () => void;
}

interface Cell {
  date: string;
  account_id: string;
  model: string;
  u: DayUsage;
}

/**
 * What get() answers for a row is its database total as last known plus what
 * this gateway counted and the database does not hold yet (pending, and the
 * batch in flight); only the answer is kept (the known total is the answer
 * less the unsent), so memory is that of the data directory's store.
 */
export class SharedUsageStore extends MemoryUsageStore {
  private readonly counters: UsageCounters;
  private readonly intervalMs: number;
  private readonly maxRetryMs: number;
  private readonly onError: (e: Error) => void;
  private readonly onRecovered: () => void;
  /** Counted here, not sent yet. */
  private pending = new Map<string, Cell>();
  /** Sent (maybe counted) but not confirmed; sent again with the same id until it is. */
  private inflight: { id: string; cells: Map<string, Cell> } | null = null;
  private cursor: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private failing = false;
  private retryMs = 0;
  /** The last prune sent to the database (settled when it is done or failed). */
  private pruning: Promise<void> = Promise.resolve();
  private nextTryAt = 0;
  private closed = false;
  /** Days before this one are not held in memory once what was counted for them is sent ('': none). */
  private retireBefore = '';
  /** Round trips to the database, and those that failed (for /metrics and the benchmark). */
  roundTrips = 0;
  failures = 0;

  constructor(counters: UsageCounters, opts: SharedUsageOptions = {}) {
    super();
    this.counters = counters;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.maxRetryMs = opts.maxRetryMs ?? 30_000;
    this.onError = opts.onError ?? (() => {});
    this.onRecovered = opts.onRecovered ?? (() => {});
  }

  /** Reads the totals so far (a failure is not fatal: they are read again on the next tick), then syncs every interval. */
  override async load(): Promise<void> {
    if (!this.timer && !this.closed) {
      this.timer = setInterval(() => void this.sync(), this.intervalMs);
      this.timer.unref();
    }
    await this.sync();
  }

  override add(date: string, accountId: string, model: string, delta: Partial<DayUsage>): void {
    const r = nonNegative(delta.requests);
    const i = nonNegative(delta.tokens_in);
    const o = nonNegative(delta.tokens_out);
    if (!r && !i && !o) return;
    this.apply(date, accountId, model, { requests: r, tokens_in: i, tokens_out: o });
    const k = recordKey(date, accountId, model);
    let c = this.pending.get(k);
    if (!c) this.pending.set(k, (c = { date, account_id: accountId, model, u: { requests: 0, tokens_in: 0, tokens_out: 0 } }));
    c.u.requests += r;
    c.u.tokens_in += i;
    c.u.tokens_out += o;
  }

  override retire(beforeDate: string): void {
    if (beforeDate <= this.retireBefore) return;
    this.retireBefore = beforeDate;
    this.dropRetired();
  }

  /** Retired days leave memory, but for those with counts not sent yet (they go once sent). */
  private dropRetired(): void {
    const unsent = new Set<string>();
    for (const m of [this.pending, ...(this.inflight ? [this.inflight.cells] : [])]) for (const c of m.values()) unsent.add(c.date);
    for (const date of this.days()) if (date < this.retireBefore && !unsent.has(date)) this.takeDay(date);
  }

  /** Retired days from the database, the others (and retired ones with counts not sent yet) from memory. */
  override async history(fromDate: string, accountId?: string): Promise<UsageRecord[]> {
    const held = this.records(fromDate, accountId);
    if (fromDate >= this.retireBefore) return held;
    let stored: UsageCount[];
    await this.pruning;
    try {
      stored = await this.counters.totals(fromDate, this.retireBefore, accountId);
    } catch (e) {
      // The database is away (/api/status says so): the history shows the days held here until it is back.
      this.onError(e as Error);
      return held;
    }
    const out: UsageRecord[] = stored.filter((r) => !this.holdsDay(r.date));
    return [...out, ...held].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  }

  override prune(beforeDate: string): void {
    super.prune(beforeDate);
    for (const m of [this.pending, ...(this.inflight ? [this.inflight.cells] : [])]) {
      for (const [k, c] of m) if (c.date < beforeDate) m.delete(k);
    }
    // History reads wait for it: a day pruned here is never shown again by this gateway.
    this.pruning = this.counters.prune(beforeDate).catch(() => {});
  }

  /** Sends what is pending and reads the others' totals now. */
  override async flush(): Promise<void> {
    await this.sync(true);
    // A tick that was running when flush was called may have left newer counts pending.
    if (this.pending.size || this.inflight) await this.sync(true);
  }

  /** Stops the timer and sends what is pending (waiting at most `waitMs` for the database). */
  override async close(waitMs = 5000): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.flush().catch(() => {}), new Promise<void>((r) => (t = setTimeout(r, waitMs)))]);
    clearTimeout(t);
  }

  /** Counts not yet in the database (pending and in flight), as requests. */
  unsentRequests(): number {
    let n = 0;
    for (const c of this.pending.values()) n += c.u.requests;
    for (const c of this.inflight?.cells.values() ?? []) n += c.u.requests;
    return n;
  }

  /** One tick: send, then read. Ticks never overlap. */
  private sync(force = false): Promise<void> {
    if (this.running) return force ? this.running.then(() => this.sync(true)) : this.running;
    if (!force && Date.now() < this.nextTryAt) return Promise.resolve();
    this.running = this.tick().finally(() => (this.running = null));
    return this.running;
  }

  private async tick(): Promise<void> {
    try {
      await this.send();
      await this.read();
      this.dropRetired();
      if (this.failing) {
        this.failing = false;
        this.onRecovered();
      }
      this.retryMs = 0;
      this.nextTryAt = 0;
    } catch (e) {
      this.failures++;
      if (!this.failing) {
        this.failing = true;
        this.onError(e as Error);
      }
      this.retryMs = Math.min(this.maxRetryMs, Math.max(this.intervalMs, this.retryMs * 2));
      this.nextTryAt = Date.now() + this.retryMs;
    }
  }

  private async send(): Promise<void> {
    if (!this.inflight) {
      if (this.pending.size === 0) return;
      this.inflight = { id: randomUUID(), cells: this.pending };
      this.pending = new Map();
    }
    const batch = this.inflight;
    const increments: UsageCount[] = [...batch.cells.values()].map((c) => ({ date: c.date, account_id: c.account_id, model: c.model, ...c.u }));
    this.roundTrips++;
    const totals = new Map<string, UsageCount>();
    for (const t of await this.counters.add(batch.id, increments)) totals.set(recordKey(t.date, t.account_id, t.model), t);
    // Confirmed: the batch is in the database's totals from now on.
    this.inflight = null;
    for (const [k, c] of batch.cells) {
      const known = sub(this.get(c.date, c.account_id, c.model), this.pending.get(k)?.u);
      this.settle(k, c, max(known, totals.get(k)));
    }
  }

  private async read(): Promise<void> {
    this.roundTrips++;
    const { rows, cursor } = await this.counters.changes(this.cursor, this.retireBefore || '0000-00-00');
    this.cursor = cursor;
    for (const t of rows) {
      // A retired day's total is read from the database when asked for, not held.
      if (t.date < this.retireBefore && !this.holdsDay(t.date)) continue;
      const k = recordKey(t.date, t.account_id, t.model);
      const known = sub(this.get(t.date, t.account_id, t.model), this.unsent(k));
      this.settle(k, t, max(known, t));
    }
  }

  private unsent(k: string): DayUsage | undefined {
    const p = this.pending.get(k)?.u;
    const f = this.inflight?.cells.get(k)?.u;
    return p && f ? add(p, f) : (p ?? f);
  }

  /** The row's database total is `total`: its answer becomes that plus what is unsent (revision goes up when that changes it). */
  private settle(k: string, row: { date: string; account_id: string; model: string }, total: DayUsage): void {
    const u = this.unsent(k);
    const next = u ? add(total, u) : total;
    const now = this.get(row.date, row.account_id, row.model);
    if (now.requests === next.requests && now.tokens_in === next.tokens_in && now.tokens_out === next.tokens_out) return;
    this.put(row.date, row.account_id, row.model, next);
    this.revision++;
  }
}

function add(a: DayUsage, b: DayUsage): DayUsage {
  return { requests: a.requests + b.requests, tokens_in: a.tokens_in + b.tokens_in, tokens_out: a.tokens_out + b.tokens_out };
}

function sub(a: DayUsage, b: DayUsage | undefined): DayUsage {
  if (!b) return { requests: a.requests, tokens_in: a.tokens_in, tokens_out: a.tokens_out };
  return { requests: a.requests - b.requests, tokens_in: a.tokens_in - b.tokens_in, tokens_out: a.tokens_out - b.tokens_out };
}

/** Totals only grow: the larger of each count (an older total read late never lowers a newer one). */
function max(a: DayUsage, b: DayUsage | undefined): DayUsage {
  if (!b) return a;
  return { requests: Math.max(a.requests, b.requests), tokens_in: Math.max(a.tokens_in, b.tokens_in), tokens_out: Math.max(a.tokens_out, b.tokens_out) };
}
