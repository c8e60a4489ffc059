// The pool's in-memory mirror of the account store: one entry per account with
// what the hot path needs precomputed (lower-cased email, scope set, expiry in
// ms), the per-account marks that live in memory only (cooldowns, refresh
// backoff, a rejected token), and the pending flags: a decision made here
// (disabled, proxy_disabled) that is in force before the store's notification
// confirms it. Every change the store announces (this process, the CLI, an
// editor) is applied here.
import { isDeepStrictEqual } from 'node:util';
import type { Account, ProjectInfo } from '../store/account.ts';
import type { AccountChange, AccountStore } from '../store/store.ts';
import type { Logger } from '../log/logger.ts';
import { ModelCooldowns, type RefreshBackoff } from './cooldowns.ts';
import { clientKey } from './client-health.ts';
import { Lanes, type Lane } from './lanes.ts';

export interface Entry {
  readonly id: string;
  account: Account;
  emailLower: string;
  /** Granted scopes (shared by every account with the same scope string: read-only). */
  scopes: ReadonlySet<string>;
  clientKey: string;
  expiresAtMs: number;
  /**
   * How long the current access token lived when this pool obtained it (ms),
   * or null when unknown (a token from the file). Short-lived tokens get
   * margins in proportion (eligibility.ts: marginFor).
   */
  tokenLifetimeMs: number | null;
  /** The Gemini API quota this account draws on (lanes.ts); follows its project_id live. */
  lane: Lane<Entry>;
  /** Its Vertex AI lane (`vertex:<project>`) when its project has Vertex AI enabled, else null. */
  vertexLane: Lane<Entry> | null;
  /** Per model, after an upstream 5xx on the Gemini API (a 429 cools the whole lane instead). */
  cooldowns: ModelCooldowns;
  /** The same on Vertex AI. */
  vertexCooldowns: ModelCooldowns;
  /** Vertex AI refused this account in its project (a 403), until the store shows the project changed: its Vertex lane is not used. */
  vertexOff: string | null;
  backoff: RefreshBackoff | null;
  /** An access token an upstream answered 401 to: not handed out again. */
  rejectedToken: string | null;
  /** Refresh token that got invalid_grant, until the store shows the account disabled. */
  pendingDisable: string | null;
  /** proxy_disabled reason decided here, until the store shows it. */
  pendingProxyDisable: string | null;
  lastUsedPersistedMs: number;
}

/** Disabled or taken out of the proxy (in the store, or decided here and not yet confirmed). */
export function staticallyOut(e: Entry): boolean {
  return e.account.disabled || e.pendingDisable !== null || e.account.proxy_disabled || e.pendingProxyDisable !== null;
}

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

/** The same project record (source, check time, API states, reasons), whichever read it came from. */
function sameProject(a: ProjectInfo | null, b: ProjectInfo | null): boolean {
  return a === b || (a !== null && b !== null && isDeepStrictEqual(a, b));
}

export interface MirrorHooks {
  /** The entry may serve at all (true) or is statically out (false); called after every change to it. */
  rotation(e: Entry, inRotation: boolean): void;
  /** The entry left the pool. */
  removed(id: string): void;
  /** An account's live state may have changed. */
  changed(id: string): void;
}

export class Mirror {
  private readonly entries = new Map<string, Entry>();
  readonly lanes = new Lanes<Entry>();
  private readonly byEmail = new Map<string, string>();
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
    const id = this.byEmail.get(ref.trim().toLowerCase());
    return id ? (this.entries.get(id) ?? null) : null;
  }

  /**
   * Takes in the store's view of one account. `notified`: it came from the
   * store's change notification (which, unlike a write's return value, also
   * confirms that a decision made here has reached the store).
   */
  apply(account: Account, notified = false): Entry {
    let e = this.entries.get(account.id);
    if (!e) {
      e = {
        id: account.id,
        account,
        emailLower: '',
        scopes: NO_SCOPES,
        clientKey: '',
        expiresAtMs: 0,
        tokenLifetimeMs: null,
        lane: null as unknown as Lane<Entry>, // placed below
        vertexLane: null,
        cooldowns: new ModelCooldowns(),
        vertexCooldowns: new ModelCooldowns(),
        vertexOff: null,
        backoff: null,
        rejectedToken: null,
        pendingDisable: null,
        pendingProxyDisable: null,
        lastUsedPersistedMs: 0,
      };
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
      if (this.byEmail.get(e.emailLower) === e.id) this.byEmail.delete(e.emailLower);
      e.account = account;
    }
    // a decision made here stays in force until the store's notification shows it
    // (an older notification still on its way must not undo it)
    if (notified && account.disabled) e.pendingDisable = null;
    if (notified && account.proxy_disabled) e.pendingProxyDisable = null;
    const lower = account.email.toLowerCase();
    e.emailLower = lower === account.email ? account.email : lower; // one string, not two, for most addresses
    this.byEmail.set(e.emailLower, e.id);
    e.scopes = scopeSet(account.token.scope);
    e.clientKey = clientKey(account.oauth_client_id);
    e.expiresAtMs = account.token.expiry_timestamp * 1000;
    if (account.last_used) e.lastUsedPersistedMs = Math.max(e.lastUsedPersistedMs, account.last_used * 1000);
    this.lanes.place(e, account);
    this.sync(e);
    return e;
  }

  remove(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    if (this.byEmail.get(e.emailLower) === id) this.byEmail.delete(e.emailLower);
    this.lanes.leave(e);
    this.hooks.removed(id);
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
