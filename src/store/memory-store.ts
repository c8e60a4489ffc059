// An in-memory AccountStore with the same semantics as the file store: every
// write is validated, callers get read-only accounts (update callbacks get drafts), watch() is told
// about every change, upsertByIdentity matches `sub` else email, and
// withRefreshLock serialises per account id. Used in tests and by anyone who
// needs a store without a disk.
import { AccountSchema, draftAccount, readOnlyAccount, sameIdentity, type Account, type Identity } from './account.ts';
import type { AccountChange, AccountStore } from './store.ts';
import { AccountExistsError, StoreUnavailableError } from './errors.ts';
import { KeyedQueue } from '../fsx/file-lock.ts';

export class MemoryAccountStore implements AccountStore {
  private accounts = new Map<string, Account>();
  private watchers = new Set<(change: AccountChange) => void>();
  /** The refresh lock: one queue per account id. */
  private refreshLocks = new KeyedQueue();
  /** Tail of the write queue per account id (update/upsert/remove are serialised like the file store's). */
  private writeQueue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(initial: readonly Account[] = []) {
    for (const a of initial) {
      const parsed = stored(a);
      this.accounts.set(parsed.id, parsed);
    }
  }

  async list(): Promise<Account[]> {
    return [...this.accounts.values()];
  }

  async get(id: string): Promise<Account | null> {
    const a = this.accounts.get(id);
    return a ?? null;
  }

  update(id: string, change: (current: Account) => Account | null): Promise<Account | null> {
    return this.serial(async () => {
      const current = this.accounts.get(id);
      if (!current) return null;
      const next = change(draftAccount(current));
      if (next === null) return current;
      const parsed = stored({ ...next, id });
      this.accounts.set(id, parsed);
      this.emit(id, parsed);
      return parsed;
    });
  }

  upsertByIdentity(
    identity: Identity,
    build: (existing: Account | null) => Account,
  ): Promise<{ account: Account; created: boolean }> {
    return this.serial(async () => {
      let existing: Account | null = null;
      for (const a of this.accounts.values()) {
        if (sameIdentity({ sub: a.sub, email: a.email }, identity)) {
          existing = a;
          break;
        }
      }
      const built = AccountSchema.parse(build(existing ? draftAccount(existing) : null));
      const id = existing ? existing.id : built.id;
      const account = stored({ ...built, id });
      if (!existing && this.accounts.has(id)) throw new AccountExistsError(id);
      this.accounts.set(id, account);
      this.emit(id, account);
      return { account, created: !existing };
    });
  }

  remove(id: string): Promise<boolean> {
    return this.serial(async () => {
      if (!this.accounts.delete(id)) return false;
      this.emit(id, null);
      return true;
    });
  }

  /** Test helper: insert or replace an account as a person with an editor would (validated, watchers told). */
  put(account: Account): Promise<Account> {
    return this.serial(async () => {
      const parsed = stored(account);
      this.accounts.set(parsed.id, parsed);
      this.emit(parsed.id, parsed);
      return parsed;
    });
  }

  watch(onChange: (change: AccountChange) => void): () => void {
    this.watchers.add(onChange);
    return () => {
      this.watchers.delete(onChange);
    };
  }

  withRefreshLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.refreshLocks.run(id, fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the account store is closed'));
    const run = this.writeQueue.then(fn, fn);
    this.writeQueue = run.catch(() => {});
    return run;
  }

  private emit(id: string, account: Account | null): void {
    for (const w of [...this.watchers]) {
      try {
        w({ id, account });
      } catch {
        // a watcher's failure is its own business
      }
    }
  }
}

/** Validated like a written file (a JSON round trip, defaults filled in), then read-only. */
function stored(a: unknown): Account {
  return readOnlyAccount(AccountSchema.parse(JSON.parse(JSON.stringify(a))));
}
