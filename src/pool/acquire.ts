// Handing out leases: pick an account that can serve (selection over the
// eligibility rules), refresh its token first when it is (about to be)
// unusable, move on to the next account when that fails, and say why when
// nothing is left. Also the retry after an upstream 401.
import type { Clock } from '../util/clock.ts';
import { blockOf, laneOpen, refreshBeforeFor, tokenUnusable, type Eligibility } from './eligibility.ts';
import { nothingCanServe, pinnedUnusable } from './explain.ts';
import { staticallyOut, type Entry, type Mirror } from './mirror.ts';
import type { RefreshScheduler } from './scheduler.ts';
import type { Selector } from './selection.ts';
import { NoAccountError, type AcquireRequest, type Lease } from './types.ts';

/** Refreshes one acquire() may wait on and see fail before it takes only ready tokens. */
const MAX_REFRESH_FAILURES_PER_ACQUIRE = 3;

export interface LeaserOptions {
  mirror: Mirror;
  selector: Selector<Entry>;
  el: Eligibility;
  scheduler: RefreshScheduler;
  clock: Clock;
  /** A token with less than this left gets a background refresh when it is handed out. */
  refreshBeforeMs: number;
}

export function leaseOf(e: Entry): Lease {
  const a = e.account;
  return { accountId: a.id, email: a.email, projectId: a.project_id, accessToken: a.token.access_token, lane: e.lane.key };
}

export interface Leaser {
  acquire(req: AcquireRequest): Promise<Lease>;
  /**
   * After an upstream 401: refresh this account once (shared with concurrent
   * callers) and return a fresh lease, or null when it can no longer serve.
   */
  refreshAfterUnauthorized(lease: Lease): Promise<Lease | null>;
}

// A closure rather than a class: the hot path (acquire -> leaseFor) then reads
// its collaborators from constants, and V8 inlines leaseFor into acquire.
export function createLeaser(opts: LeaserOptions): Leaser {
  const { mirror, selector, el, scheduler, clock, refreshBeforeMs } = opts;
  const marginMs = el.marginMs;

  async function acquire(req: AcquireRequest): Promise<Lease> {
    if (req.pinned !== undefined && req.pinned !== '') return acquirePinned(req);
    const model = req.model ?? '';
    const scopes = req.anyOfScopes;
    let tried: Set<string> | null = null;
    for (;;) {
      const now = clock.now();
      const exclude = req.exclude;
      // After a few failed refreshes (the token endpoint is slow or down), one
      // request stops waiting on refreshes and takes only ready tokens.
      const readyOnly = tried !== null && tried.size >= MAX_REFRESH_FAILURES_PER_ACQUIRE;
      const e = selector.pick(
        (x) =>
          (exclude === undefined || !exclude.has(x.id)) &&
          (tried === null || !tried.has(x.id)) &&
          blockOf(x, model, scopes, now, el) === null &&
          (!readyOnly || !tokenUnusable(x, now, marginMs)),
        req.sessionKey,
        (sample) => laneOpen(sample, model, now, el),
      );
      if (!e) throw nothingCanServe(mirror.values(), mirror.size, req, clock.now(), el);
      const lease = await leaseFor(e, model, scopes);
      if (lease) return lease;
      (tried ??= new Set()).add(e.id);
    }
  }

  async function refreshAfterUnauthorized(lease: Lease): Promise<Lease | null> {
    const e = mirror.get(lease.accountId);
    if (!e || staticallyOut(e)) return null;
    if (e.account.token.access_token !== lease.accessToken && !tokenUnusable(e, clock.now(), marginMs)) {
      return leaseOf(e);
    }
    if (e.account.token.access_token === lease.accessToken) e.rejectedToken = lease.accessToken;
    for (let i = 0; i < 2; i++) {
      const attempt = await scheduler.refresh(e, true, lease.accessToken);
      if (!attempt.ok) return null;
      const live = mirror.get(e.id);
      if (!live || staticallyOut(live)) return null;
      if (live.account.token.access_token !== lease.accessToken && !tokenUnusable(live, clock.now(), marginMs)) {
        return leaseOf(live);
      }
      // joined a refresh that adopted the very token that was rejected: force one of our own
    }
    return null;
  }

  async function acquirePinned(req: AcquireRequest): Promise<Lease> {
    const ref = req.pinned!;
    const e = mirror.find(ref);
    if (!e) {
      throw new NoAccountError(
        'pinned_unknown',
        `No account matches "${ref}" (X-Grantpool-Account takes an account's email or id; GET /api/accounts lists them).`,
        404,
      );
    }
    if (req.exclude?.has(e.id)) {
      throw new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} was already tried for this request and failed.`, 503);
    }
    const b = blockOf(e, req.model ?? '', req.anyOfScopes, clock.now(), el);
    if (b) throw pinnedUnusable(e, b, req, clock.now(), el);
    const lease = await leaseFor(e, req.model ?? '', req.anyOfScopes);
    if (lease) return lease;
    const after = blockOf(e, req.model ?? '', req.anyOfScopes, clock.now(), el) ?? 'backoff';
    throw pinnedUnusable(e, after, req, clock.now(), el);
  }

  /** A lease for an account that may serve: refreshed first when its token is (about to be) unusable. Null: it failed. */
  async function leaseFor(e: Entry, model: string, scopes: readonly string[] | undefined): Promise<Lease | null> {
    const now = clock.now();
    if (!tokenUnusable(e, now, marginMs)) {
      if (e.expiresAtMs - now < refreshBeforeFor(e, refreshBeforeMs)) {
        if (scheduler.wants(e, now)) scheduler.startBackground(e);
      }
      return leaseOf(e);
    }
    const token = e.account.token.access_token;
    const attempt = await scheduler.refresh(e, e.rejectedToken === token, token);
    if (!attempt.ok) return null;
    const live = mirror.get(e.id);
    if (!live) return null;
    // things may have changed while the refresh ran (disabled, cooled down, edited)
    const after = clock.now();
    if (blockOf(live, model, scopes, after, el) !== null || tokenUnusable(live, after, marginMs)) return null;
    return leaseOf(live);
  }

  return { acquire, refreshAfterUnauthorized };
}
