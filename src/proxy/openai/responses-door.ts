// The OpenAI Responses door: POST /v1/responses on the Gemini API (what Codex
// CLI, the OpenAI SDK's responses.create and the AI SDK's default OpenAI
// provider call). Stateless; see responses-request.ts for what is refused.
import type { Door } from '../door.ts';
import type { ThoughtSignatureCache } from '../thought-signatures.ts';
import { parseResponsesRequest } from './responses-request.ts';
import { responsesErrorBody } from './responses-output.ts';
import { createResponsesStreamTranslator, toResponsesResponse } from './responses-response.ts';

export interface ResponsesDoorOptions {
  /** Where Gemini thought signatures are kept between turns, keyed by call_id. */
  signatures: ThoughtSignatureCache;
  /** Accept http(s) image and file URLs (as Gemini fileData parts); default false: a 400. */
  allowRemoteImages?: boolean;
}

export function createResponsesDoor(options: ResponsesDoorOptions): Door {
  const { signatures } = options;
  return {
    name: 'openai',
    parseRequest: (body) => parseResponsesRequest(body, options),
    toResponse: (gemini, info) => toResponsesResponse(gemini, info, signatures),
    streamTranslator: (info) => createResponsesStreamTranslator(info, signatures),
    errorBody: (status, message, code) => responsesErrorBody(status, message, code),
  };
}
