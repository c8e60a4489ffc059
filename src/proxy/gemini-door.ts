// The Gemini-native door: clients already speak the upstream's protocol
// (https://ai.google.dev/api/generate-content), so requests go through as they
// are (only the model in the URL is aliased) and answers are forwarded byte
// for byte. This module holds what the engine needs around that: light request
// checks (read with the field names of gemini-types.ts) and Google-shaped
// errors (https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes).
import { BadRequest } from '../http/http-util.ts';
import { fieldsOf, isObj, type Fields } from './translate-util.ts';
import type {
  GeminiBatchEmbedContentsRequest, GeminiCountTokensRequest, GeminiEmbedContentRequest, GeminiRequest,
} from './gemini-types.ts';

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'UNIMPLEMENTED',
  409: 'ABORTED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** Google's canonical status name for an HTTP status. */
export function googleStatusName(status: number): string {
  return STATUS_NAMES[status] ?? (status >= 500 ? 'INTERNAL' : status >= 400 ? 'FAILED_PRECONDITION' : 'UNKNOWN');
}

/** Google's error body: `{"error":{"code","message","status"}}`. */
export function googleErrorBody(status: number, message: string): { error: { code: number; message: string; status: string } } {
  return { error: { code: status, message, status: googleStatusName(status) } };
}

export type GeminiAction = 'generateContent' | 'streamGenerateContent' | 'countTokens' | 'embedContent' | 'batchEmbedContents';
/** Model methods the Gemini door serves (embeddings pass through as they are, e.g. for Gemini CLI). */
export const GEMINI_ACTIONS: readonly string[] = ['generateContent', 'streamGenerateContent', 'countTokens', 'embedContent', 'batchEmbedContents'];

/** Splits the `{model}:{action}` path segment. */
export function splitModelAction(segment: string): { model: string; action: string } | null {
  const at = segment.lastIndexOf(':');
  if (at <= 0) return null;
  return { model: segment.slice(0, at), action: segment.slice(at + 1) };
}

/** The body of a model method: the field names of its Gemini request, each value unchecked (countTokens also takes the snake_case spelling). */
export type GeminiBody = Fields<GeminiRequest | GeminiCountTokensRequest | GeminiEmbedContentRequest | GeminiBatchEmbedContentsRequest | { generate_content_request: unknown }>;

/**
 * The checks the gateway makes itself before spending an account on a
 * request (everything finer is the upstream's to judge, and its 400 comes
 * back in this same shape). Throws BadRequest.
 */
export function checkGeminiBody(body: unknown, action: GeminiAction): GeminiBody {
  if (!fieldsOf<GeminiBody>(body)) throw new BadRequest('request body must be a JSON object');
  if (action === 'embedContent') {
    if (!isObj(body.content)) throw new BadRequest('content is required (a Content object)');
    return body;
  }
  if (action === 'batchEmbedContents') {
    if (!Array.isArray(body.requests) || body.requests.length === 0) throw new BadRequest('requests must be a non-empty array');
    return body;
  }
  if (action === 'countTokens') {
    const inner = body.generateContentRequest ?? body.generate_content_request;
    if (inner !== undefined) {
      if (!fieldsOf<GeminiRequest>(inner)) throw new BadRequest('generateContentRequest must be an object');
      checkContents(inner.contents, 'generateContentRequest.contents');
      return body;
    }
  }
  checkContents(body.contents, 'contents');
  return body;
}

function checkContents(contents: unknown, name: string): void {
  if (contents === undefined || contents === null) throw new BadRequest(`${name} is required`);
  if (!Array.isArray(contents)) throw new BadRequest(`${name} must be an array of Content objects`);
  if (contents.length === 0) throw new BadRequest(`${name} must not be empty`);
  for (let i = 0; i < contents.length; i++) {
    const c = contents[i];
    if (!isObj(c)) throw new BadRequest(`${name}[${i}] must be a Content object`);
    if (c.parts !== undefined && !Array.isArray(c.parts)) throw new BadRequest(`${name}[${i}].parts must be an array`);
  }
}
