// OpenAI Chat Completions request (https://platform.openai.com/docs/api-reference/chat/create)
// -> Gemini generateContent request (https://ai.google.dev/api/generate-content).
// The client's body is read as the openai SDK's ChatCompletionCreateParams,
// field by field: each value is checked (a 400 in OpenAI's shape says which
// field is wrong) before it is translated into the typed Gemini request.
import type {
  ChatCompletionAllowedToolChoice,
  ChatCompletionAssistantMessageParam,
  ChatCompletionContentPart,
  ChatCompletionContentPartImage,
  ChatCompletionContentPartInputAudio,
  ChatCompletionContentPartRefusal,
  ChatCompletionContentPartText,
  ChatCompletionCreateParams,
  ChatCompletionFunctionTool,
  ChatCompletionMessageFunctionToolCall,
  ChatCompletionMessageParam,
  ChatCompletionNamedToolChoice,
  ChatCompletionStreamOptions,
} from 'openai/resources/chat/completions';
import type { FunctionDefinition, ResponseFormatJSONSchema } from 'openai/resources/shared';
import type { ParsedRequest } from '../door.ts';
import type { GeminiFunctionCallingConfig, GeminiFunctionDeclaration, GeminiGenerationConfig, GeminiRequest } from '../gemini-types.ts';
import { toGeminiParameters, toGeminiSchema } from '../gemini-schema.ts';
import { fillMissingFunctionCallSignatures, type ThoughtSignatureCache } from '../thought-signatures.ts';
import {
  bad, dataUrlToInlineData, EFFORT_BUDGETS, fieldsOf, num, parseArguments, pushContent, remoteUrlPart, str,
  type Content, type Fields, type Json, type Part,
} from '../translate-util.ts';

export interface OpenAIRequestOptions {
  signatures: ThoughtSignatureCache;
  allowRemoteImages?: boolean;
}

const AUDIO_MIME: Record<string, string> = { wav: 'audio/wav', mp3: 'audio/mp3', flac: 'audio/flac', ogg: 'audio/ogg', aac: 'audio/aac', pcm16: 'audio/pcm' };

function textOf(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) throw bad(`${where}.content must be a string or an array of content parts`);
  return content
    .map((p, i) => {
      if (!fieldsOf<ChatCompletionContentPartText | ChatCompletionContentPartRefusal>(p)) throw bad(`${where}.content[${i}] must be an object`);
      if (p.type === 'text' || p.type === 'refusal') return typeof p.text === 'string' ? p.text : typeof p.refusal === 'string' ? p.refusal : '';
      throw bad(`${where}.content[${i}]: content part type "${String(p.type)}" is not allowed in this message`);
    })
    .join('');
}

function userParts(content: unknown, where: string, opts: OpenAIRequestOptions): Part[] {
  if (typeof content === 'string') return [{ text: content }];
  if (!Array.isArray(content)) throw bad(`${where}.content must be a string or an array of content parts`);
  const parts: Part[] = [];
  content.forEach((p, i) => {
    const at = `${where}.content[${i}]`;
    if (!fieldsOf<ChatCompletionContentPart>(p)) throw bad(`${at} must be an object`);
    switch (p.type) {
      case 'text':
        if (typeof p.text !== 'string') throw bad(`${at}.text must be a string`);
        parts.push({ text: p.text });
        break;
      case 'image_url': {
        const url = fieldsOf<ChatCompletionContentPartImage.ImageURL>(p.image_url) ? p.image_url.url : p.image_url;
        if (typeof url !== 'string') throw bad(`${at}.image_url.url must be a string`);
        parts.push(url.startsWith('data:') ? dataUrlToInlineData(url, at) : remoteUrlPart(url, !!opts.allowRemoteImages, at));
        break;
      }
      case 'input_audio': {
        const a: Fields<ChatCompletionContentPartInputAudio.InputAudio> = fieldsOf<ChatCompletionContentPartInputAudio.InputAudio>(p.input_audio) ? p.input_audio : {};
        if (typeof a.data !== 'string') throw bad(`${at}.input_audio.data must be a base64 string`);
        const fmt = typeof a.format === 'string' ? a.format : 'wav';
        parts.push({ inlineData: { mimeType: AUDIO_MIME[fmt] ?? `audio/${fmt}`, data: a.data } });
        break;
      }
      case 'file': {
        const f: Fields<ChatCompletionContentPart.File.File> = fieldsOf<ChatCompletionContentPart.File.File>(p.file) ? p.file : {};
        if (typeof f.file_data !== 'string') throw bad(`${at}: only files sent inline as file.file_data (a data: URL) are supported`);
        parts.push(f.file_data.startsWith('data:') ? dataUrlToInlineData(f.file_data, at) : { inlineData: { mimeType: 'application/pdf', data: f.file_data } });
        break;
      }
      default:
        throw bad(`${at}: content part type "${String(p.type)}" is not supported`);
    }
  });
  return parts;
}

function toolResultPayload(text: string): Json {
  return { output: text };
}

export function parseOpenAIRequest(body: unknown, opts: OpenAIRequestOptions): ParsedRequest {
  if (!fieldsOf<ChatCompletionCreateParams>(body)) throw bad('the request body must be a JSON object');
  const model = body.model;
  if (typeof model !== 'string' || model.trim() === '') throw bad('"model" is required and must be a non-empty string');
  const messages = body.messages;
  if (!Array.isArray(messages)) throw bad('"messages" is required and must be an array');
  if (messages.length === 0) throw bad('"messages" must contain at least one message');

  const system: Part[] = [];
  const contents: Content[] = [];
  /** tool_call_id -> function name, from the assistant messages seen so far. */
  const callNames = new Map<string, string>();

  messages.forEach((m, i) => {
    const where = `messages[${i}]`;
    if (!fieldsOf<ChatCompletionMessageParam>(m)) throw bad(`${where} must be an object`);
    switch (m.role) {
      case 'system':
      case 'developer': {
        const text = textOf(m.content, where);
        if (text) system.push({ text });
        break;
      }
      case 'user':
        if (m.content === undefined || m.content === null) throw bad(`${where}.content is required`);
        pushContent(contents, 'user', userParts(m.content, where, opts));
        break;
      case 'assistant': {
        const parts: Part[] = [];
        const text = textOf(m.content, where);
        if (text) parts.push({ text });
        const calls = m.tool_calls;
        if (calls !== undefined && calls !== null) {
          if (!Array.isArray(calls)) throw bad(`${where}.tool_calls must be an array`);
          calls.forEach((c, j) => {
            const at = `${where}.tool_calls[${j}]`;
            if (!fieldsOf<ChatCompletionMessageFunctionToolCall>(c) || !fieldsOf<ChatCompletionMessageFunctionToolCall.Function>(c.function)) throw bad(`${at} must be an object with a "function"`);
            const name = c.function.name;
            if (typeof name !== 'string' || !name) throw bad(`${at}.function.name must be a non-empty string`);
            const id = typeof c.id === 'string' ? c.id : '';
            if (id) callNames.set(id, name);
            const part: Part = { functionCall: { name, args: parseArguments(c.function.arguments, `${at}.function.arguments`) } };
            const sig = id ? opts.signatures.recall(id) : undefined;
            if (sig) part.thoughtSignature = sig;
            parts.push(part);
          });
        }
        if (fieldsOf<ChatCompletionAssistantMessageParam.FunctionCall>(m.function_call) && typeof m.function_call.name === 'string') {
          callNames.set(`legacy:${m.function_call.name}`, m.function_call.name);
          parts.push({ functionCall: { name: m.function_call.name, args: parseArguments(m.function_call.arguments, `${where}.function_call.arguments`) } });
        }
        if (parts.length === 0) parts.push({ text: '' });
        pushContent(contents, 'model', parts);
        break;
      }
      case 'tool': {
        const id = m.tool_call_id;
        if (typeof id !== 'string' || !id) throw bad(`${where}.tool_call_id is required`);
        const name = callNames.get(id);
        if (!name) throw bad(`${where}: tool_call_id "${id}" does not match any tool call in an earlier assistant message`);
        pushContent(contents, 'user', [{ functionResponse: { name, response: toolResultPayload(textOf(m.content, where)) } }]);
        break;
      }
      case 'function': {
        const name = m.name;
        if (typeof name !== 'string' || !name) throw bad(`${where}.name is required for a function message`);
        pushContent(contents, 'user', [{ functionResponse: { name, response: toolResultPayload(textOf(m.content, where)) } }]);
        break;
      }
      default:
        throw bad(`${where}.role must be one of system, developer, user, assistant, tool (got ${JSON.stringify(m.role)})`);
    }
  });
  if (contents.length === 0) throw bad('"messages" must contain at least one user or assistant message besides system messages');
  fillMissingFunctionCallSignatures(contents);

  const gemini: GeminiRequest = { contents };
  if (system.length) gemini.systemInstruction = { parts: system };

  // --- tools ----------------------------------------------------------------
  const declarations: GeminiFunctionDeclaration[] = [];
  const addFunction = (fn: Fields<FunctionDefinition>, where: string) => {
    if (typeof fn.name !== 'string' || !fn.name) throw bad(`${where}.name must be a non-empty string`);
    const decl: GeminiFunctionDeclaration = { name: fn.name };
    if (typeof fn.description === 'string') decl.description = fn.description;
    if (fn.parameters !== undefined && fn.parameters !== null) {
      const params = toGeminiParameters(fn.parameters, `${where}.parameters`);
      if (params) decl.parameters = params;
    }
    declarations.push(decl);
  };
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) throw bad('"tools" must be an array');
    body.tools.forEach((t, i) => {
      if (!fieldsOf<ChatCompletionFunctionTool>(t)) throw bad(`tools[${i}] must be an object`);
      if (t.type !== 'function' || !fieldsOf<FunctionDefinition>(t.function)) throw bad(`tools[${i}]: only tools of type "function" are supported (got ${JSON.stringify(t.type)})`);
      addFunction(t.function, `tools[${i}].function`);
    });
  }
  if (Array.isArray(body.functions)) body.functions.forEach((f, i) => fieldsOf<FunctionDefinition>(f) && addFunction(f, `functions[${i}]`));
  if (declarations.length) gemini.tools = [{ functionDeclarations: declarations }];

  const choice = body.tool_choice ?? body.function_call;
  if (choice !== undefined && choice !== null) {
    let config: GeminiFunctionCallingConfig | undefined;
    if (choice === 'none') config = { mode: 'NONE' };
    else if (choice === 'auto') config = { mode: 'AUTO' };
    else if (choice === 'required') config = { mode: 'ANY' };
    else if (fieldsOf<ChatCompletionNamedToolChoice | ChatCompletionAllowedToolChoice | FunctionDefinition>(choice)) {
      const name = fieldsOf<ChatCompletionNamedToolChoice.Function>(choice.function) ? choice.function.name : choice.name;
      if (choice.type === 'allowed_tools' && fieldsOf<ChatCompletionAllowedToolChoice['allowed_tools']>(choice.allowed_tools)) {
        const names = (Array.isArray(choice.allowed_tools.tools) ? choice.allowed_tools.tools : [])
          .map((t: unknown) => (fieldsOf<ChatCompletionFunctionTool>(t) && fieldsOf<FunctionDefinition>(t.function) ? t.function.name : undefined))
          .filter((n): n is string => typeof n === 'string');
        config = { mode: choice.allowed_tools.mode === 'required' ? 'ANY' : 'AUTO', ...(names.length ? { allowedFunctionNames: names } : {}) };
        if (names.length && config.mode === 'AUTO') config.mode = 'VALIDATED';
      } else if (typeof name === 'string' && name) {
        config = { mode: 'ANY', allowedFunctionNames: [name] };
      } else throw bad('"tool_choice" must be "none", "auto", "required" or {"type":"function","function":{"name":...}}');
    } else throw bad('"tool_choice" must be "none", "auto", "required" or {"type":"function","function":{"name":...}}');
    if (config && (declarations.length || config.mode === 'NONE')) gemini.toolConfig = { functionCallingConfig: config };
  }

  // --- generation config --------------------------------------------------
  const gc: GeminiGenerationConfig = {};
  const temperature = num(body.temperature, 'temperature', { min: 0, max: 2 });
  if (temperature !== undefined) gc.temperature = temperature;
  const topP = num(body.top_p, 'top_p', { min: 0, max: 1 });
  if (topP !== undefined) gc.topP = topP;
  const maxTokens = num(body.max_completion_tokens, 'max_completion_tokens', { min: 1, int: true }) ?? num(body.max_tokens, 'max_tokens', { min: 1, int: true });
  if (maxTokens !== undefined) gc.maxOutputTokens = maxTokens;
  if (body.stop !== undefined && body.stop !== null) {
    const stops = typeof body.stop === 'string' ? [body.stop] : body.stop;
    if (!Array.isArray(stops) || !stops.every((s) => typeof s === 'string')) throw bad('"stop" must be a string or an array of strings');
    if (stops.length) gc.stopSequences = stops;
  }
  const n = num(body.n, 'n', { min: 1, max: 8, int: true });
  if (n !== undefined && n > 1) gc.candidateCount = n;
  const seed = num(body.seed, 'seed', { int: true });
  if (seed !== undefined) gc.seed = seed;
  const presence = num(body.presence_penalty, 'presence_penalty', { min: -2, max: 2 });
  if (presence !== undefined && presence !== 0) gc.presencePenalty = presence;
  const frequency = num(body.frequency_penalty, 'frequency_penalty', { min: -2, max: 2 });
  if (frequency !== undefined && frequency !== 0) gc.frequencyPenalty = frequency;

  const rf = body.response_format;
  if (rf !== undefined && rf !== null) {
    if (!fieldsOf<NonNullable<ChatCompletionCreateParams['response_format']>>(rf)) throw bad('"response_format" must be an object');
    if (rf.type === 'json_object') gc.responseMimeType = 'application/json';
    else if (rf.type === 'json_schema') {
      const js = fieldsOf<ResponseFormatJSONSchema.JSONSchema>(rf.json_schema) ? rf.json_schema : undefined;
      if (!js) throw bad('"response_format.json_schema" is required when type is "json_schema"');
      gc.responseMimeType = 'application/json';
      if (js.schema !== undefined) gc.responseSchema = toGeminiSchema(js.schema, 'response_format.json_schema.schema');
    } else if (rf.type !== 'text') throw bad(`"response_format.type" must be "text", "json_object" or "json_schema"`);
  }

  const effort = str(body.reasoning_effort, 'reasoning_effort');
  if (effort !== undefined) {
    const budget = EFFORT_BUDGETS[effort];
    if (budget === undefined) throw bad(`"reasoning_effort" must be one of ${Object.keys(EFFORT_BUDGETS).join(', ')}`);
    gc.thinkingConfig = { thinkingBudget: budget };
  }
  if (Object.keys(gc).length) gemini.generationConfig = gc;

  if (body.stream !== undefined && typeof body.stream !== 'boolean') throw bad('"stream" must be a boolean');
  const includeUsage = fieldsOf<ChatCompletionStreamOptions>(body.stream_options) && body.stream_options.include_usage === true;
  const sessionKey = [body.prompt_cache_key, body.user, body.safety_identifier].find((v): v is string => typeof v === 'string' && v !== '');

  return {
    requestedModel: model,
    stream: body.stream === true,
    ...(sessionKey ? { sessionKey } : {}),
    gemini,
    responseOptions: { includeUsage },
  };
}
