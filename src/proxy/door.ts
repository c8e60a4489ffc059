// A "door" is one client protocol (OpenAI, Anthropic, Gemini) in front of the
// Gemini API. Doors are pure translations; the proxy engine (engine.ts) does
// the I/O, failover and logging around them.

import type { GeminiCountTokensRequest, GeminiCountTokensResponse, GeminiRequest, GeminiResponse } from './gemini-types.ts';

export type { GeminiCountTokensRequest, GeminiCountTokensResponse, GeminiRequest, GeminiResponse };

export interface ParsedRequest<G extends GeminiRequest | GeminiCountTokensRequest = GeminiRequest> {
  /** The model name the client asked for. */
  requestedModel: string;
  stream: boolean;
  /** Session affinity key, if the protocol carries one. */
  sessionKey?: string;
  /** What to send to the Gemini API (without `model`, which goes in the URL); a countTokens body for token counting. */
  gemini: G;
  /**
   * Request options that shape the answer (e.g. OpenAI `stream_options.include_usage`).
   * The engine passes them on as `ResponseInfo.options`. (Added by the door translations.)
   */
  responseOptions?: Record<string, unknown>;
  /**
   * OpenAI-style reasoning effort (none … xhigh). The pipeline fits it to the
   * upstream model's thinking control once the alias is resolved
   * (`withReasoningEffort`: thinkingLevel on Gemini 3 and later, thinkingBudget before).
   */
  reasoningEffort?: string;
  /** What the translation changed that the request log should say (e.g. a dropped hosted tool). */
  notes?: string[];
}

/**
 * Token counting (Anthropic `/v1/messages/count_tokens`). `parseRequest`
 * returns a Gemini `countTokens` body of the form `{generateContentRequest: {...}}`;
 * the engine must set `generateContentRequest.model` to `models/<upstream model>`
 * (see `setCountTokensModel`) before sending it. (Added by the door translations.)
 */
export interface CountTokensTranslation {
  parseRequest(body: unknown): ParsedRequest<GeminiCountTokensRequest>;
  /** The Gemini countTokens answer (`{totalTokens}`) in this protocol's shape. */
  toResponse(gemini: GeminiCountTokensResponse): unknown;
}

/**
 * Puts the upstream model into a countTokens body that carries a whole request
 * (`generateContentRequest`, or its snake_case spelling, which Google accepts too).
 */
export function setCountTokensModel<T extends Record<string, unknown>>(body: T, upstreamModel: string): T {
  const key = body.generateContentRequest !== undefined ? 'generateContentRequest' : 'generate_content_request';
  const inner = body[key];
  if (typeof inner !== 'object' || inner === null) return body;
  return { ...body, [key]: { ...(inner as Record<string, unknown>), model: `models/${upstreamModel.replace(/^models\//, '')}` } };
}

export interface ResponseInfo {
  /** The model name the client asked for (echoed back in responses). */
  requestedModel: string;
  /** A stable id for this response (chatcmpl-…, msg_…). */
  id: string;
  /** Unix seconds when the request was received. */
  created: number;
  /** Options from the request that shape the response (e.g. OpenAI stream_options.include_usage). */
  options: Record<string, unknown>;
}

/** Turns Gemini stream chunks into this protocol's server-sent events. */
export interface StreamTranslator {
  /** SSE text for the start of the stream (may be ''). */
  start(): string;
  /** SSE text for one Gemini chunk (may be ''). */
  chunk(chunk: GeminiResponse): string;
  /** SSE text that ends a successful stream. */
  end(): string;
  /** SSE text that ends the stream with an error after it started. */
  error(status: number, message: string): string;
}

export interface Door {
  name: 'openai' | 'anthropic' | 'gemini';
  /**
   * Validates and translates a client request. Throws BadRequest (400, src/http/) with a
   * clear message for a bad request. Unknown fields are ignored.
   */
  parseRequest(body: unknown): ParsedRequest;
  /** A Gemini generateContent answer as this protocol's JSON answer. */
  toResponse(gemini: GeminiResponse, info: ResponseInfo): unknown;
  streamTranslator(info: ResponseInfo): StreamTranslator;
  /** An error body in this protocol's shape. `type` is a short machine code. */
  errorBody(status: number, message: string, type?: string): unknown;
  /** Present on doors with a token-counting route (Anthropic). */
  countTokens?: CountTokensTranslation;
}
