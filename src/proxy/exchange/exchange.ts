// One proxied request is one exchange: lease an account and open the upstream
// (attempts.ts, with failover), let the route's adapter serve the answer
// (forward, translate, pump), and finish exactly once, in a `finally`: the
// exchange's outcome, one value, is reported to the pool for the account
// that answered and recorded in the request log. (Metrics and usage hook in
// at `finish` too.)
import type { ServerResponse } from 'node:http';
import type { Lease, UpstreamOutcome } from '../../pool/types.ts';
import type { RequestLogEntry } from '../request-log.ts';
import type { Usage } from '../sse.ts';
import { sendJsonBody, type ErrorShaper } from './answer.ts';
import { openUpstream, type AttemptSpec, type AttemptState, type Opened } from './attempts.ts';
import type { EngineDeps, Protocol } from './deps.ts';
import { proxyErrorAnswer } from '../error-answer.ts';

/** One proxied request as its route describes it: what was asked (how it ended is its ExchangeOutcome). */
export interface Track {
  readonly start: number;
  readonly route: string;
  readonly protocol: Protocol;
  modelRequested: string | null;
  /** The upstream model after aliases. */
  modelUsed: string | null;
  /** What the gateway changed about the request to serve it (e.g. a dropped hosted tool). */
  note?: string;
}

/** How one exchange ended. */
export interface ExchangeOutcome {
  /** The HTTP status the client got (499: it went away first); for a stream that broke after it started, 502. */
  status: number;
  error: string | null;
  /** The account that answered (or the last one tried). */
  lease: Lease | null;
  /** Attempts after the first (failovers, retries after a refresh). */
  retries: number;
  firstByteAt: number | null;
  usage: Usage | null;
  /** What the answer meant for the account that gave it (reported to the pool); null: nothing to report. */
  report: UpstreamOutcome | null;
}

/** What a route's adapter says about the answer it gave. */
export interface Served {
  status: number;
  error?: string | null;
  firstByteAt?: number | null;
  usage?: Usage | null;
  report: UpstreamOutcome | null;
}

export function newTrack(deps: EngineDeps, route: string, protocol: Protocol): Track {
  return { start: deps.clock.now(), route, protocol, modelRequested: null, modelUsed: null };
}

/** The `ok` report: usage when known; `counts: false` for what is not a generate request (quota protection counts those only). */
export function okReport(usage: Usage | null, counts: boolean): UpstreamOutcome {
  const o: UpstreamOutcome & { kind: 'ok' } = usage ? { kind: 'ok', tokensIn: usage.tokensIn, tokensOut: usage.tokensOut } : { kind: 'ok' };
  if (!counts) o.counts = false;
  return o;
}

/**
 * Ends an exchange: the one place that reports to the pool for the answering
 * account and records the request log entry. `model` is the pool's model key.
 */
export function finishTrack(deps: EngineDeps, track: Track, outcome: Partial<ExchangeOutcome> & { status: number }, model = ''): void {
  const lease = outcome.lease ?? null;
  if (lease && outcome.report) deps.pool.report(lease, model, outcome.report);
  const now = deps.clock.now();
  if (deps.logger.isLevelEnabled('debug')) {
    deps.logger.debug(
      { route: track.route, model: track.modelUsed, account: lease?.email, service: lease?.service, lane: lease?.lane, status: outcome.status, latency_ms: now - track.start, retries: outcome.retries ?? 0 },
      `${track.route} ${outcome.status}${lease ? ` via ${lease.lane}` : ''}`,
    );
  }
  if (!deps.requestLog) return;
  const firstByteAt = outcome.firstByteAt ?? null;
  const entry: RequestLogEntry = {
    time: track.start,
    route: track.route,
    protocol: track.protocol,
    model_requested: track.modelRequested,
    model_used: track.modelUsed,
    account_id: lease?.accountId ?? null,
    email: lease?.email ?? null,
    service: lease?.service ?? null,
    lane: lease?.lane ?? null,
    status: outcome.status,
    latency_ms: now - track.start,
    first_byte_ms: firstByteAt === null ? null : firstByteAt - track.start,
    tokens_in: outcome.usage?.tokensIn ?? 0,
    tokens_out: outcome.usage?.tokensOut ?? 0,
    retries: outcome.retries ?? 0,
    error: outcome.error ?? null,
  };
  if (track.note) entry.note = track.note;
  deps.requestLog.record(entry);
}

/** The client's answer when the exchange failed before serving (`res` null: nobody to answer). */
function failedAnswer(deps: EngineDeps, res: ServerResponse | null, track: Track, e: unknown, errorBody: ErrorShaper): Served {
  if ((e as Error)?.name === 'AbortError') return { status: 499, error: 'client disconnected', report: null };
  // Without `res` the caller rethrows it to the route, whose handler answers (and logs) it once.
  const answer = proxyErrorAnswer(e, errorBody, res ? deps.logger : null, track.route);
  if (res) sendJsonBody(res, answer.status, answer.body, answer.retryAfterSeconds);
  return { status: answer.status, error: answer.logText, report: null };
}

export interface Adapter {
  /** The upstream call (a function when making it may fail, e.g. serialising the request: the exchange then ends with that error). */
  spec: AttemptSpec | (() => AttemptSpec);
  /** The gateway's own errors in the route's shape. */
  errorBody: ErrorShaper;
  /** Answers the client from an opened upstream (forward, translate, pass back a 4xx). */
  serve(opened: Opened): Promise<Served> | Served;
}

/**
 * Runs one exchange; `res` is the client's response (null for the gateway's
 * own calls, such as the model list). Resolves with its outcome, and what
 * was thrown when it failed.
 */
export async function runExchange(
  deps: EngineDeps,
  res: ServerResponse | null,
  track: Track,
  adapter: Adapter,
): Promise<{ outcome: ExchangeOutcome; thrown?: unknown }> {
  const state: AttemptState = { lease: null, retries: 0 };
  let served: Served = { status: 0, error: 'the exchange did not end', report: null };
  let thrown: unknown;
  let outcome!: ExchangeOutcome;
  let spec: AttemptSpec | undefined;
  try {
    try {
      spec = typeof adapter.spec === 'function' ? adapter.spec() : adapter.spec;
      const opened = await openUpstream(deps, spec, state);
      state.lease = opened.lease;
      const s = adapter.serve(opened);
      // A whole answer is served at once: no turn of the event loop spent awaiting it.
      served = s instanceof Promise ? await s : s;
    } catch (e) {
      thrown = e;
      served = failedAnswer(deps, res, track, e, adapter.errorBody);
    }
  } finally {
    outcome = {
      status: served.status,
      error: served.error ?? null,
      lease: state.lease,
      retries: state.retries,
      firstByteAt: served.firstByteAt ?? null,
      usage: served.usage ?? null,
      report: served.report,
    };
    finishTrack(deps, track, outcome, spec?.model ?? '');
  }
  return { outcome, thrown };
}
