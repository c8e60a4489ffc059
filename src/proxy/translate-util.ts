// Small helpers shared by the OpenAI and Anthropic doors (isObj and Json by the whole proxy).
import { randomBytes } from 'node:crypto';
import { BadRequest } from '../http/http-util.ts';
import type { ErrorCode } from '../util/errors.ts';
import type { GeminiCandidate, GeminiContent, GeminiGenerationConfig, GeminiPart, GeminiResponse, GeminiThinkingConfig } from './gemini-types.ts';

/** A JSON object whose fields are not known yet (a client's body before it is checked). */
export type Json = Record<string, unknown>;
export type Part = GeminiPart;
export type Content = GeminiContent;

/**
 * A client's object before it is checked: the SDK type's field names (of every
 * member of a union), each value unknown until the door checks it. Reading a
 * field the SDK does not name fails to compile; a value must be checked before use.
 */
export type Fields<T> = { [K in T extends unknown ? keyof T : never]?: unknown };

/** Whether v is a JSON object, seen as the fields of T (unchecked values). */
export function fieldsOf<T>(v: unknown): v is Fields<T> {
  return isObj(v);
}

export function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function bad(message: string, code: ErrorCode = 'invalid_request'): BadRequest {
  return new BadRequest(message, code);
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** `prefix` + n random alphanumerics. */
export function randomId(prefix: string, n = 24): string {
  const bytes = randomBytes(n);
  let s = prefix;
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return s;
}

/** Appends a content, merging it into the previous one when the role is the same (Gemini wants turns to alternate). */
export function pushContent(contents: Content[], role: Content['role'], parts: Part[]): void {
  if (parts.length === 0) return;
  const last = contents.at(-1);
  if (last && last.role === role) last.parts.push(...parts);
  else contents.push({ role, parts: [...parts] });
}

const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

/** Parses a `data:` URL into Gemini inlineData; throws a 400 for a malformed one. */
export function dataUrlToInlineData(url: string, what: string): GeminiPart {
  const m = /^data:([^,;]*)((?:;[^,;=]+=[^,;]*)*)(;base64)?,(.*)$/s.exec(url);
  if (!m) throw bad(`${what}: malformed data URL`);
  const mimeType = m[1] || 'text/plain';
  let data = m[4]!;
  if (m[3]) {
    data = data.replace(/\s+/g, '');
    if (!BASE64.test(data)) throw bad(`${what}: the data URL is not valid base64`);
  } else {
    try {
      data = Buffer.from(decodeURIComponent(data), 'utf8').toString('base64');
    } catch {
      throw bad(`${what}: the data URL is not valid percent-encoding`);
    }
  }
  return { inlineData: { mimeType, data } };
}

const EXT_MIME: Record<string, string> = {
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', heic: 'image/heic', heif: 'image/heif', pdf: 'application/pdf',
};

/** A remote http(s) URL as a Gemini fileData part (the engine may fetch it), or a 400 when not allowed. */
export function remoteUrlPart(url: string, allow: boolean, what: string, mimeType?: string): GeminiPart {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad(`${what}: "${url.slice(0, 100)}" is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(`${what}: only data: URLs${allow ? ' and http(s) URLs' : ''} are supported`);
  if (!allow) {
    throw bad(`${what}: remote image URLs are not enabled on this gateway; send the image inline as a base64 data: URL`, 'remote_images_disabled');
  }
  const ext = parsed.pathname.split('.').pop()?.toLowerCase() ?? '';
  const mime = mimeType ?? EXT_MIME[ext];
  return { fileData: { ...(mime ? { mimeType: mime } : {}), fileUri: parsed.href } };
}

export function num(v: unknown, name: string, opts: { min?: number; max?: number; int?: boolean } = {}): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`"${name}" must be a number`);
  if (opts.int && !Number.isInteger(v)) throw bad(`"${name}" must be an integer`);
  if (opts.min !== undefined && v < opts.min) throw bad(`"${name}" must be at least ${opts.min}`);
  if (opts.max !== undefined && v > opts.max) throw bad(`"${name}" must be at most ${opts.max}`);
  return v;
}

export function str(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`"${name}" must be a string`);
  return v;
}

/** Gemini usageMetadata fields as numbers (0 when absent). */
export function usageOf(meta: unknown): { prompt: number; candidates: number; thoughts: number; cached: number; total: number; toolPrompt: number } {
  const m = isObj(meta) ? meta : {};
  const n = (k: string) => (typeof m[k] === 'number' ? (m[k] as number) : 0);
  const prompt = n('promptTokenCount');
  const candidates = n('candidatesTokenCount');
  const thoughts = n('thoughtsTokenCount');
  const toolPrompt = n('toolUsePromptTokenCount');
  return { prompt, candidates, thoughts, cached: n('cachedContentTokenCount'), toolPrompt, total: n('totalTokenCount') || prompt + toolPrompt + candidates + thoughts };
}

/** The answer's candidates that are objects (the upstream's JSON is not trusted to be well-formed). */
export function candidatesOf(resp: GeminiResponse): GeminiCandidate[] {
  const c = isObj(resp) ? resp.candidates : undefined;
  return Array.isArray(c) ? c.filter((x): x is GeminiCandidate => isObj(x)) : [];
}

/** Whether Gemini refused the prompt itself (promptFeedback.blockReason): such an answer has no candidates. */
export function promptBlocked(resp: GeminiResponse): boolean {
  return isObj(resp) && isObj(resp.promptFeedback) && Boolean(resp.promptFeedback.blockReason);
}

/** A candidate's parts that are objects. */
export function partsOf(candidate: GeminiCandidate): GeminiPart[] {
  const content = candidate.content;
  if (!isObj(content) || !Array.isArray(content.parts)) return [];
  return content.parts.filter((p): p is GeminiPart => isObj(p));
}

export const FILTER_REASONS = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'LANGUAGE']);

/** Parses tool call arguments text; '' is {}, non-objects are wrapped. */
export function parseArguments(text: unknown, what: string): Json {
  if (isObj(text)) return text;
  if (text === undefined || text === null || (typeof text === 'string' && text.trim() === '')) return {};
  if (typeof text !== 'string') throw bad(`${what} must be a JSON string`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad(`${what} is not valid JSON`);
  }
  return isObj(v) ? v : { value: v };
}

/**
 * Structured output for a JSON Schema the client gave: Gemini's
 * `responseJsonSchema` (which takes JSON Schema itself, refs and
 * additionalProperties included) with the JSON MIME type it requires.
 */
export function jsonSchemaOutput(schema: unknown, where: string): Pick<GeminiGenerationConfig, 'responseMimeType' | 'responseJsonSchema'> {
  if (!isObj(schema)) throw bad(`"${where}" must be a JSON Schema object`);
  const { $schema: _dialect, ...rest } = schema;
  return { responseMimeType: 'application/json', responseJsonSchema: rest };
}

export function sseData<T>(obj: T): string {
  return `data: ${JSON.stringify(obj)}\n\n`;
}

/** One server-sent event named after its data's type (Anthropic and the Responses API name each event so). */
export function sseEvent<T extends { type: string }>(event: T['type'], obj: T): string {
  return `event: ${event}\ndata: ${JSON.stringify(obj)}\n\n`;
}

// --- reasoning effort -> Gemini thinking -----------------------------------------

/**
 * OpenAI reasoning effort -> Gemini 2.5 thinkingBudget (tokens); its keys are the efforts a request may name.
 * No prototype, so an effort of "constructor" or "toString" is not a level.
 */
export const EFFORT_BUDGETS: Record<string, number> = Object.assign(Object.create(null) as Record<string, number>, { none: 0, minimal: 512, low: 1024, medium: 8192, high: 24576, xhigh: 32768 });

/** The major version of a Gemini model name (gemini-3-pro-preview: 3), or null for other names. */
function geminiMajor(model: string): number | null {
  const m = /^(?:models\/)?gemini-(\d+)/i.exec(model);
  return m ? Number(m[1]) : null;
}

/**
 * The thinkingConfig for an effort on a model: Gemini 3 and later take a
 * thinkingLevel (Pro: low and high; Flash and Flash-Lite also minimal and
 * medium); earlier models a thinkingBudget (Pro cannot turn thinking off, so
 * its least is 128 tokens).
 */
export function thinkingFor(effort: string, model: string): GeminiThinkingConfig {
  const major = geminiMajor(model);
  const flash = /flash/i.test(model);
  if (major !== null && major >= 3) {
    const level =
      effort === 'none' || effort === 'minimal' ? (flash ? 'minimal' : 'low')
        : effort === 'low' ? 'low'
          : effort === 'medium' ? (flash ? 'medium' : 'high')
            : 'high';
    return { thinkingLevel: level };
  }
  let budget = EFFORT_BUDGETS[effort] ?? EFFORT_BUDGETS.medium!;
  if (budget === 0 && /pro/i.test(model)) budget = 128;
  return { thinkingBudget: budget };
}

/** The request with the effort applied for the upstream model (an existing includeThoughts is kept). */
export function withReasoningEffort<T extends Json>(gemini: T, effort: string | undefined, model: string): T {
  if (effort === undefined) return gemini;
  const gc = isObj(gemini.generationConfig) ? gemini.generationConfig : {};
  const tc = isObj(gc.thinkingConfig) ? gc.thinkingConfig : {};
  const thinking = { ...thinkingFor(effort, model), ...(tc.includeThoughts === true ? { includeThoughts: true } : {}) };
  return { ...gemini, generationConfig: { ...gc, thinkingConfig: thinking } };
}
