// Claude on Vertex AI, the pure parts: which requests go there (a `claude-*`
// model), the Vertex model id for a requested name, the `anthropic-beta`
// flags Vertex accepts, the Claude models /v1/models lists, and Vertex's
// answers in Anthropic's terms (errors, token usage).
import { aliasesFor } from '../models.ts';
import type { Usage } from '../sse.ts';
import { parseGoogleError } from '../upstream-errors.ts';
import { anthropicErrorType } from './response.ts';

/** A model name the Anthropic door sends to Claude on Vertex AI when it can. */
export function isClaudeModel(name: string): boolean {
  return /^claude-/i.test(name);
}

/**
 * The Claude models /v1/models lists when `vertex_claude_models` is empty:
 * Anthropic's names as clients send them, and the Vertex ids they map to.
 */
export const DEFAULT_VERTEX_CLAUDE_MODELS: Readonly<Record<string, string>> = {
  'claude-opus-5-5': 'claude-opus-5-5',
  'claude-sonnet-5-5': 'claude-sonnet-5-5',
  'claude-fable-5-2': 'claude-fable-5-2',
  'claude-opus-5': 'claude-opus-5',
  'claude-sonnet-5': 'claude-sonnet-5',
  'claude-opus-4-8': 'claude-opus-4-8',
  'claude-sonnet-4-6': 'claude-sonnet-4-6',
  'claude-opus-4-5-20251101': 'claude-opus-4-5@20251101',
  'claude-sonnet-4-5-20250929': 'claude-sonnet-4-5@20250929',
  'claude-haiku-4-5-20251001': 'claude-haiku-4-5@20251001',
  'claude-opus-4-1-20250805': 'claude-opus-4-1@20250805',
  'claude-sonnet-4-20250514': 'claude-sonnet-4@20250514',
  'claude-3-5-haiku-20241022': 'claude-3-5-haiku@20241022',
};

/**
 * The Vertex model id for a requested Claude model: the `vertex_claude_models`
 * entry for it (exact name, else the first matching `*` pattern); otherwise
 * Anthropic's dated id in Vertex's spelling (`claude-sonnet-4-5-20250929` is
 * `claude-sonnet-4-5@20250929` on Vertex); otherwise the name as requested.
 */
export function vertexClaudeModel(requested: string, table: Readonly<Record<string, string>>): string {
  const mapped = aliasesFor(table).target(requested);
  if (mapped !== requested.replace(/^models\//, '')) return mapped;
  const dated = /^(claude-[a-z0-9.-]+?)-(\d{8})$/i.exec(mapped);
  return dated ? `${dated[1]}@${dated[2]}` : mapped;
}

/** The betas Claude on Vertex AI accepts in `anthropic-beta` on rawPredict / streamRawPredict (any other: 400). */
export const VERTEX_MESSAGE_BETAS: ReadonlySet<string> = new Set([
  'context-1m-2025-08-07',
  'context-management-2025-06-27',
  'fine-grained-tool-streaming-2025-05-14',
  'interleaved-thinking-2025-05-14',
  'token-efficient-tools-2025-02-19',
  'output-128k-2025-02-19',
  'computer-use-2025-01-24',
  'web-search-2025-03-05',
]);
/** count-tokens:rawPredict accepts fewer (not web search). */
export const VERTEX_COUNT_TOKENS_BETAS: ReadonlySet<string> = new Set([...VERTEX_MESSAGE_BETAS].filter((b) => b !== 'web-search-2025-03-05'));

/**
 * The client's `anthropic-beta` flags that Vertex accepts, comma-joined (null
 * when none is left), and the ones dropped: first-party flags such as
 * `claude-code-20250219` or `oauth-2025-04-20` mean nothing on Vertex and
 * would make it refuse the request.
 */
export function vertexBetas(header: string | string[] | undefined, accepted: ReadonlySet<string>): { header: string | null; dropped: string[] } {
  const list = (Array.isArray(header) ? header : header === undefined ? [] : [header]).flatMap((h) => h.split(','));
  const kept: string[] = [];
  const dropped: string[] = [];
  for (const raw of list) {
    const b = raw.trim();
    if (!b) continue;
    if (accepted.has(b)) {
      if (!kept.includes(b)) kept.push(b);
    } else if (!dropped.includes(b)) {
      dropped.push(b);
    }
  }
  return { header: kept.length ? kept.join(',') : null, dropped };
}

/** True when an error body is Anthropic's own (`{"type":"error","error":{...}}`): it goes to the client as it is. */
export function isAnthropicError(text: string): boolean {
  try {
    const v = JSON.parse(text) as { type?: unknown; error?: { type?: unknown } } | null;
    return v?.type === 'error' && typeof v.error?.type === 'string';
  } catch {
    return false;
  }
}

/** A Vertex error body (Google's shape, possibly array-wrapped) in Anthropic's shape, with Vertex's message. */
export function anthropicFromVertexError(status: number, text: string): { type: 'error'; error: { type: string; message: string } } {
  const info = parseGoogleError(text);
  const message = info.message || `Vertex AI answered ${status}`;
  return { type: 'error', error: { type: anthropicErrorType(status), message: info.status ? `${message} (Vertex AI: ${info.status})` : message } };
}

const INPUT_RE = /"input_tokens"\s*:\s*(\d+)/g;
const OUTPUT_RE = /"output_tokens"\s*:\s*(\d+)/g;
const CACHE_RE = /"cache_(?:creation|read)_input_tokens"\s*:\s*(\d+)/g;

function lastMatch(re: RegExp, text: string): number | null {
  let last: number | null = null;
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) last = Number(m[1]);
  return last;
}

function sumOfFirstUsage(text: string): number {
  // The usage object of a message (or message_start): input plus cache reads and writes.
  const at = text.indexOf('"usage"');
  if (at === -1) return 0;
  const slice = text.slice(at, text.indexOf('}', at) + 1);
  let n = 0;
  INPUT_RE.lastIndex = 0;
  CACHE_RE.lastIndex = 0;
  const input = INPUT_RE.exec(slice);
  if (input) n += Number(input[1]);
  for (let m = CACHE_RE.exec(slice); m; m = CACHE_RE.exec(slice)) n += Number(m[1]);
  return n;
}

/** Token usage of a whole JSON message, from its text (the usage object comes last in Anthropic's answers). */
export function messageUsage(text: string): Usage | null {
  const at = text.lastIndexOf('"usage"');
  if (at === -1) return null;
  const usage = text.slice(at);
  const out = lastMatch(OUTPUT_RE, usage);
  return out === null ? null : { tokensIn: sumOfFirstUsage(usage), tokensOut: out };
}

/** Token usage of a stream, from its head (message_start: input and cache tokens) and tail (the last message_delta: output tokens). */
export function streamUsage(head: string, tail: string): Usage | null {
  const out = lastMatch(OUTPUT_RE, tail);
  if (out === null) return null;
  return { tokensIn: sumOfFirstUsage(head), tokensOut: out };
}

type Judged = { ok: true } | { ok: false; reason: string };
/** A usable whole answer comes with its text (trimmed), so that its usage is read without decoding it again. */
type JudgedText = { ok: true; value: string } | { ok: false; reason: string };

/**
 * A 2xx Messages answer is usable when it is a JSON object of the expected
 * type (`message`, or `input_tokens` for count tokens). Only its start and
 * end are looked at: the body goes to the client as it is.
 */
export function claudeJson(body: Buffer, count: boolean): JudgedText {
  const text = body.toString('utf8').trim();
  if (!text) return { ok: false, reason: 'Vertex AI answered 200 with an empty body' };
  if (text[0] !== '{' || text[text.length - 1] !== '}') {
    return { ok: false, reason: text[0] === '<' ? 'Vertex AI answered 200 with an HTML page, not JSON' : 'Vertex AI answered 200 with a body that is not a JSON object' };
  }
  if (count ? !/"input_tokens"\s*:/.test(text) : !/"type"\s*:\s*"message"/.test(text)) {
    return { ok: false, reason: `Vertex AI answered 200 without ${count ? 'input_tokens' : 'a message'}` };
  }
  return { ok: true, value: text };
}

/** The head of a Messages stream: its first event must be message_start (an `error` event is as good as a 5xx). */
export function claudeSseHead(firstEvent: string | null, overflow: boolean): Judged {
  if (overflow) return { ok: false, reason: 'Vertex AI sent an event too large to read' };
  if (firstEvent === null) return { ok: false, reason: 'Vertex AI ended the stream without any event' };
  let v: { type?: unknown; error?: { type?: unknown; message?: unknown } };
  try {
    v = JSON.parse(firstEvent) as typeof v;
  } catch {
    return { ok: false, reason: 'Vertex AI sent an event that is not JSON' };
  }
  if (v?.type === 'message_start') return { ok: true };
  if (v?.type === 'error') return { ok: false, reason: `Vertex AI stream error: ${String(v.error?.type)}: ${String(v.error?.message ?? '').slice(0, 200)}` };
  return { ok: false, reason: `Vertex AI stream began with ${String(v?.type)}, not message_start` };
}

/** The Claude models Vertex lanes serve, for /v1/models: `vertex_claude_models` keys (or the default list) and their Vertex ids. */
export function claudeModelEntries(table: Readonly<Record<string, string>>): { id: string; vertexModel: string }[] {
  const source = Object.keys(table).length ? table : DEFAULT_VERTEX_CLAUDE_MODELS;
  return Object.entries(source).map(([id, vertexModel]) => ({ id, vertexModel }));
}
