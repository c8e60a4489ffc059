// Proxy API keys (docs/api.md, "Authentication"): read from `Authorization: Bearer`,
// `x-api-key`, `x-goog-api-key` or `?key=`, compared in constant time, and
// required according to GRANTPOOL_AUTH_MODE.
import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from '../util/net.ts';

export type AuthMode = 'off' | 'strict' | 'all_except_health' | 'auto';
export type EffectiveAuthMode = 'off' | 'strict' | 'all_except_health';

export const ACCEPTED_KEY_SOURCES = 'Authorization: Bearer <key>, x-api-key: <key>, x-goog-api-key: <key> or ?key=<key>';

/** `auto` is `off` while listening on a loopback address only, `all_except_health` otherwise. */
export function effectiveAuthMode(mode: AuthMode, host: string): EffectiveAuthMode {
  if (mode !== 'auto') return mode;
  return isLoopbackHost(host) ? 'off' : 'all_except_health';
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
  const q = url.searchParams.get('key');
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
  api_keys: readonly { key: string }[];
  /** Set by the config loader (auto resolved); used when present. */
  effective_auth_mode?: EffectiveAuthMode;
}

export type AuthResult = { ok: true } | { ok: false; message: string };

/** Checks one proxy request. `health` marks GET /healthz (exempt under all_except_health). */
export function checkProxyAuth(req: IncomingMessage, url: URL, config: AuthConfig, health = false): AuthResult {
  const mode = config.effective_auth_mode ?? effectiveAuthMode(config.auth_mode, config.host);
  if (mode === 'off') return { ok: true };
  if (mode === 'all_except_health' && health) return { ok: true };
  const keys = presentedKeys(req, url);
  if (keys.length === 0) {
    return { ok: false, message: `Missing API key. Send the proxy API key as ${ACCEPTED_KEY_SOURCES}.` };
  }
  if (config.api_keys.length > 0) {
    for (const k of keys) if (keyMatches(k, config.api_keys)) return { ok: true };
  }
  return { ok: false, message: `Invalid API key. Send a valid proxy API key as ${ACCEPTED_KEY_SOURCES}.` };
}
