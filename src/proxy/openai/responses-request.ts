// OpenAI Responses API request (POST /v1/responses) -> Gemini generateContent
// request. Stateless: previous_response_id, conversation, stored prompts and
// item references are refused with a 400 that says so. Tools of type function
// and custom (Codex's freeform apply_patch) are translated; hosted tools
// (web_search, local_shell, ...) are dropped with a note when the request does
// not depend on them, and refused by name when it does.
import type { ResponseCreateParams } from 'openai/resources/responses/responses';
import type { ParsedRequest } from '../door.ts';
import type { GeminiFunctionCallingConfig, GeminiFunctionDeclaration, GeminiGenerationConfig, GeminiRequest } from '../gemini-types.ts';
import { toGeminiParameters } from '../gemini-schema.ts';
import type { ThoughtSignatureCache } from '../thought-signatures.ts';
import type { ItemCache } from './responses-items.ts';
import { bad, EFFORT_BUDGETS, fieldsOf, isObj, jsonSchemaOutput, num, str, type Fields, type Json } from '../translate-util.ts';
import { qualifiedName, translateInput } from './responses-input.ts';
import type { ResponsesOptions } from './responses-output.ts';

export interface ResponsesRequestOptions {
  signatures: ThoughtSignatureCache;
  allowRemoteImages?: boolean;
  /** Items handed out earlier, for `item_reference`. */
  items?: ItemCache;
}

const REASONING_EFFORTS = Object.keys(EFFORT_BUDGETS);
const SUMMARIES = ['auto', 'concise', 'detailed'];

const STATELESS = 'this gateway keeps no conversation state (nothing is stored)';

function refuseState(body: Fields<ResponseCreateParams>): void {
  if (body.previous_response_id !== undefined && body.previous_response_id !== null) {
    throw bad(`"previous_response_id" is not supported: ${STATELESS}. Send the whole conversation in "input" (with store: false, as Codex does).`);
  }
  if (body.conversation !== undefined && body.conversation !== null) throw bad(`"conversation" is not supported: ${STATELESS}. Send the whole conversation in "input".`);
  if (body.prompt !== undefined && body.prompt !== null) throw bad(`"prompt" (a stored prompt template) is not supported: ${STATELESS}. Send the instructions and input themselves.`);
  if (body.background === true) throw bad(`"background": true is not supported: ${STATELESS}, so a response cannot be fetched later. Use stream: true instead.`);
}

interface Tools {
  declarations: GeminiFunctionDeclaration[];
  /** Tools the Response echoes (the translated ones). */
  echoed: Json[];
  customTools: string[];
  /** Function names of namespace members -> their namespace and name. */
  namespaced: Record<string, { namespace: string; name: string }>;
  /** Hosted tool types that were dropped. */
  dropped: string[];
}

function customDescription(t: Json): string {
  const parts: string[] = [];
  if (typeof t.description === 'string' && t.description) parts.push(t.description);
  const f = isObj(t.format) ? t.format : undefined;
  if (f?.type === 'grammar' && typeof f.definition === 'string') {
    parts.push(`Put the tool's whole input text in the "input" argument. It must follow this ${typeof f.syntax === 'string' ? f.syntax : ''} grammar:\n${f.definition}`);
  } else {
    parts.push('Put the tool\'s whole input text in the "input" argument.');
  }
  return parts.join('\n\n');
}

function translateTools(tools: unknown): Tools {
  const out: Tools = { declarations: [], echoed: [], customTools: [], dropped: [], namespaced: {} };
  if (tools === undefined || tools === null) return out;
  if (!Array.isArray(tools)) throw bad('"tools" must be an array');
  const names = new Set<string>();
  const add = (t: Json, at: string, namespace?: string) => {
    if (typeof t.name !== 'string' || !t.name) throw bad(`${at}.name must be a non-empty string`);
    const name = namespace ? qualifiedName(namespace, t.name) : t.name;
    if (names.has(name)) throw bad(`${at}: tool name "${name}" is used twice`);
    names.add(name);
    if (namespace) out.namespaced[name] = { namespace, name: t.name };
    {
      const decl: GeminiFunctionDeclaration = { name };
      if (t.type === 'function') {
        if (typeof t.description === 'string') decl.description = t.description;
        if (t.parameters !== undefined && t.parameters !== null) {
          const params = toGeminiParameters(t.parameters, `${at}.parameters`);
          if (params) decl.parameters = params;
        }
      } else {
        out.customTools.push(name);
        decl.description = customDescription(t);
        decl.parameters = { type: 'OBJECT', properties: { input: { type: 'STRING', description: 'The whole input for the tool.' } }, required: ['input'] };
      }
      out.declarations.push(decl);
    }
  };
  tools.forEach((t, i) => {
    const at = `tools[${i}]`;
    if (!isObj(t)) throw bad(`${at} must be an object`);
    if (t.type === 'function' || t.type === 'custom') {
      add(t, at);
      out.echoed.push(t);
      return;
    }
    if (t.type === 'namespace') {
      // A group of tools (e.g. one MCP server's): each becomes a function named <namespace>__<name>.
      if (typeof t.name !== 'string' || !t.name) throw bad(`${at}.name must be a non-empty string`);
      if (!Array.isArray(t.tools)) throw bad(`${at}.tools must be an array`);
      t.tools.forEach((inner, j) => {
        if (!isObj(inner) || (inner.type !== 'function' && inner.type !== 'custom')) throw bad(`${at}.tools[${j}] must be a function or custom tool`);
        add(inner, `${at}.tools[${j}]`, t.name as string);
      });
      out.echoed.push(t);
      return;
    }
    if (typeof t.type !== 'string' || !t.type) throw bad(`${at}.type is required`);
    out.dropped.push(t.type);
  });
  return out;
}

function hostedToolError(type: string): never {
  throw bad(`tool type "${type}" is an OpenAI hosted tool that this gateway cannot run (only tools of type "function" and "custom" are supported), and tool_choice requires it`, 'invalid_request');
}

function toolConfig(choice: unknown, tools: Tools): GeminiFunctionCallingConfig | undefined {
  if (choice === undefined || choice === null || choice === 'auto') return undefined;
  const haveFunctions = tools.declarations.length > 0;
  if (choice === 'none') return { mode: 'NONE' };
  if (choice === 'required') {
    if (!haveFunctions) {
      if (tools.dropped.length) hostedToolError(tools.dropped[0]!);
      throw bad('"tool_choice": "required" needs at least one tool');
    }
    return { mode: 'ANY' };
  }
  if (!isObj(choice)) throw bad('"tool_choice" must be "none", "auto", "required" or an object such as {"type":"function","name":...}');
  const known = new Set(tools.declarations.map((d) => d.name));
  if (choice.type === 'function' || choice.type === 'custom') {
    if (typeof choice.name !== 'string' || !known.has(choice.name)) throw bad(`"tool_choice" names tool ${JSON.stringify(choice.name)}, which is not in "tools"`);
    return { mode: 'ANY', allowedFunctionNames: [choice.name] };
  }
  if (choice.type === 'allowed_tools') {
    const list = Array.isArray(choice.tools) ? choice.tools.filter(isObj) : [];
    const allowed: string[] = [];
    for (const t of list) {
      if ((t.type === 'function' || t.type === 'custom') && typeof t.name === 'string') {
        if (!known.has(t.name)) throw bad(`"tool_choice.tools" names tool ${JSON.stringify(t.name)}, which is not in "tools"`);
        allowed.push(t.name);
      }
    }
    if (allowed.length === 0) {
      const hosted = list.find((t) => typeof t.type === 'string')?.type;
      if (typeof hosted === 'string') hostedToolError(hosted);
      throw bad('"tool_choice.tools" must list at least one tool');
    }
    return { mode: choice.mode === 'required' ? 'ANY' : 'VALIDATED', allowedFunctionNames: allowed };
  }
  if (typeof choice.type === 'string') hostedToolError(choice.type);
  throw bad('"tool_choice.type" is required');
}

function textFormat(text: unknown, gc: GeminiGenerationConfig): Json {
  if (text === undefined || text === null) return { format: { type: 'text' }, verbosity: 'medium' };
  if (!isObj(text)) throw bad('"text" must be an object');
  const f = text.format;
  if (f !== undefined && f !== null) {
    if (!isObj(f)) throw bad('"text.format" must be an object');
    if (f.type === 'json_object') gc.responseMimeType = 'application/json';
    else if (f.type === 'json_schema') {
      if (f.schema === undefined) throw bad('"text.format.schema" is required when type is "json_schema"');
      Object.assign(gc, jsonSchemaOutput(f.schema, 'text.format.schema'));
    } else if (f.type !== 'text') throw bad('"text.format.type" must be "text", "json_object" or "json_schema"');
  }
  return { format: isObj(f) ? f : { type: 'text' }, verbosity: typeof text.verbosity === 'string' ? text.verbosity : 'medium' };
}

export function parseResponsesRequest(body: unknown, opts: ResponsesRequestOptions): ParsedRequest {
  if (!fieldsOf<ResponseCreateParams>(body)) throw bad('the request body must be a JSON object');
  const model = body.model;
  if (typeof model !== 'string' || model.trim() === '') throw bad('"model" is required and must be a non-empty string');
  refuseState(body);

  const instructions = str(body.instructions, 'instructions') ?? null;
  const { contents, system, tools: addedTools } = translateInput(body.input, opts);
  if (instructions) system.unshift({ text: instructions });
  const gemini: GeminiRequest = { contents };
  if (system.length) gemini.systemInstruction = { parts: system };

  if (body.tools !== undefined && body.tools !== null && !Array.isArray(body.tools)) throw bad('"tools" must be an array');
  const tools = translateTools(addedTools.length ? [...((body.tools as unknown[] | null | undefined) ?? []), ...addedTools] : body.tools);
  if (tools.declarations.length) gemini.tools = [{ functionDeclarations: tools.declarations }];
  const fcc = toolConfig(body.tool_choice, tools);
  if (fcc) gemini.toolConfig = { functionCallingConfig: fcc };
  if (body.parallel_tool_calls !== undefined && body.parallel_tool_calls !== null && typeof body.parallel_tool_calls !== 'boolean') {
    throw bad('"parallel_tool_calls" must be a boolean');
  }

  const gc: GeminiGenerationConfig = {};
  const temperature = num(body.temperature, 'temperature', { min: 0, max: 2 });
  if (temperature !== undefined) gc.temperature = temperature;
  const topP = num(body.top_p, 'top_p', { min: 0, max: 1 });
  if (topP !== undefined) gc.topP = topP;
  const maxOutput = num(body.max_output_tokens, 'max_output_tokens', { min: 1, int: true });
  if (maxOutput !== undefined) gc.maxOutputTokens = maxOutput;
  const text = textFormat(body.text, gc);

  let reasoning: ResponsesOptions['reasoning'] = null;
  let effort: string | undefined;
  if (body.reasoning !== undefined && body.reasoning !== null) {
    if (!isObj(body.reasoning)) throw bad('"reasoning" must be an object');
    effort = str(body.reasoning.effort, 'reasoning.effort');
    if (effort !== undefined && !REASONING_EFFORTS.includes(effort)) throw bad(`"reasoning.effort" must be one of ${REASONING_EFFORTS.join(', ')}`);
    const summary = str(body.reasoning.summary, 'reasoning.summary') ?? str(body.reasoning.generate_summary, 'reasoning.generate_summary');
    if (summary !== undefined && !SUMMARIES.includes(summary)) throw bad(`"reasoning.summary" must be one of ${SUMMARIES.join(', ')}`);
    reasoning = { effort: effort ?? null, summary: summary ?? null };
    // Gemini's thought summaries are what a reasoning summary asks for.
    if (summary && effort !== 'none') gc.thinkingConfig = { includeThoughts: true };
  }
  if (Object.keys(gc).length) gemini.generationConfig = gc;

  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw bad('"stream" must be a boolean');
  if (body.store !== undefined && body.store !== null && typeof body.store !== 'boolean') throw bad('"store" must be a boolean');
  const include = body.include;
  if (include !== undefined && include !== null && (!Array.isArray(include) || !include.every((v) => typeof v === 'string'))) {
    throw bad('"include" must be an array of strings');
  }
  const user = str(body.user, 'user') ?? null;
  const promptCacheKey = str(body.prompt_cache_key, 'prompt_cache_key') ?? null;
  const safetyIdentifier = str(body.safety_identifier, 'safety_identifier') ?? null;
  const sessionKey = [promptCacheKey, user, safetyIdentifier].find((v): v is string => !!v);

  const responses: ResponsesOptions = {
    instructions,
    tools: tools.echoed,
    toolChoice: body.tool_choice ?? 'auto',
    parallelToolCalls: body.parallel_tool_calls !== false,
    temperature: temperature ?? null,
    topP: topP ?? null,
    maxOutputTokens: maxOutput ?? null,
    reasoning,
    text,
    metadata: isObj(body.metadata) ? body.metadata : {},
    user,
    promptCacheKey,
    safetyIdentifier,
    encryptedReasoning: Array.isArray(include) && include.includes('reasoning.encrypted_content'),
    customTools: tools.customTools,
    namespaced: tools.namespaced,
  };
  const notes = tools.dropped.length
    ? [`dropped hosted tool${tools.dropped.length > 1 ? 's' : ''} ${[...new Set(tools.dropped)].join(', ')} (the gateway runs function and custom tools only)`]
    : [];
  return {
    requestedModel: model,
    stream: body.stream === true,
    ...(sessionKey ? { sessionKey } : {}),
    gemini,
    responseOptions: { responses },
    ...(effort !== undefined ? { reasoningEffort: effort } : {}),
    ...(notes.length ? { notes } : {}),
  };
}
