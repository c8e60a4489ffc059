// Verifying Google's security event tokens (the I/O edge of the receiver):
// Google's RISC configuration document gives the issuer and the key set URI
// (fetched on first use, kept for an hour, a stale copy used while a refetch
// fails); the key set is kept too and fetched again when a token names a key
// it does not hold (at most every 30 s). jose checks the RS256 signature, `iss`
// and `aud`; `exp` is not required (security events do not expire).
// A token that fails is a 400 with the RFC 8935 code; keys that cannot be
// fetched are a 503, so that Google delivers the event again later.
// jose is loaded with the first token: security events are rare, and a
// gateway that never gets one does not keep its code in memory.
import type { createLocalJWKSet, JSONWebKeySet, JWTPayload } from 'jose';
import { z } from 'zod';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../log/logger.ts';
import { isLoopbackHost } from '../util/net.ts';
import { invalidToken, RiscError } from './errors.ts';

export interface RiscVerifierOptions {
  /** The RISC configuration document's URL (config `risc_config_url`). */
  configUrl: () => string;
  clock: Clock;
  logger: Logger;
  /** How long the configuration and the keys are kept. Default 1 h. */
  maxAgeMs?: number;
  /** Least time between two fetches of the keys for an unknown `kid`. Default 30 s. */
  refetchCooldownMs?: number;
  /** Per fetch. Default 10 s. */
  timeoutMs?: number;
}

const ConfigDocSchema = z.looseObject({ issuer: z.string().min(1), jwks_uri: z.string().url() });

interface Cached<T> {
  value: T;
  fetchedAt: number;
}

/** Ignore `exp` (and `nbf`): a security event describes the past and does not expire. */
const NO_EXPIRY_SECONDS = 100 * 365 * 24 * 3600;
/** After a failed fetch, the same fetch waits this long. */
const FAILED_FETCH_PAUSE_MS = 5000;

export class RiscVerifier {
  private readonly o: Required<Omit<RiscVerifierOptions, 'configUrl' | 'clock' | 'logger'>> & RiscVerifierOptions;
  private config: Cached<{ url: string; issuer: string; jwksUri: string }> | null = null;
  private keys: Cached<{ uri: string; set: ReturnType<typeof createLocalJWKSet>; kids: Set<string> }> | null = null;
  private loading = new Map<string, Promise<unknown>>();
  private failed = new Map<string, { at: number; error: unknown }>();

  constructor(opts: RiscVerifierOptions) {
    this.o = { maxAgeMs: 3_600_000, refetchCooldownMs: 30_000, timeoutMs: 10_000, ...opts };
  }

  /** The issuer last read from the configuration document (null before the first token). */
  get issuer(): string | null {
    return this.config?.value.issuer ?? null;
  }

  /** Verifies `token` for one of `audiences` and returns its payload. Throws RiscError (400 or 503). */
  async verify(token: string, audiences: readonly string[]): Promise<JWTPayload> {
    const jose = await import('jose');
    let header: ReturnType<typeof jose.decodeProtectedHeader>;
    try {
      header = jose.decodeProtectedHeader(token);
    } catch (e) {
      throw invalidToken('invalid_request', 'the body is not a signed JWT (a security event token)', e);
    }
    if (header.alg !== 'RS256') throw invalidToken('invalid_key', `the token is signed with ${String(header.alg).slice(0, 20)}, not RS256`);
    if (typeof header.kid !== 'string' || !header.kid) throw invalidToken('invalid_key', 'the token names no signing key (kid)');
    if (audiences.length === 0) {
      throw new RiscError('risc_keys_unavailable', 'no OAuth client is configured, so no audience can be checked', { status: 503, retryAfterSeconds: 300 });
    }
    const config = await this.configDoc();
    const keys = await this.keySet(config.jwksUri, header.kid, jose);
    try {
      const { payload } = await jose.jwtVerify(token, keys, {
        algorithms: ['RS256'],
        issuer: config.issuer,
        audience: [...audiences],
        clockTolerance: NO_EXPIRY_SECONDS,
        currentDate: new Date(this.o.clock.now()),
      });
      return payload;
    } catch (e) {
      throw verifyError(e, jose.errors);
    }
  }

  private async configDoc(): Promise<{ url: string; issuer: string; jwksUri: string }> {
    const url = this.o.configUrl();
    const c = this.config;
    if (c && c.value.url === url && this.o.clock.now() - c.fetchedAt < this.o.maxAgeMs) return c.value;
    try {
      const doc = await this.once(`config ${url}`, async () => {
        const body = ConfigDocSchema.safeParse(await this.fetchJson(url, 'the RISC configuration document'));
        if (!body.success) throw unavailable(`the RISC configuration document at ${url} has no issuer or jwks_uri`);
        checkScheme(body.data.jwks_uri);
        const value = { url, issuer: body.data.issuer, jwksUri: body.data.jwks_uri };
        this.config = { value, fetchedAt: this.o.clock.now() };
        return value;
      });
      return doc as { url: string; issuer: string; jwksUri: string };
    } catch (e) {
      if (c && c.value.url === url) {
        this.o.logger.warn({ url, err: { message: (e as Error).message } }, 'Could not refetch the RISC configuration document; using the copy from before');
        return c.value;
      }
      throw e;
    }
  }

  private async keySet(uri: string, kid: string, jose: typeof import('jose')): Promise<ReturnType<typeof createLocalJWKSet>> {
    const k = this.keys;
    const now = this.o.clock.now();
    const fresh = k && k.value.uri === uri && now - k.fetchedAt < this.o.maxAgeMs;
    if (fresh && k.value.kids.has(kid)) return k.value.set;
    // An unknown kid: fetch again, unless that was done just now (then the key is not Google's).
    if (fresh && now - k.fetchedAt < this.o.refetchCooldownMs) return k.value.set;
    try {
      await this.once(`keys ${uri}`, async () => {
        const body = await this.fetchJson(uri, "Google's signing keys");
        const keys = (body as JSONWebKeySet | null)?.keys;
        if (!Array.isArray(keys)) throw unavailable(`the key set at ${uri} has no "keys"`);
        let set: ReturnType<typeof createLocalJWKSet>;
        try {
          set = jose.createLocalJWKSet(body as JSONWebKeySet);
        } catch (e) {
          throw unavailable(`the key set at ${uri} is not a JSON Web Key Set`, e);
        }
        const kids = new Set(keys.map((x) => (x as { kid?: unknown }).kid).filter((x): x is string => typeof x === 'string'));
        this.keys = { value: { uri, set, kids }, fetchedAt: this.o.clock.now() };
      });
    } catch (e) {
      if (k && k.value.uri === uri && k.value.kids.has(kid)) {
        this.o.logger.warn({ url: uri, err: { message: (e as Error).message } }, "Could not refetch Google's signing keys; using the copy from before");
        return k.value.set;
      }
      throw e;
    }
    return this.keys!.value.set;
  }

  /**
   * One fetch per key at a time; callers arriving meanwhile share its result.
   * A fetch that failed is not tried again for 5 s (its error is the answer),
   * so posting tokens while Google is unreachable does not become a stream of fetches.
   */
  private once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.loading.get(key);
    if (running) return running as Promise<T>;
    const failed = this.failed.get(key);
    if (failed && this.o.clock.now() - failed.at < FAILED_FETCH_PAUSE_MS) return Promise.reject(failed.error);
    const p = fn()
      .then(
        (v) => {
          this.failed.delete(key);
          return v;
        },
        (e: unknown) => {
          this.failed.set(key, { at: this.o.clock.now(), error: e });
          throw e;
        },
      )
      .finally(() => this.loading.delete(key));
    this.loading.set(key, p);
    return p;
  }

  private async fetchJson(url: string, what: string): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.o.timeoutMs), redirect: 'follow' });
    } catch (e) {
      throw unavailable(`${what} could not be fetched from ${url} (${(e as Error).name === 'TimeoutError' ? 'timed out' : (e as Error).message})`, e);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw unavailable(`${what} at ${url} answered HTTP ${res.status}`);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw unavailable(`${what} at ${url} is not JSON`, e);
    }
  }
}

function unavailable(message: string, cause?: unknown): RiscError {
  return new RiscError('risc_keys_unavailable', message, { status: 503, retryAfterSeconds: 60, cause });
}

function checkScheme(uri: string): void {
  const u = new URL(uri);
  if (u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname))) return;
  throw unavailable(`the RISC configuration names a key set that is not https (${uri.slice(0, 200)})`);
}

/** jose's verification errors as RFC 8935 codes. */
function verifyError(e: unknown, errors: typeof import('jose').errors): RiscError {
  if (e instanceof errors.JWKSNoMatchingKey) return invalidToken('invalid_key', "the token's signing key (kid) is not one of Google's keys", e);
  if (e instanceof errors.JWSSignatureVerificationFailed) return invalidToken('authentication_failed', "the token's signature does not verify with Google's key", e);
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') return invalidToken('invalid_issuer', "the token's issuer (iss) is not the RISC issuer", e);
    if (e.claim === 'aud') return invalidToken('invalid_audience', "the token's audience (aud) is not an OAuth client of this gateway", e);
    return invalidToken('invalid_request', `the token's "${e.claim}" claim is not valid`, e);
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return invalidToken('invalid_key', 'the token is not signed with RS256', e);
  return invalidToken('invalid_request', 'the token is not a valid signed JWT', e);
}
