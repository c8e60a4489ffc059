// The OpenAI Responses door: POST /v1/responses on the Gemini API (what Codex
// CLI, the OpenAI SDK's responses.create and the AI SDK's default OpenAI
// provider call). Stateless; see responses-request.ts for what is refused.
import type { Door } from '../door.ts';
import type { ThoughtSignatureCache } from '../thought-signatures.ts';
import { parseResponsesRequest } from './responses-request.ts';
import { createItemCache, type ItemCache } from './responses-items.ts';
import { responsesErrorBody } from './responses-output.ts';
import { createResponsesStreamTranslator, toResponsesResponse } from './responses-response.ts';

export interface ResponsesDoorOptions {
  /** Where Gemini thought signatures are kept between turns, keyed by call_id. */
  signatures: ThoughtSignatureCache;
  /** Accept http(s) image and file URLs (as Gemini fileData parts); default false: a 400. */
  allowRemoteImages?: boolean;
  /** Output items kept for `item_reference` (default: a cache of its own). */
  items?: ItemCache;
}

export function createResponsesDoor(options: ResponsesDoorOptions): Door {
  const { signatures } = options;
  const items = options.items ?? createItemCache();
  const keep = { signatures, items };
  return {
    name: 'openai',
    parseRequest: (body) => parseResponsesRequest(body, { ...options, items }),
    toResponse: (gemini, info) => toResponsesResponse(gemini, info, keep),
    streamTranslator: (info) => createResponsesStreamTranslator(info, keep),
    errorBody: (status, message, code) => responsesErrorBody(status, message, code),
  };
}
