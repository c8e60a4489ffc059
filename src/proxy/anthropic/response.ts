// Gemini generateContent answers -> Anthropic Messages answers and SSE events.
import type { GeminiResponse, ResponseInfo, StreamTranslator } from '../door.ts';
import { encodeThinkingSignature, type ThinkingSignature, type ThoughtSignatureCache } from '../thought-signatures.ts';
import { candidatesOf, FILTER_REASONS, isObj, partsOf, randomId, sseEvent, usageOf, type Json, type Part } from '../translate-util.ts';

export function stopReason(gemini: unknown, sawToolUse: boolean): string {
  if (sawToolUse) return 'tool_use';
  if (gemini === 'MAX_TOKENS') return 'max_tokens';
  if (typeof gemini === 'string' && FILTER_REASONS.has(gemini)) return 'refusal';
  return 'end_turn';
}

export function anthropicUsage(meta: unknown): Json {
  const u = usageOf(meta);
  return {
    input_tokens: Math.max(0, u.prompt + u.toolPrompt - u.cached),
    output_tokens: u.candidates + u.thoughts,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: u.cached,
  };
}

export function anthropicErrorType(status: number): string {
  switch (status) {
    case 401: return 'authentication_error';
    case 403: return 'permission_error';
    case 404: return 'not_found_error';
    case 413: return 'request_too_large';
    case 429: return 'rate_limit_error';
    case 503: case 529: return 'overloaded_error';
    default: return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

export function anthropicErrorBody(status: number, message: string): Json {
  return { type: 'error', error: { type: anthropicErrorType(status), message } };
}

function toolUse(part: Part, signatures: ThoughtSignatureCache): Json {
  const fc = part.functionCall as Json;
  const id = randomId('toolu_');
  if (typeof part.thoughtSignature === 'string') signatures.remember(id, part.thoughtSignature);
  return { type: 'tool_use', id, name: String(fc.name ?? ''), input: isObj(fc.args) ? fc.args : {} };
}

export function toAnthropicResponse(gemini: GeminiResponse, info: ResponseInfo, signatures: ThoughtSignatureCache): Json {
  const candidate = candidatesOf(gemini)[0];
  const content: Json[] = [];
  let thinking: { block: Json; sig: ThinkingSignature } | undefined;
  let sawTool = false;
  const closeThinking = (nextSig: unknown) => {
    if (!thinking) return;
    if (typeof nextSig === 'string') thinking.sig.next = nextSig;
    thinking.block.signature = encodeThinkingSignature(thinking.sig);
    thinking = undefined;
  };
  for (const part of candidate ? partsOf(candidate) : []) {
    if (part.thought === true && typeof part.text === 'string') {
      if (!thinking) {
        thinking = { block: { type: 'thinking', thinking: '', signature: '' }, sig: {} };
        content.push(thinking.block);
      }
      thinking.block.thinking = String(thinking.block.thinking) + part.text;
      if (typeof part.thoughtSignature === 'string') thinking.sig.thought = part.thoughtSignature;
    } else if (isObj(part.functionCall)) {
      closeThinking(part.thoughtSignature);
      content.push(toolUse(part, signatures));
      sawTool = true;
    } else if (typeof part.text === 'string') {
      if (part.text === '' && !thinking) continue;
      closeThinking(part.thoughtSignature);
      if (part.text === '') continue;
      const last = content.at(-1);
      if (last && last.type === 'text') last.text = String(last.text) + part.text;
      else content.push({ type: 'text', text: part.text });
    }
  }
  closeThinking(undefined);
  return {
    id: info.id,
    type: 'message',
    role: 'assistant',
    model: info.requestedModel,
    content,
    stop_reason: candidate ? stopReason(candidate.finishReason, sawTool) : 'refusal',
    stop_sequence: null,
    usage: anthropicUsage(isObj(gemini) ? gemini.usageMetadata : undefined),
  };
}

export function createAnthropicStreamTranslator(info: ResponseInfo, signatures: ThoughtSignatureCache): StreamTranslator {
  let started = false;
  let done = false;
  let index = -1;
  let open: 'text' | 'thinking' | undefined;
  let thinkingSig: ThinkingSignature = {};
  let sawTool = false;
  let finish: unknown;
  let usage: unknown;
  let blocked = false;

  const messageStart = (): string => {
    if (started) return '';
    started = true;
    const u = anthropicUsage(usage);
    return (
      sseEvent('message_start', {
        type: 'message_start',
        message: {
          id: info.id, type: 'message', role: 'assistant', model: info.requestedModel, content: [],
          stop_reason: null, stop_sequence: null, usage: { ...u, output_tokens: 0 },
        },
      }) + sseEvent('ping', { type: 'ping' })
    );
  };
  const close = (nextSig?: unknown): string => {
    if (!open) return '';
    let out = '';
    if (open === 'thinking') {
      if (typeof nextSig === 'string') thinkingSig.next = nextSig;
      out += sseEvent('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: encodeThinkingSignature(thinkingSig) } });
      thinkingSig = {};
    }
    open = undefined;
    return out + sseEvent('content_block_stop', { type: 'content_block_stop', index });
  };
  const openBlock = (kind: 'text' | 'thinking'): string => {
    index++;
    open = kind;
    const block = kind === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '', signature: '' };
    return sseEvent('content_block_start', { type: 'content_block_start', index, content_block: block });
  };

  return {
    start: () => '',
    chunk(gemini) {
      if (done) return '';
      if (isObj(gemini) && gemini.usageMetadata !== undefined) usage = gemini.usageMetadata;
      let out = messageStart();
      const candidates = candidatesOf(gemini);
      if (candidates.length === 0 && isObj(gemini) && isObj(gemini.promptFeedback) && gemini.promptFeedback.blockReason) blocked = true;
      const c = candidates[0];
      if (!c) return out;
      for (const part of partsOf(c)) {
        if (part.thought === true && typeof part.text === 'string') {
          if (open !== 'thinking') out += close() + openBlock('thinking');
          if (typeof part.thoughtSignature === 'string') thinkingSig.thought = part.thoughtSignature;
          if (part.text) out += sseEvent('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: part.text } });
        } else if (isObj(part.functionCall)) {
          out += close(part.thoughtSignature);
          const block = toolUse(part, signatures);
          sawTool = true;
          index++;
          out += sseEvent('content_block_start', { type: 'content_block_start', index, content_block: { ...block, input: {} } });
          out += sseEvent('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) } });
          out += sseEvent('content_block_stop', { type: 'content_block_stop', index });
        } else if (typeof part.text === 'string') {
          if (open === 'thinking') out += close(part.thoughtSignature);
          if (part.text === '') continue;
          if (open !== 'text') out += close() + openBlock('text');
          out += sseEvent('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: part.text } });
        }
      }
      if (c.finishReason !== undefined && c.finishReason !== null) finish = c.finishReason;
      return out;
    },
    end() {
      if (done) return '';
      done = true;
      let out = messageStart() + close();
      const u = anthropicUsage(usage);
      out += sseEvent('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: blocked ? 'refusal' : stopReason(finish, sawTool), stop_sequence: null },
        usage: u,
      });
      return out + sseEvent('message_stop', { type: 'message_stop' });
    },
    error(status, message) {
      if (done) return '';
      done = true;
      return sseEvent('error', anthropicErrorBody(status, message));
    },
  };
}
