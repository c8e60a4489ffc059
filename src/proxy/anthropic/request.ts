// Anthropic Messages request (https://docs.anthropic.com/en/api/messages) ->
// Gemini generateContent request (https://ai.google.dev/api/generate-content),
// and count_tokens (https://docs.anthropic.com/en/api/messages-count-tokens) ->
// countTokens. The client's body is read as the Anthropic SDK's
// MessageCreateParams, field by field: each value is checked (a 400 in
// Anthropic's shape says which field is wrong) before it is translated into
// the typed Gemini request.
import type { MessageCreateParams as BetaMessageCreateParams } from '@anthropic-ai/sdk/resources/beta/messages/messages';
import type {
  ContentBlockParam,
  DocumentBlockParam,
  ImageBlockParam,
  JSONOutputFormat,
  MessageCountTokensParams,
  MessageCreateParams,
  MessageParam,
  Metadata,
  OutputConfig,
  TextBlockParam,
  ThinkingConfigParam,
  Tool,
  ToolChoice,
} from '@anthropic-ai/sdk/resources/messages/messages';
import type { ParsedRequest } from '../door.ts';
import type {
  GeminiCountTokensRequest, GeminiFunctionCallingConfig, GeminiFunctionDeclaration, GeminiGenerationConfig, GeminiRequest, GeminiTool, GeminiToolConfig,
} from '../gemini-types.ts';
import { toGeminiParameters } from '../gemini-schema.ts';
import { decodeThinkingSignature, fillMissingFunctionCallSignatures, type ThoughtSignatureCache } from '../thought-signatures.ts';
import { bad, fieldsOf, isObj, jsonSchemaOutput, num, pushContent, remoteUrlPart, str, type Content, type Fields, type Part } from '../translate-util.ts';

/**
 * Sampling fields that earlier versions of the Messages API took and clients
 * still send; the SDK's current types no longer name them. Gemini takes them.
 */
type EarlierSampling = { temperature?: number; top_p?: number; top_k?: number };
/** A Messages body: the current API's fields, output_format (the structured-output beta's spelling) and the earlier sampling fields. */
type MessagesBody = MessageCreateParams | MessageCountTokensParams | Pick<BetaMessageCreateParams, 'output_format'> | EarlierSampling;
type MediaBlock = ImageBlockParam | DocumentBlockParam;

export interface AnthropicRequestOptions {
  signatures: ThoughtSignatureCache;
  allowRemoteImages?: boolean;
}

/** A system prompt (the top-level `system`, or a `role: "system"` message's content) as Gemini text parts. */
function systemParts(system: unknown, where = 'system'): Part[] {
  if (system === undefined || system === null) return [];
  if (typeof system === 'string') return system ? [{ text: system }] : [];
  if (!Array.isArray(system)) throw bad(`"${where}" must be a string or an array of text blocks`);
  return system.map((b: unknown, i) => {
    if (!fieldsOf<TextBlockParam>(b) || b.type !== 'text' || typeof b.text !== 'string') throw bad(`${where}[${i}] must be a text block {"type":"text","text":...}`);
    return { text: b.text };
  });
}

function mediaPart(block: Fields<MediaBlock>, at: string, opts: AnthropicRequestOptions): Part {
  const src = block.source;
  if (!fieldsOf<MediaBlock['source']>(src)) throw bad(`${at}.source is required`);
  if (src.type === 'base64') {
    if (typeof src.data !== 'string' || typeof src.media_type !== 'string') throw bad(`${at}.source needs "media_type" and base64 "data"`);
    return { inlineData: { mimeType: src.media_type, data: src.data } };
  }
  if (src.type === 'url') {
    if (typeof src.url !== 'string') throw bad(`${at}.source.url must be a string`);
    return remoteUrlPart(src.url, !!opts.allowRemoteImages, at);
  }
  if (src.type === 'text' && typeof src.data === 'string') return { text: src.data };
  throw bad(`${at}.source.type ${JSON.stringify(src.type)} is not supported (use "base64"${opts.allowRemoteImages ? ' or "url"' : ''})`);
}

/** tool_result content -> the text for functionResponse plus any media parts. */
function toolResultContent(content: unknown, at: string, opts: AnthropicRequestOptions): { text: string; media: Part[] } {
  if (content === undefined || content === null) return { text: '', media: [] };
  if (typeof content === 'string') return { text: content, media: [] };
  if (!Array.isArray(content)) throw bad(`${at}.content must be a string or an array of blocks`);
  const texts: string[] = [];
  const media: Part[] = [];
  content.forEach((b: unknown, i) => {
    if (!fieldsOf<ContentBlockParam>(b)) throw bad(`${at}.content[${i}] must be an object`);
    if (b.type === 'text') texts.push(typeof b.text === 'string' ? b.text : '');
    else if (b.type === 'image' || b.type === 'document') media.push(mediaPart(b, `${at}.content[${i}]`, opts));
    else throw bad(`${at}.content[${i}]: block type ${JSON.stringify(b.type)} is not supported in a tool_result`);
  });
  return { text: texts.join('\n'), media };
}

interface Translated {
  model: string;
  contents: Content[];
  system: Part[];
  tools?: GeminiTool[];
  toolConfig?: GeminiToolConfig;
}

function translateConversation(body: Fields<MessagesBody>, opts: AnthropicRequestOptions): Translated {
  const model = body.model;
  if (typeof model !== 'string' || model.trim() === '') throw bad('model: Field required (a non-empty string)');
  const messages = body.messages;
  if (!Array.isArray(messages)) throw bad('messages: Field required (an array)');
  if (messages.length === 0) throw bad('messages: at least one message is required');

  const contents: Content[] = [];
  const callNames = new Map<string, string>();
  // The top-level system prompt first, then `role: "system"` messages (the
  // current API's SystemMessageParam, which Claude Code sends) in their order.
  const system = systemParts(body.system);

  messages.forEach((m, i) => {
    const where = `messages.${i}`;
    if (!fieldsOf<MessageParam>(m)) throw bad(`${where} must be an object`);
    if (m.role === 'system') {
      system.push(...systemParts(m.content, `${where}.content`));
      return;
    }
    if (m.role !== 'user' && m.role !== 'assistant') throw bad(`${where}.role must be "user", "assistant" or "system" (got ${JSON.stringify(m.role)})`);
    const role = m.role === 'user' ? 'user' : 'model';
    if (typeof m.content === 'string') {
      pushContent(contents, role, [{ text: m.content }]);
      return;
    }
    if (!Array.isArray(m.content)) throw bad(`${where}.content must be a string or an array of content blocks`);
    const parts: Part[] = [];
    /** Signature from a thinking block for the first non-thought part after it. */
    let pendingNext: string | undefined;
    const attachPending = (part: Part) => {
      if (pendingNext && typeof part.thoughtSignature !== 'string') part.thoughtSignature = pendingNext;
      pendingNext = undefined;
    };
    m.content.forEach((b: unknown, j) => {
      const at = `${where}.content.${j}`;
      if (!fieldsOf<ContentBlockParam>(b)) throw bad(`${at} must be an object`);
      switch (b.type) {
        case 'text': {
          if (typeof b.text !== 'string') throw bad(`${at}.text must be a string`);
          const part: Part = { text: b.text };
          if (role === 'model') attachPending(part);
          parts.push(part);
          break;
        }
        case 'image':
        case 'document':
          parts.push(mediaPart(b, at, opts));
          break;
        case 'tool_use': {
          if (role !== 'model') throw bad(`${at}: tool_use blocks belong in assistant messages`);
          if (typeof b.id !== 'string' || typeof b.name !== 'string' || !b.name) throw bad(`${at}: tool_use needs "id" and "name"`);
          callNames.set(b.id, b.name);
          const part: Part = { functionCall: { name: b.name, args: isObj(b.input) ? b.input : {} } };
          const cached = opts.signatures.recall(b.id);
          if (cached) part.thoughtSignature = cached;
          attachPending(part);
          parts.push(part);
          break;
        }
        case 'tool_result': {
          if (role !== 'user') throw bad(`${at}: tool_result blocks belong in user messages`);
          if (typeof b.tool_use_id !== 'string') throw bad(`${at}.tool_use_id is required`);
          const name = callNames.get(b.tool_use_id);
          if (!name) throw bad(`${at}: tool_use_id "${b.tool_use_id}" does not match any tool_use block in an earlier assistant message`);
          const { text, media } = toolResultContent(b.content, at, opts);
          const response = b.is_error === true ? { error: text } : { output: text };
          parts.push({ functionResponse: { name, response } }, ...media);
          break;
        }
        case 'thinking': {
          if (role !== 'model') break;
          const sig = decodeThinkingSignature(b.signature);
          if (!sig) break; // not ours (e.g. a real Claude signature): Gemini cannot use it
          const thinking = typeof b.thinking === 'string' ? b.thinking : '';
          if (thinking || sig.thought) {
            const part: Part = { text: thinking, thought: true };
            if (sig.thought) part.thoughtSignature = sig.thought;
            parts.push(part);
          }
          pendingNext = sig.next;
          break;
        }
        case 'redacted_thinking':
          break;
        case 'server_tool_use':
        case 'web_search_tool_result':
          throw bad(`${at}: block type "${b.type}" (Anthropic server tools) is not supported by this gateway`);
        default:
          throw bad(`${at}: unknown content block type ${JSON.stringify(b.type)}`);
      }
    });
    if (role === 'model' && parts.length === 0) parts.push({ text: '' });
    pushContent(contents, role, parts);
  });
  if (contents.length === 0) throw bad('messages: at least one user or assistant message is required besides system messages');
  fillMissingFunctionCallSignatures(contents);

  const out: Translated = { model, contents, system };

  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) throw bad('"tools" must be an array');
    const decls: GeminiFunctionDeclaration[] = [];
    body.tools.forEach((t: unknown, i) => {
      const at = `tools.${i}`;
      if (!fieldsOf<Tool>(t)) throw bad(`${at} must be an object`);
      if (t.type !== undefined && t.type !== null && t.type !== 'custom') throw bad(`${at}: tool type ${JSON.stringify(t.type)} (an Anthropic server tool) is not supported; define it as a custom tool with input_schema`);
      if (typeof t.name !== 'string' || !t.name) throw bad(`${at}.name must be a non-empty string`);
      const decl: GeminiFunctionDeclaration = { name: t.name };
      if (typeof t.description === 'string') decl.description = t.description;
      if (t.input_schema === undefined || t.input_schema === null) throw bad(`${at}.input_schema: Field required`);
      const params = toGeminiParameters(t.input_schema, `${at}.input_schema`);
      if (params) decl.parameters = params;
      decls.push(decl);
    });
    if (decls.length) out.tools = [{ functionDeclarations: decls }];
  }
  const tc = body.tool_choice;
  if (tc !== undefined && tc !== null) {
    if (!fieldsOf<ToolChoice>(tc)) throw bad('"tool_choice" must be an object like {"type":"auto"}');
    let config: GeminiFunctionCallingConfig;
    if (tc.type === 'auto') config = { mode: 'AUTO' };
    else if (tc.type === 'any') config = { mode: 'ANY' };
    else if (tc.type === 'none') config = { mode: 'NONE' };
    else if (tc.type === 'tool') {
      if (typeof tc.name !== 'string' || !tc.name) throw bad('"tool_choice.name" is required when type is "tool"');
      config = { mode: 'ANY', allowedFunctionNames: [tc.name] };
    } else throw bad('"tool_choice.type" must be "auto", "any", "tool" or "none"');
    if (out.tools || config.mode === 'NONE') out.toolConfig = { functionCallingConfig: config };
  }
  return out;
}

export function parseAnthropicRequest(body: unknown, opts: AnthropicRequestOptions): ParsedRequest {
  if (!fieldsOf<MessagesBody>(body)) throw bad('the request body must be a JSON object');
  const t = translateConversation(body, opts);
  const maxTokens = num(body.max_tokens, 'max_tokens', { min: 1, int: true });
  if (maxTokens === undefined) throw bad('max_tokens: Field required');

  const gemini: GeminiRequest = { contents: t.contents };
  if (t.system.length) gemini.systemInstruction = { parts: t.system };
  if (t.tools) gemini.tools = t.tools;
  if (t.toolConfig) gemini.toolConfig = t.toolConfig;

  const gc: GeminiGenerationConfig = { maxOutputTokens: maxTokens };
  const temperature = num(body.temperature, 'temperature', { min: 0, max: 1 });
  if (temperature !== undefined) gc.temperature = temperature;
  const topP = num(body.top_p, 'top_p', { min: 0, max: 1 });
  if (topP !== undefined) gc.topP = topP;
  const topK = num(body.top_k, 'top_k', { min: 0, int: true });
  if (topK !== undefined) gc.topK = topK;
  if (body.stop_sequences !== undefined && body.stop_sequences !== null) {
    if (!Array.isArray(body.stop_sequences) || !body.stop_sequences.every((s) => typeof s === 'string')) throw bad('"stop_sequences" must be an array of strings');
    if (body.stop_sequences.length) gc.stopSequences = body.stop_sequences;
  }
  const thinking = body.thinking;
  let thinkingOn = false;
  if (thinking !== undefined && thinking !== null) {
    if (!fieldsOf<ThinkingConfigParam>(thinking)) throw bad('"thinking" must be an object');
    if (thinking.type === 'enabled') {
      const budget = num(thinking.budget_tokens, 'thinking.budget_tokens', { min: 0, int: true });
      if (budget === undefined) throw bad('thinking.budget_tokens: Field required when thinking is enabled');
      gc.thinkingConfig = { thinkingBudget: budget, includeThoughts: true };
      thinkingOn = true;
    } else if (thinking.type === 'adaptive' || thinking.type === 'between_tools') {
      gc.thinkingConfig = { thinkingBudget: -1, includeThoughts: true };
      thinkingOn = true;
    } else if (thinking.type !== 'disabled') throw bad('"thinking.type" must be "enabled", "adaptive", "between_tools" or "disabled"');
  }
  // Structured output: output_config.format (current API) or output_format (its beta spelling).
  const outputConfig: Fields<OutputConfig> = fieldsOf<OutputConfig>(body.output_config) ? body.output_config : {};
  const [format, formatWhere] = outputConfig.format != null ? [outputConfig.format, 'output_config.format'] : [body.output_format, 'output_format'];
  if (format !== undefined && format !== null) {
    if (!fieldsOf<JSONOutputFormat>(format) || format.type !== 'json_schema') throw bad(`"${formatWhere}" must be {"type":"json_schema","schema":{...}}`);
    Object.assign(gc, jsonSchemaOutput(format.schema, `${formatWhere}.schema`));
  }
  gemini.generationConfig = gc;

  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw bad('"stream" must be a boolean');
  const metadata: Fields<Metadata> = fieldsOf<Metadata>(body.metadata) ? body.metadata : {};
  const sessionKey = str(metadata.user_id, 'metadata.user_id');
  return {
    requestedModel: t.model,
    stream: body.stream === true,
    ...(sessionKey ? { sessionKey } : {}),
    gemini,
    responseOptions: { thinking: thinkingOn },
  };
}

/** `/v1/messages/count_tokens` body -> Gemini countTokens body (`generateContentRequest.model` is set by the engine). */
export function parseAnthropicCountTokens(body: unknown, opts: AnthropicRequestOptions): ParsedRequest<GeminiCountTokensRequest> {
  if (!fieldsOf<MessageCountTokensParams>(body)) throw bad('the request body must be a JSON object');
  const t = translateConversation(body, opts);
  const inner: GeminiRequest = { contents: t.contents };
  if (t.system.length) inner.systemInstruction = { parts: t.system };
  if (t.tools) inner.tools = t.tools;
  if (t.toolConfig) inner.toolConfig = t.toolConfig;
  return { requestedModel: t.model, stream: false, gemini: { generateContentRequest: inner } };
}
