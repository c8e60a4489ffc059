// Live events for the dashboard (GET /api/events): every request-log entry as
// it is recorded, and the accounts whose state changed since the last event.
// An accounts event carries only what changed ({changed: [account...],
// removed: [id...]}), at most one per 250 ms; a dashboard loads the full list
// when it connects and applies the changes (src/dashboard/assets/app.js).
// Nothing is built while no one listens.
import type { Logger } from '../log/logger.ts';
import type { Account } from '../store/account.ts';
import type { AccountStore } from '../store/store.ts';
import type { Pool } from '../pool/pool.ts';
import type { RequestLog } from '../proxy/request-log.ts';

export type LiveEvent = { type: 'accounts'; data: AccountsChange } | { type: 'request'; data: unknown };

export interface AccountsChange {
  /** The accounts created or changed, as the API shows them (GET /api/accounts). */
  changed: unknown[];
  /** Ids of the accounts removed. */
  removed: string[];
}

export interface LiveEventsDeps {
  store: Pick<AccountStore, 'watch'>;
  pool: Pick<Pool, 'accounts' | 'accountState' | 'onStateChange' | 'usageToday'>;
  requestLog: Pick<RequestLog, 'subscribe'>;
  /** An account as the API shows it. */
  view: (account: Account) => unknown;
  logger: Logger;
  /** Least time between two accounts events (default 250 ms). */
  coalesceMs?: number;
  /** How often states that end by the clock (cooldowns) are compared (default 5000 ms). */
  sweepMs?: number;
}

export interface LiveEvents {
  /** Returns unsubscribe. */
  subscribe(listener: (event: LiveEvent) => void): () => void;
  close(): void;
}

/** What a dashboard row shows that can change without an event: the state and today's usage. */
function shownKey(pool: LiveEventsDeps['pool'], account: Account): string {
  const s = pool.accountState(account) as { state: string; until?: number; reason?: string; model?: string };
  const u = pool.usageToday(account.id);
  return `${s.state}|${s.until ?? ''}|${s.model ?? ''}|${s.reason ?? ''}|${u.requests}|${u.tokens}`;
}

export function createLiveEvents(deps: LiveEventsDeps): LiveEvents {
  const coalesceMs = deps.coalesceMs ?? 250;
  const sweepMs = deps.sweepMs ?? 5000;
  const listeners = new Set<(event: LiveEvent) => void>();
  /** Ids changed since the last accounts event. */
  const dirty = new Set<string>();
  /** The latest version the store reported, for accounts the pool may not hold yet. */
  const fromStore = new Map<string, Account | null>();
  /** What the listeners were last shown per account (for the sweep). */
  const shown = new Map<string, string>();
  let timer: NodeJS.Timeout | null = null;
  let sweeper: NodeJS.Timeout | null = null;

  const emit = (event: LiveEvent) => {
    for (const l of [...listeners]) {
      try {
        l(event);
      } catch (e) {
        deps.logger.warn({ err: { message: (e as Error).message } }, 'a live event listener failed');
      }
    }
  };

  const mark = (id: string) => {
    if (listeners.size === 0) return;
    dirty.add(id);
    timer ??= setTimeout(flush, coalesceMs);
  };

  function flush(): void {
    timer = null;
    if (dirty.size === 0 || listeners.size === 0) return;
    const ids = new Set(dirty);
    dirty.clear();
    try {
      const changed: unknown[] = [];
      const removed: string[] = [];
      // The pool's memory, no I/O: one pass over the accounts, views only for the changed ones.
      for (const a of deps.pool.accounts()) {
        if (!ids.has(a.id)) continue;
        ids.delete(a.id);
        fromStore.delete(a.id);
        shown.set(a.id, shownKey(deps.pool, a));
        changed.push(deps.view(a));
      }
      for (const id of ids) {
        const latest = fromStore.get(id);
        fromStore.delete(id);
        if (latest) {
          shown.set(id, shownKey(deps.pool, latest));
          changed.push(deps.view(latest));
        } else {
          shown.delete(id);
          removed.push(id);
        }
      }
      if (changed.length || removed.length) emit({ type: 'accounts', data: { changed, removed } });
    } catch (e) {
      deps.logger.warn({ err: { message: (e as Error).message } }, 'could not build the live accounts event');
    }
  }

  /** Cooldowns and quota protection end by the clock, not by an event; today's usage rolls over at midnight. */
  function sweep(): void {
    for (const a of deps.pool.accounts()) {
      if (shown.get(a.id) !== shownKey(deps.pool, a)) mark(a.id);
    }
  }

  const unwatch = deps.store.watch((change) => {
    if (listeners.size === 0) return;
    fromStore.set(change.id, change.account);
    mark(change.id);
  });
  const unsubscribeStates = deps.pool.onStateChange((id) => mark(id));
  const unsubscribeLog = deps.requestLog.subscribe((entry) => {
    if (listeners.size === 0) return;
    emit({ type: 'request', data: entry });
    // Its usage today and last use changed.
    const id = (entry as { account_id?: string | null }).account_id;
    if (id) mark(id);
  });

  function start(): void {
    shown.clear();
    for (const a of deps.pool.accounts()) shown.set(a.id, shownKey(deps.pool, a));
    sweeper = setInterval(sweep, sweepMs);
    sweeper.unref();
  }

  function stop(): void {
    if (sweeper) clearInterval(sweeper);
    if (timer) clearTimeout(timer);
    sweeper = timer = null;
    dirty.clear();
    fromStore.clear();
    shown.clear();
  }

  return {
    subscribe(listener) {
      if (listeners.size === 0) start();
      listeners.add(listener);
      return () => {
        if (listeners.delete(listener) && listeners.size === 0) stop();
      };
    },
    close() {
      listeners.clear();
      stop();
      unwatch();
      unsubscribeStates();
      unsubscribeLog();
    },
  };
}
