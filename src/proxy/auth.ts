// Proxy API keys (docs/api.md, "Authentication"): read from `Authorization: Bearer`,
// `x-api-key`, `x-goog-api-key` or `?key=`, compared in constant time, and
// required according to GRANTPOOL_AUTH_MODE.
import { hash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from '../util/net.ts';
import { decideAuthMode, type AuthMode, type EffectiveAuthMode } from '../config/auth-mode.ts';

export type { AuthMode, EffectiveAuthMode };

export const ACCEPTED_KEY_SOURCES = 'Authorization: Bearer <key>, x-api-key: <key>, x-goog-api-key: <key> or ?key=<key>';

/** `auto` is `off` only while both the listen address and the public URL (default http://localhost) are loopback. */
export function effectiveAuthMode(mode: AuthMode, host: string, publicUrl?: string | null): EffectiveAuthMode {
  return decideAuthMode(mode, host, publicUrl).mode;
}

/** Every key the request presents, in the order of the accepted sources. */
export function presentedKeys(req: IncomingMessage, url: URL): string[] {
  const out: string[] = [];
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^\s*Bearer\s+(.+?)\s*$/i.exec(auth);
    if (m) out.push(m[1]!);
  }
  for (const name of ['x-api-key', 'x-goog-api-key']) {
    const v = req.headers[name];
    if (typeof v === 'string' && v.trim()) out.push(v.trim());
  }
  // Reading searchParams builds them: only when there is a query.
  const q = url.search ? url.searchParams.get('key') : null;
  if (q) out.push(q);
  return out;
}

function digest(s: string): Buffer {
  return hash('sha256', s, 'buffer');
}

interface KeyList {
  digests: Buffer[];
  /** Keys already seen to match, so that a client's every request skips the hash (bounded by the list). */
  accepted: Set<string>;
}

const keyLists = new WeakMap<object, KeyList>();

/** Key digests for a config's key list (computed once per list object). */
function keyListFor(keys: readonly { key: string }[]): KeyList {
  let l = keyLists.get(keys);
  if (!l) {
    l = { digests: keys.map((k) => digest(k.key)), accepted: new Set() };
    keyLists.set(keys, l);
  }
  return l;
}

/**
 * True when `candidate` equals one of the keys. A key not yet seen to match is
 * compared by digest in constant time (no early exit, so timing says nothing
 * about how much of it is right); one that matched before is found in a set of
 * the valid keys themselves, which says no more than the answer does.
 */
export function keyMatches(candidate: string, keys: readonly { key: string }[]): boolean {
  const list = keyListFor(keys);
  if (list.accepted.has(candidate)) return true;
  const c = digest(candidate);
  let ok = false;
  for (const k of list.digests) {
    if (timingSafeEqual(c, k)) ok = true;
  }
  if (ok) list.accepted.add(candidate);
  return ok;
}

export interface AuthConfig {
  auth_mode: AuthMode;
  host: string;
  /** The external base URL (default http://localhost:<port>). */
  public_url?: string | null;
  api_keys: readonly { key: string }[];
  /** Set by the config loader (auto resolved); used when present. */
  effective_auth_mode?: EffectiveAuthMode;
}

export type AuthResult =
  | { ok: true; /** A valid key was presented (cross-origin use is allowed). */ keyed: boolean }
  | { ok: false; status: 401 | 403; message: string };

/** Checks one proxy request. `health` marks GET /healthz (exempt under all_except_health). */
export function checkProxyAuth(req: IncomingMessage, url: URL, config: AuthConfig, health = false): AuthResult {
  const mode = config.effective_auth_mode ?? effectiveAuthMode(config.auth_mode, config.host, config.public_url);
  const keys = presentedKeys(req, url);
  if (keys.length > 0 && config.api_keys.length > 0) {
    for (const k of keys) if (keyMatches(k, config.api_keys)) return { ok: true, keyed: true };
  }
  const keyNeeded = mode === 'strict' || (mode === 'all_except_health' && !health);
  if (keyNeeded) {
    return keys.length === 0
      ? { ok: false, status: 401, message: `Missing API key. Send the proxy API key as ${ACCEPTED_KEY_SOURCES}.` }
      : { ok: false, status: 401, message: `Invalid API key. Send a valid proxy API key as ${ACCEPTED_KEY_SOURCES}.` };
  }
  // Let in without a key: only when no web page is behind it.
  const refusal = browserRefusal(req, config);
  if (refusal) return { ok: false, status: 403, message: refusal };
  return { ok: true, keyed: false };
}

// ---------------------------------------------------------------------------
// Web pages (docs/configuration.md#auth-modes): a request let in without a key must not come
// from another site (CSRF through "simple" CORS requests) or through a DNS
// name rebound to the gateway's address.

function hostnameOf(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(1, end) : h;
  }
  const colon = h.indexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

/** The public URL parsed, per distinct value (a keyless request asks for it; URL parsing is not free). */
const publicOrigins = new Map<string, { hostname: string; origin: string } | null>();

function publicOrigin(config: AuthConfig): { hostname: string; origin: string } | null {
  if (!config.public_url) return null;
  let o = publicOrigins.get(config.public_url);
  if (o === undefined) {
    try {
      const u = new URL(config.public_url);
      o = { hostname: u.hostname, origin: u.origin };
    } catch {
      o = null;
    }
    if (publicOrigins.size >= 16) publicOrigins.clear();
    publicOrigins.set(config.public_url, o);
  }
  return o;
}

/**
 * True for a `Host` a browser can only send when the page's URL names the
 * gateway itself: a loopback name, an IP literal (a literal cannot be
 * rebound), the listen address or the public URL's host.
 */
function hostAllowed(hostname: string, config: AuthConfig): boolean {
  if (isLoopbackHost(hostname) || isIP(hostname) !== 0) return true;
  if (hostname === config.host.toLowerCase()) return true;
  return publicOrigin(config)?.hostname.toLowerCase() === hostname;
}

/** Why a keyless request looks like a web page's, or null when it does not. */
export function browserRefusal(req: IncomingMessage, config: AuthConfig): string | null {
  const host = req.headers.host;
  if (host !== undefined && !hostAllowed(hostnameOf(host), config)) {
    return `Refused: the Host header names "${hostnameOf(host).slice(0, 100)}", which is neither a loopback name nor the gateway's public URL host (this is how a DNS rebinding attack looks). Use the gateway's own address, set public_url, or send a proxy API key.`;
  }
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') {
    return 'Refused: this request comes from a page on another site (Sec-Fetch-Site). Without a proxy API key, only programs, not web pages, may use the gateway; send a key as ' + ACCEPTED_KEY_SOURCES + '.';
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !isOwnOrigin(origin, req, config)) {
    return `Refused: this request comes from a page at ${origin === 'null' ? 'an opaque origin' : `"${origin.slice(0, 200)}"`}, not from the gateway itself. Without a proxy API key, only programs, not web pages, may use the gateway; send a key as ${ACCEPTED_KEY_SOURCES}.`;
  }
  return null;
}

function isOwnOrigin(origin: string, req: IncomingMessage, config: AuthConfig): boolean {
  if (origin === 'null') return false;
  const o = origin.toLowerCase();
  const pub = publicOrigin(config);
  if (pub && pub.origin.toLowerCase() === o) return true;
  const host = req.headers.host?.trim().toLowerCase();
  return !!host && (o === `http://${host}` || o === `https://${host}`);
}

// ---------------------------------------------------------------------------
// CORS for key-holding browser apps

/** Headers that let the page at `origin` read an answer (set on keyed answers and on 401s, so the app can show them). */
export function corsHeaders(origin: string): Record<string, string> {
  return {
    'access-control-allow-origin': origin,
    'access-control-expose-headers': 'retry-after, content-type',
    vary: 'Origin',
  };
}

const TOKEN_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/**
 * The answer to a CORS preflight (OPTIONS with Access-Control-Request-Method),
 * or null when the request is not one. Preflights carry no key, so any origin
 * is told yes; the real request is then checked (a key proves the caller).
 */
export function preflightHeaders(req: IncomingMessage): Record<string, string> | null {
  if (req.method !== 'OPTIONS') return null;
  const method = req.headers['access-control-request-method'];
  const origin = req.headers.origin;
  if (typeof method !== 'string' || !method || typeof origin !== 'string') return null;
  const headers: Record<string, string> = {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
    'access-control-max-age': '600',
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
  };
  const asked = req.headers['access-control-request-headers'];
  if (typeof asked === 'string' && asked.length <= 2000 && TOKEN_LIST.test(asked.trim())) {
    headers['access-control-allow-headers'] = asked.trim();
  }
  // Chrome's Private Network Access: a public page calling a local gateway asks for this.
  if (req.headers['access-control-request-private-network'] === 'true') headers['access-control-allow-private-network'] = 'true';
  return headers;
}
