// Usage in files that survive restarts and crashes (see usage.ts for the
// interface): every record reaches a log (`usage.<n>.log`, within half a
// second, summed per day, account and model over that half second), and the
// log is compacted now and then into `usage.json` (written atomically), which
// holds only the open days; older days are retired to their day files
// (usage-days.ts) at a compaction.
import { open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsx/atomic-write.ts';
import { noteWrite } from '../fsx/storage-errors.ts';
import type { DayUsage } from './quota.ts';
import { MemoryUsageStore, type Table, type UsageRecord } from './usage.ts';
import { dayObject, nonNegative, parseDay, recordKey, UsageDayFiles, type DayTable, type FiledDays } from './usage-days.ts';

export interface FileUsageStoreOptions {
  /** usage.json (the log compacted into it) is rewritten at most this often. Default 2000. */
  debounceMs?: number;
  /** A record reaches the log within this time (default 500 ms): what a crash can lose. */
  appendDelayMs?: number;
  /** Compact early when the log has grown by this many bytes (default 4 MiB). */
  compactLogBytes?: number;
  /** Called when a write fails (the data stays in memory and is written again later). */
  onError?: (e: Error) => void;
}

const LOG_NAME = /^usage\.(\d{1,15})\.log$/;

/**
 * `<dataDir>/usage.json`: `{"version":1,"log":N,"days":{"YYYY-MM-DD":{"<account id>":{"<model>":{requests,tokens_in,tokens_out}}}}}`
 * holds every record of the logs numbered below N; `usage.<n>.log` (n >= N)
 * holds the records since, one JSON array `[date, account, model, requests,
 * tokens_in, tokens_out]` per line. A start reads usage.json, then the logs
 * from N on (a line cut short by a crash is skipped). A compaction moves
 * appends to the next log, writes usage.json for it, then deletes the older
 * logs: a crash at any point counts each record once.
 *
 * A retired day is in `<dataDir>/usage/<day>.json`:
 * `{"version":1,"date":"YYYY-MM-DD","log":G,"accounts":{...as in usage.json}}`,
 * written by the compaction that moved appends to log G, before the
 * usage.json without that day. It holds every record of that day in the
 * logs below G and in any usage.json with a lower `log`; a start skips those
 * (so a crash between the two writes counts nothing twice). A record for a
 * retired day that turns up later (a log replayed after a crash) stays in
 * memory and is added to the day's file by the next compaction.
 */
export class FileUsageStore extends MemoryUsageStore {
  readonly path: string;
  private readonly dataDir: string;
  private readonly debounceMs: number;
  private readonly appendDelayMs: number;
  private readonly compactLogBytes: number;
  private readonly onError: (e: Error) => void;
  /** The log appended to now. */
  private gen = 1;
  /** Logs that may exist on disk (deleted once usage.json covers them). */
  private readonly logs = new Set<number>();
  private log: { gen: number; fh: FileHandle } | null = null;
  /** Records not yet in the log, summed per table cell (one line per cell and append). */
  private pending = new Map<DayUsage, PendingRecord>();
  private logBytes = 0;
  private appendTimer: NodeJS.Timeout | null = null;
  private compactTimer: NodeJS.Timeout | null = null;
  /** Changed since the last usage.json. */
  private dirty = false;
  /** File operations run one at a time, in order. */
  private io: Promise<void> = Promise.resolve();
  private loading: Promise<void> | null = null;
  /** Days before this one leave memory for their day files at the next compaction ('' : none). */
  private retireBefore = '';
  private readonly dayFiles: UsageDayFiles;

  constructor(dataDir: string, opts: FileUsageStoreOptions = {}) {
    super();
    this.dataDir = dataDir;
    this.path = join(dataDir, 'usage.json');
    this.debounceMs = opts.debounceMs ?? 2000;
    this.appendDelayMs = opts.appendDelayMs ?? 500;
    this.compactLogBytes = opts.compactLogBytes ?? 4 * 1024 * 1024;
    this.onError = opts.onError ?? (() => {});
    this.dayFiles = new UsageDayFiles(join(dataDir, 'usage'), this.onError);
  }

  /** Reads usage.json and the logs once (a second call waits for the first: replaying twice would count twice). */
  override load(): Promise<void> {
    return (this.loading ??= this.loadOnce());
  }

  private async loadOnce(): Promise<void> {
    const covered = await this.loadSnapshot();
    // What the day files hold already: a day in usage.json that a later compaction retired (a crash came between the writes).
    const filed = await this.dayFiles.list();
    for (const date of this.days()) {
      if (filed.has(date) && (await filed.get(date)!()) > covered) this.takeDay(date);
    }
    let names: string[] = [];
    try {
      names = await readdir(this.dataDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const gens = names.map((n) => LOG_NAME.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
    let replayed = 0;
    for (const g of gens) {
      if (g < covered) {
        // In usage.json already (a crash came between writing it and deleting this).
        await unlink(this.logPath(g)).catch(() => {});
        continue;
      }
      this.logs.add(g);
      replayed += await this.replay(g, filed);
    }
    this.gen = Math.max(covered, (gens.at(-1) ?? 0) + 1, 1);
    if (replayed > 0 || this.days().some((d) => d < this.retireBefore)) this.changed();
  }

  override add(date: string, accountId: string, model: string, delta: Partial<DayUsage>): void {
    const cell = this.apply(date, accountId, model, delta);
    const r = nonNegative(delta.requests);
    const i = nonNegative(delta.tokens_in);
    const o = nonNegative(delta.tokens_out);
    if (r || i || o) {
      const p = this.pending.get(cell);
      if (p) {
        p.r += r;
        p.i += i;
        p.o += o;
      } else {
        this.pending.set(cell, { date, accountId, model, r, i, o });
      }
      if (!this.appendTimer) {
        this.appendTimer = setTimeout(() => {
          this.appendTimer = null;
          void this.append();
        }, this.appendDelayMs);
        this.appendTimer.unref();
      }
    }
    this.changed();
  }

  /** Writes the pending records to the log, then compacts the log into usage.json. */
  override async flush(): Promise<void> {
    if (this.appendTimer) {
      clearTimeout(this.appendTimer);
      this.appendTimer = null;
    }
    if (this.compactTimer) {
      clearTimeout(this.compactTimer);
      this.compactTimer = null;
    }
    await this.append();
    await this.compact();
  }

  override async close(): Promise<void> {
    await this.flush();
    await this.run(() => this.closeLog());
  }

  protected override changed(): void {
    this.dirty = true;
    this.scheduleCompact();
  }

  private scheduleCompact(): void {
    if (this.compactTimer) return;
    this.compactTimer = setTimeout(() => {
      this.compactTimer = null;
      void this.compact();
    }, this.debounceMs);
    this.compactTimer.unref();
  }

  private run(op: () => Promise<void>): Promise<void> {
    this.io = this.io.then(op, op);
    return this.io;
  }

  private logPath(gen: number): string {
    return join(this.dataDir, `usage.${gen}.log`);
  }

  private async closeLog(): Promise<void> {
    const log = this.log;
    this.log = null;
    await log?.fh.close().catch(() => {});
  }

  private append(): Promise<void> {
    return this.run(async () => {
      if (this.pending.size === 0) return;
      const text = logLines(this.pending);
      this.pending = new Map();
      try {
        if (this.log?.gen !== this.gen) {
          await this.closeLog();
          this.logs.add(this.gen);
          this.log = { gen: this.gen, fh: await open(this.logPath(this.gen), 'a', 0o600) };
        }
        await this.log.fh.appendFile(text);
        this.logBytes += text.length;
        noteWrite(this.logPath(this.gen));
      } catch (e) {
        // The records stay in memory; the next usage.json holds them.
        noteWrite(this.logPath(this.gen), e);
        this.onError(e as Error);
        this.dirty = true;
        this.scheduleCompact();
        return;
      }
      if (this.logBytes >= this.compactLogBytes) void this.compact();
    });
  }

  private compact(): Promise<void> {
    return this.run(async () => {
      if (!this.dirty) return;
      // From here on appends go to the next log; this snapshot holds everything before it.
      const old = this.gen;
      const rest = this.pending;
      this.pending = new Map();
      this.gen = old + 1;
      this.logBytes = 0;
      this.dirty = false;
      // Days to retire leave the table with this snapshot: their files and usage.json describe the same moment.
      const before = this.retireBefore;
      const retiring = this.days().filter((d) => d < before).map((d) => [d, this.takeDay(d)!] as const);
      const text = this.serialize(this.gen);
      if (rest.size) {
        // Best effort: the snapshot below holds these records too.
        if (this.log?.gen === old) await this.log.fh.appendFile(logLines(rest)).catch(() => {});
      }
      if (this.log?.gen === old) await this.closeLog();
      for (let i = 0; i < retiring.length; i++) {
        try {
          await this.dayFiles.write(retiring[i]![0], retiring[i]![1], this.gen);
        } catch (e) {
          // Not retired after all: back in memory; usage.json and the logs stay as they are until the next compaction.
          for (const [date, day] of retiring.slice(i)) this.restoreDay(date, day);
          this.dirty = true;
          this.onError(e as Error);
          this.scheduleCompact();
          return;
        }
      }
      try {
        await writeFileAtomic(this.path, text);
      } catch (e) {
        this.dirty = true;
        this.onError(e as Error);
        this.scheduleCompact();
        return;
      }
      for (const g of [...this.logs]) {
        if (g >= this.gen) continue;
        this.logs.delete(g);
        await unlink(this.logPath(g)).catch(() => {});
      }
    });
  }

  override retire(beforeDate: string): void {
    if (beforeDate <= this.retireBefore) return;
    this.retireBefore = beforeDate;
    if (this.days().some((d) => d < beforeDate)) {
      this.dirty = true;
      this.scheduleCompact();
    }
  }

  override async history(fromDate: string, accountId?: string): Promise<UsageRecord[]> {
    let byKey = new Map<string, UsageRecord>();
    // In the queue of file operations: no compaction moves a day from memory to its file while this reads both.
    await this.run(async () => {
      const held = this.records(fromDate, accountId);
      byKey = await this.dayFiles.records(fromDate, accountId);
      for (const r of held) {
        const k = recordKey(r.date, r.account_id, r.model);
        const f = byKey.get(k);
        if (!f) byKey.set(k, r);
        else byKey.set(k, { ...f, requests: f.requests + r.requests, tokens_in: f.tokens_in + r.tokens_in, tokens_out: f.tokens_out + r.tokens_out });
      }
    });
    return [...byKey.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  }

  override prune(beforeDate: string): void {
    super.prune(beforeDate);
    void this.run(() => this.dayFiles.prune(beforeDate));
  }

  /** Puts a day that could not be retired back into the table. */
  private restoreDay(date: string, day: DayTable): void {
    for (const [model, byAccount] of day) for (const [acct, u] of byAccount) this.apply(date, acct, model, u);
  }

  /** Reads usage.json into the table; returns the first log number it does not hold. */
  private async loadSnapshot(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      this.onError(new Error(`${this.path} is not valid JSON; usage counting starts again from zero (the usage logs are still read)`));
      return 0;
    }
    const log = (data as { log?: unknown })?.log;
    const covered = typeof log === 'number' && Number.isSafeInteger(log) && log > 0 ? log : 0;
    const days = (data as { days?: unknown })?.days;
    if (!days || typeof days !== 'object') return covered;
    const table: Table = new Map();
    for (const [date, accounts] of Object.entries(days as Record<string, unknown>)) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || !accounts || typeof accounts !== 'object') continue;
      table.set(date, parseDay(accounts));
    }
    this.table = table;
    return covered;
  }

  /**
   * Adds one log's records to the table, but for those a day file holds
   * already (its `log` above this one); returns how many. A line that does
   * not parse (cut short by a crash) is skipped.
   */
  private async replay(gen: number, filed: FiledDays): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.logPath(gen), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    let n = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        continue;
      }
      if (!Array.isArray(rec) || rec.length !== 6) continue;
      const [date, acct, model, r, i, o] = rec as unknown[];
      if (typeof date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(date) || typeof acct !== 'string' || typeof model !== 'string') continue;
      const inFile = filed.get(date);
      if (inFile && (await inFile()) > gen) continue;
      this.apply(date, acct, model, { requests: r as number, tokens_in: i as number, tokens_out: o as number });
      n++;
    }
    return n;
  }

  private serialize(log: number): string {
    const days: Record<string, Record<string, Record<string, DayUsage>>> = Object.create(null);
    for (const [date, day] of this.table) days[date] = dayObject(day);
    return `${JSON.stringify({ version: 1, log, days })}\n`;
  }
}

interface PendingRecord {
  date: string;
  accountId: string;
  model: string;
  r: number;
  i: number;
  o: number;
}

/** Log lines of the pending records (what replay reads back). */
function logLines(pending: ReadonlyMap<DayUsage, PendingRecord>): string {
  let text = '';
  for (const p of pending.values()) text += `${JSON.stringify([p.date, p.accountId, p.model, p.r, p.i, p.o])}\n`;
  return text;
}
