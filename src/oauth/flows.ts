// Pending consents: each "add account" gets a one-time random `state` bound
// to its own PKCE verifier, valid for 10 minutes. The callback (or a pasted
// redirect URL) takes the state back exactly once, on whichever gateway it reaches.
import * as oidc from 'openid-client';
import type { Clock } from '../util/clock.ts';
import { systemClock } from '../util/clock.ts';
import { MemorySharedState, type SharedKv } from '../store/shared-state.ts';

export const CONSENT_TTL_MS = 10 * 60 * 1000;
/** How long a used or expired state is remembered, to say "already used" / "expired" instead of "unknown". */
const REMEMBER_MS = 60 * 60 * 1000;
const MAX_FLOWS = 1000;

export interface PendingConsent {
  state: string;
  codeVerifier: string;
  loginHint: string | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export type TakeResult =
  | { ok: true; flow: PendingConsent }
  | { ok: false; reason: 'unknown' | 'used' | 'expired' };

/** What the flows need from the OAuth client. */
export interface ConsentUrlBuilder {
  authorizationUrl(p: { state: string; codeChallenge: string; loginHint?: string }): Promise<string>;
}

/**
 * The pending consents of one OAuth client. They live in a SharedKv: in this
 * process by default, in the database when several gateways share one (a
 * consent started on one gateway finishes on another's callback).
 */
export class ConsentFlows {
  private readonly kv: SharedKv;
  private readonly ns: string;
  private readonly oauth: ConsentUrlBuilder;
  private readonly clock: Clock;
  private readonly ttlMs: number;

  constructor(opts: { oauth: ConsentUrlBuilder; clock?: Clock; ttlMs?: number; kv?: SharedKv; clientId?: string }) {
    this.oauth = opts.oauth;
    this.clock = opts.clock ?? systemClock;
    this.ttlMs = opts.ttlMs ?? CONSENT_TTL_MS;
    this.kv = opts.kv ?? new MemorySharedState({ now: () => this.clock.now(), maxEntries: MAX_FLOWS }).kv;
    // Pending consents belong to the OAuth client that started them.
    this.ns = `oauth_flow:${opts.clientId ?? ''}`;
  }

  /** A new consent: its state and the URL to open in a browser. */
  async start(opts: { loginHint?: string } = {}): Promise<{ state: string; authUrl: string; expiresAt: number }> {
    const state = oidc.randomState();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const codeChallenge = await oidc.calculatePKCECodeChallenge(codeVerifier);
    const loginHint = opts.loginHint?.trim() || undefined;
    const authUrl = await this.oauth.authorizationUrl({ state, codeChallenge, loginHint });
    const now = this.clock.now();
    const flow: PendingConsent = {
      state,
      codeVerifier,
      loginHint: loginHint ?? null,
      createdAt: now,
      expiresAt: now + this.ttlMs,
      usedAt: null,
    };
    await this.kv.set(this.ns, state, flow, flow.expiresAt + REMEMBER_MS);
    return { state, authUrl, expiresAt: flow.expiresAt };
  }

  /** Takes a state back, once (on any gateway). Distinguishes unknown, already used and expired. */
  take(state: string): Promise<TakeResult> {
    const now = this.clock.now();
    return this.kv.update<PendingConsent, TakeResult>(this.ns, state, (flow) => {
      if (!flow) return { result: { ok: false, reason: 'unknown' } };
      if (flow.usedAt !== null) return { result: { ok: false, reason: 'used' } };
      if (now >= flow.expiresAt) return { result: { ok: false, reason: 'expired' } };
      const used = { ...flow, usedAt: now };
      return { value: used, expiresAtMs: now + REMEMBER_MS, result: { ok: true, flow: used } };
    });
  }
}
