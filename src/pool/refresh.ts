// Refreshing one account's access token: at most one refresh per account in
// flight (every concurrent caller shares it), run under the store's refresh
// lock (other gateways on the same store), re-reading the account inside the
// lock, and writing the new token atomically before anyone gets it.
import type { Account, Token } from '../store/account.ts';
import type { AccountStore } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import type { RefreshFailure } from './error-policy.ts';
import { RefreshError, type TokenRefresher } from '../oauth/refresh-error.ts';
import { classifyRefreshError } from '../oauth/refresh-classify.ts';
import { StoreUnavailableError } from '../store/errors.ts';

/** The account's own token values: never in a failure's texts. */
const tokensOf = (a?: Account): string[] => (a ? [a.token.access_token, a.token.refresh_token] : []);

/** One promise per key while it runs; callers arriving meanwhile get the same promise. */
export class SingleFlight<T> {
  private inflight = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running) return running;
    const p = (async () => {
      try {
        return await fn();
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, p);
    return p;
  }

  /** The promises running now. */
  pending(): Promise<T>[] {
    return [...this.inflight.values()];
  }

  has(key: string): boolean {
    return this.inflight.has(key);
  }

  get size(): number {
    return this.inflight.size;
  }
}

export type RefreshAttempt =
  /** `account` holds a usable token; `called` is false when a token someone else wrote was adopted. */
  | { ok: true; account: Account; called: boolean }
  /** The account was removed, or is disabled in the store. */
  | { ok: false; reason: 'gone' | 'disabled'; account: Account | null }
  /** The token endpoint (or the write of its answer) failed. `account` is the one the refresh used. */
  | { ok: false; reason: 'failed'; failure: RefreshFailure; account: Account };

export interface RefreshDeps {
  store: AccountStore;
  refresher: TokenRefresher;
  clock: Clock;
}

export interface RefreshOptions {
  /**
   * The account as the caller holds it: refreshed when the store cannot be
   * read (a database that is down), so that its requests are served; the new
   * token is written when the store is back.
   */
  held: Account;
  /** The access token the caller considers stale; a different, unexpired one in the store is adopted. */
  staleAccessToken: string;
  /** After an upstream 401: refresh even when the token looks fresh (unless the store holds a newer one). */
  force: boolean;
  /** A token with less than this left is not usable (on-demand margin). */
  marginMs: number;
  /** Without force, a token with more than this left needs no refresh. */
  refreshBeforeMs: number;
}

/** Merges a refresh answer into the stored token: no refresh_token in the answer keeps the stored one. */
export function mergeToken(stored: Token, answer: Token, sentRefreshToken: string): Token {
  const rotated = answer.refresh_token && answer.refresh_token !== sentRefreshToken;
  return {
    ...stored,
    ...answer,
    refresh_token: rotated ? answer.refresh_token : stored.refresh_token,
    scope: answer.scope || stored.scope,
  };
}

/** Runs one refresh under the store's refresh lock. Never throws: failures come back classified. */
export async function refreshUnderLock(deps: RefreshDeps, id: string, opts: RefreshOptions): Promise<RefreshAttempt> {
  const { store, refresher, clock } = deps;
  try {
    return await store.withRefreshLock(id, async (): Promise<RefreshAttempt> => {
      const current = await store.get(id).catch((e: unknown) => {
        if (e instanceof StoreUnavailableError) return opts.held;
        throw e;
      });
      if (!current) return { ok: false, reason: 'gone', account: null };
      if (current.disabled) return { ok: false, reason: 'disabled', account: current };
      const left = current.token.expiry_timestamp * 1000 - clock.now();
      if (current.token.access_token !== opts.staleAccessToken && left > opts.marginMs) {
        return { ok: true, account: current, called: false };
      }
      if (!opts.force && left > opts.refreshBeforeMs) return { ok: true, account: current, called: false };

      let answer: Token;
      try {
        answer = await refresher.refresh(current);
      } catch (e) {
        return { ok: false, reason: 'failed', failure: classifyRefreshError(e, tokensOf(current)), account: current };
      }
      const sent = current.token.refresh_token;
      let written: Account | null;
      try {
        written = await store.update(id, (now) =>
          // re-added with other credentials meanwhile: keep what the person stored
          now.token.refresh_token !== sent ? null : { ...now, token: mergeToken(now.token, answer, sent) },
        );
      } catch {
        // The new token could not be saved (a full disk): it is used from memory, and the
        // write is tried again until it works (Google keeps the refresh token valid meanwhile).
        const inMemory: Account = { ...current, token: mergeToken(current.token, answer, sent) };
        retryTokenWrite(store, id, answer, sent);
        return { ok: true, account: inMemory, called: true };
      }
      if (!written) return { ok: false, reason: 'gone', account: null };
      cancelTokenWrite(store, id);
      return { ok: true, account: written, called: true };
    });
  } catch (e) {
    // the lock itself failed (e.g. a lock file could not be taken)
    const f = classifyRefreshError(e);
    // Gone only if the store says so: a store that cannot answer keeps the account.
    const account = await store.get(id).catch(() => opts.held);
    if (!account) return { ok: false, reason: 'gone', account: null };
    return { ok: false, reason: 'failed', failure: new RefreshError('transient', 'refresh_lock', f.description, undefined, { cause: f.cause }), account };
  }
}

// ---------------------------------------------------------------------------
// Tokens that could not be written: retried with backoff, the newest per account.

const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 60_000;
const unsaved = new WeakMap<AccountStore, Map<string, { timer: NodeJS.Timeout; delay: number }>>();

function cancelTokenWrite(store: AccountStore, id: string): void {
  const pending = unsaved.get(store)?.get(id);
  if (!pending) return;
  clearTimeout(pending.timer);
  unsaved.get(store)!.delete(id);
}

/** Writes `answer` into the stored token later, again and again until it works or the account changed. */
function retryTokenWrite(store: AccountStore, id: string, answer: Token, sent: string, delay = RETRY_MIN_MS): void {
  let byId = unsaved.get(store);
  if (!byId) unsaved.set(store, (byId = new Map()));
  cancelTokenWrite(store, id);
  const timer = setTimeout(() => {
    byId.delete(id);
    store
      // Not over a newer token written meanwhile, nor over other credentials.
      .update(id, (now) =>
        now.token.refresh_token !== sent || now.token.expiry_timestamp >= answer.expiry_timestamp ? null : { ...now, token: mergeToken(now.token, answer, sent) },
      )
      .catch(() => retryTokenWrite(store, id, answer, sent, Math.min(delay * 2, RETRY_MAX_MS)));
  }, delay);
  timer.unref();
  byId.set(id, { timer, delay });
}
