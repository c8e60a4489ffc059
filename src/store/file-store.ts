// The embedded account store: one JSON file per account in <dataDir>/accounts
// (docs/accounts.md, docs/design.md). The files are the source of truth; this store keeps what it
// last saw of each file so that it can tell real changes from touches, report
// every change once, and answer list() from a stat per file once warm.
//
// - Writes are read-modify-write under one cross-process lock (accounts/.store.lock).
// - Files are written atomically (temp file, fsync, rename, fsync folder), mode 0600.
// - A file that does not parse or fails the schema is moved aside to
//   `<name>.corrupt-<unix time>` and logged; the rest loads.
// - watch(): fs.watch on the folder (debounced per file) plus a slow safety rescan
//   (folder-watch.ts; the rescan and the file reads are in folder-scan.ts).
// - With `backgroundLoad` (the gateway), open() returns once the first files are
//   read and reads the rest in the background (folder-load.ts), watching the
//   folder from before it is listed, so no change made meanwhile is missed.
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.ts';
import { byCreation, draftAccount, sameIdentity, type Account, type Identity } from './account.ts';
import {
  accountFileName,
  formatAccount,
  isAccountId,
  parseAccountFile,
  validateAccount,
  InvalidAccountError,
} from './account-file.ts';
import { fsyncDir, writeFileAtomic } from '../fsx/atomic-write.ts';
import { KeyedQueue, outsideLocks, withFileLock } from '../fsx/file-lock.ts';
import type { AccountChange, AccountStore, LoadProgress } from './store.ts';
import { EntryTable, type Entry, type FileStoreOptions, type ReadOutcome } from './file-store-types.ts';
import { hash, isNotFound, listFolder, moveAside, noteUnreadable, readFileWithSig, readFileWithSigSync, removeOldTempFiles, rescanFolder } from './folder-scan.ts';
import { FolderLoad } from './folder-load.ts';
import { FolderWatch } from './folder-watch.ts';
import { AccountEncryptedError, keyringSealer, NO_KEYS, SealingCensus, type EncryptionReport, type TokenSealer } from './token-cipher.ts';

export type { FileStoreOptions } from './file-store-types.ts';

/** A file that looks unreadable is read again after this long before it is moved aside (an editor may be mid-write). */
const BAD_FILE_GRACE_MS = 150;
/** A known file that disappeared is checked again after this long before its removal is reported (editors that rename). */
const REMOVAL_GRACE_MS = 100;
const STORE_LOCK = '.store.lock';

export class FileStore implements AccountStore {
  readonly dir: string;
  private readonly logger: Logger;
  private readonly lockOptions: { staleMs: number; waitMs: number; onCompromised: (err: Error) => void };
  private readonly refreshLockWaitMs: number;

  private readonly known = new EntryTable();
  /** Reads and writes of one file, in order, so a slow read never overtakes a newer write. */
  private readonly perFile = new KeyedQueue();
  private readonly listeners = new Set<(change: AccountChange) => void>();
  private readonly unreadable = new Set<string>();
  private readonly folder: FolderWatch;
  private readonly sealer: TokenSealer;
  private readonly census = new SealingCensus();
  private closed = false;
  private readonly loadPlan: { firstMs: number; sliceMs: number } | null;
  /** The first load while it runs in the background; null before open() and once it is done. */
  private load: FolderLoad | null = null;
  private loadDone: Promise<void> = Promise.resolve();

  constructor(opts: FileStoreOptions) {
    // Absolute, so that every lock of this folder has one name in this process.
    this.dir = resolve(opts.dataDir, 'accounts');
    this.logger = opts.logger;
    this.refreshLockWaitMs = opts.refreshLockWaitMs ?? 120_000;
    this.sealer = opts.sealer ?? keyringSealer(NO_KEYS);
    const bg = opts.backgroundLoad === true ? {} : opts.backgroundLoad || null;
    this.loadPlan = bg && { firstMs: bg.firstMs ?? 50, sliceMs: bg.sliceMs ?? 8 };
    this.lockOptions = {
      staleMs: opts.lockStaleMs ?? 10_000,
      waitMs: opts.lockWaitMs ?? 30_000,
      onCompromised: (err) =>
        this.logger.error({ err: err.message }, 'Account store lock was taken over while held (process stalled?)'),
    };
    this.folder = new FolderWatch({
      dir: this.dir,
      logger: this.logger,
      pollIntervalMs: opts.pollIntervalMs ?? 5000,
      debounceMs: opts.debounceMs ?? 25,
      knownCount: () => this.known.size,
      readFile: (id) => this.refresh(id, false),
      rescan: () => this.rescan({ cleanTemp: true, lockHeld: false }),
    });
  }

  /** Creates the folder if needed and loads every account file once (with backgroundLoad: starts to). */
  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const plan = this.loadPlan;
    if (!plan) return this.rescan({ cleanTemp: true, lockHeld: false });
    // Watching before listing: a file changed after the listing is read again by its event.
    this.folder.start();
    const { ids, temps } = await listFolder(this.dir);
    const load = new FolderLoad({ ids, step: (id) => this.loadOne(id), sliceMs: plan.sliceMs });
    this.load = load;
    this.loadDone = load.done.then(() => {
      if (this.load === load) this.load = null;
      this.folder.scanned();
      if (this.listeners.size === 0) this.folder.stop();
    });
    if (temps.length) void removeOldTempFiles(this.dir, temps, this.logger);
    load.start(plan.firstMs);
  }

  /** One file of the first load: read synchronously, or handed to the asynchronous path when it needs more than one look. */
  private loadOne(id: string): Promise<unknown> | void {
    if (this.closed || this.known.has(id)) return; // read already (a change event, get(), a write)
    if (this.perFile.busy(id)) return this.refresh(id, false).catch(() => {});
    let file: { raw: string; sig: number } | null;
    try {
      file = readFileWithSigSync(this.path(id));
    } catch {
      // unreadable (permissions, I/O error): the asynchronous path says so once
      return this.refresh(id, false).catch((e: unknown) => noteUnreadable(this.unreadable, id, e, this.logger));
    }
    if (!file) return; // removed since the folder was listed
    if (this.examine(id, file).kind === 'bad') return this.refresh(id, false).catch(() => {});
  }

  // ---- reading -------------------------------------------------------------

  private path(id: string): string {
    return join(this.dir, accountFileName(id));
  }

  /** Reads one file and records it (emitting a change if its content differs from what was last seen). */
  private async readAndRecord(id: string, confirmRemoval: boolean): Promise<ReadOutcome> {
    const file = await readFileWithSig(this.path(id));
    if (!file) {
      if (!this.known.has(id)) return { kind: 'absent' };
      if (!confirmRemoval) return { kind: 'missing' };
      this.record(id, null);
      return { kind: 'absent' };
    }
    return this.examine(id, file);
  }

  /** Takes in what was read of one file: unchanged text is not parsed again. */
  private examine(id: string, file: { raw: string; sig: number }): ReadOutcome {
    const rawHash = hash(file.raw);
    const prev = this.known.get(id);
    if (prev && prev.rawHash === rawHash) {
      this.known.setSig(id, file.sig);
      return { kind: 'ok', entry: prev };
    }
    const parsed = parseAccountFile(file.raw, id);
    if (!parsed.ok) return { kind: 'bad', rawHash, reason: parsed.reason };
    const opened = this.sealer.open(parsed.account);
    if (opened.lock && prev?.lock?.reason !== opened.lock.reason) {
      this.logger.error({ id, email: opened.account.email, key_id: opened.lock.keyId }, `Account ${opened.account.email} (${id}) is ${opened.lock.reason}: it serves nothing and its file is left unchanged`);
    }
    this.census.note(id, opened);
    const entry: Entry = { account: opened.account, rawHash, sig: file.sig, lock: opened.lock, stored: parsed.account };
    this.record(id, entry);
    return { kind: 'ok', entry };
  }

  /**
   * Brings what the store knows of one file up to date and returns it (null when
   * the account does not exist). An unreadable file is given a moment (an
   * editor may be writing it in place), then moved aside.
   */
  private async refresh(id: string, lockHeld: boolean): Promise<Entry | null> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const second = attempt > 0;
      const out = await this.perFile.run(id, () => this.readAndRecord(id, second));
      if (out.kind === 'ok') return out.entry;
      if (out.kind === 'absent') return null;
      if (!second) {
        await sleep(out.kind === 'bad' ? BAD_FILE_GRACE_MS : REMOVAL_GRACE_MS);
        continue;
      }
      if (out.kind === 'bad') {
        const movedAside = lockHeld
          ? await this.quarantineLocked(id, out.rawHash, out.reason)
          : await this.withStoreLock(() => this.quarantineLocked(id, out.rawHash, out.reason));
        if (movedAside) {
          await this.perFile.run(id, async () => this.record(id, null));
          return null;
        }
      }
    }
    return this.known.get(id) ?? null;
  }

  /** Moves `<id>.json` aside if it still has the unreadable content; call with the store lock held. */
  private quarantineLocked(id: string, rawHash: number, reason: string): Promise<boolean> {
    return moveAside(this.dir, accountFileName(id), (raw) => hash(raw) === rawHash, reason, this.logger);
  }

  /** Records what the store now knows of a file and tells listeners when the content changed. */
  private record(id: string, entry: Entry | null): void {
    const before = this.known.account(id);
    if (!entry) {
      if (!before) return;
      this.known.delete(id);
      this.census.note(id, null);
      this.emit({ id, account: null });
      return;
    }
    // Keyed by the account's own id string (equal to `id`), so that one copy of it is kept.
    this.known.set(before ? id : entry.account.id, entry);
    // Equal content in other text (spacing, key order of a hand edit) is not a change.
    if (this.listeners.size && (!before || JSON.stringify(before) !== JSON.stringify(entry.account))) {
      this.emit(!before && this.load ? { id, account: entry.account, initial: true } : { id, account: entry.account });
    }
  }

  private emit(change: AccountChange): void {
    for (const listener of this.listeners) {
      try {
        // A listener may call the store (without waiting for it inside this write).
        outsideLocks(() => listener(change));
      } catch (e) {
        this.logger.error({ id: change.id, err: e }, 'Account change listener failed');
      }
    }
  }

  /** Re-reads every file that changed since it was last read (folder-scan.ts); after the first load. */
  private async rescan(opts: { cleanTemp: boolean; lockHeld: boolean }): Promise<void> {
    if (this.load) await this.loadDone;
    return rescanFolder({
      dir: this.dir,
      logger: this.logger,
      known: this.known,
      refresh: (id) => this.refresh(id, opts.lockHeld),
      unreadable: this.unreadable,
      cleanTemp: opts.cleanTemp,
    });
  }

  // ---- AccountStore ----------------------------------------------------------

  async list(): Promise<Account[]> {
    await this.rescan({ cleanTemp: false, lockHeld: false });
    return this.known.accounts().sort(byCreation);
  }

  loading(): LoadProgress | null {
    const load = this.load;
    return load && !load.isDone ? load.progress : null;
  }

  loadedSoFar(): Account[] {
    return this.known.accounts();
  }

  whenLoaded(): Promise<void> {
    return this.loadDone;
  }

  async get(id: string): Promise<Account | null> {
    if (!isAccountId(id)) return null;
    const entry = await this.refresh(id, false);
    return entry ? entry.account : null;
  }

  update(id: string, change: (current: Account) => Account | null): Promise<Account | null> {
    if (!isAccountId(id)) return Promise.resolve(null);
    return this.withStoreLock(async () => {
      const current = await this.refresh(id, true);
      if (!current) return null;
      if (current.lock) throw new AccountEncryptedError(current.account, current.lock);
      const proposed = outsideLocks(() => change(draftAccount(current.account)));
      if (proposed == null) return current.account;
      const next = validateAccount(proposed);
      if (next.id !== id) throw new InvalidAccountError(`id: an update cannot change the id ("${id}" to "${next.id}")`);
      await this.writeLocked(next, current);
      return next;
    });
  }

  upsertByIdentity(
    identity: Identity,
    build: (existing: Account | null) => Account,
  ): Promise<{ account: Account; created: boolean }> {
    // Every account must be known to find the one with this identity: after the first load, outside the lock.
    return this.loadDone.then(() => this.withStoreLock(async () => {
      // Another process may have added this identity a moment ago: look at the folder, not the memory.
      await this.rescan({ cleanTemp: false, lockHeld: true });
      const existing = this.findByIdentity(identity);
      if (existing?.lock) throw new AccountEncryptedError(existing.account, existing.lock);
      const next = validateAccount(outsideLocks(() => build(existing ? draftAccount(existing.account) : null)));
      if (existing && next.id !== existing.account.id) {
        throw new InvalidAccountError(`id: the account of this identity is "${existing.account.id}", not "${next.id}"`);
      }
      if (!existing && !isAccountId(next.id)) throw new InvalidAccountError('id: letters, digits, _ and - only');
      if (!existing && this.known.has(next.id)) {
        throw new InvalidAccountError(`id: "${next.id}" is already used by another account`);
      }
      await this.writeLocked(next, existing);
      return { account: next, created: !existing };
    }));
  }

  remove(id: string): Promise<boolean> {
    if (!isAccountId(id)) return Promise.resolve(false);
    return this.withStoreLock(() =>
      this.perFile.run(id, async () => {
        try {
          await rm(this.path(id));
        } catch (e) {
          if (!isNotFound(e)) throw e;
          this.record(id, null);
          return false;
        }
        await fsyncDir(this.dir);
        this.record(id, null);
        return true;
      }),
    );
  }

  watch(onChange: (change: AccountChange) => void): () => void {
    this.listeners.add(onChange);
    if (!this.closed) this.folder.start();
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0 && !this.load) this.folder.stop();
    };
  }

  withRefreshLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (!isAccountId(id)) return Promise.reject(new InvalidAccountError('id: letters, digits, _ and - only'));
    return withFileLock(join(this.dir, `.refresh-${id}.lock`), fn, {
      ...this.lockOptions,
      waitMs: this.refreshLockWaitMs,
    });
  }

  /** Accounts whose tokens do not decrypt with this store's keys (null when none). */
  problem(): string | null {
    return this.census.problem();
  }

  /** How the tokens of the accounts are stored (/api/status, doctor). */
  encryption(): EncryptionReport {
    return this.census.report(this.sealer.keyring, this.known.size);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.load?.stop();
    this.listeners.clear();
    await this.folder.close();
  }

  // ---- writing ---------------------------------------------------------------

  private withStoreLock<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(join(this.dir, STORE_LOCK), fn, this.lockOptions);
  }

  /** Writes an account file (store lock held) unless its content is already that. */
  private async writeLocked(account: Account, current: Entry | null): Promise<void> {
    // Compared as plaintext: encrypted text differs at every write (a fresh nonce).
    if (current && formatAccount(current.account) === formatAccount(account)) return;
    const stored = this.sealer.seal(account, current && { stored: current.stored, plain: current.account });
    const raw = formatAccount(stored);
    const rawHash = hash(raw);
    const id = account.id;
    await this.perFile.run(id, async () => {
      await writeFileAtomic(this.path(id), raw, 0o600);
      this.census.note(id, this.sealer.open(stored));
      this.record(id, { account, rawHash, sig: null, lock: null, stored });
    });
  }

  private findByIdentity(identity: Identity): Entry | null {
    let byEmail: string | null = null;
    for (const id of this.known.ids()) {
      const a = this.known.account(id)!;
      if (identity.sub && a.sub && identity.sub === a.sub) return this.known.get(id)!;
      if (byEmail === null && sameIdentity(identity, { sub: a.sub, email: a.email })) byEmail = id;
    }
    return byEmail === null ? null : this.known.get(byEmail)!;
  }
}

/** Opens the file store of a data directory: creates `<dataDir>/accounts` (0700) and loads it. */
export async function createFileStore(opts: FileStoreOptions): Promise<FileStore> {
  const store = new FileStore(opts);
  await store.open();
  return store;
}
