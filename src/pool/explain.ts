// The texts that say why an account, or the whole pool, cannot serve a
// request: what the client reads in a 429/503 and the API shows as a reason.
// Pure: built from the entries and the eligibility rules passed in.
import { blockOf, coolingOf, hasAnyScope, type Block, type Eligibility } from './eligibility.ts';
import type { Entry } from './mirror.ts';
import { DEFAULT_SERVICES, serviceName, type LaneService } from './lanes.ts';
import { NoAccountError, type AcquireRequest } from './types.ts';
import type { LoadProgress } from '../store/store.ts';

/** When a block ends (epoch ms); `now` for blocks that do not end by themselves. */
export function blockUntil(e: Entry, b: Block, model: string, now: number, el: Eligibility, service: LaneService = 'gemini_api'): number {
  if (b === 'cooling') return coolingOf(e, model, now, service)?.until ?? now + 1000;
  if (b === 'quota') return el.quota.day(now).end;
  if (b === 'backoff') return e.backoff?.until ?? now + 1000;
  if (b === 'client') {
    if (e.backoff?.kind === 'client' && now < e.backoff.until) return e.backoff.until;
    return el.clients.failure(e.clientKey)?.nextRetryAt ?? now + 1000;
  }
  return now;
}

/** Seconds for Retry-After: at least 1. */
export function retryAfter(untilMs: number, now: number): number {
  return Math.max(1, Math.ceil((untilMs - now) / 1000));
}

export function describeBlock(e: Entry, b: Block, model: string, now: number, el: Eligibility, service: LaneService = 'gemini_api'): string {
  switch (b) {
    case 'no_lane':
      if (service === 'vertex' && e.vertexOff !== null) return e.vertexOff;
      if (service === 'vertex' && e.account.project?.vertex_ai_reason && e.account.project.vertex_ai !== 'enabled') return e.account.project.vertex_ai_reason;
      return service === 'vertex'
        ? e.account.project_id
          ? `Vertex AI is not enabled in its project ${e.account.project_id} (grantpool accounts project ${e.account.email} --enable-vertex ${e.account.project_id})`
          : `it has no project, and Vertex AI needs one (grantpool accounts project ${e.account.email})`
        : `it has no lane on ${serviceName(service)}`;
    case 'disabled':
      return e.account.disabled_reason ?? (e.pendingDisable ? 'invalid_grant' : 'disabled');
    case 'proxy_disabled':
      return e.account.proxy_disabled_reason ?? e.pendingProxyDisable ?? 'taken out of the proxy';
    case 'quota':
      return `quota protection for ${model} until ${new Date(el.quota.day(now).end).toISOString()}`;
    case 'cooling': {
      const c = coolingOf(e, model, now, service);
      return `cooling down until ${new Date(c?.until ?? now).toISOString()}: ${c?.reason ?? ''}`;
    }
    case 'backoff':
      return `${e.backoff?.reason ?? 'token refresh failed'}; retrying at ${new Date(e.backoff?.until ?? now).toISOString()}`;
    case 'client': {
      const f = el.clients.failure(e.clientKey);
      if (f) return `OAuth client ${e.clientKey} is misconfigured (${f.error}): ${f.fix}`;
      return e.backoff?.reason ?? `OAuth client ${e.clientKey} is misconfigured`;
    }
    case 'scope':
      return `the account was not granted the scope this route needs`;
  }
}

/** Why the pinned account cannot serve this request (on this service). */
export function pinnedUnusable(e: Entry, b: Block, req: AcquireRequest, now: number, el: Eligibility, service: LaneService = 'gemini_api'): NoAccountError {
  const model = req.model ?? '';
  const why = describeBlock(e, b, model, now, el, service);
  if (b === 'no_lane') return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} cannot serve ${serviceName(service)}: ${why}.`, 503);
  if (b === 'cooling' || b === 'quota' || b === 'backoff') {
    const until = blockUntil(e, b, model, now, el, service);
    return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} cannot serve now: ${why}`, 429, retryAfter(until, now));
  }
  if (b === 'scope') {
    return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} lacks the scope this route needs (one of: ${(req.anyOfScopes ?? []).join(', ')}).`, 503);
  }
  return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} cannot serve: ${b === 'disabled' ? 'disabled: ' : b === 'proxy_disabled' ? 'taken out of the proxy: ' : ''}${why}`, 503);
}

/**
 * While the store still reads its accounts (a gateway with many starts
 * serving before every one is read): none read so far can serve this request,
 * one not yet read may. A 503 with Retry-After, in the door's shape.
 */
export function stillLoading(progress: LoadProgress): NoAccountError {
  return new NoAccountError(
    'loading',
    `Grantpool is still reading its accounts (${progress.loaded} of ${progress.total} so far) and none of those can serve this request yet; try again in a moment.`,
    503,
    1,
  );
}

/** Blocks ranked by how soon they may lift: the one an account is counted under when several services are asked for. */
const HOPE: Record<Block, number> = { no_lane: 0, disabled: 1, proxy_disabled: 2, scope: 3, client: 4, backoff: 5, quota: 5, cooling: 5 };

/**
 * Why no account can serve this request on any of the services it may use:
 * the most useful of the reasons, with Retry-After when waiting helps.
 */
export function nothingCanServe(entries: Iterable<Entry>, count: number, req: AcquireRequest, now: number, el: Eligibility): NoAccountError {
  const model = req.model ?? '';
  const services = req.services && req.services.length > 0 ? req.services : DEFAULT_SERVICES;
  if (count === 0) {
    return new NoAccountError('no_accounts', 'No Google account is connected to Grantpool. Add one in the dashboard or with `grantpool accounts add`.', 503);
  }
  const disabledReasons = new Map<string, number>();
  const proxyReasons = new Map<string, number>();
  let withLane = 0;
  let candidates = 0;
  let disabled = 0;
  let proxyDisabled = 0;
  let waiting = 0;
  let earliest = Infinity;
  const waitReasons = new Set<string>();
  const failingClients = new Map<string, string>();
  let usedUp = 0;
  let scopesAsked: readonly string[] = [];
  for (const e of entries) {
    // the most hopeful of the account's services: null (servable) > waiting > client > out
    let best: { b: Block | null; service: LaneService } | null = null;
    let laned = false;
    for (const service of services) {
      const scopes = req.scopesByService?.[service] ?? req.anyOfScopes ?? [];
      const b0 = blockOf(e, model, undefined, now, el, service);
      if (b0 === 'no_lane') continue;
      laned = true;
      if (scopes.length > 0 && !hasAnyScope(e, scopes)) {
        if (scopesAsked.length === 0) scopesAsked = scopes;
        continue;
      }
      if (b0 === null) {
        best = { b: null, service };
        break;
      }
      if (best === null || HOPE[b0] > HOPE[best.b!] || (HOPE[b0] === 5 && HOPE[best.b!] === 5 && blockUntil(e, b0, model, now, el, service) < blockUntil(e, best.b!, model, now, el, best.service))) {
        best = { b: b0, service };
      }
    }
    if (laned) withLane++;
    if (best === null) continue;
    candidates++;
    const { b, service } = best;
    if (b === 'disabled') {
      disabled++;
      const r = describeBlock(e, b, model, now, el, service);
      disabledReasons.set(r, (disabledReasons.get(r) ?? 0) + 1);
    } else if (b === 'proxy_disabled') {
      proxyDisabled++;
      const r = describeBlock(e, b, model, now, el, service);
      proxyReasons.set(r, (proxyReasons.get(r) ?? 0) + 1);
    } else if (b === 'cooling' || b === 'quota' || b === 'backoff') {
      waiting++;
      earliest = Math.min(earliest, blockUntil(e, b, model, now, el, service));
      waitReasons.add(b === 'cooling' ? (coolingOf(e, model, now, service)?.reason ?? 'cooling down') : b === 'quota' ? 'quota protection' : 'token refresh retry');
    } else if (b === 'client') {
      if (!failingClients.has(e.clientKey)) failingClients.set(e.clientKey, describeBlock(e, b, model, now, el, service));
    } else {
      usedUp++; // servable, but excluded or already tried by this request
    }
  }
  const on = services.length === 1 && services[0] === 'gemini_api' ? '' : ` on ${services.map(serviceName).join(' or ')}`;
  if (withLane === 0) {
    return new NoAccountError(
      'no_service',
      `No account can serve ${model || 'this request'}${on}: ${services.includes('vertex') ? "no account's project has the Vertex AI API (aiplatform.googleapis.com) enabled. Enable it with `grantpool accounts project <email> --enable-vertex <project>` (or on the dashboard)" : 'no account has a lane there'}.`,
      503,
    );
  }
  if (candidates === 0) {
    return new NoAccountError(
      'no_scope',
      `No account has the OAuth scope this route needs${on} (one of: ${scopesAsked.join(', ')}). Re-add an account and grant that access on Google's consent screen.`,
      503,
    );
  }
  if (waiting > 0) {
    const secs = retryAfter(earliest, now);
    return new NoAccountError(
      'all_cooling_down',
      `All ${waiting} account(s) that could serve ${model || 'this request'}${on} are cooling down (${[...waitReasons].slice(0, 3).join('; ')}); the first is available again at ${new Date(earliest).toISOString()} (in ${secs} s).`,
      429,
      secs,
    );
  }
  if (failingClients.size > 0) {
    return new NoAccountError(
      'client_misconfigured',
      `The OAuth client is misconfigured, so no access token can be refreshed: ${[...failingClients.values()].join(' | ')}`,
      503,
    );
  }
  if (usedUp === 0) {
    const parts: string[] = [];
    if (disabled > 0) parts.push(`${disabled} disabled (${[...disabledReasons].map(([r, n]) => `${n}× ${r}`).join('; ')})`);
    if (proxyDisabled > 0) parts.push(`${proxyDisabled} taken out of the proxy (${[...proxyReasons].map(([r, n]) => `${n}× ${r}`).join('; ')})`);
    return new NoAccountError(
      'all_disabled',
      `All ${candidates} account(s) are unusable: ${parts.join(', ')}. Re-add disabled accounts with new credentials (dashboard or \`grantpool accounts add\`).`,
      503,
    );
  }
  return new NoAccountError('exhausted', `Every account that could serve this request${on} was tried and failed.`, 503);
}
