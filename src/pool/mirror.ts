// The pool's in-memory mirror of the account store: one entry per account
// (entry.ts) with what the hot path needs precomputed (scope set, lanes), the
// per-account marks that live in memory only (cooldowns, refresh backoff, a
// rejected token), and the pending flags: a decision made here (disabled,
// proxy_disabled) that is in force before the store's notification confirms
// it. Every change the store announces (this process, the CLI, an editor) is
// applied here.
import { isDeepStrictEqual } from 'node:util';
import type { Account, ProjectInfo } from '../store/account.ts';
import type { AccountChange, AccountStore } from '../store/store.ts';
import type { Logger } from '../log/logger.ts';
import { Lanes, type Lane } from './lanes.ts';
import { Entry } from './entry.ts';

export { Entry } from './entry.ts';

/** Disabled or taken out of the proxy (in the store, or decided here and not yet confirmed). */
export function staticallyOut(e: Entry): boolean {
  return e.account.disabled || e.pendingDisable !== null || e.account.proxy_disabled || e.pendingProxyDisable !== null;
}

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

/** The same project record (source, check time, API states, reasons), whichever read it came from. */
function sameProject(a: ProjectInfo | null, b: ProjectInfo | null): boolean {
  return a === b || (a !== null && b !== null && isDeepStrictEqual(a, b));
}

export interface MirrorHooks {
  /** The entry may serve at all (true) or is statically out (false); called after every change to it. */
  rotation(e: Entry, inRotation: boolean): void;
  /** The entry left the pool. */
  removed(e: Entry): void;
  /** The entry is about to move to other lanes (the selectors find it in its lane's ring: it leaves them first). */
  moving(e: Entry): void;
  /** An account's live state may have changed. */
  changed(id: string): void;
}

export class Mirror {
  private readonly entries = new Map<string, Entry>();
  readonly lanes = new Lanes<Entry>();
  /** Entries by lower-cased email: built at the first look-up by email (pinning by email), then kept up to date. */
  private byEmail: Map<string, Entry> | null = null;
  /** Ids changed while load() was listing (list() results for them are stale); null once loaded. */
  private changedDuringLoad: Set<string> | null = null;
  private readonly hooks: MirrorHooks;
  private readonly logger: Logger;

  constructor(hooks: MirrorHooks, logger: Logger) {
    this.hooks = hooks;
    this.logger = logger;
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: string): Entry | undefined {
    return this.entries.get(id);
  }

  values(): IterableIterator<Entry> {
    return this.entries.values();
  }

  ids(): IterableIterator<string> {
    return this.entries.keys();
  }

  /** An entry by id, or by email (case-insensitive). */
  find(ref: string): Entry | null {
    const byId = this.entries.get(ref);
    if (byId) return byId;
    if (this.byEmail === null) {
      this.byEmail = new Map();
      for (const e of this.entries.values()) this.byEmail.set(e.account.email.toLowerCase(), e);
    }
    return this.byEmail.get(ref.trim().toLowerCase()) ?? null;
  }

  private unindexEmail(e: Entry, email: string): void {
    const lower = email.toLowerCase();
    if (this.byEmail?.get(lower) === e) this.byEmail.delete(lower);
  }

  /**
   * Takes in the store's view of one account. `notified`: it came from the
   * store's change notification (which, unlike a write's return value, also
   * confirms that a decision made here has reached the store).
   */
  apply(account: Account, notified = false): Entry {
    let e = this.entries.get(account.id);
    if (!e) {
      e = new Entry(account, null as unknown as Lane<Entry>); // placed on its lanes below
      this.entries.set(account.id, e);
    } else {
      const old = e.account;
      if (old.token.refresh_token !== account.token.refresh_token || old.oauth_client_id !== account.oauth_client_id) {
        // new credentials: whatever went wrong with the old ones no longer applies
        e.backoff = null;
        e.pendingDisable = null;
      }
      if (old.token.access_token !== account.token.access_token) {
        e.rejectedToken = null;
        e.tokenLifetimeMs = null;
        // a changed access token while disabled is how a re-add looks (docs/accounts.md, "Adding and re-adding")
        if (!account.disabled) e.pendingDisable = null;
      }
      // a project written anew (checked, enabled, or Vertex AI taken away) ends a refusal decided here
      // (by value: every read of the store is a new object, and a re-read or a last_used write is no new check)
      if (old.project_id !== account.project_id || !sameProject(old.project, account.project)) e.vertexOff = null;
      if (this.byEmail !== null && old.email !== account.email) this.unindexEmail(e, old.email);
      e.account = account;
    }
    // a decision made here stays in force until the store's notification shows it
    // (an older notification still on its way must not undo it)
    if (notified && account.disabled) e.pendingDisable = null;
    if (notified && account.proxy_disabled) e.pendingProxyDisable = null;
    this.byEmail?.set(account.email.toLowerCase(), e);
    e.scopes = scopeSet(account.token.scope);
    if (account.last_used !== null && account.last_used > e.lastUsedWritten) e.lastUsedWritten = account.last_used;
    if ((e.ringAt >= 0 || e.vertexRingAt >= 0) && this.lanes.moves(e, account)) this.hooks.moving(e);
    this.lanes.place(e, account);
    this.sync(e);
    return e;
  }

  remove(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    this.unindexEmail(e, e.account.email);
    // out of the selectors first: they keep it in its lanes' arrays
    this.hooks.removed(e);
    this.lanes.leave(e);
  }

  /** Marks the entry disabled (invalid_grant with this refresh token) until the store confirms it. */
  markDisabled(e: Entry, refreshToken: string): void {
    e.pendingDisable = refreshToken;
    this.sync(e);
    this.hooks.changed(e.id);
  }

  /** Takes the entry's Vertex lane out of use until the store shows its project changed. */
  markVertexOff(e: Entry, reason: string): void {
    e.vertexOff = reason;
    this.hooks.changed(e.id);
  }

  /** Marks the entry taken out of the proxy until the store confirms it. */
  markProxyDisabled(e: Entry, reason: string): void {
    e.pendingProxyDisable = reason;
    this.sync(e);
    this.hooks.changed(e.id);
  }

  /**
   * Subscribes to the store and reads every account. A change notified while
   * the listing runs is newer than what the listing read, so it wins. A store
   * still loading in the background gives the accounts read so far, at once
   * and in the same turn as the subscription (so nothing falls between), and
   * the rest as they are read. Returns the unsubscribe function.
   */
  async load(store: AccountStore): Promise<() => void> {
    if (store.loading?.() && store.loadedSoFar) {
      const unwatch = store.watch((c) => this.onStoreChange(c));
      for (const a of store.loadedSoFar()) this.apply(a);
      return unwatch;
    }
    const changed = new Set<string>();
    this.changedDuringLoad = changed;
    const unwatch = store.watch((c) => this.onStoreChange(c));
    let accounts: Account[];
    try {
      accounts = await store.list();
    } catch (err) {
      unwatch();
      throw err;
    } finally {
      this.changedDuringLoad = null;
    }
    for (const a of accounts) if (!changed.has(a.id)) this.apply(a);
    return unwatch;
  }

  private sync(e: Entry): void {
    this.hooks.rotation(e, !staticallyOut(e));
  }

  private onStoreChange(change: AccountChange): void {
    this.changedDuringLoad?.add(change.id);
    if (change.initial && change.account && !this.entries.has(change.id)) {
      // read by the store's background load: there all along, not news
      this.apply(change.account, true);
      return;
    }
    if (change.account === null) {
      this.remove(change.id);
      this.logger.info({ account_id: change.id }, 'Account removed from the pool');
      this.hooks.changed(change.id);
      return;
    }
    const known = this.entries.get(change.id);
    const wasOut = known ? staticallyOut(known) : true;
    const e = this.apply(change.account, true);
    if (wasOut && !staticallyOut(e)) {
      this.logger.info({ account_id: e.id, email: e.account.email }, `Account ${known ? 'back in' : 'added to'} the pool (${e.account.email})`);
    }
    this.hooks.changed(e.id);
  }
}
