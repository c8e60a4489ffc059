// Pending consents: each "add account" gets a one-time random `state` bound
// to its own PKCE verifier, valid for 10 minutes. The callback (or a pasted
// redirect URL) takes the state back exactly once.
import * as oidc from 'openid-client';
import type { Clock } from '../util/clock.ts';
import { systemClock } from '../util/clock.ts';

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

export class ConsentFlows {
  private readonly flows = new Map<string, PendingConsent>();
  private readonly oauth: ConsentUrlBuilder;
  private readonly clock: Clock;
  private readonly ttlMs: number;

  constructor(opts: { oauth: ConsentUrlBuilder; clock?: Clock; ttlMs?: number }) {
    this.oauth = opts.oauth;
    this.clock = opts.clock ?? systemClock;
    this.ttlMs = opts.ttlMs ?? CONSENT_TTL_MS;
  }

  /** A new consent: its state and the URL to open in a browser. */
  async start(opts: { loginHint?: string } = {}): Promise<{ state: string; authUrl: string; expiresAt: number }> {
    const state = oidc.randomState();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const codeChallenge = await oidc.calculatePKCECodeChallenge(codeVerifier);
    const loginHint = opts.loginHint?.trim() || undefined;
    const authUrl = await this.oauth.authorizationUrl({ state, codeChallenge, loginHint });
    const now = this.clock.now();
    this.prune(now);
    const flow: PendingConsent = {
      state,
      codeVerifier,
      loginHint: loginHint ?? null,
      createdAt: now,
      expiresAt: now + this.ttlMs,
      usedAt: null,
    };
    this.flows.set(state, flow);
    return { state, authUrl, expiresAt: flow.expiresAt };
  }

  /** Takes a state back, once. Distinguishes unknown, already used and expired. */
  take(state: string): TakeResult {
    const now = this.clock.now();
    const flow = this.flows.get(state);
    if (!flow) return { ok: false, reason: 'unknown' };
    if (flow.usedAt !== null) return { ok: false, reason: 'used' };
    if (now >= flow.expiresAt) return { ok: false, reason: 'expired' };
    flow.usedAt = now;
    return { ok: true, flow };
  }

  /** Number of consents that can still be finished. */
  get pending(): number {
    const now = this.clock.now();
    let n = 0;
    for (const f of this.flows.values()) if (f.usedAt === null && now < f.expiresAt) n++;
    return n;
  }

  private prune(now: number): void {
    for (const [state, f] of this.flows) {
      if (now - Math.max(f.expiresAt, f.usedAt ?? 0) > REMEMBER_MS) this.flows.delete(state);
    }
    // Bounded: drop the oldest when someone starts consents in a loop.
    while (this.flows.size >= MAX_FLOWS) {
      const oldest = this.flows.keys().next().value;
      if (oldest === undefined) break;
      this.flows.delete(oldest);
    }
  }
}
