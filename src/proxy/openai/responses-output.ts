// What the Responses door answers with, shared by the JSON answer and the
// stream: the request options a Response echoes, the Response object, usage,
// output items made from Gemini parts, and error codes OpenAI clients
// understand (Codex acts on rate_limit_exceeded, insufficient_quota and
// context_length_exceeded).
import type {
  Response as OpenAIResponse,
  ResponseFunctionToolCall,
  ResponseCustomToolCall,
  ResponseOutputMessage,
  ResponseReasoningItem,
  ResponseUsage,
} from 'openai/resources/responses/responses';
import type { ResponseInfo } from '../door.ts';
import { encodeResponsesSignatures, type ThoughtSignatureCache } from '../thought-signatures.ts';
import { FILTER_REASONS, isObj, randomId, usageOf, type Json, type Part } from '../translate-util.ts';
import { errorType } from './response.ts';

/** Request fields a Response echoes, and the choices that shape the answer (ParsedRequest.responseOptions.responses). */
export interface ResponsesOptions {
  instructions: string | null;
  tools: Json[];
  toolChoice: unknown;
  parallelToolCalls: boolean;
  temperature: number | null;
  topP: number | null;
  maxOutputTokens: number | null;
  reasoning: { effort: string | null; summary: string | null } | null;
  text: Json;
  metadata: Json;
  user: string | null;
  promptCacheKey: string | null;
  safetyIdentifier: string | null;
  /** include: ["reasoning.encrypted_content"]: thought signatures go to the client in reasoning items. */
  encryptedReasoning: boolean;
  /** Names of `custom` tools (their calls are custom_tool_call items whose input is the call's `input` argument). */
  customTools: string[];
  /** Function names of namespace members -> their namespace and name (calls name them that way). */
  namespaced?: Record<string, { namespace: string; name: string }>;
}

export function responsesOptionsOf(info: ResponseInfo): ResponsesOptions {
  return info.options.responses as ResponsesOptions;
}

/** The Responses id for this answer (the engine's ids are Chat Completions-shaped). */
export function responseIdOf(info: ResponseInfo): string {
  return `resp_${info.id.replace(/^chatcmpl-/, '')}`;
}

/** The counts of openaiUsage (response.ts) under the Responses API's field names, which differ from Chat Completions'. */
export function responsesUsage(meta: unknown): ResponseUsage {
  const u = usageOf(meta);
  const input = u.prompt + u.toolPrompt;
  const output = u.candidates + u.thoughts;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: u.cached, cache_write_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: u.thoughts },
    total_tokens: u.total || input + output,
  };
}

/** Error codes of response.failed / HTTP errors that OpenAI clients act on. */
export function responsesErrorCode(status: number, message: string, fallback?: string): string {
  if (/exceeds the maximum number of tokens|context (window|length)|too many tokens|input token count/i.test(message)) return 'context_length_exceeded';
  if (status === 429 || /RESOURCE_EXHAUSTED|resource has been exhausted|rate.?limit/i.test(message)) {
    // insufficient_quota makes Codex stop instead of waiting: only when every account is out for the day.
    const perAccount = message.match(/: (daily quota exhausted|rate limited)/g);
    const daily = perAccount ? perAccount.every((r) => r.includes('daily')) : /per ?day|daily/i.test(message);
    return daily ? 'insufficient_quota' : 'rate_limit_exceeded';
  }
  if (status === 402) return 'insufficient_quota';
  if (status >= 500) return fallback && fallback !== 'upstream_error' && fallback !== 'internal_error' ? fallback : 'server_error';
  return fallback ?? 'invalid_request_error';
}

/**
 * An HTTP error body in OpenAI's shape. A wait time the gateway knows is also
 * said as "Please try again in Ns", the phrase Codex reads a delay from.
 */
export function responsesErrorBody(status: number, message: string, code?: string): Json {
  const wait = /Retry after (\d+)s/.exec(message);
  const text = wait && !/try again in/i.test(message) ? `${message} Please try again in ${wait[1]}s.` : message;
  return { error: { message: text, type: errorType(status), param: null, code: responsesErrorCode(status, message, code) } };
}

export type IncompleteReason = 'max_output_tokens' | 'content_filter';

/** How a Gemini finish reason ends the response. */
export function finishOf(reason: unknown): { status: 'completed' } | { status: 'incomplete'; reason: IncompleteReason } | { status: 'failed'; message: string } {
  if (reason === 'MAX_TOKENS') return { status: 'incomplete', reason: 'max_output_tokens' };
  if (typeof reason === 'string' && FILTER_REASONS.has(reason)) return { status: 'incomplete', reason: 'content_filter' };
  if (reason === 'MALFORMED_FUNCTION_CALL' || reason === 'UNEXPECTED_TOOL_CALL') {
    return { status: 'failed', message: `The model produced an invalid tool call (Gemini finish reason ${reason}); retry the request.` };
  }
  return { status: 'completed' };
}

// --- output items -------------------------------------------------------------

export function messageItem(id: string, text: string, status: 'in_progress' | 'completed' | 'incomplete'): ResponseOutputMessage {
  return {
    id,
    type: 'message',
    role: 'assistant',
    status,
    content: status === 'in_progress' ? [] : [{ type: 'output_text', text, annotations: [], logprobs: [] }],
  };
}

export function reasoningItem(id: string, summary: string[], encrypted: string | null | undefined, done: boolean): ResponseReasoningItem {
  const item: ResponseReasoningItem = { id, type: 'reasoning', summary: done ? summary.map((text) => ({ type: 'summary_text' as const, text })) : [] };
  if (encrypted !== undefined) item.encrypted_content = encrypted;
  return item;
}

/** A Gemini functionCall part as a function_call (or custom_tool_call) item; its signature is remembered by call id. */
export function toolCallItem(part: Part, opts: ResponsesOptions, signatures: ThoughtSignatureCache): ResponseFunctionToolCall | ResponseCustomToolCall {
  const fc = part.functionCall as Json;
  const name = String(fc.name ?? '');
  const args = isObj(fc.args) ? fc.args : {};
  const callId = randomId('call_');
  if (typeof part.thoughtSignature === 'string') signatures.remember(callId, part.thoughtSignature);
  const member = opts.namespaced && Object.hasOwn(opts.namespaced, name) ? opts.namespaced[name] : undefined;
  if (opts.customTools.includes(name)) {
    const input = typeof args.input === 'string' ? args.input : JSON.stringify(args);
    const custom: ResponseCustomToolCall = { type: 'custom_tool_call', id: randomId('ctc_'), call_id: callId, name: member?.name ?? name, input };
    if (member) custom.namespace = member.namespace;
    return custom;
  }
  const call: ResponseFunctionToolCall = { type: 'function_call', id: randomId('fc_'), call_id: callId, name: member?.name ?? name, arguments: JSON.stringify(args), status: 'completed' };
  if (member) call.namespace = member.namespace;
  return call;
}

/** The encrypted_content for signatures of calls in one step (null when the client did not ask for it). */
export function encryptedFor(opts: ResponsesOptions, calls: Record<string, string>): string | null | undefined {
  if (!opts.encryptedReasoning) return undefined;
  return Object.keys(calls).length ? encodeResponsesSignatures({ calls }) : null;
}

// --- the Response object -------------------------------------------------------

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed';

export function responseObject(
  info: ResponseInfo,
  state: {
    status: ResponseStatus;
    output: OpenAIResponse['output'];
    usage?: ResponseUsage;
    incomplete?: IncompleteReason;
    error?: { code: string; message: string };
    completedAt?: number;
  },
): OpenAIResponse {
  const o = responsesOptionsOf(info);
  const r: Record<string, unknown> = {
    id: responseIdOf(info),
    object: 'response',
    created_at: info.created,
    status: state.status,
    background: false,
    error: state.error ?? null,
    incomplete_details: state.incomplete ? { reason: state.incomplete } : null,
    instructions: o.instructions,
    max_output_tokens: o.maxOutputTokens,
    max_tool_calls: null,
    model: info.requestedModel,
    output: state.output,
    parallel_tool_calls: o.parallelToolCalls,
    previous_response_id: null,
    prompt_cache_key: o.promptCacheKey,
    reasoning: o.reasoning ?? { effort: null, summary: null },
    safety_identifier: o.safetyIdentifier,
    service_tier: 'default',
    store: false,
    temperature: o.temperature,
    text: o.text,
    tool_choice: o.toolChoice,
    tools: o.tools,
    top_logprobs: 0,
    top_p: o.topP,
    truncation: 'disabled',
    usage: state.usage ?? null,
    user: o.user,
    metadata: o.metadata,
  };
  if (state.completedAt !== undefined) r.completed_at = state.completedAt;
  return r as unknown as OpenAIResponse;
}
