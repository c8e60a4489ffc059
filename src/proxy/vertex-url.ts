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
  const base = cfg.vertex_base_url.replace(/\/+$/, '');
  const loc = cfg.vertex_location;
  if (base === DEFAULT_VERTEX_BASE_URL && loc !== 'global') return `https://${loc}-aiplatform.googleapis.com`;
  return base;
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
  const seg = (s: string) => encodeURIComponent(s).replace(/%40/g, '@');
  let path = `/v1/projects/${seg(project)}/locations/${seg(cfg.vertex_location)}/publishers/${publisher}/models/${seg(model)}:${method}`;
  if (publisher === 'google' && method === 'streamGenerateContent') path += '?alt=sse';
  return { origin: vertexOrigin(cfg), path };
}
