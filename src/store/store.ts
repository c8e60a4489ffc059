// The account store: the one interface between Grantpool and where accounts
// live. The file backend (file-store.ts) is the embedded default; a database
// backend implements the same interface.
import type { Account, Identity } from './account.ts';
import type { EncryptionReport } from './token-cipher.ts';

export interface AccountChange {
  id: string;
  /** The account as it is now; null when it was removed. */
  account: Account | null;
  /**
   * Set when the store read this account for the first time during its
   * background load (loading() below): not a change anyone made, the account
   * was there when the store opened (or appeared while it loaded).
   */
  initial?: boolean;
}

/** How far a store's first load of its accounts is. */
export interface LoadProgress {
  /** Accounts read so far. */
  loaded: number;
  /** Accounts the store found to read (files listed, rows counted) when it opened. */
  total: number;
}

/**
 * Accounts handed out by a store are read-only (frozen) and may be shared by
 * every reader; changes go through update() or upsertByIdentity(), whose
 * callbacks get a draft copy to change.
 */
export interface AccountStore {
  /** Every readable account. Unreadable entries are quarantined and logged, never fatal. */
  list(): Promise<Account[]>;
  get(id: string): Promise<Account | null>;
  /**
   * Read-modify-write of one account, serialised against every other writer
   * (other processes included). `change` gets the current account and returns
   * the new one, or null to leave it as it is. Returns the stored account
   * (null when the account does not exist).
   */
  update(id: string, change: (current: Account) => Account | null): Promise<Account | null>;
  /**
   * Insert or update by Google identity (`sub`, else email), serialised like
   * update(). `build` gets the stored account with that identity, or null.
   */
  upsertByIdentity(
    identity: Identity,
    build: (existing: Account | null) => Account,
  ): Promise<{ account: Account; created: boolean }>;
  /** Delete an account. Returns false when it did not exist. */
  remove(id: string): Promise<boolean>;
  /**
   * Change notification: called for every account created, changed or removed
   * by anyone (this process, another process, a person with an editor).
   * Returns a function that stops watching.
   */
  watch(onChange: (change: AccountChange) => void): () => void;
  /**
   * Runs `fn` while holding the refresh lock of one account, so that at most
   * one refresh per account is in flight across every gateway on this store.
   */
  withRefreshLock<T>(id: string, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** What keeps the store from working right now (e.g. the database is unreachable), or null. Optional. */
  problem?(): string | null;
  /** How the tokens of the accounts are stored: plain, encrypted, or locked (no key to decrypt them). Optional. */
  encryption?(): EncryptionReport;
  /**
   * Stores opened with a background load (the gateway, so that it serves
   * before every one of many accounts is read; docs/design.md, "Starting
   * with many accounts"): how far the first load is, or null once every
   * account has been read. While it runs, list() waits for it; the accounts
   * read so far are in loadedSoFar(), and each one read later reaches
   * watchers as a change marked `initial`. Optional: stores without it load
   * everything before they open.
   */
  loading?(): LoadProgress | null;
  /** The accounts read so far (no I/O, no waiting), while loading() is not null. With loading(). */
  loadedSoFar?(): Account[];
  /** Resolves when the first load has finished (at once when it has). With loading(). */
  whenLoaded?(): Promise<void>;
}
