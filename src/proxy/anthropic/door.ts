// The Anthropic Messages door: POST /v1/messages and /v1/messages/count_tokens on the Gemini API.
import type { MessageTokensCount } from '@anthropic-ai/sdk/resources/messages/messages';
import type { Door } from '../door.ts';
import type { ThoughtSignatureCache } from '../thought-signatures.ts';
import { isObj } from '../translate-util.ts';
import { parseAnthropicCountTokens, parseAnthropicRequest } from './request.ts';
import { anthropicErrorBody, createAnthropicStreamTranslator, toAnthropicResponse } from './response.ts';

export interface AnthropicDoorOptions {
  /** Where Gemini thought signatures are kept between turns, keyed by tool_use id. */
  signatures: ThoughtSignatureCache;
  /** Accept image/document sources of type "url" (as Gemini fileData parts); default false: a 400. */
  allowRemoteImages?: boolean;
}

export function createAnthropicDoor(options: AnthropicDoorOptions): Door {
  const { signatures } = options;
  return {
    name: 'anthropic',
    parseRequest: (body) => parseAnthropicRequest(body, options),
    toResponse: (gemini, info) => toAnthropicResponse(gemini, info, signatures),
    streamTranslator: (info) => createAnthropicStreamTranslator(info, signatures),
    errorBody: (status, message) => anthropicErrorBody(status, message),
    countTokens: {
      parseRequest: (body) => parseAnthropicCountTokens(body, options),
      toResponse: (gemini): MessageTokensCount => ({ input_tokens: isObj(gemini) && typeof gemini.totalTokens === 'number' ? gemini.totalTokens : 0 }),
    },
  };
}
