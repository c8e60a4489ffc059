// Gemini generateContent answers -> OpenAI chat.completion / chat.completion.chunk
// (https://platform.openai.com/docs/api-reference/chat/object,
// https://platform.openai.com/docs/api-reference/chat-streaming), typed as the
// openai SDK's ChatCompletion and ChatCompletionChunk.
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionMessage, ChatCompletionMessageFunctionToolCall } from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type { ErrorObject } from 'openai/resources/shared';
import type { GeminiResponse, ResponseInfo, StreamTranslator } from '../door.ts';
import type { GeminiPart } from '../gemini-types.ts';
import type { ThoughtSignatureCache } from '../thought-signatures.ts';
import { candidatesOf, FILTER_REASONS, isObj, partsOf, promptBlocked, randomId, sseData, usageOf } from '../translate-util.ts';

/** The thoughts, for clients that read them (as DeepSeek-style answers carry them); not in the SDK's types. */
type WithReasoning<T> = T & { reasoning_content?: string };
export type FinishReason = ChatCompletion.Choice['finish_reason'];

/**
 * A chat.completion as the gateway sends it: the SDK's ChatCompletion, with
 * system_fingerprint null (the SDK has a string or nothing) and the
 * message's reasoning_content.
 */
export type ChatCompletionAnswer = Omit<ChatCompletion, 'system_fingerprint' | 'choices'> & {
  system_fingerprint: null;
  choices: (Omit<ChatCompletion.Choice, 'message'> & { message: WithReasoning<ChatCompletionMessage> })[];
};
type ChunkChoice = Omit<ChatCompletionChunk.Choice, 'delta'> & { delta: WithReasoning<ChatCompletionChunk.Choice.Delta> };
/** A chat.completion.chunk as the gateway sends it (system_fingerprint null, reasoning_content deltas). */
export type ChatCompletionChunkAnswer = Omit<ChatCompletionChunk, 'system_fingerprint' | 'choices'> & { system_fingerprint: null; choices: ChunkChoice[] };
/** OpenAI's error body. */
export type OpenAIErrorBody = { error: ErrorObject };

export function finishReason(gemini: unknown, sawToolCall: boolean): FinishReason {
  if (sawToolCall) return 'tool_calls';
  if (gemini === 'MAX_TOKENS') return 'length';
  if (typeof gemini === 'string' && FILTER_REASONS.has(gemini)) return 'content_filter';
  return 'stop';
}

export function openaiUsage(meta: unknown): CompletionUsage {
  const u = usageOf(meta);
  const completion = u.candidates + u.thoughts;
  const prompt = u.prompt + u.toolPrompt;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: u.total || prompt + completion,
    prompt_tokens_details: { cached_tokens: u.cached },
    completion_tokens_details: { reasoning_tokens: u.thoughts },
  };
}

export function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function openaiErrorBody(status: number, message: string, code?: string): OpenAIErrorBody {
  return { error: { message, type: errorType(status), param: null, code: code ?? null } };
}

function toolCall(part: GeminiPart, signatures: ThoughtSignatureCache): ChatCompletionMessageFunctionToolCall {
  const fc = part.functionCall ?? {};
  const id = randomId('call_');
  if (typeof part.thoughtSignature === 'string') signatures.remember(id, part.thoughtSignature);
  return { id, type: 'function', function: { name: String(fc.name ?? ''), arguments: JSON.stringify(isObj(fc.args) ? fc.args : {}) } };
}

export function toOpenAIResponse(gemini: GeminiResponse, info: ResponseInfo, signatures: ThoughtSignatureCache): ChatCompletionAnswer {
  const candidates = candidatesOf(gemini);
  const choices: ChatCompletionAnswer['choices'] = candidates.map((c, i) => {
    let text = '';
    let reasoning = '';
    const calls: ChatCompletionMessageFunctionToolCall[] = [];
    for (const part of partsOf(c)) {
      if (isObj(part.functionCall)) calls.push(toolCall(part, signatures));
      else if (typeof part.text === 'string') {
        if (part.thought === true) reasoning += part.text;
        else text += part.text;
      }
    }
    const message: WithReasoning<ChatCompletionMessage> = { role: 'assistant', content: text || (calls.length ? null : ''), refusal: null };
    if (reasoning) message.reasoning_content = reasoning;
    if (calls.length) message.tool_calls = calls;
    return {
      index: typeof c.index === 'number' ? c.index : i,
      message,
      logprobs: null,
      finish_reason: finishReason(c.finishReason, calls.length > 0),
    };
  });
  if (choices.length === 0) {
    // The prompt itself was blocked (promptFeedback.blockReason): no candidates.
    choices.push({ index: 0, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: 'content_filter' });
  }
  return {
    id: info.id,
    object: 'chat.completion',
    created: info.created,
    model: info.requestedModel,
    choices,
    usage: openaiUsage(isObj(gemini) ? gemini.usageMetadata : undefined),
    system_fingerprint: null,
  };
}

export function createOpenAIStreamTranslator(info: ResponseInfo, signatures: ThoughtSignatureCache): StreamTranslator {
  const includeUsage = info.options.includeUsage === true;
  const started = new Set<number>();
  const finished = new Set<number>();
  const toolIndex = new Map<number, number>();
  let usage: unknown;
  let blocked = false;
  let done = false;

  const chunk = (choices: ChunkChoice[], extra: Partial<ChatCompletionChunkAnswer> = {}): string =>
    sseData<ChatCompletionChunkAnswer>({
      id: info.id,
      object: 'chat.completion.chunk',
      created: info.created,
      model: info.requestedModel,
      system_fingerprint: null,
      choices,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    });

  const delta = (index: number, d: ChunkChoice['delta']): ChunkChoice => {
    if (!started.has(index)) {
      started.add(index);
      d = { role: 'assistant', ...d };
    }
    return { index, delta: d, logprobs: null, finish_reason: null };
  };

  return {
    start: () => '',
    chunk(gemini) {
      if (done) return '';
      let out = '';
      if (isObj(gemini) && gemini.usageMetadata !== undefined) usage = gemini.usageMetadata;
      const candidates = candidatesOf(gemini);
      if (candidates.length === 0 && promptBlocked(gemini)) blocked = true;
      candidates.forEach((c, i) => {
        const index = typeof c.index === 'number' ? c.index : i;
        if (finished.has(index)) return;
        for (const part of partsOf(c)) {
          if (isObj(part.functionCall)) {
            const n = toolIndex.get(index) ?? 0;
            toolIndex.set(index, n + 1);
            const call = toolCall(part, signatures);
            out += chunk([delta(index, { tool_calls: [{ index: n, ...call }] })]);
          } else if (typeof part.text === 'string' && part.text !== '') {
            out += chunk([delta(index, part.thought === true ? { reasoning_content: part.text } : { content: part.text })]);
          }
        }
        if (c.finishReason !== undefined && c.finishReason !== null && c.finishReason !== 'FINISH_REASON_UNSPECIFIED') {
          finished.add(index);
          const first: ChunkChoice['delta'] = started.has(index) ? {} : { role: 'assistant', content: '' };
          started.add(index);
          out += chunk([{ index, delta: first, logprobs: null, finish_reason: finishReason(c.finishReason, (toolIndex.get(index) ?? 0) > 0) }]);
        }
      });
      return out;
    },
    end() {
      if (done) return '';
      done = true;
      let out = '';
      const indexes = new Set([...started, ...finished]);
      if (indexes.size === 0) indexes.add(0);
      for (const index of [...indexes].sort((a, b) => a - b)) {
        if (finished.has(index)) continue;
        const first: ChunkChoice['delta'] = started.has(index) ? {} : { role: 'assistant', content: '' };
        out += chunk([{ index, delta: first, logprobs: null, finish_reason: blocked ? 'content_filter' : finishReason(undefined, (toolIndex.get(index) ?? 0) > 0) }]);
      }
      if (includeUsage) out += chunk([], { usage: openaiUsage(usage) });
      return out + 'data: [DONE]\n\n';
    },
    error(status, message) {
      if (done) return '';
      done = true;
      return sseData(openaiErrorBody(status, message));
    },
  };
}
