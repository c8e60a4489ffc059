// Quota protection: daily limits per model, the quota day (midnight
// America/Los_Angeles, DST-correct through Intl), and whether an account must
// be kept out for a model because too little of its daily share remains.

export const QUOTA_TIME_ZONE = 'America/Los_Angeles';

export interface QuotaLimit {
  requests_per_day?: number;
  tokens_per_day?: number;
}

export interface QuotaProtectionConfig {
  enabled: boolean;
  threshold_percent: number;
  limits: Record<string, QuotaLimit>;
}

export interface DayUsage {
  requests: number;
  tokens_in: number;
  tokens_out: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

interface WallTime { year: number; month: number; day: number; hour: number; minute: number; second: number }

function wallTime(ms: number, timeZone: string): WallTime {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second! };
}

/** Offset of the zone from UTC at instant `ms`, in ms (negative west of Greenwich). */
function zoneOffsetMs(ms: number, timeZone: string): number {
  const w = wallTime(ms, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant of local midnight starting the given calendar date in the zone. */
function midnightOf(year: number, month: number, day: number, timeZone: string): number {
  const guess = Date.UTC(year, month - 1, day);
  let t = guess - zoneOffsetMs(guess, timeZone);
  // the offset at the result may differ from the guess's (DST change in between)
  t = guess - zoneOffsetMs(t, timeZone);
  return t;
}

export interface QuotaDay {
  /** `YYYY-MM-DD`, the calendar date in the quota time zone. */
  key: string;
  /** Epoch ms of this day's start and of the next reset. */
  start: number;
  end: number;
}

/** The quota day containing instant `ms`. */
export function quotaDay(ms: number, timeZone: string = QUOTA_TIME_ZONE): QuotaDay {
  const w = wallTime(ms, timeZone);
  const start = midnightOf(w.year, w.month, w.day, timeZone);
  const next = new Date(Date.UTC(w.year, w.month - 1, w.day + 1));
  const end = midnightOf(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), timeZone);
  const key = `${w.year}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}`;
  return { key, start, end };
}

/** Epoch ms of the next daily quota reset (midnight America/Los_Angeles) after `ms`. */
export function nextQuotaResetMs(ms: number): number {
  return quotaDay(ms).end;
}

/** The quota day key `n` days before the one containing `ms` (n = 0: that day). */
export function quotaDayKeyBefore(ms: number, n: number, timeZone: string = QUOTA_TIME_ZONE): string {
  const w = wallTime(ms, timeZone);
  const d = new Date(Date.UTC(w.year, w.month - 1, w.day - n));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
}

/** Caches the current quota day so that hot paths do not format dates on every call. */
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
