// The Anthropic publisher behind the Vertex AI stand-in: what Claude on Vertex
// AI checks in a Messages request (rawPredict / streamRawPredict) and a count
// tokens request (count-tokens:rawPredict), and how it answers: Anthropic's
// exact JSON, Anthropic's SSE sequence (message_start, content_block_start,
// ping, content_block_delta, content_block_stop, message_delta, message_stop),
// thinking blocks with signatures it remembers, tool use with
// input_json_delta, citations, cache usage. Errors here are Anthropic's own
// (`{"type":"error","error":{...},"request_id":"req_vrtx_…"}`); the Vertex
// front end's errors (auth, quota, permission) are in vertex-upstream.ts.
import { createHash, randomBytes } from 'node:crypto';

export const VERTEX_ANTHROPIC_VERSION = 'vertex-2023-10-16';

export interface ClaudeModelInfo {
  /** The Vertex model id, e.g. "claude-sonnet-4-5@20250929". */
  id: string;
  /** Accepts `role: "system"` messages after a user turn (Claude Opus 4.8 and later). */
  midConversationSystem?: boolean;
  maxOutputTokens?: number;
}

export type ClaudeBlock =
  | { type: 'text'; text: string; citations?: Record<string, unknown>[] }
  | { type: 'thinking'; thinking: string }
  | { type: 'redacted_thinking' }
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string };

export interface ClaudeAnswer {
  content: ClaudeBlock[];
  stop_reason?: 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'pause_turn' | 'refusal';
  /** Overrides the estimated token counts. */
  usage?: { input_tokens?: number; output_tokens?: number };
  /** Streaming: characters per text / thinking delta, and per input_json_delta (default 24). */
  chunkChars?: number;
}

/** An answer chosen from the request body (e.g. only once a tool result came back). */
export type ClaudeReply = (body: Record<string, unknown>) => ClaudeAnswer;

export class AnthropicApiError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(status: number, type: string, message: string) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

const invalid = (message: string) => new AnthropicApiError(400, 'invalid_request_error', message);

export function requestId(): string {
  return `req_vrtx_011C${randomBytes(12).toString('base64url')}`;
}

export function anthropicErrorBody(type: string, message: string): Record<string, unknown> {
  return { type: 'error', error: { type, message }, request_id: requestId() };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The betas Claude on Vertex AI accepts in `anthropic-beta` (anything else: 400). */
export const VERTEX_MESSAGE_BETAS = [
  'context-1m-2025-08-07',
  'context-management-2025-06-27',
  'fine-grained-tool-streaming-2025-05-14',
  'interleaved-thinking-2025-05-14',
  'token-efficient-tools-2025-02-19',
  'output-128k-2025-02-19',
  'computer-use-2025-01-24',
  'web-search-2025-03-05',
];
/** count-tokens:rawPredict accepts fewer (web search, tool search: 400). */
export const VERTEX_COUNT_TOKENS_BETAS = VERTEX_MESSAGE_BETAS.filter((b) => b !== 'web-search-2025-03-05');

/** The `anthropic-beta` header's values (comma separated, possibly repeated). */
export function parseBetas(header: string | string[] | undefined): string[] {
  const list = Array.isArray(header) ? header : header === undefined ? [] : [header];
  return list.flatMap((h) => h.split(',')).map((s) => s.trim()).filter(Boolean);
}

export function checkBetas(betas: string[], accepted: ReadonlySet<string>): void {
  const bad = betas.filter((b) => !accepted.has(b));
  if (bad.length) {
    throw invalid(
      `Unexpected value(s) ${bad.map((b) => `\`${b}\``).join(', ')} for the \`anthropic-beta\` header. Please consult our documentation at docs.anthropic.com or try again without the header.`,
    );
  }
}

const MESSAGE_FIELDS = new Set([
  'anthropic_version', 'messages', 'max_tokens', 'system', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k',
  'tools', 'tool_choice', 'thinking', 'metadata', 'output_config', 'service_tier', 'container', 'mcp_servers',
]);
const COUNT_FIELDS = new Set([
  'anthropic_version', 'model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'mcp_servers', 'output_config',
]);
/** Fields that need a beta flag. */
const BETA_FIELDS: Record<string, string> = { context_management: 'context-management-2025-06-27' };
const SERVER_TOOL = /^(web_search|web_fetch|bash|text_editor|computer|code_execution|memory|tool_search_tool_(regex|bm25))_\d{8}$/;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,128}$/;
const BLOCK_TYPES = new Set([
  'text', 'image', 'document', 'search_result', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking',
  'server_tool_use', 'web_search_tool_result', 'container_upload',
]);

/** Thinking signatures this stand-in issued: signature -> the thinking text it covers. */
export type SignatureBook = Map<string, string>;

export interface CheckOptions {
  betas: string[];
  model: ClaudeModelInfo;
  signatures: SignatureBook;
  extraFields: ReadonlySet<string>;
}

function checkTopFields(body: Record<string, unknown>, known: Set<string>, o: CheckOptions): void {
  for (const key of Object.keys(body)) {
    if (known.has(key) || o.extraFields.has(key)) continue;
    const beta = BETA_FIELDS[key];
    if (beta && o.betas.includes(beta)) continue;
    throw invalid(`${key}: Extra inputs are not permitted`);
  }
}

function checkCacheControl(v: unknown, at: string, count: { n: number }): void {
  if (v === undefined) return;
  if (!isObject(v) || v.type !== 'ephemeral') throw invalid(`${at}.cache_control.type: Input should be 'ephemeral'`);
  if (v.ttl !== undefined && v.ttl !== '5m' && v.ttl !== '1h') throw invalid(`${at}.cache_control.ttl: Input should be '5m' or '1h'`);
  count.n++;
}

function checkTextBlocks(v: unknown, at: string, count: { n: number }): void {
  if (typeof v === 'string') return;
  if (!Array.isArray(v)) throw invalid(`${at}: Input should be a valid string`);
  v.forEach((b, i) => {
    if (!isObject(b) || b.type !== 'text' || typeof b.text !== 'string') throw invalid(`${at}.${i}: Input should be a valid text block`);
    checkCacheControl(b.cache_control, `${at}.${i}`, count);
  });
}

function checkTools(tools: unknown, count: { n: number }): void {
  if (tools === undefined) return;
  if (!Array.isArray(tools)) throw invalid('tools: Input should be a valid list');
  const names = new Set<string>();
  tools.forEach((t, i) => {
    if (!isObject(t)) throw invalid(`tools.${i}: Input should be a valid dictionary`);
    const type = t.type;
    if (type !== undefined && type !== 'custom') {
      if (typeof type !== 'string' || !SERVER_TOOL.test(type)) {
        throw invalid(`tools.${i}: Input tag '${String(type)}' found using 'type' does not match any of the expected tags`);
      }
    } else {
      if (typeof t.name !== 'string' || !TOOL_NAME.test(t.name)) {
        throw invalid(`tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
      }
      if (!isObject(t.input_schema)) throw invalid(`tools.${i}.custom.input_schema: Field required`);
      if (t.input_schema.type !== 'object') throw invalid(`tools.${i}.custom.input_schema.type: Input should be 'object'`);
    }
    const name = String(t.name ?? '');
    if (names.has(name)) throw invalid('tools: Tool names must be unique.');
    names.add(name);
    checkCacheControl(t.cache_control, `tools.${i}`, count);
  });
}

function contentBlocks(content: unknown): Record<string, unknown>[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? (content as Record<string, unknown>[]) : [];
}

function thinkingEnabled(body: Record<string, unknown>): boolean {
  const t = body.thinking;
  return isObject(t) && (t.type === 'enabled' || t.type === 'adaptive');
}

function checkThinking(body: Record<string, unknown>): void {
  const t = body.thinking;
  if (t === undefined) return;
  if (!isObject(t) || !['enabled', 'disabled', 'adaptive'].includes(String(t.type))) {
    throw invalid("thinking: Input tag found using 'type' does not match any of the expected tags: 'adaptive', 'disabled', 'enabled'");
  }
  if (t.type === 'enabled') {
    if (!Number.isInteger(t.budget_tokens)) throw invalid('thinking.enabled.budget_tokens: Field required');
    if ((t.budget_tokens as number) < 1024) throw invalid('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    if (typeof body.max_tokens === 'number' && (t.budget_tokens as number) >= body.max_tokens) {
      throw invalid('`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size');
    }
  }
}

function checkMessages(body: Record<string, unknown>, o: CheckOptions, count: { n: number }): void {
  const messages = body.messages;
  if (messages === undefined) throw invalid('messages: Field required');
  if (!Array.isArray(messages)) throw invalid('messages: Input should be a valid list');
  if (messages.length === 0) throw invalid('messages: at least one message is required');
  const thinking = thinkingEnabled(body);
  let lastAssistant = -1;
  messages.forEach((m, i) => {
    const at = `messages.${i}`;
    if (!isObject(m)) throw invalid(`${at}: Input should be a valid dictionary`);
    const role = m.role;
    if (role !== 'system') for (const k of Object.keys(m)) if (k !== 'role' && k !== 'content') throw invalid(`${at}.${k}: Extra inputs are not permitted`);
    if (role === 'system') {
      const prev = messages[i - 1] as Record<string, unknown> | undefined;
      if (!o.model.midConversationSystem) throw invalid(`${at}.role: Input should be 'user' or 'assistant'`);
      // Per-message effort: output_config on a system message (effort only; format stays top-level).
      if (m.output_config !== undefined) {
        if (!isObject(m.output_config) || Object.keys(m.output_config).some((k) => k !== 'effort')) throw invalid(`${at}.output_config: only effort may be set per message`);
        if (m.output_config.effort !== undefined && !['low', 'medium', 'high', 'xhigh', 'max'].includes(String(m.output_config.effort))) {
          throw invalid(`${at}.output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'`);
        }
      }
      for (const k of Object.keys(m)) if (k !== 'role' && k !== 'content' && k !== 'output_config') throw invalid(`${at}.${k}: Extra inputs are not permitted`);
      if (!prev || prev.role !== 'user') throw invalid(`${at}: a system message must immediately follow a user turn`);
      checkTextBlocks(m.content, `${at}.content`, count);
      return;
    }
    if (role !== 'user' && role !== 'assistant') throw invalid(`${at}.role: Input should be 'user' or 'assistant'`);
    if (role === 'assistant') lastAssistant = i;
    if (m.content === undefined) throw invalid(`${at}.content: Field required`);
    if (typeof m.content === 'string') {
      if (m.content === '' && !(role === 'assistant' && i === messages.length - 1)) throw invalid(`${at}: all messages must have non-empty content except for the optional final assistant message`);
      return;
    }
    if (!Array.isArray(m.content)) throw invalid(`${at}.content: Input should be a valid list`);
    if (m.content.length === 0 && !(role === 'assistant' && i === messages.length - 1)) {
      throw invalid(`${at}: all messages must have non-empty content except for the optional final assistant message`);
    }
    m.content.forEach((b, j) => {
      const bat = `${at}.content.${j}`;
      if (!isObject(b) || typeof b.type !== 'string' || !BLOCK_TYPES.has(b.type)) {
        throw invalid(`${bat}: Input tag '${isObject(b) ? String(b.type) : ''}' found using 'type' does not match any of the expected tags`);
      }
      checkCacheControl(b.cache_control, bat, count);
      if (b.type === 'text' && typeof b.text !== 'string') throw invalid(`${bat}.text.text: Field required`);
      if (b.type === 'document' && isObject(b.source) && b.source.type === 'url') {
        throw invalid(`${bat}.source: URL sources are not supported on Vertex AI`);
      }
      if ((b.type === 'thinking' || b.type === 'redacted_thinking') && role !== 'assistant') {
        throw invalid(`${bat}: thinking blocks may only appear in assistant messages`);
      }
      if (b.type === 'thinking') {
        if (typeof b.thinking !== 'string') throw invalid(`${bat}.thinking.thinking: Field required`);
        if (typeof b.signature !== 'string') throw invalid(`${bat}.thinking.signature: Field required`);
        if (o.signatures.get(b.signature) !== b.thinking) throw invalid(`${bat}: Invalid \`signature\` in \`thinking\` block`);
      }
      if (b.type === 'tool_use') {
        if (role !== 'assistant') throw invalid(`${bat}: tool_use blocks may only appear in assistant messages`);
        if (typeof b.id !== 'string' || typeof b.name !== 'string' || !isObject(b.input)) throw invalid(`${bat}.tool_use: id, name and input are required`);
      }
      if (b.type === 'tool_result') {
        if (role !== 'user') throw invalid(`${bat}: tool_result blocks may only appear in user messages`);
        if (typeof b.tool_use_id !== 'string') throw invalid(`${bat}.tool_result.tool_use_id: Field required`);
      }
    });
  });
  if (count.n > 4) throw invalid(`A maximum of 4 blocks with cache_control may be provided. Found ${count.n}.`);
  // Every tool_use is answered by a tool_result in the next message, and every tool_result answers one.
  messages.forEach((m, i) => {
    const mm = m as Record<string, unknown>;
    const uses = contentBlocks(mm.content).filter((b) => b.type === 'tool_use').map((b) => String(b.id));
    const next = messages[i + 1] as Record<string, unknown> | undefined;
    const results = next ? contentBlocks(next.content).filter((b) => b.type === 'tool_result').map((b) => String(b.tool_use_id)) : [];
    if (mm.role === 'assistant' && uses.length && next) {
      const missing = uses.filter((id) => !results.includes(id));
      if (missing.length) {
        throw invalid(`messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
      }
    }
    if (mm.role === 'user') {
      const prev = messages[i - 1] as Record<string, unknown> | undefined;
      const prevUses = prev && prev.role === 'assistant' ? contentBlocks(prev.content).filter((b) => b.type === 'tool_use').map((b) => String(b.id)) : [];
      const own = contentBlocks(mm.content).filter((b) => b.type === 'tool_result').map((b) => String(b.tool_use_id));
      const stray = own.filter((id) => !prevUses.includes(id));
      if (stray.length) {
        throw invalid(`messages.${i}.content.0: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${stray.join(', ')}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
      }
    }
  });
  // With thinking on, the assistant turn being continued after tool use starts with its thinking block.
  if (thinking && lastAssistant >= 0) {
    const blocks = contentBlocks((messages[lastAssistant] as Record<string, unknown>).content);
    if (blocks.some((b) => b.type === 'tool_use') && blocks[0] && blocks[0].type !== 'thinking' && blocks[0].type !== 'redacted_thinking') {
      throw invalid(
        `messages.${lastAssistant}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${String(blocks[0].type)}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking`,
      );
    }
  }
}

/** A Messages request as Claude on Vertex AI validates it (rawPredict / streamRawPredict). */
export function checkMessagesRequest(body: unknown, o: CheckOptions): Record<string, unknown> {
  if (!isObject(body)) throw invalid('Input should be a valid dictionary');
  if (body.model !== undefined) throw invalid('model: Extra inputs are not permitted');
  if (body.anthropic_version === undefined) throw invalid('anthropic_version: Field required');
  if (body.anthropic_version !== VERTEX_ANTHROPIC_VERSION) throw invalid(`anthropic_version: Input should be '${VERTEX_ANTHROPIC_VERSION}'`);
  checkTopFields(body, MESSAGE_FIELDS, o);
  if (body.max_tokens === undefined) throw invalid('max_tokens: Field required');
  if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) throw invalid('max_tokens: Input should be a valid integer greater than or equal to 1');
  const limit = o.model.maxOutputTokens ?? 64000;
  if ((body.max_tokens as number) > limit) {
    throw invalid(`max_tokens: ${String(body.max_tokens)} > ${limit}, which is the maximum allowed number of output tokens for ${o.model.id}`);
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean') throw invalid('stream: Input should be a valid boolean');
  for (const k of ['temperature', 'top_p'] as const) {
    if (body[k] !== undefined && typeof body[k] !== 'number') throw invalid(`${k}: Input should be a valid number`);
  }
  const count = { n: 0 };
  if (body.system !== undefined) checkTextBlocks(body.system, 'system', count);
  checkTools(body.tools, count);
  checkThinking(body);
  checkMessages(body, o, count);
  return body;
}

/** A count tokens request (count-tokens:rawPredict): `model` is in the body here, max_tokens is not. */
export function checkCountTokensRequest(body: unknown, o: Omit<CheckOptions, 'model'>, models: ClaudeModelInfo[]): { body: Record<string, unknown>; model: ClaudeModelInfo } {
  if (!isObject(body)) throw invalid('Input should be a valid dictionary');
  if (body.model === undefined) throw invalid('model: Field required');
  const model = models.find((m) => m.id === body.model);
  if (!model) throw new AnthropicApiError(404, 'not_found_error', `model: ${String(body.model)}`);
  if (body.anthropic_version !== undefined && body.anthropic_version !== VERTEX_ANTHROPIC_VERSION) {
    throw invalid(`anthropic_version: Input should be '${VERTEX_ANTHROPIC_VERSION}'`);
  }
  const opts = { ...o, model };
  checkTopFields(body, COUNT_FIELDS, opts);
  const count = { n: 0 };
  if (body.system !== undefined) checkTextBlocks(body.system, 'system', count);
  checkTools(body.tools, count);
  checkThinking(body);
  checkMessages(body, opts, count);
  return { body, model };
}

// ---------------------------------------------------------------------------
// Answers

export function estimateTokens(value: unknown): number {
  const out: string[] = [];
  const walk = (v: unknown, key = ''): void => {
    if (key === 'signature' || key === 'cache_control') return;
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach((x) => walk(x));
    else if (isObject(v)) for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(value);
  const n = out.join(' ').length;
  return n === 0 ? 0 : Math.max(1, Math.ceil(n / 4));
}

export function inputTokens(body: Record<string, unknown>): number {
  return estimateTokens([body.system, body.messages, body.tools]);
}

/** The last user text (or tool result), for the default echo answer. */
export function lastUserText(body: Record<string, unknown>): string {
  const messages = Array.isArray(body.messages) ? (body.messages as Record<string, unknown>[]) : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role !== 'user') continue;
    for (const b of contentBlocks(m.content)) {
      if (b.type === 'text') return String(b.text);
      if (b.type === 'tool_result') return `tool ${String(b.tool_use_id)} returned ${typeof b.content === 'string' ? b.content : JSON.stringify(b.content ?? '')}`;
    }
  }
  return '';
}

/** The content blocks of the answer as Anthropic returns them (signatures issued, ids given). */
export function renderContent(answer: ClaudeAnswer, body: Record<string, unknown>, signatures: SignatureBook): Record<string, unknown>[] {
  const thinking = thinkingEnabled(body);
  const out: Record<string, unknown>[] = [];
  for (const b of answer.content) {
    if (b.type === 'thinking') {
      if (!thinking) continue;
      const signature = randomBytes(48).toString('base64');
      signatures.set(signature, b.thinking);
      out.push({ type: 'thinking', thinking: b.thinking, signature });
    } else if (b.type === 'redacted_thinking') {
      if (!thinking) continue;
      const data = randomBytes(64).toString('base64');
      signatures.set(data, '');
      out.push({ type: 'redacted_thinking', data });
    } else if (b.type === 'tool_use') {
      out.push({ type: 'tool_use', id: b.id ?? `toolu_vrtx_01${randomBytes(12).toString('base64url')}`, name: b.name, input: b.input });
    } else {
      const t: Record<string, unknown> = { type: 'text', text: b.text };
      if (b.citations) t.citations = b.citations;
      out.push(t);
    }
  }
  return out;
}

export interface CacheUsage {
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/**
 * Prompt caching: the prefix up to the last cache_control breakpoint is written
 * the first time it is seen and read afterwards (per project, as Anthropic's cache is).
 */
export function cacheUsage(body: Record<string, unknown>, cache: Set<string>, scope: string): CacheUsage {
  const parts: unknown[] = [];
  let prefix: unknown[] | null = null;
  const visit = (v: unknown) => {
    parts.push(v);
    if (isObject(v) && v.cache_control !== undefined) prefix = [...parts];
  };
  for (const t of Array.isArray(body.tools) ? body.tools : []) visit(t);
  if (Array.isArray(body.system)) for (const s of body.system) visit(s);
  else if (body.system !== undefined) visit(body.system);
  for (const m of Array.isArray(body.messages) ? (body.messages as Record<string, unknown>[]) : []) for (const b of contentBlocks(m.content)) visit(b);
  if (!prefix) return { cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const key = `${scope}\u0000${createHash('sha256').update(JSON.stringify(prefix)).digest('hex')}`;
  const tokens = estimateTokens(prefix);
  if (cache.has(key)) return { cache_creation_input_tokens: 0, cache_read_input_tokens: tokens };
  cache.add(key);
  return { cache_creation_input_tokens: tokens, cache_read_input_tokens: 0 };
}

export function stopReason(answer: ClaudeAnswer, content: Record<string, unknown>[]): string {
  return answer.stop_reason ?? (content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn');
}

function chunks(s: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out.length ? out : [''];
}

/** Anthropic's SSE events for a rendered answer, in order: [event name, data]. */
export function streamEvents(
  message: Record<string, unknown>,
  content: Record<string, unknown>[],
  size: number,
): [string, Record<string, unknown>][] {
  const usage = message.usage as Record<string, unknown>;
  const events: [string, Record<string, unknown>][] = [];
  events.push(['message_start', { type: 'message_start', message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } }]);
  // Anthropic sends one ping, right after the first content_block_start.
  const start = (index: number, content_block: Record<string, unknown>) => {
    events.push(['content_block_start', { type: 'content_block_start', index, content_block }]);
    if (index === 0) events.push(['ping', { type: 'ping' }]);
  };
  content.forEach((b, index) => {
    if (b.type === 'thinking') {
      start(index, { type: 'thinking', thinking: '', signature: '' });
      for (const c of chunks(String(b.thinking), size)) events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: c } }]);
      events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: b.signature } }]);
    } else if (b.type === 'redacted_thinking') {
      start(index, b);
    } else if (b.type === 'tool_use') {
      start(index, { type: 'tool_use', id: b.id, name: b.name, input: {} });
      events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } }]);
      for (const c of chunks(JSON.stringify(b.input), size)) events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: c } }]);
    } else {
      const first: Record<string, unknown> = { type: 'text', text: '' };
      if (b.citations) first.citations = [];
      start(index, first);
      for (const c of chunks(String(b.text), size)) events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: c } }]);
      for (const citation of (b.citations as unknown[] | undefined) ?? []) {
        events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'citations_delta', citation } }]);
      }
    }
    events.push(['content_block_stop', { type: 'content_block_stop', index }]);
  });
  if (content.length === 0) events.push(['ping', { type: 'ping' }]);
  events.push(['message_delta', { type: 'message_delta', delta: { stop_reason: message.stop_reason, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }]);
  events.push(['message_stop', { type: 'message_stop' }]);
  return events;
}
