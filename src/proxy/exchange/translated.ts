// The translating adapters (OpenAI, Anthropic): generate and stream through a
// door's translation, and token counting through its countTokens translation.
import type { ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Door, GeminiCountTokensRequest, GeminiCountTokensResponse, GeminiRequest, GeminiResponse, ParsedRequest, ResponseInfo } from '../door.ts';
import { setCountTokensModel } from '../door.ts';
import { MAX_SSE_EVENT_BYTES, SseReader, usageOf, type Usage } from '../sse.ts';
import { describeNetworkError, upstreamMessage } from '../upstream-errors.ts';
import { abortError } from '../upstream-client.ts';
import { drained, sendJsonBody, type ClientAbort, type ErrorShaper } from './answer.ts';
import type { AttemptSpec, Opened } from './attempts.ts';
import { pump } from './body-io.ts';
import { geminiJson, geminiSseHead } from './checks.ts';
import type { EngineDeps } from './deps.ts';
import type { Config } from '../../config/schema.ts';
import type { LaneService } from '../../pool/types.ts';
import { geminiTarget, type GeminiMethod } from '../vertex-gemini.ts';

/** The services and per-lease target of a translated call (Vertex AI's URL and body for a Vertex lease). */
function serviceSpec(call: TranslatedCall, method: GeminiMethod, path: string, body: Record<string, unknown>): Pick<AttemptSpec, 'services' | 'target'> {
  if (!call.services || !call.vertex || !call.services.includes('vertex')) return { services: call.services };
  return { services: call.services, target: geminiTarget({ gemini: { origin: call.origin, path }, cfg: call.vertex, model: call.model, method, body }) };
}
import { okReport, runExchange, type Served, type Track } from './exchange.ts';

// Response ids: a random per-process prefix and a counter (unique, no per-request entropy needed).
const ID_PREFIX = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x');
let idCounter = 0;
export function responseId(door: Door['name']): string {
  const s = `${ID_PREFIX}${(++idCounter).toString(36).padStart(8, '0')}`;
  return door === 'openai' ? `chatcmpl-${s}` : door === 'anthropic' ? `msg_${s}` : s;
}

export interface TranslatedCall {
  door: Door;
  parsed: ParsedRequest<GeminiRequest | GeminiCountTokensRequest>;
  /** Upstream model after aliases. */
  model: string;
  /** X-Grantpool-Account: the one account to use. */
  pinned?: string;
  origin: string;
  /** `/v1beta/models/{model}` (the action is appended). */
  modelPath: string;
  /** The services the request may use (default: the Gemini API only); with `vertex`, Vertex lanes are called there. */
  services?: readonly LaneService[];
  vertex?: Pick<Config, 'vertex_base_url' | 'vertex_location'>;
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

/** An upstream 4xx caused by the request itself, answered in the client's protocol. */
function passBack(res: ServerResponse, door: Door, opened: { status: number; text: string }): Served {
  const message = upstreamMessage(opened.status, opened.text);
  sendJsonBody(res, opened.status, door.errorBody(opened.status, message, 'upstream_error'));
  return { status: opened.status, error: message.slice(0, 300), report: { kind: 'client_error' } };
}

function shaper(door: Door): ErrorShaper {
  return (s, m, t) => door.errorBody(s, m, t);
}

/** Translates a Gemini stream as it arrives; ends with the door's error event when it breaks. */
async function serveStream(deps: EngineDeps, res: ServerResponse, call: TranslatedCall, info: ResponseInfo, opened: Opened & { kind: 'stream' }): Promise<Served> {
  const { door } = call;
  const translator = door.streamTranslator(info);
  res.writeHead(200, SSE_HEADERS);
  const firstByteAt = deps.clock.now();
  let usage: Usage | null = null;
  let upstreamError: string | null = null;
  let sawChunk = false;
  const write = (s: string): boolean => (s ? res.write(s) : true);
  const reader = new SseReader((data) => {
    if (upstreamError) return;
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      upstreamError = 'upstream sent an event that is not JSON';
      return;
    }
    if (typeof chunk !== 'object' || chunk === null || Array.isArray(chunk)) {
      upstreamError = 'upstream sent an event that is not a JSON object';
      return;
    }
    // The upstream's JSON, typed as Google's answer; the doors check each field before use.
    const event = chunk as GeminiResponse & { error?: { message?: unknown } };
    if (event.error) {
      const e = event.error;
      upstreamError = `upstream error: ${typeof e.message === 'string' ? e.message : 'unknown'}`;
      return;
    }
    sawChunk = true;
    usage = usageOf(event) ?? usage;
    write(translator.chunk(event));
  });
  /** After an event the stream cannot go on from: stop reading the upstream. */
  const stopOnProblem = () => {
    if (reader.overflowed && !upstreamError) upstreamError = `upstream sent an event larger than ${MAX_SSE_EVENT_BYTES} bytes`;
    if (upstreamError) opened.body.destroy(new Error(upstreamError));
  };
  write(translator.start());
  try {
    for (const c of opened.head.chunks) reader.push(c);
    stopOnProblem();
    // The first translated chunk must reach the client (or the client leave) before the rest is pumped.
    await drained(res);
    if (call.signal.aborted) throw abortError();
    await pump(opened.body, res, (c) => {
      reader.push(c);
      stopOnProblem();
      return !res.writableNeedDrain;
    });
    reader.end();
    stopOnProblem();
    if (upstreamError) throw new Error(upstreamError);
    if (!sawChunk) throw new Error('upstream ended the stream without any event');
  } catch (e) {
    if (call.signal.aborted) return { status: 200, error: 'client disconnected', firstByteAt, usage, report: okReport(usage, true) };
    const reason = upstreamError ?? (e instanceof Error && !('code' in e) ? e.message : describeNetworkError(e));
    deps.logger.warn({ account: opened.lease.email, model: call.model, reason }, 'Upstream stream broke after it started');
    res.end(translator.error(502, `The upstream stream broke after the answer started (${reason}); the answer is incomplete.`));
    return { status: 502, error: `${reason} after the answer started`, firstByteAt, report: { kind: 'server_error', reason } };
  }
  res.end(translator.end());
  return { status: 200, firstByteAt, usage, report: okReport(usage, true) };
}

/** Runs a translated request (generate, stream) and answers in the door's protocol. */
export function forwardTranslated(deps: EngineDeps, res: ServerResponse, call: TranslatedCall): Promise<unknown> {
  const { door, parsed } = call;
  const info: ResponseInfo = {
    requestedModel: parsed.requestedModel,
    id: responseId(door.name),
    created: Math.floor(deps.clock.now() / 1000),
    options: parsed.responseOptions ?? {},
  };
  const path = parsed.stream ? `${call.modelPath}:streamGenerateContent?alt=sse` : `${call.modelPath}:generateContent`;
  const spec = (): AttemptSpec => ({
    ...serviceSpec(call, parsed.stream ? 'streamGenerateContent' : 'generateContent', path, parsed.gemini),
    model: call.model,
    sessionKey: parsed.sessionKey,
    pinned: call.pinned,
    consume: parsed.stream ? 'stream' : 'full',
    stream: parsed.stream,
    sse: parsed.stream,
    check: geminiJson,
    checkHead: geminiSseHead,
    origin: call.origin,
    method: 'POST',
    path,
    body: Buffer.from(JSON.stringify(parsed.gemini)),
    headers: JSON_HEADERS,
    signal: call.signal,
  });
  return runExchange(deps, res, call.track, {
    spec,
    errorBody: shaper(door),
    serve(opened) {
      if (opened.kind === 'client_error') return passBack(res, door, opened);
      if (opened.kind === 'stream') return serveStream(deps, res, call, info, opened);
      const gemini = opened.value as GeminiResponse;
      const out = door.toResponse(gemini, info);
      const firstByteAt = deps.clock.now();
      sendJsonBody(res, 200, out);
      const usage = usageOf(gemini);
      return { status: 200, firstByteAt, usage, report: okReport(usage, true) };
    },
  });
}

/** Token counting through a door's countTokens translation (Anthropic count_tokens). */
export function forwardCountTokens(deps: EngineDeps, res: ServerResponse, call: TranslatedCall): Promise<unknown> {
  const { door, parsed } = call;
  const ct = door.countTokens!;
  return runExchange(deps, res, call.track, {
    spec: () => ({
      ...serviceSpec(call, 'countTokens', `${call.modelPath}:countTokens`, parsed.gemini),
      model: call.model,
      sessionKey: parsed.sessionKey,
      pinned: call.pinned,
      consume: 'full',
      check: geminiJson,
      origin: call.origin,
      method: 'POST',
      path: `${call.modelPath}:countTokens`,
      body: Buffer.from(JSON.stringify(setCountTokensModel(parsed.gemini, call.model))),
      headers: JSON_HEADERS,
      signal: call.signal,
    }),
    errorBody: shaper(door),
    serve(opened) {
      if (opened.kind === 'client_error') return passBack(res, door, opened);
      if (opened.kind !== 'ok') throw new Error('unexpected stream');
      const out = ct.toResponse(opened.value as GeminiCountTokensResponse);
      const firstByteAt = deps.clock.now();
      sendJsonBody(res, 200, out);
      return { status: 200, firstByteAt, report: okReport(null, false) };
    },
  });
}
