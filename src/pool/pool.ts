// The live token pool: the in-memory view of the account store that the proxy
// asks for "a valid access token for model M (and session S)". This file only
// composes the parts next to it, each with one job:
//   mirror       the store's accounts in memory, with the pending flags
//   eligibility  why an account can or cannot serve a model now (pure)
//   selection    which servable account is next (round robin, fill first, sessions)
//   acquire      leases: pick, refresh first when needed, fail over
//   scheduler    refreshes: single-flight, the background queue, disable writes
//   feedback     upstream outcomes: usage, last_used, cooldowns, 403s
//   explain      why nothing can serve (pure text builders)
//   views        the API-shaped projection: states, summary, usage rows
// The store stays the source of truth: every persistent decision (disabled,
// proxy_disabled, new token, last_used) is written through it, and every
// change in it (this process, the CLI, an editor) is applied here.
import type { Account } from '../store/account.ts';
import type { AccountStore, LoadProgress } from '../store/store.ts';
import type { TokenRefresher } from '../oauth/refresh-error.ts';
import type { Config } from '../config/schema.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../log/logger.ts';
import { Selector } from './selection.ts';
import { ClientHealth, DEFAULT_CLIENT_RETRY_MS, type ClientFailure } from './client-health.ts';
import { quotaDayKeyBefore } from './quota.ts';
import { MemoryUsageStore, type UsageStore } from './usage.ts';
import { QuotaGuard } from './quota-guard.ts';
import { Mirror, type Entry } from './mirror.ts';
import type { Eligibility } from './eligibility.ts';
import { RefreshScheduler } from './scheduler.ts';
import { Feedback } from './feedback.ts';
import { createLeaser } from './acquire.ts';
import { Views, type AccountLane, type AccountLaneState, type PoolSummary, type SharedLane, type UsageRow } from './views.ts';
import type { AccountState, LaneCooldown, TokenPool } from './types.ts';
import { laneSeating, type LaneService } from './lanes.ts';

export type { AccountLane, AccountLaneState, LaneState, PoolSummary, SharedLane, UsageRow } from './views.ts';

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
  /** Called for every lane cooldown this pool learns from an upstream 429 (to share with other gateways). Returns unsubscribe. */
  onLaneCooldown(listener: (c: LaneCooldown) => void): () => void;
  /** Applies a lane cooldown learned elsewhere (another gateway on the same store). */
  coolLane(c: LaneCooldown): void;
  states(): { id: string; email: string; state: AccountState }[];
  /** The lane (quota) an account draws on and how many share it; from its file when the pool has not seen it yet. */
  accountLane(account: Account): AccountLane;
  /** Every lane of an account (Gemini API, Vertex AI) with its state now. */
  accountLanes(account: Account): AccountLaneState[];
  /** Lanes with more than one account (each with the warning to show). */
  sharedLanes(): SharedLane[];
  summary(): PoolSummary;
  /** Accounts per state (the summary's by_state alone, without lanes and clients). */
  countByState(): PoolSummary['by_state'];
  /** Usage rows of the last `days` quota days (today included), optionally for one account. */
  usage(opts?: { days?: number; accountId?: string }): Promise<UsageRow[]>;
  /** Today's usage of one account, summed over models. */
  usageToday(accountId: string): { requests: number; tokens: number };
  /** OAuth clients that currently fail (invalid_client / unauthorized_client). */
  failingClients(): ClientFailure[];
  /** Forget OAuth client failures (e.g. after a new client_secret.json was saved): they are tried at once. */
  resetClientFailures(clientId?: string): void;
  /**
   * Disables an account at once and persistently, as invalid_grant does (out
   * of the pool before the write lands; not when it was re-added with other
   * credentials meanwhile). Returns the stored account, or null when nothing
   * was disabled (unknown account, or new credentials). Throws when the store
   * could not be written (the account stays out of this pool anyway).
   */
  disable(id: string, reason: string): Promise<Account | null>;
  /** The store's first load while it runs in the background (null once every account is read). */
  loading(): LoadProgress | null;
  /** Ids with a refresh in flight (for tests and the dashboard). */
  refreshingIds(): string[];
  /** Every account as the pool last saw it in the store (no I/O). */
  accounts(): Account[];
  /** Number of accounts known. */
  readonly size: number;
}

/**
 * The first of the usage days held in memory: today's, the one quota
 * protection reads and requests count on. Older days are read from storage
 * when the history is asked for (usage.ts); counts for one that are not saved
 * or sent yet stay in memory until they are.
 */
function openDaysFrom(now: number): string {
  return quotaDayKeyBefore(now, 0);
}

export function createPool(opts: PoolOptions): Pool {
  const { store, refresher, clock, logger } = opts;
  const cfg = opts.config;
  const usage = opts.usage ?? new MemoryUsageStore();
  const refreshBeforeMs = cfg.refresh_before_seconds * 1000;
  const retentionDays = opts.usageRetentionDays ?? 90;

  const stateListeners = new Set<(accountId: string) => void>();
  const laneListeners = new Set<(c: LaneCooldown) => void>();
  function changed(id: string): void {
    for (const l of [...stateListeners]) {
      try {
        l(id);
      } catch (err) {
        logger.warn({ account_id: id, error: (err as Error).message }, 'A pool state listener failed');
      }
    }
  }

  // One selector per service: every account in rotation is on the Gemini API
  // one (ringed by its Gemini API lane); those whose project has Vertex AI also
  // on the Vertex one (ringed by their Vertex lane).
  const selectorFor = (service: LaneService) =>
    new Selector<Entry>({ strategy: cfg.strategy, sessionAffinity: cfg.session_affinity, maxSessions: opts.maxSessions, seating: laneSeating<Entry>(service) });
  const selectors: Record<LaneService, Selector<Entry>> = { gemini_api: selectorFor('gemini_api'), vertex: selectorFor('vertex') };
  const selector = selectors.gemini_api;
  const leave = (e: Entry) => {
    selector.remove(e);
    selectors.vertex.remove(e);
  };
  const mirror = new Mirror(
    {
      rotation: (e, inRotation) => {
        if (inRotation) selector.add(e);
        else selector.remove(e);
        if (inRotation && e.vertexLane) selectors.vertex.add(e);
        else selectors.vertex.remove(e);
      },
      removed: leave,
      moving: leave,
      changed,
    },
    logger,
  );
  const quota = new QuotaGuard(cfg.quota_protection, usage);
  const clients = new ClientHealth(opts.clientRetryMs ?? DEFAULT_CLIENT_RETRY_MS);
  const el: Eligibility = {
    marginMs: Math.min(opts.onDemandMarginSeconds ?? 60, cfg.refresh_before_seconds) * 1000,
    quota,
    clients,
  };
  const scheduler = new RefreshScheduler({
    store,
    refresher,
    clock,
    logger,
    mirror,
    clients,
    refreshBeforeMs,
    marginMs: el.marginMs,
    backoffMinSeconds: cfg.refresh_backoff_min_seconds,
    backoffMaxSeconds: cfg.refresh_backoff_max_seconds,
    random: opts.random ?? Math.random,
    concurrency: opts.backgroundConcurrency ?? 8,
    changed,
  });
  const feedback = new Feedback({
    store,
    clock,
    logger,
    mirror,
    quota,
    scheduler,
    serverErrorCooldownMs: cfg.server_error_cooldown_seconds * 1000,
    lastUsedPersistMs: opts.lastUsedPersistMs ?? 60_000,
    lastUsedWriteGapMs: opts.lastUsedWriteGapMs ?? 1000,
    changed,
    laneCooled: (c) => {
      for (const l of [...laneListeners]) l(c);
    },
  });
  const loading = (): LoadProgress | null => store.loading?.() ?? null;
  const leaser = createLeaser({ mirror, selectors, el, scheduler, clock, refreshBeforeMs, loading });
  const views = new Views({ mirror, el, usage, clock, refreshing: (id) => scheduler.has(id), refreshCount: () => scheduler.size });

  let unwatch: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;
  let lastPruneDay = '';

  function tick(): void {
    const now = clock.now();
    scheduler.tick(now);
    const today = quota.day(now).key;
    if (today !== lastPruneDay) {
      lastPruneDay = today;
      usage.prune(quotaDayKeyBefore(now, retentionDays));
      usage.retire(openDaysFrom(now));
    }
  }

  async function start(): Promise<void> {
    if (unwatch) return;
    scheduler.resume();
    // Set before the load: a store on a database then reads only the open days.
    usage.retire(openDaysFrom(clock.now()));
    await usage.load();
    unwatch = await mirror.load(store);
    const progress = loading();
    if (progress) {
      logger.info(progress, `Token pool serving with the ${mirror.size} account(s) read so far; reading the other ${progress.total - progress.loaded} in the background`);
      void store.whenLoaded?.().then(() => {
        if (unwatch) logLoaded();
      });
    } else logLoaded();
    const interval = opts.backgroundIntervalMs ?? 5000;
    if (interval > 0) {
      timer = setInterval(tick, interval);
      timer.unref();
    }
  }

  function logLoaded(): void {
    const s = views.summary();
    logger.info(
      { accounts: s.total, active: s.by_state.active, disabled: s.by_state.disabled, proxy_disabled: s.by_state.proxy_disabled },
      `Token pool loaded ${s.total} account(s): ${selector.size} in rotation, ${s.by_state.disabled} disabled, ${s.by_state.proxy_disabled} taken out of the proxy`,
    );
  }

  /** Stops the timer and the store subscription; waits (up to 5 s) for refreshes in flight, so their tokens are written. */
  async function stop(): Promise<void> {
    if (timer) clearInterval(timer);
    timer = null;
    unwatch?.();
    unwatch = null;
    await scheduler.stop();
    await usage.flush();
  }

  return {
    acquire: leaser.acquire,
    report: (lease, model, outcome) => feedback.report(lease, model, outcome),
    refreshAfterUnauthorized: leaser.refreshAfterUnauthorized,
    canServe: (service) => selectors[service].size > 0,
    start,
    stop,
    tick,
    stateOf: (id) => views.stateOf(id),
    accountState: (account) => views.accountState(account),
    onStateChange: (listener) => {
      stateListeners.add(listener);
      return () => {
        stateListeners.delete(listener);
      };
    },
    onLaneCooldown: (listener) => {
      laneListeners.add(listener);
      return () => void laneListeners.delete(listener);
    },
    coolLane: (c) => feedback.coolLane(c),
    states: () => views.states(),
    accountLane: (account) => views.accountLane(account),
    accountLanes: (account) => views.accountLanes(account),
    sharedLanes: () => views.sharedLanes(),
    summary: () => views.summary(),
    countByState: () => views.countByState(),
    usage: (o) => views.usage(o),
    usageToday: (id) => views.usageToday(id),
    failingClients: () => clients.list(),
    resetClientFailures: (id) => clients.reset(id),
    disable: async (id, reason) => {
      const used = mirror.get(id)?.account ?? (await store.get(id));
      if (!used) return null;
      const written = await scheduler.disable(id, used, reason);
      changed(id);
      return written;
    },
    loading,
    refreshingIds: () => [...mirror.ids()].filter((id) => scheduler.has(id)),
    accounts: () => [...mirror.values()].map((e) => e.account),
    get size() {
      return mirror.size;
    },
  };
}
