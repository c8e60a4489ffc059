// The small checks and shapes every proxy route shares: pinning and session
// headers, request depth and model-name checks, the auth error per protocol,
// and which Gemini query parameters go upstream. Pure, apart from
// recordBadRequest (which ends a request-log entry).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BadRequest, HttpError } from '../http/http-util.ts';
import { nestsDeeperThan } from '../util/json.ts';
import { finishTrack, type EngineDeps, type Protocol, type Track } from './engine.ts';

/** Header that pins a request (on every route) to one account, by email or id. */
export const PIN_HEADER = 'x-grantpool-account';

/**
 * How deep a request the gateway re-serialises may nest (Google refuses far
 * less deep function declarations and arguments; deeper values would
 * overflow the stack of JSON.stringify).
 */
export const MAX_JSON_DEPTH = 512;

export function tooDeep(what: string): HttpError {
  return new BadRequest(`${what} nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`);
}

/**
 * Whether a translated request nests too deeply. Tool declarations are left
 * out: the schema conversion already bounds them (and they are most of a
 * coding agent's request); what is left (contents with tool call arguments
 * and results, configuration) is walked.
 */
export function translatedTooDeep(gemini: Record<string, unknown>): boolean {
  for (const key in gemini) if (key !== 'tools' && nestsDeeperThan(gemini[key], MAX_JSON_DEPTH - 1)) return true;
  return false;
}

/** A model name goes into the upstream URL: it must be well-formed Unicode (no unpaired surrogate). */
export function checkModelName(model: string): void {
  if (!model.isWellFormed()) {
    throw new BadRequest('model is not a valid name: it holds an unpaired UTF-16 surrogate (broken Unicode)');
  }
}

/** Query parameters of a Gemini-native request that are passed to the upstream. */
export const FORWARDED_GEMINI_PARAMS = new Set(['alt', '$alt', 'fields', '$fields', 'prettyPrint', '$prettyPrint']);

// ---------------------------------------------------------------------------
// Error shapes for gateway-made errors (auth, bad input) per protocol

export type Shaper = (status: number, message: string, type?: string) => unknown;

/** A bad request ends its request-log entry here (the error is answered by the caller). */
export function recordBadRequest(engine: EngineDeps, track: Track, e: unknown): unknown {
  if (e instanceof HttpError) finishTrack(engine, track, { status: e.status, error: e.message });
  return e;
}

export function authErrorBody(protocol: Protocol, message: string): unknown {
  switch (protocol) {
    case 'openai':
      return { error: { message, type: 'invalid_request_error', code: 'invalid_api_key' } };
    case 'anthropic':
      return { type: 'error', error: { type: 'authentication_error', message } };
    default:
      return { error: { code: 401, message, status: 'UNAUTHENTICATED' } };
  }
}

/** Google clients (the Gen AI SDK, Gemini CLI) identify themselves; OpenAI clients do not send these. */
export function isGoogleClient(req: IncomingMessage, url: URL): boolean {
  return (
    req.headers['x-goog-api-key'] !== undefined ||
    req.headers['x-goog-api-client'] !== undefined ||
    url.searchParams.has('key') ||
    /google-genai|gemini-cli|GeminiCLI/i.test(String(req.headers['user-agent'] ?? ''))
  );
}

export function setHeaders(res: ServerResponse, headers: Record<string, string>): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}
