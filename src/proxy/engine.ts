// The proxy engine: gets an account from the pool, calls the upstream with
// its token, fails over to the next account on 401/429/403/5xx/timeouts
// before anything reached the client, forwards or translates the answer
// (streams as they arrive), reports every outcome to the pool and records
// every request in the request log.
import { GEMINI_API_SCOPES } from '../config/schema.ts';
import { GatewayError, type ErrorCode } from '../util/errors.ts';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { Clock } from '../util/clock.ts';
import { NoAccountError, type Lease, type TokenPool, type UpstreamOutcome } from '../pool/types.ts';
import type { Door, ParsedRequest, ResponseInfo } from './door.ts';
import { setCountTokensModel } from './door.ts';
import type { RequestLog, RequestLogEntry } from './request-log.ts';
import { abortError, type UpstreamClient, type UpstreamHeaders, type UpstreamRequest } from './upstream-client.ts';
import { classifyNetworkError, classifyUpstream, describeNetworkError, upstreamMessage } from './upstream-errors.ts';
import { findUsage, SseReader, Tail, usageOf, type Usage } from './sse.ts';

export interface EngineDeps {
  config: () => Config;
  pool: TokenPool;
  logger: Logger;
  clock: Clock;
  client: UpstreamClient;
  requestLog?: RequestLog;
}

export type Protocol = 'openai' | 'anthropic' | 'gemini' | 'google';

/** A request the gateway answers with an error of its own (no account, all failed, bad upstream answer). */
export class ProxyFailure extends GatewayError {
  constructor(status: number, code: ErrorCode, message: string, retryAfterSeconds?: number, opts: { cause?: unknown } = {}) {
    super(code, message, { status, retryAfterSeconds, cause: opts.cause });
  }
  /** The code, as the doors' error bodies call it. */
  get type(): ErrorCode {
    return this.code;
  }
}

/** What is known about one proxied request, for the request log. */
export interface Track {
  start: number;
  route: string;
  protocol: Protocol;
  modelRequested: string | null;
  modelUsed: string | null;
  lease: Lease | null;
  status: number;
  firstByteAt: number | null;
  tokensIn: number;
  tokensOut: number;
  retries: number;
  error: string | null;
}

export function newTrack(deps: EngineDeps, route: string, protocol: Protocol): Track {
  return {
    start: deps.clock.now(),
    route,
    protocol,
    modelRequested: null,
    modelUsed: null,
    lease: null,
    status: 0,
    firstByteAt: null,
    tokensIn: 0,
    tokensOut: 0,
    retries: 0,
    error: null,
  };
}

export function finishTrack(deps: EngineDeps, t: Track): void {
  if (!deps.requestLog) return;
  const now = deps.clock.now();
  const entry: RequestLogEntry = {
    time: t.start,
    route: t.route,
    protocol: t.protocol,
    model_requested: t.modelRequested,
    model_used: t.modelUsed,
    account_id: t.lease?.accountId ?? null,
    email: t.lease?.email ?? null,
    status: t.status,
    latency_ms: now - t.start,
    first_byte_ms: t.firstByteAt === null ? null : t.firstByteAt - t.start,
    tokens_in: t.tokensIn,
    tokens_out: t.tokensOut,
    retries: t.retries,
    error: t.error,
  };
  deps.requestLog.record(entry);
}

// ---------------------------------------------------------------------------
// Failover

/** An upstream 4xx caused by the request itself, answered in the client's protocol. */
function answerClientError(res: ServerResponse, door: Door, opened: { status: number; text: string }, track: Track): void {
  const message = upstreamMessage(opened.status, opened.text);
  track.status = opened.status;
  track.error = message.slice(0, 300);
  sendJsonBody(res, opened.status, door.errorBody(opened.status, message, 'upstream_error'));
}

export interface AttemptSpec {
  /** Upstream model for acquire/report ('' for the Google API pass-through). */
  model: string;
  sessionKey?: string;
  pinned?: string;
  anyOfScopes?: readonly string[];
  /** Google API pass-through: a 403 is passed back, not held against the account. */
  passthrough?: boolean;
  /** `full`: read the whole 2xx body before returning (non-streaming); `first`: return after its first chunk. */
  consume: 'full' | 'first';
  origin: string;
  method: string;
  path: string;
  body: Buffer | null;
  /** Request headers besides authorization and x-goog-user-project. */
  headers: Record<string, string>;
  signal: ClientAbort;
}

export type Opened =
  | { kind: 'ok'; lease: Lease; status: number; headers: UpstreamHeaders; full: Buffer }
  | {
      kind: 'stream';
      lease: Lease;
      status: number;
      headers: UpstreamHeaders;
      first: Buffer | null;
      body: Readable;
    }
  | { kind: 'client_error'; lease: Lease; status: number; headers: UpstreamHeaders; text: string };

interface Failure {
  email: string;
  outcome: UpstreamOutcome;
  note?: string;
}

const ERROR_BODY_LIMIT = 1024 * 1024;
/** A non-streaming answer (the error text kept from it is cut at ERROR_BODY_LIMIT). */
const FULL_BODY_LIMIT = 256 * 1024 * 1024;

function noop(): void {}

/** Reads a whole body (at most `limit` bytes). */
export function readAll(body: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        body.destroy(new Error(`upstream answer is larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    body.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    body.once('error', reject);
  });
}

/** Waits for the first chunk (null when the body is empty); the body is left paused. */
function firstChunk(body: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    const onData = (c: Buffer) => {
      cleanup();
      body.pause();
      resolve(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
  });
}

function retryAfterFrom(untilMs: number, now: number): number {
  return Math.max(1, Math.ceil((untilMs - now) / 1000));
}

function describeFailure(f: Failure): string {
  const o = f.outcome;
  const what =
    o.kind === 'rate_limited' || o.kind === 'forbidden' || o.kind === 'server_error'
      ? o.reason
      : o.kind === 'unauthorized'
        ? (f.note ?? 'access token refused (401)')
        : o.kind;
  return `${f.email}: ${what}`;
}

/** The client's error when no account could serve, from what happened to each attempt. */
function exhausted(failures: Failure[], model: string, now: number, noAccount?: NoAccountError): ProxyFailure {
  if (failures.length === 0) {
    const e = noAccount!;
    return new ProxyFailure(e.status, e.code, e.message, e.retryAfterSeconds);
  }
  const summary = failures.map(describeFailure).join('; ');
  const forModel = model ? ` for model ${model}` : '';
  const limited = failures.filter((f) => f.outcome.kind === 'rate_limited');
  if (limited.length === failures.length) {
    const until = Math.min(...limited.map((f) => (f.outcome as { untilMs: number }).untilMs));
    const retry = noAccount?.retryAfterSeconds ?? retryAfterFrom(until, now);
    return new ProxyFailure(
      429,
      'rate_limited',
      `Every account tried is rate limited${forModel} (${failures.length} tried): ${summary}. Retry after ${retry}s.`,
      retry,
    );
  }
  const extra = noAccount ? ` (${noAccount.message})` : '';
  return new ProxyFailure(503, 'upstream_unavailable', `No account could serve this request${forModel} (${failures.length} tried): ${summary}${extra}`);
}

/**
 * Gets an account and an upstream answer, failing over between accounts
 * (bounded by config.upstream.max_attempts; one account when pinned) until an
 * answer is 2xx or the request's own fault (client_error). Throws
 * ProxyFailure when no account can serve, AbortError when the client left.
 */
export async function openUpstream(deps: EngineDeps, spec: AttemptSpec, track: Track): Promise<Opened> {
  const cfg = deps.config();
  const { pool, client, clock, logger } = deps;
  const maxAttempts = spec.pinned ? 1 : cfg.upstream.max_attempts;
  const tried = new Set<string>();
  const failures: Failure[] = [];
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (spec.signal.aborted) throw abortError();
    let lease: Lease;
    try {
      lease = await pool.acquire({
        model: spec.model,
        sessionKey: spec.sessionKey,
        pinned: spec.pinned,
        anyOfScopes: spec.anyOfScopes ?? (spec.passthrough ? undefined : GEMINI_API_SCOPES),
        exclude: tried,
      });
    } catch (e) {
      if (e instanceof NoAccountError) throw exhausted(failures, spec.model, clock.now(), e);
      throw e;
    }
    if (attempt > 0) track.retries++;
    tried.add(lease.accountId);
    track.lease = lease;
    let refreshed = false;
    for (;;) {
      if (spec.signal.aborted) throw abortError();
      const headers: Record<string, string> = { ...spec.headers, authorization: `Bearer ${lease.accessToken}` };
      // The account's project is billed and metered, unless a pass-through client named one itself.
      if (lease.projectId && spec.headers['x-goog-user-project'] === undefined) headers['x-goog-user-project'] = lease.projectId;
      let outcome: UpstreamOutcome;
      let status = 0;
      try {
        const req: UpstreamRequest = {
          origin: spec.origin,
          path: spec.path,
          method: spec.method,
          headers,
          body: spec.body,
          signal: spec.signal,
          firstByteTimeoutMs: cfg.upstream.first_byte_timeout_ms,
          idleTimeoutMs: cfg.upstream.idle_timeout_ms,
        };
        let text: string;
        let answerHeaders: UpstreamHeaders;
        if (spec.consume === 'full') {
          const r = await client.requestFull(req, FULL_BODY_LIMIT);
          status = r.statusCode;
          answerHeaders = r.headers;
          if (status >= 200 && status < 300) return { kind: 'ok', lease, status, headers: r.headers, full: r.body };
          text = r.body.subarray(0, ERROR_BODY_LIMIT).toString('utf8');
        } else {
          const r = await client.request(req);
          status = r.statusCode;
          answerHeaders = r.headers;
          const body = r.body as unknown as Readable;
          body.on('error', noop);
          if (status >= 200 && status < 300) {
            const first = await firstChunk(body);
            return { kind: 'stream', lease, status, headers: r.headers, first, body };
          }
          text = (await readAll(body, ERROR_BODY_LIMIT)).toString('utf8');
        }
        outcome = classifyUpstream(status, text, clock.now(), { passthrough: spec.passthrough });
        if (outcome.kind === 'client_error') {
          pool.report(lease, spec.model, outcome);
          return { kind: 'client_error', lease, status, headers: answerHeaders, text };
        }
      } catch (err) {
        if (spec.signal.aborted) throw abortError();
        outcome = classifyNetworkError(err);
      }
      if (outcome.kind === 'unauthorized' && !refreshed) {
        refreshed = true;
        let fresh: Lease | null = null;
        try {
          fresh = await pool.refreshAfterUnauthorized(lease);
        } catch (e) {
          logger.warn({ account: lease.email, err: { message: (e as Error).message } }, 'Refresh after upstream 401 failed');
        }
        if (fresh) {
          logger.info({ account: lease.email, model: spec.model }, 'Upstream said 401; token refreshed, retrying on the same account');
          lease = fresh;
          track.lease = lease;
          track.retries++;
          continue;
        }
        failures.push({ email: lease.email, outcome, note: 'access token refused (401) and the account could not be refreshed' });
        logger.warn({ account: lease.email, model: spec.model }, 'Upstream 401 and no fresh token; trying next account');
        break;
      }
      pool.report(lease, spec.model, outcome);
      failures.push({ email: lease.email, outcome });
      logger.warn(
        { account: lease.email, model: spec.model, status: status || undefined, outcome: outcome.kind, reason: 'reason' in outcome ? outcome.reason : undefined },
        'Upstream attempt failed, trying next account',
      );
      break;
    }
  }
  throw exhausted(failures, spec.model, clock.now());
}

// ---------------------------------------------------------------------------
// Answering

export type ErrorShaper = (status: number, message: string, type?: string) => unknown;

/** Sends a JSON answer; used for gateway errors in the route's protocol shape (with Retry-After when known). */
export function sendJsonBody(res: ServerResponse, status: number, body: unknown, retryAfterSeconds?: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  res.writeHead(status, headers);
  res.end(text);
}

/** Forwards a stream's remaining chunks with backpressure; resolves at its end, rejects on its error. */
function pump(body: Readable, res: ServerResponse, onChunk: (c: Buffer) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    // A paused stream may already have ended (or failed) after its first chunk.
    if (body.errored) return reject(body.errored);
    if (body.readableEnded) return resolve();
    if (body.destroyed) return reject(Object.assign(new Error('upstream stream closed'), { code: 'UND_ERR_SOCKET' }));
    const onDrain = () => body.resume();
    body.on('data', (c: Buffer) => {
      if (!onChunk(c)) {
        body.pause();
        res.once('drain', onDrain);
      }
    });
    body.once('end', () => {
      res.off('drain', onDrain);
      resolve();
    });
    body.once('error', (e) => {
      res.off('drain', onDrain);
      reject(e);
    });
    body.resume();
  });
}

/**
 * Fires 'abort' when the client goes away before its answer is complete.
 * A plain EventEmitter (undici accepts one as a signal): much cheaper per
 * request than an AbortController.
 */
export class ClientAbort extends EventEmitter {
  aborted = false;
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}

/** A ClientAbort tied to the client's response. */
export function clientSignal(res: ServerResponse): ClientAbort {
  const signal = new ClientAbort();
  res.once('close', () => {
    if (!res.writableFinished) signal.abort();
  });
  return signal;
}

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers',
  'transfer-encoding', 'upgrade', 'set-cookie', 'content-length',
]);

/** Upstream response headers a raw forward passes on. */
export function passHeaders(h: UpstreamHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || HOP_BY_HOP.has(k) || k.startsWith('x-grantpool')) continue;
    out[k] = v;
  }
  return out;
}

export interface RawForward {
  spec: AttemptSpec;
  track: Track;
  errorBody: ErrorShaper;
  /** The answer is an SSE stream (mid-stream failures end it with an error event). */
  sse: boolean;
  /** Error event text for an SSE stream that broke after it started. */
  streamError?: (status: number, message: string) => string;
  /** Report token usage found in the answer. */
  usage: boolean;
}

/** Usage in a whole Gemini answer: usageMetadata sits near its end, so the tail is searched first. */
function usageInBody(body: Buffer): Usage | null {
  const TAIL = 8192;
  if (body.length > TAIL) {
    const u = findUsage(body.subarray(body.length - TAIL).toString('utf8'));
    if (u) return u;
  }
  return findUsage(body.toString('utf8'));
}

function reportEnd(deps: EngineDeps, track: Track, model: string, usage: Usage | null): void {
  if (!track.lease) return;
  if (usage) {
    track.tokensIn = usage.tokensIn;
    track.tokensOut = usage.tokensOut;
  }
  deps.pool.report(track.lease, model, usage ? { kind: 'ok', tokensIn: usage.tokensIn, tokensOut: usage.tokensOut } : { kind: 'ok' });
}

function failed(deps: EngineDeps, ctx: { res: ServerResponse }, track: Track, e: unknown, errorBody: ErrorShaper): void {
  if ((e as Error)?.name === 'AbortError') {
    track.status = 499;
    track.error = 'client disconnected';
    return;
  }
  if (e instanceof ProxyFailure) {
    track.status = e.status;
    track.error = e.message;
    sendJsonBody(ctx.res, e.status, errorBody(e.status, e.message, e.type), e.retryAfterSeconds);
    return;
  }
  deps.logger.error({ err: { message: (e as Error)?.message, name: (e as Error)?.name }, route: track.route }, 'proxy request failed');
  track.status = 500;
  track.error = `internal error: ${(e as Error)?.message ?? String(e)}`;
  sendJsonBody(ctx.res, 500, errorBody(500, 'The gateway failed to handle this request; see its log.', 'internal_error'));
}

/**
 * Forwards an upstream answer as it is (Gemini native, Google API
 * pass-through): status, content headers and bytes, chunks as they arrive.
 */
export async function forwardRaw(deps: EngineDeps, res: ServerResponse, f: RawForward): Promise<void> {
  const { spec, track } = f;
  try {
    const opened = await openUpstream(deps, spec, track);
    if (opened.kind === 'client_error') {
      track.status = opened.status;
      track.error = upstreamMessage(opened.status, opened.text).slice(0, 300);
      const headers = passHeaders(opened.headers);
      headers['content-length'] = String(Buffer.byteLength(opened.text));
      res.writeHead(opened.status, headers);
      res.end(opened.text);
      return;
    }
    track.status = opened.status;
    if (opened.kind === 'ok') {
      const headers = passHeaders(opened.headers);
      headers['content-length'] = String(opened.full.length);
      track.firstByteAt = deps.clock.now();
      res.writeHead(opened.status, headers);
      res.end(opened.full);
      reportEnd(deps, track, spec.model, f.usage ? usageInBody(opened.full) : null);
      return;
    }
    const headers = passHeaders(opened.headers);
    if (f.sse) {
      headers['cache-control'] = 'no-cache';
      headers['x-accel-buffering'] = 'no';
    }
    res.writeHead(opened.status, headers);
    track.firstByteAt = deps.clock.now();
    const tail = f.usage ? new Tail() : null;
    if (opened.first) {
      tail?.push(opened.first);
      res.write(opened.first);
    } else if (f.sse && f.streamError) {
      const reason = 'upstream ended the stream without any data';
      track.status = 502;
      track.error = reason;
      deps.pool.report(opened.lease, spec.model, { kind: 'server_error', reason });
      res.end(f.streamError(502, `The upstream answered with an empty stream (${reason}).`));
      return;
    } else {
      res.end();
      reportEnd(deps, track, spec.model, null);
      return;
    }
    try {
      await pump(opened.body, res, (c) => {
        tail?.push(c);
        return res.write(c);
      });
    } catch (e) {
      if (spec.signal.aborted) {
        track.error = 'client disconnected';
        reportEnd(deps, track, spec.model, tail ? findUsage(tail.text()) : null);
        return;
      }
      const reason = describeNetworkError(e);
      track.error = `${reason} after the answer started`;
      track.status = 502;
      deps.pool.report(opened.lease, spec.model, { kind: 'server_error', reason });
      deps.logger.warn({ account: opened.lease.email, model: spec.model, reason }, 'Upstream stream broke after it started');
      if (f.sse && f.streamError) {
        res.end(f.streamError(503, `The upstream stream broke after the answer started (${reason}); the answer is incomplete.`));
      } else {
        res.destroy();
      }
      return;
    }
    res.end();
    reportEnd(deps, track, spec.model, tail ? findUsage(tail.text()) : null);
  } catch (e) {
    failed(deps, { res }, track, e, f.errorBody);
  } finally {
    finishTrack(deps, track);
  }
}

// ---------------------------------------------------------------------------
// Translated doors (OpenAI, Anthropic)

// Response ids: a random per-process prefix and a counter (unique, no per-request entropy needed).
const ID_PREFIX = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x');
let idCounter = 0;
export function responseId(door: Door['name']): string {
  const s = `${ID_PREFIX}${(++idCounter).toString(36).padStart(8, '0')}`;
  return door === 'openai' ? `chatcmpl-${s}` : door === 'anthropic' ? `msg_${s}` : s;
}

export interface TranslatedCall {
  door: Door;
  parsed: ParsedRequest;
  /** Upstream model after aliases. */
  model: string;
  origin: string;
  /** `/v1beta/models/{model}` (the action is appended). */
  modelPath: string;
  signal: ClientAbort;
  track: Track;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

const JSON_HEADERS = { 'content-type': 'application/json' };

/** Runs a translated request (generate, stream) and answers in the door's protocol. */
export async function forwardTranslated(deps: EngineDeps, res: ServerResponse, call: TranslatedCall): Promise<void> {
  const { door, parsed, track } = call;
  const info: ResponseInfo = {
    requestedModel: parsed.requestedModel,
    id: responseId(door.name),
    created: Math.floor(deps.clock.now() / 1000),
    options: parsed.responseOptions ?? {},
  };
  const errorBody: ErrorShaper = (s, m, t) => door.errorBody(s, m, t);
  try {
    const body = Buffer.from(JSON.stringify(parsed.gemini));
    const spec: AttemptSpec = {
      model: call.model,
      sessionKey: parsed.sessionKey,
      consume: parsed.stream ? 'first' : 'full',
      origin: call.origin,
      method: 'POST',
      path: parsed.stream ? `${call.modelPath}:streamGenerateContent?alt=sse` : `${call.modelPath}:generateContent`,
      body,
      headers: JSON_HEADERS,
      signal: call.signal,
    };
    const opened = await openUpstream(deps, spec, track);
    if (opened.kind === 'client_error') return answerClientError(res, door, opened, track);
    if (opened.kind === 'ok') {
      let gemini: Record<string, unknown>;
      try {
        gemini = JSON.parse(opened.full.toString('utf8')) as Record<string, unknown>;
      } catch {
        deps.pool.report(opened.lease, call.model, { kind: 'server_error', reason: 'upstream answered with invalid JSON' });
        throw new ProxyFailure(502, 'bad_upstream_answer', 'The upstream answered with invalid JSON.');
      }
      const out = door.toResponse(gemini, info);
      track.status = 200;
      track.firstByteAt = deps.clock.now();
      sendJsonBody(res, 200, out);
      reportEnd(deps, track, call.model, usageOf(gemini));
      return;
    }
    // Streaming: translate each Gemini event as it arrives.
    const translator = door.streamTranslator(info);
    track.status = 200;
    res.writeHead(200, SSE_HEADERS);
    track.firstByteAt = deps.clock.now();
    let usage: Usage | null = null;
    let upstreamError: string | null = null;
    let sawChunk = false;
    const write = (s: string): boolean => (s ? res.write(s) : true);
    const reader = new SseReader((data) => {
      if (upstreamError) return;
      let chunk: Record<string, unknown>;
      try {
        chunk = JSON.parse(data) as Record<string, unknown>;
      } catch {
        upstreamError = 'upstream sent an event that is not JSON';
        return;
      }
      if (chunk.error) {
        const e = chunk.error as { message?: unknown };
        upstreamError = `upstream error: ${typeof e.message === 'string' ? e.message : 'unknown'}`;
        return;
      }
      sawChunk = true;
      usage = usageOf(chunk) ?? usage;
      write(translator.chunk(chunk));
    });
    write(translator.start());
    try {
      if (!opened.first) throw new Error('upstream ended the stream without any data');
      reader.push(opened.first);
      if (res.writableNeedDrain) await new Promise((r) => res.once('drain', r));
      await pump(opened.body, res, (c) => {
        reader.push(c);
        return !res.writableNeedDrain;
      });
      reader.end();
      if (upstreamError) throw new Error(upstreamError);
      if (!sawChunk) throw new Error('upstream ended the stream without any event');
    } catch (e) {
      if (call.signal.aborted) {
        track.error = 'client disconnected';
        reportEnd(deps, track, call.model, usage);
        return;
      }
      const reason = upstreamError ?? (e instanceof Error && !('code' in e) ? e.message : describeNetworkError(e));
      track.status = 502;
      track.error = `${reason} after the answer started`;
      deps.pool.report(opened.lease, call.model, { kind: 'server_error', reason });
      deps.logger.warn({ account: opened.lease.email, model: call.model, reason }, 'Upstream stream broke after it started');
      res.end(translator.error(502, `The upstream stream broke after the answer started (${reason}); the answer is incomplete.`));
      return;
    }
    res.end(translator.end());
    reportEnd(deps, track, call.model, usage);
  } catch (e) {
    failed(deps, { res }, track, e, errorBody);
  } finally {
    finishTrack(deps, track);
  }
}

/** Token counting through a door's countTokens translation (Anthropic count_tokens). */
export async function forwardCountTokens(deps: EngineDeps, res: ServerResponse, call: TranslatedCall): Promise<void> {
  const { door, parsed, track } = call;
  const ct = door.countTokens!;
  try {
    const body = Buffer.from(JSON.stringify(setCountTokensModel(parsed.gemini, call.model)));
    const opened = await openUpstream(
      deps,
      {
        model: call.model,
        sessionKey: parsed.sessionKey,
        consume: 'full',
        origin: call.origin,
        method: 'POST',
        path: `${call.modelPath}:countTokens`,
        body,
        headers: JSON_HEADERS,
        signal: call.signal,
      },
      track,
    );
    if (opened.kind === 'client_error') return answerClientError(res, door, opened, track);
    if (opened.kind !== 'ok') throw new Error('unexpected stream');
    let gemini: Record<string, unknown>;
    try {
      gemini = JSON.parse(opened.full.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new ProxyFailure(502, 'bad_upstream_answer', 'The upstream answered with invalid JSON.');
    }
    track.status = 200;
    track.firstByteAt = deps.clock.now();
    sendJsonBody(res, 200, ct.toResponse(gemini));
    deps.pool.report(opened.lease, call.model, { kind: 'ok' });
  } catch (e) {
    failed(deps, { res }, track, e, (s, m, t) => door.errorBody(s, m, t));
  } finally {
    finishTrack(deps, track);
  }
}
