// The request log: every proxied request (never a body, never a token) in a
// bounded ring, with filters for GET /api/requests and a live event hook for
// the dashboard. (Usage per day lives in the pool, which persists it.)
/** One proxied request, as the request log keeps it and the API shows it. */
export interface RequestLogEntry {
  time: number;
  route: string;
  protocol: string;
  model_requested: string | null;
  model_used: string | null;
  account_id: string | null;
  email: string | null;
  /** The service that served (or last tried): `gemini_api` or `vertex`; absent or null when no account was leased. */
  service?: string | null;
  /** Its lane: `gemini_api:<project>`, `gemini_api:client:<client id>` or `vertex:<project>`. */
  lane?: string | null;
  status: number;
  latency_ms: number;
  first_byte_ms: number | null;
  tokens_in: number;
  tokens_out: number;
  retries: number;
  error: string | null;
  /** What the gateway changed about the request to serve it (e.g. "dropped hosted tool web_search"). */
  note?: string;
}

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
  /** Entries that started at or after `sinceMs` (counted over the ring). */
  countSince(sinceMs: number): number;
  /** Called for every new entry. Returns unsubscribe. */
  subscribe(listener: (entry: RequestLogEntry) => void): () => void;
  readonly size: number;
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
}

export function createRequestLog(opts: RequestLogOptions): RequestLog {
  const size = Math.max(0, Math.floor(opts.size));
  const ring: (RequestLogEntry | undefined)[] = new Array(size);
  let next = 0;
  let count = 0;
  const listeners = new Set<(entry: RequestLogEntry) => void>();

  function* newestFirst(): Generator<RequestLogEntry> {
    for (let i = 1; i <= count; i++) {
      const e = ring[(next - i + size) % size];
      if (e) yield e;
    }
  }

  /**
   * Newest first, the entries that started at or after `since`. The ring is in
   * finish order while `time` is the start, so a long request that finished
   * late sits before shorter, later ones: the scan skips older starts and ends
   * only at an entry that finished before `since` (every entry recorded before
   * it finished before it, so started before `since` too).
   */
  function* startedSince(since: number | undefined): Generator<RequestLogEntry> {
    for (const e of newestFirst()) {
      if (since === undefined || e.time >= since) yield e;
      else if (e.time + Math.max(0, e.latency_ms) < since) return;
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
      for (const e of startedSince(filter.since)) {
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
      for (const _ of startedSince(sinceMs)) n++;
      return n;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
