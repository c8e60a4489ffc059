// The attempts of one exchange: lease an account, call the upstream with its
// token, read enough of the answer to judge it (the whole body, or a stream's
// head), let `settle` say what it means, and fail over to the next account
// (bounded by upstream.max_attempts; one account when pinned) until an answer
// can be served or passed back. Nothing is written to the client here.
// A request may name several services (the Gemini API, Vertex AI): the pool
// leases through a lane of the first that has a usable one, and the target
// (origin, path, body) is built for the lease, so one exchange can fail over
// from a Gemini API lane to a Vertex lane, and between Vertex lanes.
import type { Readable } from 'node:stream';
import { GEMINI_API_SCOPES, VERTEX_SCOPES } from '../../config/schema.ts';
import type { Config } from '../../config/schema.ts';
import { NoAccountError, type LaneService, type Lease, type UpstreamOutcome } from '../../pool/types.ts';
import { abortError, type UpstreamHeaders, type UpstreamRequest } from '../upstream-client.ts';
import { MAX_SSE_EVENT_BYTES } from '../sse.ts';
import type { ClientAbort } from './answer.ts';
import { readHead, readPrefix, type StreamHead } from './body-io.ts';
import type { EngineDeps } from './deps.ts';
import { exhausted, settle, type Answer, type Failure } from './settle.ts';

/** A 2xx body judged by the route: usable (with what was parsed from it), or why not. */
export type Checked = { ok: true; value?: unknown } | { ok: false; reason: string };

export interface AttemptSpec {
  /** Upstream model for acquire/report ('' for the Google API pass-through). */
  model: string;
  sessionKey?: string;
  pinned?: string;
  anyOfScopes?: readonly string[];
  /** Google API pass-through: a 403 is passed back, not held against the account. */
  passthrough?: boolean;
  /** The services this request may use, in order of preference (default: the Gemini API only). */
  services?: readonly LaneService[];
  /**
   * The upstream call for a lease, when it depends on the service or project
   * (Vertex AI has the project in the URL, and wants its own body). Absent:
   * `origin`, `path` and `body` below for every lease.
   */
  target?: (lease: Lease) => UpstreamTarget;
  /**
   * `full`: the whole 2xx body is read and checked before anything is sent
   * (non-streaming); `stream`: the head is read and checked, the rest is
   * forwarded as it arrives.
   */
  consume: 'full' | 'stream';
  /** A generated stream (the shorter stream first-byte timeout applies, head read up to the first event when `sse`). */
  stream?: boolean;
  /** The 2xx answer is server-sent events: its head is read up to the first event. */
  sse?: boolean;
  /** Judges a whole 2xx body (`full`). Absent: any body is usable. */
  check?: (body: Buffer, headers: UpstreamHeaders) => Checked;
  /** Judges a 2xx stream's head (`stream`). Absent: any head is usable. */
  checkHead?: (head: StreamHead, headers: UpstreamHeaders, status: number) => Checked;
  origin: string;
  method: string;
  path: string;
  body: Buffer | null;
  /** Request headers besides authorization and x-goog-user-project. */
  headers: Record<string, string>;
  signal: ClientAbort;
}

/** Where one attempt goes; `body` and `headers` (merged over the spec's) when they differ per lease. */
export interface UpstreamTarget {
  origin: string;
  path: string;
  body?: Buffer | null;
  headers?: Record<string, string>;
}

export type Opened =
  | { kind: 'ok'; lease: Lease; status: number; headers: UpstreamHeaders; full: Buffer; value?: unknown }
  | { kind: 'stream'; lease: Lease; status: number; headers: UpstreamHeaders; head: StreamHead; body: Readable }
  | { kind: 'client_error'; lease: Lease; status: number; headers: UpstreamHeaders; text: string };

/** What the attempts have done so far (read by the exchange also when they end in an error). */
export interface AttemptState {
  /** The account of the current (last) attempt. */
  lease: Lease | null;
  /** Attempts after the first: failovers and retries after a refresh. */
  retries: number;
}

/** Of an error answer, the text kept for classification and the client. */
export const ERROR_BODY_LIMIT = 1024 * 1024;
/** A non-streaming answer. */
const FULL_BODY_LIMIT = 256 * 1024 * 1024;

/** Time to the first event of a generated stream when upstream.stream_first_byte_timeout_ms is unset (at most first_byte_timeout_ms). */
export const DEFAULT_STREAM_FIRST_BYTE_TIMEOUT_MS = 60_000;

function noop(): void {}

type Result = { opened: Opened } | { answer: Answer; status: number; headers?: UpstreamHeaders };

/** One upstream call with this lease, read as far as needed to judge it. */
async function callOnce(deps: EngineDeps, spec: AttemptSpec, lease: Lease, cfg: Config): Promise<Result> {
  const target = spec.target ? spec.target(lease) : null;
  const headers: Record<string, string> = { ...spec.headers, ...target?.headers, authorization: `Bearer ${lease.accessToken}` };
  // The account's project is billed and metered, unless a pass-through client named one itself.
  // Vertex AI takes the project from the URL: it gets the bearer token only.
  if (lease.service !== 'vertex' && lease.projectId && spec.headers['x-goog-user-project'] === undefined) {
    headers['x-goog-user-project'] = lease.projectId;
  }
  const firstByteMs = spec.stream
    ? (cfg.upstream.stream_first_byte_timeout_ms ?? Math.min(DEFAULT_STREAM_FIRST_BYTE_TIMEOUT_MS, cfg.upstream.first_byte_timeout_ms))
    : cfg.upstream.first_byte_timeout_ms;
  const req: UpstreamRequest = {
    origin: target?.origin ?? spec.origin,
    path: target?.path ?? spec.path,
    method: spec.method,
    headers,
    body: target && target.body !== undefined ? target.body : spec.body,
    signal: spec.signal,
    firstByteTimeoutMs: firstByteMs,
    idleTimeoutMs: cfg.upstream.idle_timeout_ms,
  };
  let status = 0;
  try {
    if (spec.consume === 'full') {
      const r = await deps.client.requestFull(req, FULL_BODY_LIMIT, ERROR_BODY_LIMIT);
      status = r.statusCode;
      if (status >= 200 && status < 300) {
        const checked: Checked = spec.check ? spec.check(r.body, r.headers) : { ok: true };
        if (!checked.ok) return { answer: { kind: 'unusable', reason: checked.reason }, status };
        return { opened: { kind: 'ok', lease, status, headers: r.headers, full: r.body, value: checked.value } };
      }
      return { answer: { kind: 'status', status, text: r.body.toString('utf8') }, status, headers: r.headers };
    }
    const started = deps.clock.now();
    const r = await deps.client.request(req);
    status = r.statusCode;
    const body = r.body as unknown as Readable;
    body.on('error', noop);
    if (status >= 200 && status < 300) {
      const left = Math.max(1, firstByteMs - (deps.clock.now() - started));
      const head = await readHead(body, { sse: spec.sse === true, maxBytes: MAX_SSE_EVENT_BYTES, timeoutMs: spec.stream ? left : cfg.upstream.idle_timeout_ms });
      const checked: Checked = spec.checkHead ? spec.checkHead(head, r.headers, status) : { ok: true };
      if (!checked.ok) {
        body.destroy();
        return { answer: { kind: 'unusable', reason: checked.reason }, status };
      }
      return { opened: { kind: 'stream', lease, status, headers: r.headers, head, body } };
    }
    const text = (await readPrefix(body, ERROR_BODY_LIMIT)).toString('utf8');
    return { answer: { kind: 'status', status, text }, status, headers: r.headers };
  } catch (err) {
    if (spec.signal.aborted) throw abortError();
    return { answer: { kind: 'network', error: err }, status };
  }
}

/**
 * Gets an account and an upstream answer that can be served or passed back.
 * Throws ProxyFailure when no account can serve, AbortError when the client left.
 */
export async function openUpstream(deps: EngineDeps, spec: AttemptSpec, state: AttemptState): Promise<Opened> {
  const cfg = deps.config();
  const { pool, clock, logger } = deps;
  const services = spec.services && spec.services.length > 0 ? spec.services : DEFAULT_SPEC_SERVICES;
  // pinned: one account, but through each of its services
  const maxAttempts = spec.pinned ? services.length : cfg.upstream.max_attempts;
  // Made on the first failure only: most requests are served by their first attempt.
  /** Accounts out for this request on every service (their token failed). */
  let tried: Set<string> | undefined;
  /** Accounts tried on one service (a 429 on its Gemini API lane leaves its Vertex lane). */
  let triedOn: Partial<Record<LaneService, Set<string>>> | undefined;
  const failures: Failure[] = [];
  /** Services a 404 ruled out for this request (the model is not there), and the first such answer. */
  let dropped: Set<LaneService> | undefined;
  let first404: Opened | null = null;
  const scopesByService = spec.passthrough
    ? undefined
    : spec.anyOfScopes
      ? { gemini_api: spec.anyOfScopes, vertex: spec.anyOfScopes }
      : DEFAULT_SCOPES_BY_SERVICE;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (spec.signal.aborted) throw abortError();
    let lease: Lease;
    try {
      lease = await pool.acquire({
        model: spec.model,
        sessionKey: spec.sessionKey,
        pinned: spec.pinned,
        anyOfScopes: spec.anyOfScopes ?? (spec.passthrough ? undefined : GEMINI_API_SCOPES),
        scopesByService,
        services: dropped === undefined ? services : services.filter((x) => !dropped!.has(x)),
        exclude: tried,
        excludeOn: triedOn,
      });
    } catch (e) {
      if (e instanceof NoAccountError) {
        // the model was not found on one service and nothing else could serve: that 404 is the answer
        if (first404 && failures.length === 0) return first404;
        if (spec.pinned && failures.length > 0) throw exhausted(failures, spec.model, clock.now());
        throw exhausted(failures, spec.model, clock.now(), e);
      }
      throw e;
    }
    if (attempt > 0) state.retries++;
    state.lease = lease;
    let refreshed = false;
    let accountOut = false;
    for (;;) {
      if (spec.signal.aborted) throw abortError();
      const r = await callOnce(deps, spec, lease, cfg);
      if ('opened' in r) return r.opened;
      let verdict = settle(r.answer, {
        now: clock.now(),
        passthrough: spec.passthrough,
        refreshed,
        account: { email: lease.email, projectId: lease.projectId },
        service: lease.service,
      });
      if (verdict.action === 'pass_back' && r.answer.kind === 'status') {
        const opened: Opened = { kind: 'client_error', lease, status: r.answer.status, headers: r.headers ?? {}, text: r.answer.text };
        // A 404 (no such model there) on one service while another may serve: try that one.
        if (r.answer.status === 404 && services.some((x) => x !== lease.service && !dropped?.has(x))) {
          (dropped ??= new Set()).add(lease.service);
          first404 ??= opened;
          logger.info({ account: lease.email, model: spec.model, lane: lease.lane }, `${lease.service === 'vertex' ? 'Vertex AI' : 'The Gemini API'} answered 404 for ${spec.model}; trying the other service`);
          break;
        }
        // both said 404: the answer of the service preferred first
        return first404 && opened.status === 404 ? first404 : opened;
      }
      if (verdict.action === 'refresh') {
        refreshed = true;
        let fresh: Lease | null = null;
        try {
          fresh = await pool.refreshAfterUnauthorized(lease);
        } catch (e) {
          logger.warn({ account: lease.email, err: { message: (e as Error).message } }, 'Refresh after upstream 401 failed');
        }
        if (fresh) {
          logger.info({ account: lease.email, model: spec.model, lane: lease.lane }, 'Upstream said 401; token refreshed, retrying on the same account');
          lease = fresh;
          state.lease = lease;
          state.retries++;
          continue;
        }
        logger.warn({ account: lease.email, model: spec.model, lane: lease.lane }, 'Upstream 401 and no fresh token; trying next account');
        verdict = settle({ kind: 'refresh_failed' }, { now: clock.now(), refreshed });
      }
      if (verdict.action !== 'fail_over') throw new Error(`unexpected verdict ${verdict.action}`);
      accountOut = outOnEveryService(verdict.outcome, lease.service);
      if (verdict.report) pool.report(lease, spec.model, verdict.outcome);
      failures.push({ email: lease.email, outcome: verdict.outcome, note: verdict.note, lane: lease.lane });
      if (verdict.report) {
        const o = verdict.outcome;
        logger.warn(
          { account: lease.email, model: spec.model, lane: lease.lane, status: r.status || undefined, outcome: o.kind, reason: 'reason' in o ? o.reason : undefined },
          'Upstream attempt failed, trying next account',
        );
      }
      break;
    }
    if (accountOut) (tried ??= new Set()).add(lease.accountId);
    else ((triedOn ??= {})[lease.service] ??= new Set()).add(lease.accountId);
  }
  throw exhausted(failures, spec.model, clock.now());
}

const DEFAULT_SPEC_SERVICES: readonly LaneService[] = ['gemini_api'];
const DEFAULT_SCOPES_BY_SERVICE: Readonly<Record<LaneService, readonly string[]>> = { gemini_api: GEMINI_API_SCOPES, vertex: VERTEX_SCOPES };

/**
 * Whether a failed attempt rules the account out for this request on every
 * service: its token (401 without a fresh one), or a 403 on the Gemini API
 * (which takes it out of the proxy). A 429, 5xx or a Vertex 403 concerns one
 * lane: its other service may still serve.
 */
function outOnEveryService(o: UpstreamOutcome, service: LaneService): boolean {
  return o.kind === 'unauthorized' || (o.kind === 'forbidden' && service !== 'vertex');
}
