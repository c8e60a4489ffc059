// The Google API pass-through: `ANY /google/{path}?{query}` goes to
// GRANTPOOL_GOOGLE_API_BASE_URL with the method, query, body and content
// headers of the client, without its hop-by-hop and credential headers (and
// without a `key` query parameter); the engine adds the pool's bearer token
// and, when the client named no `x-goog-user-project`, the account's project.
import type { IncomingHttpHeaders } from 'node:http';
import { baseOf } from './upstream-client.ts';

/** Request headers never forwarded: hop-by-hop, the client's credentials, the gateway's own. */
const DROP = new Set([
  'host', 'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'trailers', 'transfer-encoding', 'upgrade', 'content-length', 'expect',
  'authorization', 'x-api-key', 'x-goog-api-key', 'cookie',
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip',
]);

/** Headers the pass-through forwards: content and caching headers, accept*, x-goog-* (credentials aside), uploads. */
function forwardable(name: string): boolean {
  if (DROP.has(name) || name.startsWith('x-grantpool-')) return false;
  return (
    name.startsWith('content-') ||
    name.startsWith('accept') ||
    name.startsWith('if-') ||
    name.startsWith('x-goog-') ||
    name.startsWith('x-upload-') ||
    name === 'range' ||
    name === 'user-agent' ||
    name === 'cache-control'
  );
}

export interface PassthroughTarget {
  origin: string;
  /** Base path + client path + query (without `key`). */
  path: string;
  headers: Record<string, string>;
}

/** Where a `/google/...` request goes and with which headers. `url` is the gateway request URL. */
export function buildPassthrough(baseUrl: string, url: URL, headers: IncomingHttpHeaders): PassthroughTarget {
  const base = baseOf(baseUrl);
  const prefix = base.prefix;
  // The raw path after /google keeps the client's own encoding.
  let rest = url.pathname.slice('/google'.length);
  if (!rest.startsWith('/')) rest = `/${rest}`;
  const params = new URLSearchParams(url.search);
  params.delete('key');
  const query = params.toString();
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !forwardable(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { origin: base.origin, path: `${prefix}${rest}${query ? `?${query}` : ''}`, headers: out };
}
