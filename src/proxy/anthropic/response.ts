// Gemini generateContent answers -> Anthropic Messages answers and SSE events
// (https://docs.anthropic.com/en/api/messages,
// https://docs.anthropic.com/en/docs/build-with-claude/streaming), typed as the
// Anthropic SDK's Message and RawMessageStreamEvent.
import type {
  Message,
  MessageDeltaUsage,
  RawContentBlockDeltaEvent,
  RawContentBlockStartEvent,
  RawContentBlockStopEvent,
  RawMessageDeltaEvent,
  RawMessageStartEvent,
  RawMessageStopEvent,
  StopReason,
  TextBlock,
  ThinkingBlock,
  ToolUseBlock,
  Usage,
} from '@anthropic-ai/sdk/resources/messages/messages';
import type { ErrorResponse, ErrorType } from '@anthropic-ai/sdk/resources/shared';
import type { GeminiResponse, ResponseInfo, StreamTranslator } from '../door.ts';
import { encodeThinkingSignature, type ThinkingSignature, type ThoughtSignatureCache } from '../thought-signatures.ts';
import { candidatesOf, FILTER_REASONS, isObj, partsOf, promptBlocked, randomId, sseEvent, usageOf, type Part } from '../translate-util.ts';

// What the gateway sends is the SDK's types without the fields it never has:
// no citations, no tool caller, no container, no diagnostics or stop details,
// and of the usage only the token counts.
type SentUsage = Pick<Usage, 'input_tokens' | 'output_tokens' | 'cache_creation_input_tokens' | 'cache_read_input_tokens'>;
type SentTextBlock = Omit<TextBlock, 'citations'>;
type SentToolUseBlock = Omit<ToolUseBlock, 'caller' | 'toolset_name'>;
export type SentContentBlock = SentTextBlock | ThinkingBlock | SentToolUseBlock;
export type AnthropicMessageAnswer = Omit<Message, 'container' | 'diagnostics' | 'stop_details' | 'content' | 'usage'> & {
  content: SentContentBlock[];
  usage: SentUsage;
};
/** 413 is request_too_large (https://docs.anthropic.com/en/api/errors); the SDK's ErrorType does not list it. */
export type AnthropicErrorType = ErrorType | 'request_too_large';
export type AnthropicErrorBody = Omit<ErrorResponse, 'request_id' | 'error'> & { error: { type: AnthropicErrorType; message: string } };
/** The stream's events; ping is documented (streaming) but not among the SDK's RawMessageStreamEvent. */
export type AnthropicStreamEvent =
  | (Omit<RawMessageStartEvent, 'message'> & { message: AnthropicMessageAnswer })
  | { type: 'ping' }
  | (Omit<RawContentBlockStartEvent, 'content_block'> & { content_block: SentContentBlock })
  | RawContentBlockDeltaEvent
  | RawContentBlockStopEvent
  | (Omit<RawMessageDeltaEvent, 'delta' | 'usage'> & {
      delta: Pick<RawMessageDeltaEvent.Delta, 'stop_reason' | 'stop_sequence'>;
      usage: Pick<MessageDeltaUsage, keyof SentUsage>;
    })
  | RawMessageStopEvent
  | AnthropicErrorBody;

/** One event of the stream, named after its type. */
function event(e: AnthropicStreamEvent): string {
  return sseEvent(e.type, e);
}

export function stopReason(gemini: unknown, sawToolUse: boolean): StopReason {
  if (sawToolUse) return 'tool_use';
  if (gemini === 'MAX_TOKENS') return 'max_tokens';
  if (typeof gemini === 'string' && FILTER_REASONS.has(gemini)) return 'refusal';
  return 'end_turn';
}

export function anthropicUsage(meta: unknown): SentUsage {
  const u = usageOf(meta);
  return {
    input_tokens: Math.max(0, u.prompt + u.toolPrompt - u.cached),
    output_tokens: u.candidates + u.thoughts,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: u.cached,
  };
}

export function anthropicErrorType(status: number): AnthropicErrorType {
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

export function anthropicErrorBody(status: number, message: string): AnthropicErrorBody {
  return { type: 'error', error: { type: anthropicErrorType(status), message } };
}

function toolUse(part: Part, signatures: ThoughtSignatureCache): SentToolUseBlock {
  const fc = part.functionCall ?? {};
  const id = randomId('toolu_');
  if (typeof part.thoughtSignature === 'string') signatures.remember(id, part.thoughtSignature);
  return { type: 'tool_use', id, name: String(fc.name ?? ''), input: isObj(fc.args) ? fc.args : {} };
}

export function toAnthropicResponse(gemini: GeminiResponse, info: ResponseInfo, signatures: ThoughtSignatureCache): AnthropicMessageAnswer {
  const candidate = candidatesOf(gemini)[0];
  const content: SentContentBlock[] = [];
  let thinking: { block: ThinkingBlock; sig: ThinkingSignature } | undefined;
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
      thinking.block.thinking += part.text;
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
      if (last && last.type === 'text') last.text += part.text;
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
      event({
        type: 'message_start',
        message: {
          id: info.id, type: 'message', role: 'assistant', model: info.requestedModel, content: [],
          stop_reason: null, stop_sequence: null, usage: { ...u, output_tokens: 0 },
        },
      }) + event({ type: 'ping' })
    );
  };
  const close = (nextSig?: unknown): string => {
    if (!open) return '';
    let out = '';
    if (open === 'thinking') {
      if (typeof nextSig === 'string') thinkingSig.next = nextSig;
      out += event({ type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: encodeThinkingSignature(thinkingSig) } });
      thinkingSig = {};
    }
    open = undefined;
    return out + event({ type: 'content_block_stop', index });
  };
  const openBlock = (kind: 'text' | 'thinking'): string => {
    index++;
    open = kind;
    const block: SentContentBlock = kind === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '', signature: '' };
    return event({ type: 'content_block_start', index, content_block: block });
  };

  return {
    start: () => '',
    chunk(gemini) {
      if (done) return '';
      if (isObj(gemini) && gemini.usageMetadata !== undefined) usage = gemini.usageMetadata;
      let out = messageStart();
      const candidates = candidatesOf(gemini);
      if (candidates.length === 0 && promptBlocked(gemini)) blocked = true;
      const c = candidates[0];
      if (!c) return out;
      for (const part of partsOf(c)) {
        if (part.thought === true && typeof part.text === 'string') {
          if (open !== 'thinking') out += close() + openBlock('thinking');
          if (typeof part.thoughtSignature === 'string') thinkingSig.thought = part.thoughtSignature;
          if (part.text) out += event({ type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: part.text } });
        } else if (isObj(part.functionCall)) {
          out += close(part.thoughtSignature);
          const block = toolUse(part, signatures);
          sawTool = true;
          index++;
          out += event({ type: 'content_block_start', index, content_block: { ...block, input: {} } });
          out += event({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) } });
          out += event({ type: 'content_block_stop', index });
        } else if (typeof part.text === 'string') {
          if (open === 'thinking') out += close(part.thoughtSignature);
          if (part.text === '') continue;
          if (open !== 'text') out += close() + openBlock('text');
          out += event({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: part.text } });
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
      out += event({
        type: 'message_delta',
        delta: { stop_reason: blocked ? 'refusal' : stopReason(finish, sawTool), stop_sequence: null },
        usage: u,
      });
      return out + event({ type: 'message_stop' });
    },
    error(status, message) {
      if (done) return '';
      done = true;
      return event(anthropicErrorBody(status, message));
    },
  };
}
