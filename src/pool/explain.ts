// The texts that say why an account, or the whole pool, cannot serve a
// request: what the client reads in a 429/503 and the API shows as a reason.
// Pure: built from the entries and the eligibility rules passed in.
import { blockOf, coolingOf, hasAnyScope, type Block, type Eligibility } from './eligibility.ts';
import type { Entry } from './mirror.ts';
import { NoAccountError, type AcquireRequest } from './types.ts';

/** When a block ends (epoch ms); `now` for blocks that do not end by themselves. */
export function blockUntil(e: Entry, b: Block, model: string, now: number, el: Eligibility): number {
  if (b === 'cooling') return coolingOf(e, model, now)?.until ?? now + 1000;
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

export function describeBlock(e: Entry, b: Block, model: string, now: number, el: Eligibility): string {
  switch (b) {
    case 'disabled':
      return e.account.disabled_reason ?? (e.pendingDisable ? 'invalid_grant' : 'disabled');
    case 'proxy_disabled':
      return e.account.proxy_disabled_reason ?? e.pendingProxyDisable ?? 'taken out of the proxy';
    case 'quota':
      return `quota protection for ${model} until ${new Date(el.quota.day(now).end).toISOString()}`;
    case 'cooling': {
      const c = coolingOf(e, model, now);
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

/** Why the pinned account cannot serve this request. */
export function pinnedUnusable(e: Entry, b: Block, req: AcquireRequest, now: number, el: Eligibility): NoAccountError {
  const model = req.model ?? '';
  const why = describeBlock(e, b, model, now, el);
  if (b === 'cooling' || b === 'quota' || b === 'backoff') {
    const until = blockUntil(e, b, model, now, el);
    return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} cannot serve now: ${why}`, 429, retryAfter(until, now));
  }
  if (b === 'scope') {
    return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} lacks the scope this route needs (one of: ${(req.anyOfScopes ?? []).join(', ')}).`, 503);
  }
  return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} cannot serve: ${b === 'disabled' ? 'disabled: ' : b === 'proxy_disabled' ? 'taken out of the proxy: ' : ''}${why}`, 503);
}

/** Why no account can serve this request: the most useful of the reasons, with Retry-After when waiting helps. */
export function nothingCanServe(entries: Iterable<Entry>, count: number, req: AcquireRequest, now: number, el: Eligibility): NoAccountError {
  const model = req.model ?? '';
  const scopes = req.anyOfScopes ?? [];
  if (count === 0) {
    return new NoAccountError('no_accounts', 'No Google account is connected to Grantpool. Add one in the dashboard or with `grantpool accounts add`.', 503);
  }
  const disabledReasons = new Map<string, number>();
  const proxyReasons = new Map<string, number>();
  let candidates = 0;
  let disabled = 0;
  let proxyDisabled = 0;
  let waiting = 0;
  let earliest = Infinity;
  const waitReasons = new Set<string>();
  const failingClients = new Map<string, string>();
  let usedUp = 0;
  for (const e of entries) {
    if (scopes.length > 0 && !hasAnyScope(e, scopes)) continue;
    candidates++;
    const b = blockOf(e, model, undefined, now, el);
    if (b === 'disabled') {
      disabled++;
      const r = describeBlock(e, b, model, now, el);
      disabledReasons.set(r, (disabledReasons.get(r) ?? 0) + 1);
    } else if (b === 'proxy_disabled') {
      proxyDisabled++;
      const r = describeBlock(e, b, model, now, el);
      proxyReasons.set(r, (proxyReasons.get(r) ?? 0) + 1);
    } else if (b === 'cooling' || b === 'quota' || b === 'backoff') {
      waiting++;
      earliest = Math.min(earliest, blockUntil(e, b, model, now, el));
      waitReasons.add(b === 'cooling' ? (coolingOf(e, model, now)?.reason ?? 'cooling down') : b === 'quota' ? 'quota protection' : 'token refresh retry');
    } else if (b === 'client') {
      if (!failingClients.has(e.clientKey)) failingClients.set(e.clientKey, describeBlock(e, b, model, now, el));
    } else {
      usedUp++; // servable, but excluded or already tried by this request
    }
  }
  if (candidates === 0) {
    return new NoAccountError(
      'no_scope',
      `No account has the OAuth scope this route needs (one of: ${scopes.join(', ')}). Re-add an account and grant that access on Google's consent screen.`,
      503,
    );
  }
  if (waiting > 0) {
    const secs = retryAfter(earliest, now);
    return new NoAccountError(
      'all_cooling_down',
      `All ${waiting} account(s) that could serve ${model || 'this request'} are cooling down (${[...waitReasons].slice(0, 3).join('; ')}); the first is available again at ${new Date(earliest).toISOString()} (in ${secs} s).`,
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
  return new NoAccountError('exhausted', 'Every account that could serve this request was tried and failed.', 503);
}
