// Whether an account can serve a model now, and if not, why: the one decision
// selection, pinning, the explanations and the views share. No I/O and no
// state of its own: everything it reads is passed in.
import type { ClientHealth } from './client-health.ts';
import type { Cooldown } from './cooldowns.ts';
import type { Entry } from './mirror.ts';
import type { QuotaGuard } from './quota-guard.ts';
import { laneOfService, type LaneService } from './lanes.ts';
import type { ModelCooldowns } from './cooldowns.ts';

/** Why an account cannot serve, in the order they are checked ('no_lane': it has no lane of the service asked for; never for the Gemini API). */
export type Block = 'disabled' | 'no_lane' | 'quota' | 'proxy_disabled' | 'cooling' | 'backoff' | 'client' | 'scope';

/** The account's own (5xx) cooldowns on one service. */
export function ownCooldowns(e: Entry, service: LaneService): ModelCooldowns {
  return service === 'gemini_api' ? e.cooldowns : e.vertexCooldowns;
}

export interface Eligibility {
  /** A token with less than this left is refreshed before it is handed out. */
  readonly marginMs: number;
  readonly quota: QuotaGuard;
  readonly clients: ClientHealth;
}

/**
 * The on-demand margin for this account's token: `marginMs`, or a quarter of
 * the token's life when the issuer grants tokens that live less than twice
 * the margin (else a token under a minute old would never be handed out).
 */
export function marginFor(e: Entry, marginMs: number): number {
  const life = e.tokenLifetimeMs;
  return life !== null && life > 0 && life < 2 * marginMs ? life / 4 : marginMs;
}

/** When a background refresh is due: `refreshBeforeMs` before expiry, or half-way through a short-lived token's life. */
export function refreshBeforeFor(e: Entry, refreshBeforeMs: number): number {
  const life = e.tokenLifetimeMs;
  return life !== null && life > 0 && life < 2 * refreshBeforeMs ? life / 2 : refreshBeforeMs;
}

/** The access token cannot be handed out as it is: (about to be) expired, or an upstream rejected it. */
export function tokenUnusable(e: Entry, now: number, marginMs: number): boolean {
  return e.expiresAtMs - now <= marginFor(e, marginMs) || e.rejectedToken === e.account.token.access_token;
}

/** An account whose file records no scope (unknown) is not excluded by a scope rule. */
export function hasAnyScope(e: Entry, scopes: readonly string[]): boolean {
  if (e.scopes.size === 0) return true;
  for (const s of scopes) if (e.scopes.has(s)) return true;
  return false;
}

/** Why this account cannot serve this model on this service now (checked in the documented order), or null. */
export function blockOf(
  e: Entry,
  model: string,
  scopes: readonly string[] | undefined,
  now: number,
  el: Eligibility,
  service: LaneService = 'gemini_api',
): Block | null {
  const a = e.account;
  const lane = service === 'vertex' && e.vertexOff !== null ? null : laneOfService(e, service);
  if (lane === null) return 'no_lane';
  if (a.disabled || e.pendingDisable !== null) return 'disabled';
  if (el.quota.on && el.quota.protects(e, lane, service, model, now)) return 'quota';
  if (a.proxy_disabled || e.pendingProxyDisable !== null) return 'proxy_disabled';
  if (lane.cooldowns.active(model, now) !== null || ownCooldowns(e, service).active(model, now) !== null) return 'cooling';
  if (tokenUnusable(e, now, el.marginMs)) {
    if (e.backoff && now < e.backoff.until) return e.backoff.kind === 'client' ? 'client' : 'backoff';
    if (el.clients.blocked(e.clientKey, now)) return 'client';
  }
  if (scopes && scopes.length > 0 && !hasAnyScope(e, scopes)) return 'scope';
  return null;
}

/** The cooldown that keeps this account from this model now: its own (5xx) or its lane's (429), the later one. */
export function coolingOf(e: Entry, model: string, now: number, service: LaneService = 'gemini_api'): Cooldown | null {
  const own = ownCooldowns(e, service).active(model, now);
  const lane = laneOfService(e, service)?.cooldowns.active(model, now) ?? null;
  if (!own) return lane;
  if (!lane) return own;
  return lane.until > own.until ? lane : own;
}

/** Whether a lane may serve this model now, judged by any of its accounts (what all of them share). */
export function laneOpen(sample: Entry, model: string, now: number, el: Eligibility, service: LaneService = 'gemini_api'): boolean {
  const lane = laneOfService(sample, service);
  if (lane === null) return false; // (vertexOff is the account's own: checked per account)
  if (lane.cooldowns.active(model, now) !== null) return false;
  return !(el.quota.on && el.quota.protects(sample, lane, service, model, now));
}
