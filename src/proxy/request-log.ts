// The request log: every proxied request (never a body, never a token) in a
// bounded ring, with filters for GET /api/requests, a live event hook for the
// dashboard, and per-day usage per account and model.
import type { RequestLogEntry, UsageRow } from '../api/deps.ts';
import type { Clock } from '../util/clock.ts';
import { systemClock } from '../util/clock.ts';

export type { RequestLogEntry, UsageRow };

export interface RequestLogFilter {
  /** Account id or email (case-insensitive). */
  account?: string;
  /** Matches the model asked for or the model used. */
  model?: string;
  /** `200`, `2xx`, `4xx`, `5xx`, `ok` (< 400) or `error` (>= 400). */
  status?: string;
  protocol?: string;
  /** Only entries at or after this time (ms). */
  since?: number;
  /** Newest first, at most this many (default 200). */
  limit?: number;
}

export interface RequestLog {
  record(entry: RequestLogEntry): void;
  /** Newest first. */
  query(filter?: RequestLogFilter): RequestLogEntry[];
  /** Entries recorded at or after `sinceMs` (counted over the ring). */
  countSince(sinceMs: number): number;
  /** Called for every new entry. Returns unsubscribe. */
  subscribe(listener: (entry: RequestLogEntry) => void): () => void;
  /** Requests and tokens today (UTC day) for one account (with trackUsage). */
  usageToday(accountId: string): { requests: number; tokens: number };
  /** Usage rows of the last `days` days (UTC), newest first (with trackUsage). */
  usageDays(days: number): UsageRow[];
  readonly size: number;
}

const USAGE_KEEP_DAYS = 90;

let dayStart = 0;
let dayEnd = 0;
let dayText = '';
/** YYYY-MM-DD (UTC) of a time; the current day's string is reused. */
function utcDate(ms: number): string {
  if (ms >= dayStart && ms < dayEnd) return dayText;
  dayStart = Math.floor(ms / 86_400_000) * 86_400_000;
  dayEnd = dayStart + 86_400_000;
  dayText = new Date(ms).toISOString().slice(0, 10);
  return dayText;
}

function statusMatches(status: number, filter: string): boolean {
  const f = filter.trim().toLowerCase();
  if (f === 'ok') return status > 0 && status < 400;
  if (f === 'error') return status >= 400 || status === 0;
  if (/^[1-5]xx$/.test(f)) return Math.floor(status / 100) === Number(f[0]);
  return String(status) === f;
}

export interface RequestLogOptions {
  size: number;
  clock?: Clock;
  /** Keep per-day usage per account and model (usageToday / usageDays). Off by default: the pool keeps usage too. */
  trackUsage?: boolean;
}

export function createRequestLog(opts: RequestLogOptions): RequestLog {
  const size = Math.max(0, Math.floor(opts.size));
  const clock = opts.clock ?? systemClock;
  const ring: (RequestLogEntry | undefined)[] = new Array(size);
  let next = 0;
  let count = 0;
  const listeners = new Set<(entry: RequestLogEntry) => void>();
  const usage = new Map<string, UsageRow>();
  let oldestDay = '';

  function addUsage(e: RequestLogEntry): void {
    if (!e.account_id) return;
    const date = utcDate(e.time);
    const model = e.model_used ?? e.model_requested ?? '';
    const key = `${date}\u0000${e.account_id}\u0000${model}`;
    let row = usage.get(key);
    if (!row) {
      row = { date, account_id: e.account_id, email: e.email ?? '', model, requests: 0, tokens_in: 0, tokens_out: 0 };
      usage.set(key, row);
    }
    row.requests += 1;
    row.tokens_in += e.tokens_in;
    row.tokens_out += e.tokens_out;
    if (date !== oldestDay) prune();
  }

  function prune(): void {
    const cutoff = utcDate(clock.now() - USAGE_KEEP_DAYS * 86_400_000);
    oldestDay = utcDate(clock.now());
    for (const [key, row] of usage) if (row.date < cutoff) usage.delete(key);
  }

  function* newestFirst(): Generator<RequestLogEntry> {
    for (let i = 1; i <= count; i++) {
      const e = ring[(next - i + size) % size];
      if (e) yield e;
    }
  }

  return {
    get size() {
      return count;
    },
    record(entry) {
      if (size > 0) {
        ring[next] = entry;
        next = (next + 1) % size;
        if (count < size) count++;
      }
      if (opts.trackUsage) addUsage(entry);
      for (const l of listeners) {
        try {
          l(entry);
        } catch {
          // A failing listener must not break the proxy.
        }
      }
    },
    query(filter = {}) {
      const limit = Math.max(1, Math.min(filter.limit ?? 200, size || 1));
      const account = filter.account?.toLowerCase();
      const out: RequestLogEntry[] = [];
      for (const e of newestFirst()) {
        if (filter.since !== undefined && e.time < filter.since) break;
        if (account && e.account_id?.toLowerCase() !== account && e.email?.toLowerCase() !== account) continue;
        if (filter.model && e.model_requested !== filter.model && e.model_used !== filter.model) continue;
        if (filter.protocol && e.protocol !== filter.protocol) continue;
        if (filter.status && !statusMatches(e.status, filter.status)) continue;
        out.push(e);
        if (out.length >= limit) break;
      }
      return out;
    },
    countSince(sinceMs) {
      let n = 0;
      for (const e of newestFirst()) {
        if (e.time < sinceMs) break;
        n++;
      }
      return n;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    usageToday(accountId) {
      const date = utcDate(clock.now());
      let requests = 0;
      let tokens = 0;
      for (const row of usage.values()) {
        if (row.date === date && row.account_id === accountId) {
          requests += row.requests;
          tokens += row.tokens_in + row.tokens_out;
        }
      }
      return { requests, tokens };
    },
    usageDays(days) {
      const cutoff = utcDate(clock.now() - (Math.max(1, days) - 1) * 86_400_000);
      return [...usage.values()]
        .filter((r) => r.date >= cutoff)
        .sort((a, b) => (a.date === b.date ? a.email.localeCompare(b.email) || a.model.localeCompare(b.model) : a.date < b.date ? 1 : -1))
        .map((r) => ({ ...r }));
    },
  };
}
