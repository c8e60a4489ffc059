// The OpenAI Chat Completions door: POST /v1/chat/completions on the Gemini API.
import type { Door } from '../door.ts';
import type { ThoughtSignatureCache } from '../thought-signatures.ts';
import { parseOpenAIRequest } from './request.ts';
import { createOpenAIStreamTranslator, openaiErrorBody, toOpenAIResponse } from './response.ts';

export interface OpenAIDoorOptions {
  /** Where Gemini thought signatures are kept between turns, keyed by tool call id. */
  signatures: ThoughtSignatureCache;
  /** Accept http(s) image URLs (as Gemini fileData parts); default false: a 400. */
  allowRemoteImages?: boolean;
}

export function createOpenAIDoor(options: OpenAIDoorOptions): Door {
  const { signatures } = options;
  return {
    name: 'openai',
    parseRequest: (body) => parseOpenAIRequest(body, options),
    toResponse: (gemini, info) => toOpenAIResponse(gemini, info, signatures),
    streamTranslator: (info) => createOpenAIStreamTranslator(info, signatures),
    errorBody: (status, message, type) => openaiErrorBody(status, message, type),
  };
}
