// Gemini generateContent answers -> a Responses API Response, and Gemini
// stream chunks -> the Responses stream: response.created, .in_progress, then
// per output item output_item.added, its parts and deltas, output_item.done,
// and response.completed (or .incomplete / .failed). One builder does both:
// the JSON answer is the stream's final Response.
//
// Thoughts (when a reasoning summary was asked for) become a reasoning item
// with summary text. A function call's thought signature is remembered by its
// call_id and, when the client asked for include: ["reasoning.encrypted_content"],
// also carried in the encrypted_content of the reasoning item before the call.
import type { Response as OpenAIResponse, ResponseStreamEvent } from 'openai/resources/responses/responses';
import type { GeminiResponse, ResponseInfo, StreamTranslator } from '../door.ts';
import type { ThoughtSignatureCache } from '../thought-signatures.ts';
import type { ItemCache } from './responses-items.ts';
import { candidatesOf, isObj, partsOf, promptBlocked, randomId, sseEvent, type Part } from '../translate-util.ts';
import {
  encryptedFor, finishOf, messageItem, reasoningItem, responseObject, responsesErrorCode, responsesOptionsOf, responsesUsage, toolCallItem,
  type IncompleteReason, type ResponsesOptions,
} from './responses-output.ts';

type Output = OpenAIResponse['output'];
/** Where what a later turn needs is kept: signatures by call id, output items by id. */
export interface Keep {
  signatures: ThoughtSignatureCache;
  items?: ItemCache;
}
type OpenItem = { kind: 'message'; index: number; id: string; text: string } | { kind: 'reasoning'; index: number; id: string; text: string };
/** An event without its sequence number (the builder numbers them). */
type Event = ResponseStreamEvent extends infer E ? (E extends { sequence_number: number } ? Omit<E, 'sequence_number'> : never) : never;

class OutputBuilder {
  readonly output: Output = [];
  private open: OpenItem | null = null;
  private seq = 0;
  private usageMeta: unknown;
  private blocked = false;
  private finishReason: unknown;
  private ended = false;
  private readonly info: ResponseInfo;
  private readonly opts: ResponsesOptions;
  private readonly signatures: ThoughtSignatureCache;
  private readonly items: ItemCache | undefined;
  /** Serialized events, when streaming. */
  private readonly sse: string[] | null;

  constructor(info: ResponseInfo, keep: Keep, streaming: boolean) {
    this.info = info;
    this.opts = responsesOptionsOf(info);
    this.signatures = keep.signatures;
    this.items = keep.items;
    this.sse = streaming ? [] : null;
  }

  private emit(event: Event): void {
    if (!this.sse) return;
    const { type, ...rest } = event;
    this.sse.push(sseEvent(type, { type, sequence_number: this.seq++, ...rest }));
  }

  /** The SSE text produced since the last call. */
  take(): string {
    if (!this.sse || this.sse.length === 0) return '';
    return this.sse.splice(0).join('');
  }

  start(): void {
    const response = responseObject(this.info, { status: 'in_progress', output: [] });
    this.emit({ type: 'response.created', response });
    this.emit({ type: 'response.in_progress', response });
  }

  chunk(gemini: GeminiResponse): void {
    if (this.ended) return;
    if (isObj(gemini) && gemini.usageMetadata !== undefined) this.usageMeta = gemini.usageMetadata;
    const candidate = candidatesOf(gemini)[0];
    if (!candidate) {
      if (promptBlocked(gemini)) this.blocked = true;
      return;
    }
    for (const part of partsOf(candidate)) this.part(part);
    const fr = candidate.finishReason;
    if (fr !== undefined && fr !== null && fr !== 'FINISH_REASON_UNSPECIFIED') this.finishReason = fr;
  }

  private part(part: Part): void {
    if (isObj(part.functionCall)) return this.call(part);
    if (typeof part.text !== 'string' || part.text === '') return;
    if (part.thought === true) {
      if (this.open?.kind !== 'reasoning') this.openReasoning();
      this.open!.text += part.text;
      this.emit({ type: 'response.reasoning_summary_text.delta', item_id: this.open!.id, output_index: this.open!.index, summary_index: 0, delta: part.text });
      return;
    }
    if (this.open?.kind !== 'message') {
      this.close();
      const id = randomId('msg_');
      const index = this.output.length;
      this.open = { kind: 'message', index, id, text: '' };
      this.output.push(messageItem(id, '', 'in_progress'));
      this.emit({ type: 'response.output_item.added', output_index: index, item: messageItem(id, '', 'in_progress') });
      this.emit({ type: 'response.content_part.added', item_id: id, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
    }
    this.open.text += part.text;
    this.emit({ type: 'response.output_text.delta', item_id: this.open.id, output_index: this.open.index, content_index: 0, delta: part.text, logprobs: [] });
  }

  private openReasoning(): void {
    this.close();
    const id = randomId('rs_');
    const index = this.output.length;
    this.open = { kind: 'reasoning', index, id, text: '' };
    const item = reasoningItem(id, [], this.opts.encryptedReasoning ? null : undefined, false);
    this.output.push(item);
    this.emit({ type: 'response.output_item.added', output_index: index, item });
    this.emit({ type: 'response.reasoning_summary_part.added', item_id: id, output_index: index, summary_index: 0, part: { type: 'summary_text', text: '' } });
  }

  private call(part: Part): void {
    const item = toolCallItem(part, this.opts, this.signatures);
    const sig = typeof part.thoughtSignature === 'string' ? { [item.call_id]: part.thoughtSignature } : {};
    if (this.open?.kind === 'reasoning') this.close(sig);
    else {
      this.close();
      if (this.opts.encryptedReasoning && Object.keys(sig).length) {
        // No thoughts were shown: a reasoning item of its own carries the signature.
        const id = randomId('rs_');
        const index = this.output.length;
        const done = reasoningItem(id, [], encryptedFor(this.opts, sig), true);
        this.output.push(done);
        this.emit({ type: 'response.output_item.added', output_index: index, item: reasoningItem(id, [], null, false) });
        this.emit({ type: 'response.output_item.done', output_index: index, item: done });
      }
    }
    const index = this.output.length;
    this.output.push(item);
    const id = item.id!;
    if (item.type === 'function_call') {
      this.emit({ type: 'response.output_item.added', output_index: index, item: { ...item, arguments: '', status: 'in_progress' } });
      this.emit({ type: 'response.function_call_arguments.delta', item_id: id, output_index: index, delta: item.arguments });
      this.emit({ type: 'response.function_call_arguments.done', item_id: id, output_index: index, name: item.name, arguments: item.arguments });
    } else {
      this.emit({ type: 'response.output_item.added', output_index: index, item: { ...item, input: '' } });
      this.emit({ type: 'response.custom_tool_call_input.delta', item_id: id, output_index: index, delta: item.input });
      this.emit({ type: 'response.custom_tool_call_input.done', item_id: id, output_index: index, input: item.input });
    }
    this.emit({ type: 'response.output_item.done', output_index: index, item });
  }

  /** Ends the open item (a reasoning item gets the signatures of the calls right after it). */
  private close(calls: Record<string, string> = {}, status: 'completed' | 'incomplete' = 'completed'): void {
    const open = this.open;
    if (!open) return;
    this.open = null;
    if (open.kind === 'message') {
      const { id, index, text } = open;
      const part = { type: 'output_text' as const, text, annotations: [], logprobs: [] };
      this.emit({ type: 'response.output_text.done', item_id: id, output_index: index, content_index: 0, text, logprobs: [] });
      this.emit({ type: 'response.content_part.done', item_id: id, output_index: index, content_index: 0, part });
      this.output[index] = messageItem(id, text, status);
    } else {
      const { id, index, text } = open;
      this.emit({ type: 'response.reasoning_summary_text.done', item_id: id, output_index: index, summary_index: 0, text });
      this.emit({ type: 'response.reasoning_summary_part.done', item_id: id, output_index: index, summary_index: 0, part: { type: 'summary_text', text } });
      this.output[index] = reasoningItem(id, [text], encryptedFor(this.opts, calls), true);
    }
    this.emit({ type: 'response.output_item.done', output_index: open.index, item: this.output[open.index]! });
  }

  /** Ends the response by Gemini's finish reason. */
  finish(): OpenAIResponse {
    const fin = this.blocked ? ({ status: 'incomplete', reason: 'content_filter' } as const) : finishOf(this.finishReason);
    if (fin.status === 'failed') return this.fail('server_error', fin.message);
    this.close({}, fin.status === 'incomplete' ? 'incomplete' : 'completed');
    this.ended = true;
    if (this.items) for (const item of this.output) this.items.remember(item);
    const usage = responsesUsage(this.usageMeta);
    if (fin.status === 'incomplete') {
      const response = responseObject(this.info, { status: 'incomplete', output: this.output, usage, incomplete: fin.reason as IncompleteReason });
      this.emit({ type: 'response.incomplete', response });
      return response;
    }
    const response = responseObject(this.info, { status: 'completed', output: this.output, usage });
    this.emit({ type: 'response.completed', response });
    return response;
  }

  /** Ends the response as failed (the items finished so far are kept). */
  fail(code: string, message: string): OpenAIResponse {
    this.ended = true;
    const output = this.open ? this.output.filter((_, i) => i !== this.open!.index) : this.output;
    this.open = null;
    const response = responseObject(this.info, { status: 'failed', output, usage: responsesUsage(this.usageMeta), error: { code, message } });
    this.emit({ type: 'response.failed', response });
    return response;
  }

  get done(): boolean {
    return this.ended;
  }
}

export function toResponsesResponse(gemini: GeminiResponse, info: ResponseInfo, keep: Keep): OpenAIResponse {
  const b = new OutputBuilder(info, keep, false);
  b.chunk(gemini);
  return b.finish();
}

export function createResponsesStreamTranslator(info: ResponseInfo, keep: Keep): StreamTranslator {
  const b = new OutputBuilder(info, keep, true);
  return {
    start() {
      b.start();
      return b.take();
    },
    chunk(gemini) {
      b.chunk(gemini);
      return b.take();
    },
    end() {
      if (b.done) return '';
      b.finish();
      return b.take();
    },
    error(status, message) {
      if (b.done) return '';
      b.fail(responsesErrorCode(status, message), message);
      return b.take();
    },
  };
}
