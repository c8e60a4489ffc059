// Responses API `input` (a string or a list of items) -> Gemini contents.
// Messages (user / assistant; system and developer ones join the system
// instruction in order), function_call / custom_tool_call and their outputs,
// and reasoning items, whose encrypted_content carries the thought signatures
// of the calls that follow them.
import { decodeResponsesSignatures, fillMissingFunctionCallSignatures, type ThoughtSignatureCache } from '../thought-signatures.ts';
import type { ItemCache } from './responses-items.ts';
import { bad, dataUrlToInlineData, isObj, parseArguments, pushContent, remoteUrlPart, type Content, type Json, type Part } from '../translate-util.ts';

export interface InputOptions {
  signatures: ThoughtSignatureCache;
  allowRemoteImages?: boolean;
  /** Items handed out earlier, for `item_reference` (responses-items.ts). */
  items?: ItemCache;
}

/** Item types that record what a hosted tool did at OpenAI: nothing for Gemini to continue from, so they are skipped. */
const HOSTED_RECORDS = new Set(['web_search_call', 'file_search_call', 'code_interpreter_call', 'image_generation_call', 'mcp_list_tools', 'tool_search_call', 'tool_search_output']);

const FILE_MIME: Record<string, string> = {
  pdf: 'application/pdf', txt: 'text/plain', md: 'text/markdown', csv: 'text/csv', html: 'text/html', json: 'application/json',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif',
};

function contentPart(p: unknown, at: string, opts: InputOptions): Part {
  if (!isObj(p)) throw bad(`${at} must be an object`);
  switch (p.type) {
    case 'input_text':
    case 'output_text':
    case 'text':
    case 'refusal': {
      const text = typeof p.text === 'string' ? p.text : typeof p.refusal === 'string' ? p.refusal : undefined;
      if (text === undefined) throw bad(`${at}.text must be a string`);
      return { text };
    }
    case 'input_image': {
      if (typeof p.file_id === 'string' && p.file_id) throw bad(`${at}: file_id images need OpenAI's Files API, which this gateway does not have; send the image as a data: URL in image_url`);
      if (typeof p.image_url !== 'string') throw bad(`${at}.image_url must be a string (a data: URL)`);
      return p.image_url.startsWith('data:') ? dataUrlToInlineData(p.image_url, at) : remoteUrlPart(p.image_url, !!opts.allowRemoteImages, at);
    }
    case 'input_file': {
      if (typeof p.file_data === 'string' && p.file_data) {
        if (p.file_data.startsWith('data:')) return dataUrlToInlineData(p.file_data, at);
        const ext = typeof p.filename === 'string' ? (p.filename.split('.').pop() ?? '').toLowerCase() : '';
        return { inlineData: { mimeType: FILE_MIME[ext] ?? 'application/pdf', data: p.file_data } };
      }
      if (typeof p.file_url === 'string') return remoteUrlPart(p.file_url, !!opts.allowRemoteImages, at);
      throw bad(`${at}: send files inline as file_data (file_id needs OpenAI's Files API, which this gateway does not have)`);
    }
    default:
      throw bad(`${at}: content type ${JSON.stringify(p.type)} is not supported (use input_text, input_image, input_file or output_text)`);
  }
}

function messageParts(content: unknown, at: string, opts: InputOptions): Part[] {
  if (typeof content === 'string') return [{ text: content }];
  if (!Array.isArray(content)) throw bad(`${at}.content must be a string or an array of content parts`);
  return content.map((p, i) => contentPart(p, `${at}.content[${i}]`, opts));
}

/** function_call_output.output: a string, or content parts (text joins the response; images and files follow it). */
function outputPayload(output: unknown, at: string, opts: InputOptions): { text: string; media: Part[] } {
  if (typeof output === 'string') return { text: output, media: [] };
  if (!Array.isArray(output)) throw bad(`${at}.output must be a string or an array of content parts`);
  const texts: string[] = [];
  const media: Part[] = [];
  output.forEach((p, i) => {
    const part = contentPart(p, `${at}.output[${i}]`, opts);
    if (typeof part.text === 'string') texts.push(part.text);
    else media.push(part);
  });
  return { text: texts.join('\n'), media };
}

/** The function name Gemini sees for a member of a namespace tool. */
export function qualifiedName(namespace: string, name: string): string {
  return `${namespace}__${name}`.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 128);
}

/** The item an item_reference names, if this gateway handed it out recently. */
function referenced(ref: Json, at: string, opts: InputOptions): Json {
  const id = typeof ref.id === 'string' ? ref.id : '';
  const item = id ? opts.items?.recall(id) : undefined;
  if (item && item.type !== 'item_reference') return item;
  throw bad(
    `${at}: item_reference ${JSON.stringify(id)} is not known to this gateway, which keeps no stored responses (items it answered with are remembered only briefly, in memory); send the item itself (with the AI SDK: providerOptions.openai.store = false)`,
  );
}

export interface TranslatedInput {
  contents: Content[];
  /** Text of system and developer messages, in order. */
  system: Part[];
  /** Tools that `additional_tools` items add to the request's tools. */
  tools: unknown[];
}

export function translateInput(input: unknown, opts: InputOptions): TranslatedInput {
  if (typeof input === 'string') {
    if (!input) throw bad('"input" must not be empty');
    return { contents: [{ role: 'user', parts: [{ text: input }] }], system: [], tools: [] };
  }
  if (!Array.isArray(input)) throw bad('"input" is required: a string or an array of input items');
  if (input.length === 0) throw bad('"input" must contain at least one item');
  const list: unknown[] = input.map((item, i) => (isObj(item) && item.type === 'item_reference' ? referenced(item, `input[${i}]`, opts) : item));

  // Signatures carried by reasoning items, for the calls they precede.
  const carried = new Map<string, string>();
  for (const item of list) {
    if (isObj(item) && item.type === 'reasoning') {
      const sig = decodeResponsesSignatures(item.encrypted_content);
      if (sig) for (const [id, s] of Object.entries(sig.calls)) carried.set(id, s);
    }
  }

  const contents: Content[] = [];
  const system: Part[] = [];
  const tools: unknown[] = [];
  /** call_id -> function name, from the calls seen so far. */
  const callNames = new Map<string, string>();

  const addCall = (item: Json, at: string, args: Json) => {
    if (typeof item.name !== 'string' || !item.name) throw bad(`${at}.name must be a non-empty string`);
    if (typeof item.call_id !== 'string' || !item.call_id) throw bad(`${at}.call_id must be a non-empty string`);
    const name = typeof item.namespace === 'string' && item.namespace ? qualifiedName(item.namespace, item.name) : item.name;
    callNames.set(item.call_id, name);
    const part: Part = { functionCall: { name, args } };
    const sig = carried.get(item.call_id) ?? opts.signatures.recall(item.call_id);
    if (sig) part.thoughtSignature = sig;
    pushContent(contents, 'model', [part]);
  };
  const addOutput = (item: Json, at: string) => {
    if (typeof item.call_id !== 'string' || !item.call_id) throw bad(`${at}.call_id must be a non-empty string`);
    const name = callNames.get(item.call_id);
    if (!name) throw bad(`${at}: call_id "${item.call_id}" does not match any function_call earlier in the input (the gateway keeps no state: send the call too)`);
    const { text, media } = outputPayload(item.output, at, opts);
    pushContent(contents, 'user', [{ functionResponse: { name, response: { output: text } } }, ...media]);
  };

  list.forEach((item, i) => {
    const at = `input[${i}]`;
    if (!isObj(item)) throw bad(`${at} must be an object`);
    const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
    switch (type) {
      case 'message': {
        if (item.role === 'system' || item.role === 'developer') {
          for (const p of messageParts(item.content, at, opts)) {
            if (typeof p.text !== 'string') throw bad(`${at}: ${String(item.role)} messages take text only`);
            if (p.text) system.push(p);
          }
        } else if (item.role === 'user') {
          pushContent(contents, 'user', messageParts(item.content, at, opts));
        } else if (item.role === 'assistant') {
          const parts = messageParts(item.content, at, opts).filter((p) => p.text !== '');
          pushContent(contents, 'model', parts.length ? parts : [{ text: '' }]);
        } else {
          throw bad(`${at}.role must be one of user, assistant, system, developer (got ${JSON.stringify(item.role)})`);
        }
        break;
      }
      case 'function_call':
        addCall(item, at, parseArguments(item.arguments, `${at}.arguments`));
        break;
      case 'custom_tool_call':
        addCall(item, at, { input: typeof item.input === 'string' ? item.input : '' });
        break;
      case 'function_call_output':
      case 'custom_tool_call_output':
        addOutput(item, at);
        break;
      case 'reasoning':
        break; // its signatures were collected above; Gemini needs no thought text back
      case 'additional_tools':
        if (!Array.isArray(item.tools)) throw bad(`${at}.tools must be an array`);
        tools.push(...item.tools);
        break;
      case 'local_shell_call':
      case 'local_shell_call_output':
      case 'shell_call':
      case 'shell_call_output':
      case 'apply_patch_call':
      case 'apply_patch_call_output':
      case 'computer_call':
      case 'computer_call_output':
        throw bad(`${at}: item type "${type}" belongs to a hosted OpenAI tool this gateway does not have; use function tools`);
      default:
        if (typeof type === 'string' && HOSTED_RECORDS.has(type)) break;
        throw bad(`${at}: unknown input item type ${JSON.stringify(type)}`);
    }
  });
  if (contents.length === 0) throw bad('"input" must contain at least one user or assistant item besides system and developer messages');
  fillMissingFunctionCallSignatures(contents);
  return { contents, system, tools };
}
