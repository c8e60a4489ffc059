// GET /metrics in Prometheus' text format (prom-client), built from what the
// gateway already records: every request-log entry (requests, latency, time
// to first byte), the pool's live states (accounts by state, cooling), the
// store's health, and the refreshes (an instrumented TokenRefresher). On the
// request path: a few map lookups per request (request-metrics.ts).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RequestLog, RequestLogEntry } from '../proxy/request-log.ts';
import type { Pool } from '../pool/pool.ts';
import type { AccountStore } from '../store/store.ts';
import { RefreshError, type TokenRefresher } from '../oauth/refresh-error.ts';
import type { Clock } from '../util/clock.ts';
import { registerDbMetrics, type DbSource } from './db-metrics.ts';
import { BufferedCounter, OneLabelHistogram } from './request-metrics.ts';

/** Label values a client controls (model names) are capped: beyond this many, they count as "other". */
const MAX_MODELS = 200;
const STATES = ['active', 'refreshing', 'cooling_down', 'quota_protected', 'proxy_disabled', 'disabled'] as const;
/** Upstream calls take from 50 ms (count tokens) to minutes (long streams). */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface Metrics {
  readonly registry: Registry;
  /** The refresher, timed and counted by outcome. */
  instrument(refresher: TokenRefresher): TokenRefresher;
  /** Starts reading the request log and the pool (they are made after the refresher). */
  attach(sources: Sources): () => void;
  text(): Promise<string>;
}

interface Sources {
  requestLog: RequestLog;
  pool: Pool;
  store: AccountStore;
  /** The database, when the store is PostgreSQL. */
  db?: DbSource | null;
}

export function createMetrics(opts: { clock: Clock; processMetrics?: boolean }): Metrics {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'grantpool_' });
  const registers = [registry];
  const models = new Set<string>();
  const modelLabel = (m: string | null): string => {
    if (!m) return '';
    if (models.has(m)) return m;
    if (models.size >= MAX_MODELS) return 'other';
    models.add(m);
    return m;
  };

  const requests = new BufferedCounter({
    name: 'grantpool_requests_total',
    help: 'Proxied requests by door (protocol), upstream model, HTTP status the client got, and lane',
    labelNames: ['door', 'model', 'status', 'lane'] as const,
    registers,
  });
  const latency = new OneLabelHistogram({
    name: 'grantpool_request_duration_seconds',
    help: 'Time from the request to the end of the answer, by door (includes upstream time and failovers)',
    label: 'door',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const firstByte = new OneLabelHistogram({
    name: 'grantpool_upstream_first_byte_seconds',
    help: "Time from the request to the upstream answer's first byte, by door",
    label: 'door',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const failovers = new Counter({ name: 'grantpool_failovers_total', help: 'Attempts after the first (failover to another account, retry after a refresh)', registers });
  const refreshes = new Counter({
    name: 'grantpool_refreshes_total',
    help: 'Token refreshes by outcome: ok, invalid_grant (account disabled), client (OAuth client misconfigured), transient',
    labelNames: ['outcome'] as const,
    registers,
  });
  const tokenLatency = new Histogram({
    name: 'grantpool_token_endpoint_duration_seconds',
    help: "Latency of the OAuth token endpoint (refreshes)",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  let sources: Sources | null = null;
  registerDbMetrics(registers, () => sources?.db ?? null);
  new Gauge({
    name: 'grantpool_accounts',
    help: 'Accounts by live state',
    labelNames: ['state'] as const,
    registers,
    collect() {
      if (!sources) return;
      const s = sources.pool.summary();
      for (const state of STATES) this.set({ state }, s.by_state[state]);
    },
  });
  new Gauge({
    name: 'grantpool_cooling_down',
    help: 'Accounts cooling down now (429 or 5xx from the upstream, or a failed refresh), by reason kind',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      if (!sources) return;
      this.reset();
      for (const { state } of sources.pool.states()) {
        if (state.state !== 'cooling_down') continue;
        const reason = /^refresh/.test(state.reason) ? 'refresh' : /429|RESOURCE_EXHAUSTED|rate/i.test(state.reason) ? 'rate_limited' : 'upstream_error';
        this.inc({ reason });
      }
    },
  });
  new Gauge({
    name: 'grantpool_store_up',
    help: '1 while the account store works, 0 while it does not (e.g. the database is unreachable)',
    registers,
    collect() {
      if (sources) this.set(sources.store.problem?.() ? 0 : 1);
    },
  });

  function onEntry(e: RequestLogEntry): void {
    const door = e.protocol;
    // A project's lane (`gemini_api:<project>`, `vertex:<project>`); '' for the OAuth client's shared project (or no account).
    const lane = e.lane && !e.lane.startsWith('gemini_api:client:') ? e.lane : '';
    requests.inc(door, modelLabel(e.model_used ?? e.model_requested), e.status, lane);
    latency.observe(door, e.latency_ms / 1000);
    if (e.first_byte_ms !== null) firstByte.observe(door, e.first_byte_ms / 1000);
    if (e.retries > 0) failovers.inc(e.retries);
  }

  return {
    registry,
    instrument(refresher) {
      return {
        async refresh(account) {
          const t0 = opts.clock.now();
          try {
            const token = await refresher.refresh(account);
            refreshes.inc({ outcome: 'ok' });
            return token;
          } catch (e) {
            refreshes.inc({ outcome: e instanceof RefreshError ? e.kind : 'transient' });
            throw e;
          } finally {
            tokenLatency.observe((opts.clock.now() - t0) / 1000);
          }
        },
      };
    },
    attach(s) {
      sources = s;
      const unsubscribe = s.requestLog.subscribe(onEntry);
      return () => {
        unsubscribe();
        sources = null;
      };
    },
    text: () => registry.metrics(),
  };
}
