// Vertex AI's URLs (SPEC section 8), pure:
//   <origin>/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}
// The project in the URL is the one charged and metered (no
// x-goog-user-project header is sent to Vertex AI). With the default base URL
// a regional location uses its regional host (`https://{location}-aiplatform.googleapis.com`);
// `global` and any other base URL (tests, private endpoints) are used as they are.
import { DEFAULT_VERTEX_BASE_URL, type Config } from '../config/schema.ts';

export type VertexPublisher = 'google' | 'anthropic';

/**
 * Google's methods for Gemini, Anthropic's for Claude. Anthropic's token
 * counting is the model `count-tokens` with `rawPredict` (the body names the
 * model to count for).
 */
export type VertexMethod = 'generateContent' | 'streamGenerateContent' | 'countTokens' | 'rawPredict' | 'streamRawPredict';

export interface VertexTarget {
  origin: string;
  path: string;
}

/** The origin for this location: the regional host with the default base URL, else the base URL as it is. */
export function vertexOrigin(cfg: Pick<Config, 'vertex_base_url' | 'vertex_location'>): string {
  const base = cfg.vertex_base_url;
  const loc = cfg.vertex_location;
  // Asked on every Vertex request: the last answer is kept (the configuration rarely changes).
  if (base === lastOrigin.base && loc === lastOrigin.loc) return lastOrigin.origin;
  const trimmed = base.replace(/\/+$/, '');
  const origin = trimmed === DEFAULT_VERTEX_BASE_URL && loc !== 'global' ? `https://${loc}-aiplatform.googleapis.com` : trimmed;
  lastOrigin = { base, loc, origin };
  return origin;
}

let lastOrigin = { base: '', loc: '', origin: '' };

/** Paths built so far, per location, publisher, model, method and project (bounded: cleared when full). */
const paths = new Map<string, string>();
const MAX_PATHS = 8192;
/** Longer model names (a client's odd input) are encoded each time rather than kept. */
const MAX_CACHED_MODEL = 200;

function seg(s: string): string {
  return encodeURIComponent(s).replace(/%40/g, '@');
}

/**
 * Where one Vertex AI call goes. `streamGenerateContent` gets `?alt=sse`
 * (server-sent events, as the Gemini API streams); Anthropic's
 * `streamRawPredict` streams SSE by itself.
 */
export function vertexUrl(
  cfg: Pick<Config, 'vertex_base_url' | 'vertex_location'>,
  project: string,
  publisher: VertexPublisher,
  model: string,
  method: VertexMethod,
): VertexTarget {
  // Built on every attempt (the project is the lease's): encoding the segments costs more than the look-up.
  // The model (from the request) comes last, so no text of it can pass for another project's key.
  const key = `${cfg.vertex_location}\n${publisher}\n${method}\n${project}\n${model}`;
  let path = paths.get(key);
  if (path === undefined) {
    path = `/v1/projects/${seg(project)}/locations/${seg(cfg.vertex_location)}/publishers/${publisher}/models/${seg(model)}:${method}`;
    if (publisher === 'google' && method === 'streamGenerateContent') path += '?alt=sse';
    if (model.length <= MAX_CACHED_MODEL) {
      if (paths.size >= MAX_PATHS) paths.clear();
      paths.set(key, path);
    }
  }
  return { origin: vertexOrigin(cfg), path };
}
