// A "door" is one client protocol (OpenAI, Anthropic, Gemini) in front of the
// Gemini API. Doors are pure translations; the proxy engine (engine.ts) does
// the I/O, failover and logging around them.

/** Gemini API request body for generateContent / streamGenerateContent (wire format, camelCase). */
export type GeminiRequest = Record<string, unknown>;
/** Gemini API response (or one streamed chunk) of generateContent. */
export type GeminiResponse = Record<string, unknown>;

export interface ParsedRequest {
  /** The model name the client asked for. */
  requestedModel: string;
  stream: boolean;
  /** Session affinity key, if the protocol carries one. */
  sessionKey?: string;
  /** What to send to the Gemini API (without `model`, which goes in the URL). */
  gemini: GeminiRequest;
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
   * Validates and translates a client request. Throws HttpError (400) with a
   * clear message for a bad request. Unknown fields are ignored.
   */
  parseRequest(body: unknown): ParsedRequest;
  /** A Gemini generateContent answer as this protocol's JSON answer. */
  toResponse(gemini: GeminiResponse, info: ResponseInfo): unknown;
  streamTranslator(info: ResponseInfo): StreamTranslator;
  /** An error body in this protocol's shape. `type` is a short machine code. */
  errorBody(status: number, message: string, type?: string): unknown;
}
