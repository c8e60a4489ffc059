// Quota protection: daily limits per model, the quota day (midnight
// America/Los_Angeles, with US daylight saving time), and whether an account
// must be kept out for a model because too little of its daily share remains.

export interface QuotaLimit {
  requests_per_day?: number;
  tokens_per_day?: number;
}

export interface DayUsage {
  requests: number;
  tokens_in: number;
  tokens_out: number;
}

const HOUR_MS = 3_600_000;

/** The `n`-th Sunday (1-based) of a month, as a UTC day number of that month. */
function nthSunday(year: number, month0: number, n: number): number {
  const firstWeekday = new Date(Date.UTC(year, month0, 1)).getUTCDay();
  return 1 + ((7 - firstWeekday) % 7) + 7 * (n - 1);
}

/**
 * Offset of America/Los_Angeles from UTC at instant `ms`: UTC-7 from the second
 * Sunday of March 02:00 PST to the first Sunday of November 02:00 PDT (US rule
 * since 2007), UTC-8 otherwise. Written out rather than asked of Intl: one
 * Intl.DateTimeFormat keeps ~8 MB of ICU code and data resident for the life of
 * the process, and this is the only zone Grantpool needs. A test checks it
 * against ICU every half hour from 2007 to 2045.
 */
export function pacificOffsetMs(ms: number): number {
  const year = new Date(ms - 8 * HOUR_MS).getUTCFullYear();
  const dstStart = Date.UTC(year, 2, nthSunday(year, 2, 2), 2 + 8);
  const dstEnd = Date.UTC(year, 10, nthSunday(year, 10, 1), 2 + 7);
  return ms >= dstStart && ms < dstEnd ? -7 * HOUR_MS : -8 * HOUR_MS;
}

/** The calendar date in America/Los_Angeles at instant `ms`, as a UTC Date at midnight of that date. */
function pacificDate(ms: number): Date {
  const local = new Date(ms + pacificOffsetMs(ms));
  return new Date(Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()));
}

/**
 * The instant of local midnight starting a calendar date (given as UTC midnight).
 * DST changes at 02:00, so midnight has the offset in force 8 hours after UTC midnight.
 */
function midnightOf(date: Date): number {
  const utcMidnight = date.getTime();
  return utcMidnight - pacificOffsetMs(utcMidnight + 8 * HOUR_MS);
}

function dateKey(d: Date): string {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
}

export interface QuotaDay {
  /** `YYYY-MM-DD`, the calendar date in the quota time zone. */
  key: string;
  /** Epoch ms of this day's start and of the next reset. */
  start: number;
  end: number;
}

/** The quota day containing instant `ms`. */
export function quotaDay(ms: number): QuotaDay {
  const date = pacificDate(ms);
  const next = new Date(date.getTime());
  next.setUTCDate(next.getUTCDate() + 1);
  return { key: dateKey(date), start: midnightOf(date), end: midnightOf(next) };
}

/** Epoch ms of the next daily quota reset (midnight America/Los_Angeles) after `ms`. */
export function nextQuotaResetMs(ms: number): number {
  return quotaDay(ms).end;
}

/** The quota day key `n` days before the one containing `ms` (n = 0: that day). */
export function quotaDayKeyBefore(ms: number, n: number): string {
  const d = pacificDate(ms);
  d.setUTCDate(d.getUTCDate() - n);
  return dateKey(d);
}

/** Caches the current quota day so that hot paths do not work it out on every call. */
export class QuotaDayCache {
  private day: QuotaDay | null = null;
  current(now: number): QuotaDay {
    const d = this.day;
    if (d && now >= d.start && now < d.end) return d;
    this.day = quotaDay(now);
    return this.day;
  }
}

/** `*` matches any run of characters; everything else literally. */
export function wildcardMatch(pattern: string, text: string): boolean {
  if (!pattern.includes('*')) return pattern === text;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(text);
}

/**
 * The limit for a model: the exact key, else the most specific matching
 * wildcard key (the one with the most literal characters). Null: no limit.
 */
export function limitForModel(model: string, limits: Record<string, QuotaLimit>): QuotaLimit | null {
  const exact = limits[model];
  if (exact) return exact;
  let best: QuotaLimit | null = null;
  let bestScore = -1;
  for (const [pattern, limit] of Object.entries(limits)) {
    if (!pattern.includes('*') || !wildcardMatch(pattern, model)) continue;
    const score = pattern.replace(/\*/g, '').length;
    if (score > bestScore) {
      best = limit;
      bestScore = score;
    }
  }
  return best;
}

/** The smallest remaining share (0..100) over the limits that are set; null when none is set. */
export function remainingPercent(usage: DayUsage, limit: QuotaLimit): number | null {
  let remaining: number | null = null;
  if (limit.requests_per_day) {
    const r = ((limit.requests_per_day - usage.requests) / limit.requests_per_day) * 100;
    remaining = remaining === null ? r : Math.min(remaining, r);
  }
  if (limit.tokens_per_day) {
    const t = ((limit.tokens_per_day - (usage.tokens_in + usage.tokens_out)) / limit.tokens_per_day) * 100;
    remaining = remaining === null ? t : Math.min(remaining, t);
  }
  return remaining;
}

/** True when the account must be kept out for this model until the next reset. */
export function isQuotaProtected(usage: DayUsage, limit: QuotaLimit | null, thresholdPercent: number): boolean {
  if (!limit) return false;
  const remaining = remainingPercent(usage, limit);
  if (remaining === null) return false;
  return remaining <= 0 || remaining < thresholdPercent;
}

/** Resolves limits per model once (models are few, lookups are many). */
export class QuotaLimits {
  private cache = new Map<string, QuotaLimit | null>();
  private readonly limits: Record<string, QuotaLimit>;
  constructor(limits: Record<string, QuotaLimit>) {
    this.limits = limits;
  }
  for(model: string): QuotaLimit | null {
    let l = this.cache.get(model);
    if (l === undefined) {
      l = limitForModel(model, this.limits);
      if (this.cache.size > 1000) this.cache.clear();
      this.cache.set(model, l);
    }
    return l;
  }
}
