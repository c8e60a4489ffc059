// Gemini on Vertex AI (SPEC section 8): what a Gemini API request becomes when
// it is served through a Vertex lane, pure. Vertex AI speaks the same
// generateContent protocol with a few differences:
// - `role` is required on every content (the Gemini API defaults it to
//   "user"): a content without one gets "user";
// - countTokens takes `{contents, systemInstruction, tools, generationConfig}`
//   at the top level (the Gemini API's `{generateContentRequest: {...}}` is
//   unwrapped; fields Vertex does not know are left out, as it would refuse them);
// - what lives in the Gemini API only cannot go to Vertex AI: cached contents
//   (`cachedContent`), files uploaded to the Gemini API (`files/...` URIs),
//   File Search stores; such a request stays on the Gemini API.
import type { Config } from '../config/schema.ts';
import type { LaneService, Lease } from '../pool/types.ts';
import type { UpstreamTarget } from './exchange/attempts.ts';
import { vertexUrl } from './vertex-url.ts';
import { isObj, type Json } from './translate-util.ts';

export type GeminiMethod = 'generateContent' | 'streamGenerateContent' | 'countTokens';

/** `contents` with `role: "user"` on every content that has none (the same array when nothing is missing). */
export function withRoles(contents: unknown): unknown {
  if (!Array.isArray(contents)) return contents;
  let out: unknown[] | null = null;
  for (let i = 0; i < contents.length; i++) {
    const c = contents[i];
    if (isObj(c) && (typeof c.role !== 'string' || c.role === '')) {
      out ??= contents.slice();
      out[i] = { ...c, role: 'user' };
    }
  }
  return out ?? contents;
}

/** The first of `keys` present in `o` (camelCase or snake_case spelling). */
function field(o: Json, ...keys: string[]): unknown {
  for (const k of keys) if (o[k] !== undefined) return o[k];
  return undefined;
}

/** The fields of Vertex AI's CountTokensRequest that a Gemini request may carry. */
function countFields(src: Json): Json {
  const out: Json = {};
  const contents = field(src, 'contents');
  if (contents !== undefined) out.contents = withRoles(contents);
  const system = field(src, 'systemInstruction', 'system_instruction');
  if (system !== undefined) out.systemInstruction = system;
  const tools = field(src, 'tools');
  if (tools !== undefined) out.tools = tools;
  const gen = field(src, 'generationConfig', 'generation_config');
  if (gen !== undefined) out.generationConfig = gen;
  return out;
}

/** A Gemini API request body as Vertex AI takes it for this method. */
export function vertexGeminiBody(body: Json, method: GeminiMethod): Json {
  if (method === 'countTokens') {
    const inner = field(body, 'generateContentRequest', 'generate_content_request');
    return countFields(isObj(inner) ? inner : body);
  }
  const contents = withRoles(body.contents);
  return contents === body.contents ? body : { ...body, contents };
}

function usesGeminiFiles(contents: unknown): boolean {
  if (!Array.isArray(contents)) return false;
  for (const c of contents) {
    if (!isObj(c) || !Array.isArray(c.parts)) continue;
    for (const p of c.parts) {
      const fd = isObj(p) ? field(p, 'fileData', 'file_data') : undefined;
      const uri = isObj(fd) ? field(fd, 'fileUri', 'file_uri') : undefined;
      if (typeof uri === 'string' && (/^files\//.test(uri) || /^https:\/\/generativelanguage\.googleapis\.com\//.test(uri))) return true;
    }
  }
  return false;
}

/**
 * Why this request cannot be served by Vertex AI (it names something that
 * lives in the Gemini API only), or null when it can.
 */
export function vertexUnsupported(body: Json, method: GeminiMethod): string | null {
  const req = method === 'countTokens' ? (field(body, 'generateContentRequest', 'generate_content_request') ?? body) : body;
  if (!isObj(req)) return null;
  if (field(req, 'cachedContent', 'cached_content') !== undefined) return 'it uses a Gemini API cached content';
  if (usesGeminiFiles(req.contents)) return 'it refers to a file uploaded to the Gemini API';
  const tools = req.tools;
  if (Array.isArray(tools) && tools.some((t) => isObj(t) && field(t, 'fileSearch', 'file_search') !== undefined)) {
    return 'it uses a Gemini API File Search store';
  }
  return null;
}

/**
 * The services a Gemini request may use: `gemini_services`, or the Gemini API
 * alone when Vertex AI cannot serve it. `vertexLanes` false (no account has a
 * Vertex lane): the pool passes over Vertex anyway, so the body is not walked.
 */
export function geminiServices(
  cfg: { readonly gemini_services: readonly LaneService[] },
  body: Json,
  method: GeminiMethod,
  vertexLanes = true,
): readonly LaneService[] {
  if (!vertexLanes || !cfg.gemini_services.includes('vertex')) return cfg.gemini_services;
  if (vertexUnsupported(body, method) === null) return cfg.gemini_services;
  return cfg.gemini_services.includes('gemini_api') ? ['gemini_api'] : cfg.gemini_services;
}

export interface GeminiTargets {
  /** The Gemini API call, as it is today. */
  gemini: UpstreamTarget;
  cfg: Pick<Config, 'vertex_base_url' | 'vertex_location'>;
  model: string;
  method: GeminiMethod;
  /** The request body (parsed), turned into Vertex AI's on the first Vertex lease. */
  body: Json;
  /** A Gemini-door stream without `alt=sse` is a JSON array on Vertex AI too: the query to send instead of `alt=sse`. */
  query?: string;
}

/** `AttemptSpec.target`: the Gemini API call for a Gemini API lease, the Vertex AI call in its project for a Vertex lease. */
export function geminiTarget(t: GeminiTargets): (lease: Lease) => UpstreamTarget {
  let vertexBody: Buffer | null = null;
  return (lease) => {
    if (lease.service !== 'vertex' || !lease.projectId) return t.gemini;
    vertexBody ??= Buffer.from(JSON.stringify(vertexGeminiBody(t.body, t.method)));
    const { origin, path } = vertexUrl(t.cfg, lease.projectId, 'google', t.model, t.method);
    const p = t.query === undefined ? path : `${path.replace(/\?.*$/, '')}${t.query ? `?${t.query}` : ''}`;
    return { origin, path: p, body: vertexBody };
  };
}
