// The live token pool: the in-memory view of the account store that the proxy
// asks for "a valid access token for model M (and session S)". It composes the
// small modules next to it: selection (which account), refresh (single-flight
// refresh under the store lock), error-policy (what a failure means),
// cooldowns and client-health (when to try again), quota + usage (daily
// reserve). The store stays the source of truth: every persistent decision
// (disabled, proxy_disabled, new token, last_used) is written through it, and
// every change in it (this process, the CLI, an editor) is applied here.
import type { Account } from '../store/account.ts';
import { unixNow } from '../store/account.ts';
import type { AccountStore } from '../store/store.ts';
import type { TokenRefresher } from '../oauth/refresh-error.ts';
import type { Config } from '../config/schema.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../log/logger.ts';
import { Selector } from './selection.ts';
import { ModelCooldowns, backoffMs, type RefreshBackoff } from './cooldowns.ts';
import { ClientHealth, clientKey, DEFAULT_CLIENT_RETRY_MS, type ClientFailure } from './client-health.ts';
import { boundedReason, clientFixText, invalidGrantReason, type RefreshFailure } from './error-policy.ts';
import { SingleFlight, refreshUnderLock, type RefreshAttempt } from './refresh.ts';
import { QuotaDayCache, QuotaLimits, isQuotaProtected, quotaDayKeyBefore } from './quota.ts';
import { MemoryUsageStore, type UsageStore } from './usage.ts';
import {
  NoAccountError,
  type AccountState,
  type AcquireRequest,
  type Lease,
  type TokenPool,
  type UpstreamOutcome,
} from './types.ts';

export type PoolConfig = Pick<
  Config,
  | 'strategy'
  | 'session_affinity'
  | 'refresh_before_seconds'
  | 'refresh_backoff_min_seconds'
  | 'refresh_backoff_max_seconds'
  | 'server_error_cooldown_seconds'
  | 'quota_protection'
>;

export interface PoolOptions {
  store: AccountStore;
  refresher: TokenRefresher;
  config: PoolConfig;
  clock: Clock;
  logger: Logger;
  /** Usage counts (quota protection, dashboard). Default: in memory. */
  usage?: UsageStore;
  /** Background refresh timer period; 0 turns the timer off (tests call tick()). Default 5000. */
  backgroundIntervalMs?: number;
  /** Background refreshes running at once. Default 8. */
  backgroundConcurrency?: number;
  /** A token with less than this left is refreshed before it is handed out. Default 60 s (at most refresh_before_seconds). */
  onDemandMarginSeconds?: number;
  /** Retry interval for an OAuth client that failed with invalid_client / unauthorized_client. Default 5 min. */
  clientRetryMs?: number;
  /** last_used is written at most this often per account. Default 60 s. */
  lastUsedPersistMs?: number;
  /** Two last_used writes (of any accounts) start at least this far apart. Default 1 s. */
  lastUsedWriteGapMs?: number;
  /** Session bindings kept. Default 10,000. */
  maxSessions?: number;
  /** Jitter source (tests pass a seeded one). */
  random?: () => number;
  /** Usage days kept. Default 90. */
  usageRetentionDays?: number;
}

export interface PoolSummary {
  total: number;
  by_state: Record<AccountState['state'], number>;
  refreshing: number;
  failing_clients: { client_id: string; error: string; description: string; fix: string; since: number; next_retry_at: number }[];
}

export interface UsageRow {
  date: string;
  account_id: string;
  email: string;
  model: string;
  requests: number;
  tokens_in: number;
  tokens_out: number;
}

export interface Pool extends TokenPool {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One background pass: proactive refreshes (the timer calls it; tests call it with a fake clock). */
  tick(): void;
  stateOf(id: string): AccountState | null;
  /** The live state of an account from the store (falls back to its file flags when the pool has not seen it yet). */
  accountState(account: Account): AccountState;
  /** Called with an account id whenever its live state may have changed. Returns unsubscribe. */
  onStateChange(listener: (accountId: string) => void): () => void;
  states(): { id: string; email: string; state: AccountState }[];
  summary(): PoolSummary;
  /** Usage rows of the last `days` quota days (today included), optionally for one account. */
  usage(opts?: { days?: number; accountId?: string }): UsageRow[];
  /** Today's usage of one account, summed over models. */
  usageToday(accountId: string): { requests: number; tokens: number };
  /** OAuth clients that currently fail (invalid_client / unauthorized_client). */
  failingClients(): ClientFailure[];
  /** Forget OAuth client failures (e.g. after a new client_secret.json was saved): they are tried at once. */
  resetClientFailures(clientId?: string): void;
  /** Ids with a refresh in flight (for tests and the dashboard). */
  refreshingIds(): string[];
  /** Every account as the pool last saw it in the store (no I/O). */
  accounts(): Account[];
  /** Number of accounts known. */
  readonly size: number;
}

interface Entry {
  readonly id: string;
  account: Account;
  emailLower: string;
  /** Granted scopes (shared by every account with the same scope string: read-only). */
  scopes: ReadonlySet<string>;
  clientKey: string;
  expiresAtMs: number;
  cooldowns: ModelCooldowns;
  backoff: RefreshBackoff | null;
  /** An access token an upstream answered 401 to: not handed out again. */
  rejectedToken: string | null;
  /** Refresh token that got invalid_grant, until the store shows the account disabled. */
  pendingDisable: string | null;
  /** proxy_disabled reason decided here, until the store shows it. */
  pendingProxyDisable: string | null;
  lastUsedPersistedMs: number;
}

type Block = 'disabled' | 'quota' | 'proxy_disabled' | 'cooling' | 'backoff' | 'client' | 'scope';

/** Refreshes one acquire() may wait on and see fail before it takes only ready tokens. */
const MAX_REFRESH_FAILURES_PER_ACQUIRE = 3;

const NO_SCOPES: ReadonlySet<string> = new Set();
/** One set per distinct scope string (thousands of accounts usually share a handful); bounded. */
const scopeSets = new Map<string, ReadonlySet<string>>();

function scopeSet(scope: string): ReadonlySet<string> {
  let set = scopeSets.get(scope);
  if (!set) {
    set = new Set(scope.split(/\s+/).filter(Boolean));
    if (scopeSets.size < 1000) scopeSets.set(scope, set);
  }
  return set;
}

export function createPool(opts: PoolOptions): Pool {
  const { store, refresher, clock, logger } = opts;
  const cfg = opts.config;
  const usage = opts.usage ?? new MemoryUsageStore();
  const random = opts.random ?? Math.random;
  const refreshBeforeMs = cfg.refresh_before_seconds * 1000;
  const marginMs = Math.min(opts.onDemandMarginSeconds ?? 60, cfg.refresh_before_seconds) * 1000;
  const lastUsedPersistMs = opts.lastUsedPersistMs ?? 60_000;
  const lastUsedWriteGapMs = opts.lastUsedWriteGapMs ?? 1000;
  const backgroundConcurrency = opts.backgroundConcurrency ?? 8;
  const retentionDays = opts.usageRetentionDays ?? 90;
  const quota = cfg.quota_protection;
  const quotaOn = !!quota?.enabled && Object.keys(quota.limits ?? {}).length > 0;
  const quotaLimits = new QuotaLimits(quota?.limits ?? {});
  const quotaDays = new QuotaDayCache();

  const entries = new Map<string, Entry>();
  const byEmail = new Map<string, string>();
  const selector = new Selector<Entry>({
    strategy: cfg.strategy,
    sessionAffinity: cfg.session_affinity,
    maxSessions: opts.maxSessions,
  });
  const clients = new ClientHealth(opts.clientRetryMs ?? DEFAULT_CLIENT_RETRY_MS);
  const flights = new SingleFlight<RefreshAttempt>();
  let unwatch: (() => void) | null = null;
  const stateListeners = new Set<(accountId: string) => void>();
  function changed(id: string): void {
    for (const l of [...stateListeners]) {
      try {
        l(id);
      } catch (err) {
        logger.warn({ account_id: id, error: (err as Error).message }, 'A pool state listener failed');
      }
    }
  }
  let timer: NodeJS.Timeout | null = null;
  let backgroundRunning = 0;
  let backgroundQueue: string[] = [];
  let stopped = false;
  let lastPruneDay = '';
  /** Ids changed while start() was listing (list() results for them are stale); null once loaded. */
  let changedDuringLoad: Set<string> | null = null;

  // ---- entries: apply the store's view --------------------------------------------------

  /**
   * Takes in the store's view of one account. `notified`: it came from the
   * store's change notification (which, unlike a write's return value, also
   * confirms that a decision made here has reached the store).
   */
  function applyAccount(account: Account, notified = false): void {
    let e = entries.get(account.id);
    if (!e) {
      e = {
        id: account.id,
        account,
        emailLower: '',
        scopes: NO_SCOPES,
        clientKey: '',
        expiresAtMs: 0,
        cooldowns: new ModelCooldowns(),
        backoff: null,
        rejectedToken: null,
        pendingDisable: null,
        pendingProxyDisable: null,
        lastUsedPersistedMs: 0,
      };
      entries.set(account.id, e);
    } else {
      const old = e.account;
      if (old.token.refresh_token !== account.token.refresh_token || old.oauth_client_id !== account.oauth_client_id) {
        // new credentials: whatever went wrong with the old ones no longer applies
        e.backoff = null;
        e.pendingDisable = null;
      }
      if (old.token.access_token !== account.token.access_token) {
        e.rejectedToken = null;
        // a changed access token while disabled is how a re-add looks (SPEC section 4)
        if (!account.disabled) e.pendingDisable = null;
      }
      if (byEmail.get(e.emailLower) === e.id) byEmail.delete(e.emailLower);
      e.account = account;
    }
    // a decision made here stays in force until the store's notification shows it
    // (an older notification still on its way must not undo it)
    if (notified && account.disabled) e.pendingDisable = null;
    if (notified && account.proxy_disabled) e.pendingProxyDisable = null;
    const lower = account.email.toLowerCase();
    e.emailLower = lower === account.email ? account.email : lower; // one string, not two, for most addresses
    byEmail.set(e.emailLower, e.id);
    e.scopes = scopeSet(account.token.scope);
    e.clientKey = clientKey(account.oauth_client_id);
    e.expiresAtMs = account.token.expiry_timestamp * 1000;
    if (account.last_used) e.lastUsedPersistedMs = Math.max(e.lastUsedPersistedMs, account.last_used * 1000);
    syncRing(e);
  }

  function removeEntry(id: string): void {
    const e = entries.get(id);
    if (!e) return;
    entries.delete(id);
    if (byEmail.get(e.emailLower) === id) byEmail.delete(e.emailLower);
    selector.remove(id);
  }

  function staticallyOut(e: Entry): boolean {
    return e.account.disabled || e.pendingDisable !== null || e.account.proxy_disabled || e.pendingProxyDisable !== null;
  }

  function syncRing(e: Entry): void {
    if (staticallyOut(e)) selector.remove(e.id);
    else selector.add(e);
  }

  function onStoreChange(change: { id: string; account: Account | null }): void {
    changedDuringLoad?.add(change.id);
    if (change.account === null) {
      removeEntry(change.id);
      logger.info({ account_id: change.id }, 'Account removed from the pool');
      changed(change.id);
      return;
    }
    const known = entries.get(change.id);
    const wasOut = known ? staticallyOut(known) : true;
    applyAccount(change.account, true);
    const e = entries.get(change.id)!;
    if (wasOut && !staticallyOut(e)) {
      logger.info({ account_id: e.id, email: e.account.email }, `Account ${known ? 'back in' : 'added to'} the pool (${e.account.email})`);
    }
    changed(e.id);
  }

  // ---- eligibility ----------------------------------------------------------------------

  function tokenUnusable(e: Entry, now: number): boolean {
    return e.expiresAtMs - now <= marginMs || e.rejectedToken === e.account.token.access_token;
  }

  function quotaProtected(e: Entry, model: string, now: number): boolean {
    if (!quotaOn) return false;
    const limit = quotaLimits.for(model);
    if (!limit) return false;
    return isQuotaProtected(usage.get(quotaDays.current(now).key, e.id, model), limit, quota.threshold_percent);
  }

  /** An account whose file records no scope (unknown) is not excluded by a scope rule. */
  function hasAnyScope(e: Entry, scopes: readonly string[]): boolean {
    if (e.scopes.size === 0) return true;
    for (const s of scopes) if (e.scopes.has(s)) return true;
    return false;
  }

  /** Why this account cannot serve this model now (checked in the documented order), or null. */
  function blockOf(e: Entry, model: string, scopes: readonly string[] | undefined, now: number): Block | null {
    const a = e.account;
    if (a.disabled || e.pendingDisable !== null) return 'disabled';
    if (quotaOn && quotaProtected(e, model, now)) return 'quota';
    if (a.proxy_disabled || e.pendingProxyDisable !== null) return 'proxy_disabled';
    if (e.cooldowns.active(model, now)) return 'cooling';
    if (tokenUnusable(e, now)) {
      if (e.backoff && now < e.backoff.until) return e.backoff.kind === 'client' ? 'client' : 'backoff';
      if (clients.blocked(e.clientKey, now)) return 'client';
    }
    if (scopes && scopes.length > 0 && !hasAnyScope(e, scopes)) return 'scope';
    return null;
  }

  // ---- refresh ----------------------------------------------------------------------------

  function refreshEntry(e: Entry, force: boolean, staleAccessToken: string): Promise<RefreshAttempt> {
    return flights.run(e.id, async () => {
      // while its client is failing, this refresh is the client's probe: the next waits an interval
      clients.claimAttempt(e.clientKey, clock.now());
      changed(e.id); // refreshing
      const attempt = await refreshUnderLock({ store, refresher, clock }, e.id, { staleAccessToken, force, marginMs, refreshBeforeMs });
      await settle(e.id, attempt);
      changed(e.id);
      return attempt;
    });
  }

  /** Applies a refresh result to the live pool (and the store, for invalid_grant). */
  async function settle(id: string, attempt: RefreshAttempt): Promise<void> {
    const e = entries.get(id);
    if (attempt.ok) {
      if (!e) return; // removed meanwhile: do not bring it back
      e.backoff = null;
      if (attempt.called && clients.markOk(e.clientKey)) {
        logger.info({ oauth_client_id: e.clientKey }, `OAuth client ${e.clientKey} works again`);
      }
      applyAccount(attempt.account);
      return;
    }
    if (attempt.reason !== 'failed') {
      if (attempt.reason === 'gone' && e) removeEntry(id);
      if (attempt.reason === 'disabled' && e && attempt.account) applyAccount(attempt.account);
      return;
    }
    const f = attempt.failure;
    const account = attempt.account;
    const email = account.email;
    logger.warn(
      { account_id: id, email, error: f.error, error_description: f.description, kind: f.kind },
      `Token refresh failed (${email}): ${f.message}, trying next account`,
    );
    if (f.kind === 'invalid_grant') await disableForInvalidGrant(id, account, f);
    else if (f.kind === 'client') {
      const fix = clientFixText(f.error);
      const key = clientKey(account.oauth_client_id);
      const failure = clients.markFailing(key, f.error, f.description, fix, clock.now());
      if (e && e.account.token.refresh_token === account.token.refresh_token) {
        // this account retries slowly on its own too (a token issued to another client fails even when the client works)
        e.backoff = {
          attempts: (e.backoff?.attempts ?? 0) + 1,
          until: failure.nextRetryAt,
          reason: `OAuth client ${key} is misconfigured (${f.error}): ${fix}`,
          kind: 'client',
        };
      }
      logger.error(
        { oauth_client_id: key, account_id: id, email, error: f.error, error_description: f.description, fix, next_retry_at: new Date(failure.nextRetryAt).toISOString() },
        `OAuth client ${key} was rejected by the token endpoint (${f.message}); no account is disabled for this. Fix: ${fix}`,
      );
    } else if (e && e.account.token.refresh_token === account.token.refresh_token) {
      const attempts = (e.backoff?.attempts ?? 0) + 1;
      const wait = backoffMs(attempts, cfg.refresh_backoff_min_seconds, cfg.refresh_backoff_max_seconds, random);
      e.backoff = { attempts, until: clock.now() + wait, reason: `token refresh failed: ${f.message}`, kind: 'transient' };
      logger.warn(
        { account_id: id, email, error: f.error, attempt: attempts, retry_in_ms: wait },
        `Token refresh for ${email} will be retried in ${Math.ceil(wait / 1000)} s (transient error, the account is not disabled)`,
      );
    }
  }

  async function disableForInvalidGrant(id: string, used: Account, f: RefreshFailure): Promise<void> {
    const email = used.email;
    const reason = invalidGrantReason(f);
    const e = entries.get(id);
    // out of the live pool at once, before the write lands
    if (e && e.account.token.refresh_token === used.token.refresh_token) {
      e.pendingDisable = used.token.refresh_token;
      syncRing(e);
      changed(id);
    }
    logger.error(
      { account_id: id, email, error: f.error, error_description: f.description },
      `Disabling account due to invalid_grant (${email}): refresh_token likely revoked/expired`,
    );
    try {
      const written = await store.update(id, (cur) =>
        cur.token.refresh_token !== used.token.refresh_token
          ? null // re-added with new credentials meanwhile
          : { ...cur, disabled: true, disabled_at: unixNow(clock.now()), disabled_reason: reason },
      );
      const now = entries.get(id);
      if (written && now) applyAccount(written);
      else if (!written) removeEntry(id);
    } catch (err) {
      logger.error(
        { account_id: id, email, error: (err as Error).message },
        `Could not write the disabled state of ${email}; it stays out of the pool until the gateway restarts`,
      );
    }
  }

  async function disableForProxy(e: Entry, reason: string): Promise<void> {
    const bounded = boundedReason(reason, e.account);
    e.pendingProxyDisable = bounded;
    syncRing(e);
    changed(e.id);
    logger.warn(
      { account_id: e.id, email: e.account.email, reason: bounded },
      `Taking account out of the proxy (${e.account.email}): ${bounded}`,
    );
    try {
      const written = await store.update(e.id, (cur) => ({
        ...cur,
        proxy_disabled: true,
        proxy_disabled_at: unixNow(clock.now()),
        proxy_disabled_reason: bounded,
      }));
      if (written && entries.get(e.id)) applyAccount(written);
    } catch (err) {
      logger.error(
        { account_id: e.id, email: e.account.email, error: (err as Error).message },
        `Could not write proxy_disabled for ${e.account.email}; it stays out of the proxy until the gateway restarts`,
      );
    }
  }

  function wantsBackgroundRefresh(e: Entry, now: number): boolean {
    if (staticallyOut(e) || flights.has(e.id)) return false;
    if (e.expiresAtMs - now >= refreshBeforeMs && e.rejectedToken !== e.account.token.access_token) return false;
    if (e.backoff && now < e.backoff.until) return false;
    if (clients.blocked(e.clientKey, now)) return false;
    return true;
  }

  function startBackground(e: Entry): boolean {
    if (backgroundRunning >= backgroundConcurrency || stopped) return false;
    backgroundRunning++;
    void refreshEntry(e, e.rejectedToken === e.account.token.access_token, e.account.token.access_token)
      .catch((err) => logger.error({ account_id: e.id, error: (err as Error).message }, 'Background refresh crashed'))
      .finally(() => {
        backgroundRunning--;
        pump();
      });
    return true;
  }

  /** Starts queued background refreshes while there is room (each finished one makes room for the next). */
  function pump(): void {
    const now = clock.now();
    while (backgroundQueue.length > 0 && backgroundRunning < backgroundConcurrency && !stopped) {
      const e = entries.get(backgroundQueue.shift()!);
      if (e && wantsBackgroundRefresh(e, now)) startBackground(e);
    }
  }

  function tick(): void {
    const now = clock.now();
    if (backgroundQueue.length === 0) {
      // one pass over every account; the queue is worked off as refreshes finish
      for (const e of entries.values()) if (wantsBackgroundRefresh(e, now)) backgroundQueue.push(e.id);
      // the most urgent first
      backgroundQueue.sort((x, y) => (entries.get(x)?.expiresAtMs ?? 0) - (entries.get(y)?.expiresAtMs ?? 0));
    }
    pump();
    const today = quotaDays.current(now).key;
    if (today !== lastPruneDay) {
      lastPruneDay = today;
      usage.prune(quotaDayKeyBefore(now, retentionDays));
    }
  }

  // ---- acquire ----------------------------------------------------------------------------

  function leaseOf(a: Account): Lease {
    return { accountId: a.id, email: a.email, projectId: a.project_id, accessToken: a.token.access_token };
  }

  /** A lease for an account that may serve: refreshed first when its token is (about to be) unusable. Null: it failed. */
  async function leaseFor(e: Entry, model: string, scopes: readonly string[] | undefined): Promise<Lease | null> {
    const now = clock.now();
    if (!tokenUnusable(e, now)) {
      if (e.expiresAtMs - now < refreshBeforeMs) {
        if (wantsBackgroundRefresh(e, now)) startBackground(e);
      }
      return leaseOf(e.account);
    }
    const token = e.account.token.access_token;
    const attempt = await refreshEntry(e, e.rejectedToken === token, token);
    if (!attempt.ok) return null;
    const live = entries.get(e.id);
    if (!live) return null;
    // things may have changed while the refresh ran (disabled, cooled down, edited)
    const after = clock.now();
    if (blockOf(live, model, scopes, after) !== null || tokenUnusable(live, after)) return null;
    return leaseOf(live.account);
  }

  function findPinned(ref: string): Entry | null {
    const byId = entries.get(ref);
    if (byId) return byId;
    const id = byEmail.get(ref.trim().toLowerCase());
    return id ? (entries.get(id) ?? null) : null;
  }

  async function acquire(req: AcquireRequest): Promise<Lease> {
    const model = req.model ?? '';
    const scopes = req.anyOfScopes;
    if (req.pinned !== undefined && req.pinned !== '') return acquirePinned(req);
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
          blockOf(x, model, scopes, now) === null &&
          (!readyOnly || !tokenUnusable(x, now)),
        req.sessionKey,
      );
      if (!e) throw nothingCanServe(req);
      const lease = await leaseFor(e, model, scopes);
      if (lease) return lease;
      (tried ??= new Set()).add(e.id);
    }
  }

  async function acquirePinned(req: AcquireRequest): Promise<Lease> {
    const ref = req.pinned!;
    const e = findPinned(ref);
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
    const b = blockOf(e, req.model ?? '', req.anyOfScopes, clock.now());
    if (b) throw pinnedUnusable(e, b, req);
    const lease = await leaseFor(e, req.model ?? '', req.anyOfScopes);
    if (lease) return lease;
    const after = blockOf(e, req.model ?? '', req.anyOfScopes, clock.now()) ?? 'backoff';
    throw pinnedUnusable(e, after, req);
  }

  // ---- why nothing can serve -------------------------------------------------------------

  function blockUntil(e: Entry, b: Block, model: string, now: number): number {
    if (b === 'cooling') return e.cooldowns.active(model, now)?.until ?? now + 1000;
    if (b === 'quota') return quotaDays.current(now).end;
    if (b === 'backoff') return e.backoff?.until ?? now + 1000;
    if (b === 'client') {
      if (e.backoff?.kind === 'client' && now < e.backoff.until) return e.backoff.until;
      return clients.failure(e.clientKey)?.nextRetryAt ?? now + 1000;
    }
    return now;
  }

  function retryAfter(untilMs: number, now: number): number {
    return Math.max(1, Math.ceil((untilMs - now) / 1000));
  }

  function describeBlock(e: Entry, b: Block, model: string, now: number): string {
    switch (b) {
      case 'disabled':
        return e.account.disabled_reason ?? (e.pendingDisable ? 'invalid_grant' : 'disabled');
      case 'proxy_disabled':
        return e.account.proxy_disabled_reason ?? e.pendingProxyDisable ?? 'taken out of the proxy';
      case 'quota':
        return `quota protection for ${model} until ${new Date(quotaDays.current(now).end).toISOString()}`;
      case 'cooling': {
        const c = e.cooldowns.active(model, now);
        return `cooling down until ${new Date(c?.until ?? now).toISOString()}: ${c?.reason ?? ''}`;
      }
      case 'backoff':
        return `${e.backoff?.reason ?? 'token refresh failed'}; retrying at ${new Date(e.backoff?.until ?? now).toISOString()}`;
      case 'client': {
        const f = clients.failure(e.clientKey);
        if (f) return `OAuth client ${e.clientKey} is misconfigured (${f.error}): ${f.fix}`;
        return e.backoff?.reason ?? `OAuth client ${e.clientKey} is misconfigured`;
      }
      case 'scope':
        return `the account was not granted the scope this route needs`;
    }
  }

  function pinnedUnusable(e: Entry, b: Block, req: AcquireRequest): NoAccountError {
    const now = clock.now();
    const model = req.model ?? '';
    const why = describeBlock(e, b, model, now);
    if (b === 'cooling' || b === 'quota' || b === 'backoff') {
      const until = blockUntil(e, b, model, now);
      return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} cannot serve now: ${why}`, 429, retryAfter(until, now));
    }
    if (b === 'scope') {
      return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} lacks the scope this route needs (one of: ${(req.anyOfScopes ?? []).join(', ')}).`, 503);
    }
    return new NoAccountError('pinned_unusable', `The pinned account ${e.account.email} cannot serve: ${b === 'disabled' ? 'disabled: ' : b === 'proxy_disabled' ? 'taken out of the proxy: ' : ''}${why}`, 503);
  }

  function nothingCanServe(req: AcquireRequest): NoAccountError {
    const now = clock.now();
    const model = req.model ?? '';
    const scopes = req.anyOfScopes ?? [];
    if (entries.size === 0) {
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
    for (const e of entries.values()) {
      if (scopes.length > 0 && !hasAnyScope(e, scopes)) continue;
      candidates++;
      const b = blockOf(e, model, undefined, now);
      if (b === 'disabled') {
        disabled++;
        const r = describeBlock(e, b, model, now);
        disabledReasons.set(r, (disabledReasons.get(r) ?? 0) + 1);
      } else if (b === 'proxy_disabled') {
        proxyDisabled++;
        const r = describeBlock(e, b, model, now);
        proxyReasons.set(r, (proxyReasons.get(r) ?? 0) + 1);
      } else if (b === 'cooling' || b === 'quota' || b === 'backoff') {
        waiting++;
        earliest = Math.min(earliest, blockUntil(e, b, model, now));
        waitReasons.add(b === 'cooling' ? (e.cooldowns.active(model, now)?.reason ?? 'cooling down') : b === 'quota' ? 'quota protection' : 'token refresh retry');
      } else if (b === 'client') {
        if (!failingClients.has(e.clientKey)) failingClients.set(e.clientKey, describeBlock(e, b, model, now));
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

  // ---- feedback ---------------------------------------------------------------------------

  /** A last_used write is in flight, and when the next may start (see report). */
  let lastUsedWriting = false;
  let lastUsedNextAt = 0;

  function report(lease: Lease, model: string, outcome: UpstreamOutcome): void {
    const e = entries.get(lease.accountId);
    if (!e) return;
    const now = clock.now();
    switch (outcome.kind) {
      case 'ok': {
        usage.add(quotaDays.current(now).key, e.id, model, {
          requests: outcome.counts === false ? 0 : 1,
          tokens_in: outcome.tokensIn ?? 0,
          tokens_out: outcome.tokensOut ?? 0,
        });
        // last_used writes are rate-bounded for the whole pool: one in flight, and at most one
        // per lastUsedWriteGapMs. A file write costs several ms of CPU (lock, fsync, the watcher
        // reading it back); with thousands of accounts in rotation, one write per account per
        // minute would take a large share of a core. An account skipped here stays due and is
        // written at a later use.
        if (now - e.lastUsedPersistedMs >= lastUsedPersistMs && !lastUsedWriting && now >= lastUsedNextAt) {
          e.lastUsedPersistedMs = now;
          const at = unixNow(now);
          lastUsedWriting = true;
          lastUsedNextAt = now + lastUsedWriteGapMs;
          store
            .update(e.id, (cur) => (cur.last_used !== null && cur.last_used >= at ? null : { ...cur, last_used: at }))
            .catch((err) => logger.warn({ account_id: e.id, error: (err as Error).message }, 'Could not write last_used'))
            .finally(() => {
              lastUsedWriting = false;
            });
        }
        return;
      }
      case 'unauthorized':
        if (e.account.token.access_token === lease.accessToken) e.rejectedToken = lease.accessToken;
        return;
      case 'rate_limited': {
        const reason = boundedReason(outcome.reason || 'rate limited (429)', e.account);
        e.cooldowns.set(model, outcome.untilMs, reason);
        changed(e.id);
        logger.info(
          { account_id: e.id, email: e.account.email, model, until: new Date(outcome.untilMs).toISOString(), reason },
          `Account ${e.account.email} cooling down for ${model || 'the Google API'} until ${new Date(outcome.untilMs).toISOString()}: ${reason}`,
        );
        return;
      }
      case 'server_error': {
        const until = now + cfg.server_error_cooldown_seconds * 1000;
        e.cooldowns.set(model, until, boundedReason(`upstream error: ${outcome.reason}`, e.account));
        changed(e.id);
        return;
      }
      case 'forbidden':
        void disableForProxy(e, outcome.reason || 'upstream answered 403 PERMISSION_DENIED');
        return;
      case 'client_error':
        return;
    }
  }

  async function refreshAfterUnauthorized(lease: Lease): Promise<Lease | null> {
    const e = entries.get(lease.accountId);
    if (!e || staticallyOut(e)) return null;
    if (e.account.token.access_token !== lease.accessToken && !tokenUnusable(e, clock.now())) {
      return leaseOf(e.account);
    }
    if (e.account.token.access_token === lease.accessToken) e.rejectedToken = lease.accessToken;
    for (let i = 0; i < 2; i++) {
      const attempt = await refreshEntry(e, true, lease.accessToken);
      if (!attempt.ok) return null;
      const live = entries.get(e.id);
      if (!live || staticallyOut(live)) return null;
      if (live.account.token.access_token !== lease.accessToken && !tokenUnusable(live, clock.now())) {
        return leaseOf(live.account);
      }
      // joined a refresh that adopted the very token that was rejected: force one of our own
    }
    return null;
  }

  // ---- state for the API ------------------------------------------------------------------

  function stateOfEntry(e: Entry, now: number): AccountState {
    const a = e.account;
    if (a.disabled || e.pendingDisable !== null) return { state: 'disabled', reason: describeBlock(e, 'disabled', '', now) };
    if (quotaOn) {
      const day = quotaDays.current(now);
      for (const r of usage.records(day.key, e.id)) {
        if (r.date !== day.key) continue;
        if (isQuotaProtected(r, quotaLimits.for(r.model), quota.threshold_percent)) {
          return { state: 'quota_protected', model: r.model, until: Math.ceil(day.end / 1000) };
        }
      }
    }
    if (a.proxy_disabled || e.pendingProxyDisable !== null) return { state: 'proxy_disabled', reason: describeBlock(e, 'proxy_disabled', '', now) };
    if (flights.has(e.id)) return { state: 'refreshing' };
    if (tokenUnusable(e, now)) {
      if (e.backoff && now < e.backoff.until) {
        return { state: 'cooling_down', until: Math.ceil(e.backoff.until / 1000), reason: e.backoff.reason };
      }

      const f = clients.blocked(e.clientKey, now) ? clients.failure(e.clientKey) : null;
      if (f) {
        return { state: 'cooling_down', until: Math.ceil(f.nextRetryAt / 1000), reason: `OAuth client ${f.client_id} is misconfigured (${f.error}): ${f.fix}` };
      }
    }
    const c = e.cooldowns.longest(now);
    if (c) return { state: 'cooling_down', until: Math.ceil(c.until / 1000), reason: c.reason, model: c.model };
    return { state: 'active' };
  }

  function stateOf(id: string): AccountState | null {
    const e = entries.get(id);
    return e ? stateOfEntry(e, clock.now()) : null;
  }

  function accountState(account: Account): AccountState {
    const e = entries.get(account.id);
    if (e) return stateOfEntry(e, clock.now());
    if (account.disabled) return { state: 'disabled', reason: account.disabled_reason ?? 'disabled' };
    if (account.proxy_disabled) return { state: 'proxy_disabled', reason: account.proxy_disabled_reason ?? 'taken out of the proxy' };
    return { state: 'active' };
  }

  function states(): { id: string; email: string; state: AccountState }[] {
    const now = clock.now();
    return [...entries.values()].map((e) => ({ id: e.id, email: e.account.email, state: stateOfEntry(e, now) }));
  }

  function summary(): PoolSummary {
    const now = clock.now();
    const by_state: PoolSummary['by_state'] = {
      active: 0, refreshing: 0, cooling_down: 0, quota_protected: 0, proxy_disabled: 0, disabled: 0,
    };
    for (const e of entries.values()) by_state[stateOfEntry(e, now).state]++;
    return {
      total: entries.size,
      by_state,
      refreshing: flights.size,
      failing_clients: clients.list().map((f) => ({
        client_id: f.client_id,
        error: f.error,
        description: f.description,
        fix: f.fix,
        since: Math.floor(f.since / 1000),
        next_retry_at: Math.ceil(f.nextRetryAt / 1000),
      })),
    };
  }

  function usageRows(o: { days?: number; accountId?: string } = {}): UsageRow[] {
    const now = clock.now();
    const days = Math.max(1, Math.floor(o.days ?? 30));
    const from = quotaDayKeyBefore(now, days - 1);
    return usage.records(from, o.accountId).map((r) => ({
      date: r.date,
      account_id: r.account_id,
      email: entries.get(r.account_id)?.account.email ?? '',
      model: r.model,
      requests: r.requests,
      tokens_in: r.tokens_in,
      tokens_out: r.tokens_out,
    }));
  }

  function usageToday(accountId: string): { requests: number; tokens: number } {
    const key = quotaDays.current(clock.now()).key;
    let requests = 0;
    let tokens = 0;
    for (const r of usage.records(key, accountId)) {
      if (r.date !== key) continue;
      requests += r.requests;
      tokens += r.tokens_in + r.tokens_out;
    }
    return { requests, tokens };
  }

  // ---- lifecycle --------------------------------------------------------------------------

  async function start(): Promise<void> {
    if (unwatch) return;
    stopped = false;
    await usage.load();
    const changed = new Set<string>();
    changedDuringLoad = changed;
    unwatch = store.watch(onStoreChange);
    let accounts: Account[];
    try {
      accounts = await store.list();
    } finally {
      changedDuringLoad = null;
    }
    for (const a of accounts) {
      // a change notification during the listing is newer than what list() read
      if (!changed.has(a.id)) applyAccount(a);
    }
    const s = summary();
    logger.info(
      { accounts: s.total, active: s.by_state.active, disabled: s.by_state.disabled, proxy_disabled: s.by_state.proxy_disabled },
      `Token pool loaded ${s.total} account(s): ${selector.size} in rotation, ${s.by_state.disabled} disabled, ${s.by_state.proxy_disabled} taken out of the proxy`,
    );
    const interval = opts.backgroundIntervalMs ?? 5000;
    if (interval > 0) {
      timer = setInterval(tick, interval);
      timer.unref();
    }
  }

  /** Stops the timer and the store subscription; waits (up to 5 s) for refreshes in flight, so their tokens are written. */
  async function stop(): Promise<void> {
    stopped = true;
    if (timer) clearInterval(timer);
    timer = null;
    backgroundQueue = [];
    unwatch?.();
    unwatch = null;
    const inflight = flights.pending();
    if (inflight.length > 0) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(inflight),
        new Promise<void>((r) => {
          t = setTimeout(r, 5000);
          t.unref();
        }),
      ]);
      clearTimeout(t);
    }
    await usage.flush();
  }

  return {
    acquire,
    report,
    refreshAfterUnauthorized,
    start,
    stop,
    tick,
    stateOf,
    accountState,
    onStateChange: (listener: (accountId: string) => void) => {
      stateListeners.add(listener);
      return () => {
        stateListeners.delete(listener);
      };
    },
    states,
    summary,
    usage: usageRows,
    usageToday,
    failingClients: () => clients.list(),
    resetClientFailures: (id?: string) => clients.reset(id),
    refreshingIds: () => [...entries.keys()].filter((id) => flights.has(id)),
    accounts: () => [...entries.values()].map((e) => e.account),
    get size() {
      return entries.size;
    },
  };
}
