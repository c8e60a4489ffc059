// Usage days as files hold them: the day object of usage.json and of the day
// files (account -> model -> usage), read back defensively, and the day files
// themselves (`<data dir>/usage/<day>.json`, one per retired day, written
// atomically, each recording the log number it holds everything before).
// FileUsageStore (usage.ts) decides when a day is retired; this module only
// reads and writes.
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsx/atomic-write.ts';
import type { DayUsage } from './quota.ts';

/** One day's counts: model -> account -> usage. */
export type DayTable = Map<string, Map<string, DayUsage>>;
/** Day files by date, each with a reader of the log number it was written for. */
export type FiledDays = Map<string, () => Promise<number>>;

/** What was counted on a day for one account and model. */
export interface UsageRecord extends DayUsage {
  /** Quota day, `YYYY-MM-DD` (America/Los_Angeles). */
  date: string;
  account_id: string;
  model: string;
}

const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.json$/;

export function nonNegative(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

/** A day as usage.json and the day files hold it: account -> model -> usage. */
export function dayObject(day: DayTable): Record<string, Record<string, DayUsage>> {
  // Null-prototype objects: an account or model named "__proto__" is just a key.
  const d: Record<string, Record<string, DayUsage>> = Object.create(null);
  for (const [model, byAccount] of day) {
    for (const [acct, u] of byAccount) (d[acct] ??= Object.create(null))[model] = u;
  }
  return d;
}

/** The inverse of dayObject, for what was read from a file (anything malformed counts nothing). */
export function parseDay(accounts: unknown): DayTable {
  const day: DayTable = new Map();
  if (!accounts || typeof accounts !== 'object') return day;
  for (const [acct, models] of Object.entries(accounts as Record<string, unknown>)) {
    if (!models || typeof models !== 'object') continue;
    for (const [model, u] of Object.entries(models as Record<string, Record<string, unknown>>)) {
      let byAccount = day.get(model);
      if (!byAccount) day.set(model, (byAccount = new Map()));
      byAccount.set(acct, { requests: nonNegative(u?.requests), tokens_in: nonNegative(u?.tokens_in), tokens_out: nonNegative(u?.tokens_out) });
    }
  }
  return day;
}

/** The day files of one data directory. */
export class UsageDayFiles {
  private readonly dir: string;
  private readonly onError: (e: Error) => void;

  constructor(dir: string, onError: (e: Error) => void) {
    this.dir = dir;
    this.onError = onError;
  }

  path(date: string): string {
    return join(this.dir, `${date}.json`);
  }

  /** The day files there are, each with a reader of the `log` it was written for (read once, when first asked). */
  async list(): Promise<FiledDays> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw e;
    }
    const out: FiledDays = new Map();
    for (const n of names) {
      const m = DAY_FILE.exec(n);
      if (!m) continue;
      let log: Promise<number> | null = null;
      out.set(m[1]!, () => (log ??= this.read(m[1]!).then((d) => d?.log ?? 0, () => 0)));
    }
    return out;
  }

  /** One day file: its counts and the `log` it was written for; null when there is none. */
  async read(date: string): Promise<{ log: number; day: DayTable } | null> {
    let text: string;
    try {
      text = await readFile(this.path(date), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    let data: { log?: unknown; accounts?: unknown };
    try {
      data = JSON.parse(text) as typeof data;
    } catch {
      throw new Error(`${this.path(date)} is not valid JSON; the usage of ${date} in it cannot be read`);
    }
    const log = typeof data?.log === 'number' && Number.isSafeInteger(data.log) && data.log > 0 ? data.log : 0;
    return { log, day: parseDay(data?.accounts) };
  }

  /** Writes a retired day to its file, added to what the file held; `log`: the log appends now go to. */
  async write(date: string, day: DayTable, log: number): Promise<void> {
    let held: DayTable = new Map();
    try {
      held = (await this.read(date))?.day ?? held;
    } catch (e) {
      // Unreadable: what it held is lost already; the day is written anew from memory.
      this.onError(e as Error);
    }
    for (const [model, byAccount] of day) {
      let into = held.get(model);
      if (!into) held.set(model, (into = new Map()));
      for (const [acct, u] of byAccount) {
        const h = into.get(acct);
        into.set(acct, h ? { requests: h.requests + u.requests, tokens_in: h.tokens_in + u.tokens_in, tokens_out: h.tokens_out + u.tokens_out } : u);
      }
    }
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path(date), `${JSON.stringify({ version: 1, date, log, accounts: dayObject(held) })}\n`);
  }

  /** The records of the day files from `fromDate` on, by date, account and model (an unreadable file is told and skipped). */
  async records(fromDate: string, accountId?: string): Promise<Map<string, UsageRecord>> {
    const byKey = new Map<string, UsageRecord>();
    const filed = await this.list();
    for (const date of [...filed.keys()].filter((d) => d >= fromDate).sort()) {
      let day: DayTable | null;
      try {
        day = (await this.read(date))?.day ?? null;
      } catch (e) {
        this.onError(e as Error);
        continue;
      }
      for (const [model, byAccount] of day ?? []) {
        for (const [acct, u] of byAccount) {
          if (accountId === undefined || acct === accountId) byKey.set(recordKey(date, acct, model), { date, account_id: acct, model, ...u });
        }
      }
    }
    return byKey;
  }

  /** Deletes the day files before `beforeDate`. */
  async prune(beforeDate: string): Promise<void> {
    for (const date of (await this.list()).keys()) if (date < beforeDate) await unlink(this.path(date)).catch(() => {});
  }
}

/** The key of a record by date, account and model. */
export function recordKey(date: string, accountId: string, model: string): string {
  return `${date}\u0000${accountId}\u0000${model}`;
}
