// Handing out leases: pick an account that can serve (selection over the
// eligibility rules), refresh its token first when it is (about to be)
// unusable, move on to the next account when that fails, and say why when
// nothing is left. A request names the services it may use in order of
// preference: the lanes of the first are tried before those of the next.
// Also the retry after an upstream 401.
import type { Clock } from '../util/clock.ts';
import { blockOf, laneOpen, refreshBeforeFor, tokenUnusable, type Eligibility } from './eligibility.ts';
import { nothingCanServe, pinnedUnusable, stillLoading } from './explain.ts';
import type { LoadProgress } from '../store/store.ts';
import { staticallyOut, type Entry, type Mirror } from './mirror.ts';
import type { RefreshScheduler } from './scheduler.ts';
import type { Selector } from './selection.ts';
import { DEFAULT_SERVICES, laneOfService, type LaneService } from './lanes.ts';
import { NoAccountError, type AcquireRequest, type Lease } from './types.ts';

/** Refreshes one acquire() may wait on and see fail before it takes only ready tokens. */
const MAX_REFRESH_FAILURES_PER_ACQUIRE = 3;

export interface LeaserOptions {
  mirror: Mirror;
  /** One selector per service: the accounts with a lane of that service, in rings per lane. */
  selectors: Readonly<Record<LaneService, Selector<Entry>>>;
  el: Eligibility;
  scheduler: RefreshScheduler;
  clock: Clock;
  /** A token with less than this left gets a background refresh when it is handed out. */
  refreshBeforeMs: number;
  /** The store's first load while it runs (null once every account is read): until then, "nothing can serve" means "not yet". */
  loading: () => LoadProgress | null;
}

/** A lease of this account on its lane of this service (null: it has no such lane). */
export function leaseOf(e: Entry, service: LaneService = 'gemini_api'): Lease | null {
  const a = e.account;
  const lane = laneOfService(e, service);
  if (!lane) return null;
  return { accountId: a.id, email: a.email, projectId: a.project_id, accessToken: a.token.access_token, service, lane: lane.key };
}

/** The scopes an account needs for this request on this service. */
export function scopesFor(req: AcquireRequest, service: LaneService): readonly string[] | undefined {
  return req.scopesByService?.[service] ?? req.anyOfScopes;
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
  const { mirror, selectors, el, scheduler, clock, refreshBeforeMs, loading } = opts;
  const marginMs = el.marginMs;

  async function acquire(req: AcquireRequest): Promise<Lease> {
    const services = req.services && req.services.length > 0 ? req.services : DEFAULT_SERVICES;
    if (req.pinned !== undefined && req.pinned !== '') return acquirePinned(req, services);
    const model = req.model ?? '';
    let tried: Set<string> | null = null;
    for (const service of services) {
      const selector = selectors[service];
      if (selector.size === 0) continue;
      const scopes = scopesFor(req, service);
      for (;;) {
        const now = clock.now();
        const exclude = req.exclude;
        const excludeHere = req.excludeOn?.[service];
        // After a few failed refreshes (the token endpoint is slow or down), one
        // request stops waiting on refreshes and takes only ready tokens.
        const readyOnly = tried !== null && tried.size >= MAX_REFRESH_FAILURES_PER_ACQUIRE;
        const e = selector.pick(
          (x) =>
            (exclude === undefined || !exclude.has(x.id)) &&
            (excludeHere === undefined || !excludeHere.has(x.id)) &&
            (tried === null || !tried.has(x.id)) &&
            blockOf(x, model, scopes, now, el, service) === null &&
            (!readyOnly || !tokenUnusable(x, now, marginMs)),
          req.sessionKey,
          (sample) => laneOpen(sample, model, now, el, service),
        );
        if (!e) break;
        const lease = await leaseFor(e, model, scopes, service);
        if (lease) return lease;
        (tried ??= new Set()).add(e.id);
      }
    }
    const progress = loading();
    throw progress ? stillLoading(progress) : nothingCanServe(mirror.values(), mirror.size, req, clock.now(), el);
  }

  async function refreshAfterUnauthorized(lease: Lease): Promise<Lease | null> {
    const e = mirror.get(lease.accountId);
    if (!e || staticallyOut(e)) return null;
    const service = lease.service ?? 'gemini_api';
    if (e.account.token.access_token !== lease.accessToken && !tokenUnusable(e, clock.now(), marginMs)) {
      return leaseOf(e, service);
    }
    if (e.account.token.access_token === lease.accessToken) e.rejectedToken = lease.accessToken;
    for (let i = 0; i < 2; i++) {
      const attempt = await scheduler.refresh(e, true, lease.accessToken);
      if (!attempt.ok) return null;
      const live = mirror.get(e.id);
      if (!live || staticallyOut(live)) return null;
      if (live.account.token.access_token !== lease.accessToken && !tokenUnusable(live, clock.now(), marginMs)) {
        return leaseOf(live, service);
      }
      // joined a refresh that adopted the very token that was rejected: force one of our own
    }
    return null;
  }

  async function acquirePinned(req: AcquireRequest, services: readonly LaneService[]): Promise<Lease> {
    const ref = req.pinned!;
    const e = mirror.find(ref);
    if (!e) {
      const progress = loading();
      if (progress) throw stillLoading(progress);
      throw new NoAccountError(
        'pinned_unknown',
        `No account matches "${ref}" (X-Grantpool-Account takes an account's email or id; GET /api/accounts lists them).`,
        404,
      );
    }
    if (req.exclude?.has(e.id)) {
      throw new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} was already tried for this request and failed.`, 503);
    }
    const model = req.model ?? '';
    // the first service on which the pinned account can serve now; else why not on the first one it has a lane for
    let first: { service: LaneService; block: NonNullable<ReturnType<typeof blockOf>> } | null = null;
    for (const service of services) {
      if (req.excludeOn?.[service]?.has(e.id)) continue;
      const scopes = scopesFor(req, service);
      const b = blockOf(e, model, scopes, clock.now(), el, service);
      if (b === null) {
        const lease = await leaseFor(e, model, scopes, service);
        if (lease) return lease;
        const after = blockOf(e, model, scopes, clock.now(), el, service) ?? 'backoff';
        throw pinnedUnusable(e, after, req, clock.now(), el, service);
      }
      if (first === null || (first.block === 'no_lane' && b !== 'no_lane')) first = { service, block: b };
    }
    if (!first) throw new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} was already tried for this request and failed.`, 503);
    throw pinnedUnusable(e, first.block, req, clock.now(), el, first.service);
  }

  /** A lease for an account that may serve: refreshed first when its token is (about to be) unusable. Null: it failed. */
  async function leaseFor(e: Entry, model: string, scopes: readonly string[] | undefined, service: LaneService): Promise<Lease | null> {
    const now = clock.now();
    if (!tokenUnusable(e, now, marginMs)) {
      if (e.expiresAtMs - now < refreshBeforeFor(e, refreshBeforeMs)) {
        if (scheduler.wants(e, now)) scheduler.startBackground(e);
      }
      return leaseOf(e, service);
    }
    const token = e.account.token.access_token;
    const attempt = await scheduler.refresh(e, e.rejectedToken === token, token);
    if (!attempt.ok) return null;
    const live = mirror.get(e.id);
    if (!live) return null;
    // things may have changed while the refresh ran (disabled, cooled down, edited)
    const after = clock.now();
    if (blockOf(live, model, scopes, after, el, service) !== null || tokenUnusable(live, after, marginMs)) return null;
    return leaseOf(live, service);
  }

  return { acquire, refreshAfterUnauthorized };
}
