// The embedded account store: one JSON file per account in <dataDir>/accounts
// (SPEC section 3). The files are the source of truth; this store keeps what it
// last saw of each file so that it can tell real changes from touches, report
// every change once, and answer list() from a stat per file once warm.
//
// - Writes are read-modify-write under one cross-process lock (accounts/.store.lock).
// - Files are written atomically (temp file, fsync, rename, fsync folder), mode 0600.
// - A file that does not parse or fails the schema is moved aside to
//   `<name>.corrupt-<unix time>` and logged; the rest loads.
// - watch(): fs.watch on the folder (debounced per file) plus a slow safety rescan.
import fs, { watch as fsWatch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.ts';
import { byCreation, draftAccount, sameIdentity, type Account, type Identity } from './account.ts';
import {
  accountFileName,
  accountIdOfFileName,
  formatAccount,
  isAccountId,
  parseAccountFile,
  validateAccount,
  InvalidAccountError,
} from './account-file.ts';
import { fsyncDir, isAtomicTempFile, writeFileAtomic } from '../fsx/atomic-write.ts';
import { KeyedQueue, isLockLeftover, outsideLocks, withFileLock } from '../fsx/file-lock.ts';
import type { AccountChange, AccountStore } from './store.ts';

export interface FileStoreOptions {
  dataDir: string;
  logger: Logger;
  /** Safety rescan period while someone watches (inotify can miss events). Default 5000. */
  pollIntervalMs?: number;
  /** Per-file debounce of folder events. Default 25. */
  debounceMs?: number;
  /** A lock whose holder stopped refreshing it for this long is taken over. Default 10000. */
  lockStaleMs?: number;
  /** How long a write waits for the store lock before failing. Default 30000. */
  lockWaitMs?: number;
  /** How long withRefreshLock waits for another refresh of the same account. Default 120000. */
  refreshLockWaitMs?: number;
}

/** What the store last saw or wrote of one file. */
interface Entry {
  account: Account;
  /** Hash of the file text: equal text needs no parsing. */
  rawHash: string;
  /** inode/size/mtime/ctime of the file when read; null when unknown (after our own write). */
  sig: string | null;
}

type ReadOutcome =
  | { kind: 'ok'; entry: Entry }
  | { kind: 'absent' }
  | { kind: 'missing' }
  | { kind: 'bad'; rawHash: string; reason: string };

/** A file that looks unreadable is read again after this long before it is moved aside (an editor may be mid-write). */
const BAD_FILE_GRACE_MS = 150;
/** A known file that disappeared is checked again after this long before its removal is reported (editors that rename). */
const REMOVAL_GRACE_MS = 100;
/** Temp files of killed writers older than this are deleted. */
const TEMP_FILE_MAX_AGE_MS = 60_000;
/** Parallel file operations for a full scan. */
const SCAN_CONCURRENCY = 64;

const STORE_LOCK = '.store.lock';

// The callback forms: about twice as fast as fs/promises for many small files.
const statCb = promisify(fs.stat);
const openCb = promisify(fs.open);
const fstatCb = promisify(fs.fstat);
const readCb = promisify(fs.read);
const closeCb = promisify(fs.close);

/** Reads a whole file from an open descriptor; `sizeHint` is its size when opened. */
async function readAll(fd: number, sizeHint: number): Promise<string> {
  const chunks: Buffer[] = [];
  let position = 0;
  let size = Math.max(sizeHint, 1024);
  for (;;) {
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await readCb(fd, buf, 0, size, position);
    if (bytesRead === 0) break;
    chunks.push(bytesRead === size ? buf : buf.subarray(0, bytesRead));
    position += bytesRead;
    if (bytesRead < size) break;
    size = 64 * 1024;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function hash(text: string): string {
  return createHash('sha1').update(text).digest('base64');
}

function sigOf(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Safety rescan pace with many files: milliseconds between passes per known file. */
const RESCAN_MS_PER_FILE = 5;

export class FileStore implements AccountStore {
  readonly dir: string;
  private readonly logger: Logger;
  private readonly pollIntervalMs: number;
  private readonly debounceMs: number;
  private readonly lockOptions: { staleMs: number; waitMs: number; onCompromised: (err: Error) => void };
  private readonly refreshLockWaitMs: number;

  private readonly known = new Map<string, Entry>();
  /** Reads and writes of one file, in order, so a slow read never overtakes a newer write. */
  private readonly perFile = new KeyedQueue();
  private readonly listeners = new Set<(change: AccountChange) => void>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly unreadable = new Set<string>();
  private watcher: FSWatcher | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private lastPollAt = 0;
  private closed = false;

  constructor(opts: FileStoreOptions) {
    // Absolute, so that every lock of this folder has one name in this process.
    this.dir = resolve(opts.dataDir, 'accounts');
    this.logger = opts.logger;
    this.pollIntervalMs = opts.pollIntervalMs ?? 5000;
    this.debounceMs = opts.debounceMs ?? 25;
    this.refreshLockWaitMs = opts.refreshLockWaitMs ?? 120_000;
    this.lockOptions = {
      staleMs: opts.lockStaleMs ?? 10_000,
      waitMs: opts.lockWaitMs ?? 30_000,
      onCompromised: (err) =>
        this.logger.error({ err: err.message }, 'Account store lock was taken over while held (process stalled?)'),
    };
  }

  /** Creates the folder if needed and loads every account file once. */
  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.rescan({ cleanTemp: true, lockHeld: false });
  }

  // ---- reading -------------------------------------------------------------

  private path(id: string): string {
    return join(this.dir, accountFileName(id));
  }

  /** The text of `<id>.json` and the signature (inode, size, times) of what was read; null if absent. */
  private async readFileWithSig(id: string): Promise<{ raw: string; sig: string } | null> {
    let fd: number;
    try {
      fd = await openCb(this.path(id), 'r');
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
    try {
      // The signature is taken before reading: if the file changes meanwhile, it is the older one
      // and the next rescan reads the file again (never the other way round, which would miss a change).
      const st = await fstatCb(fd);
      return { raw: await readAll(fd, st.size), sig: sigOf(st) };
    } finally {
      await closeCb(fd);
    }
  }

  /** Reads one file and records it (emitting a change if its content differs from what was last seen). */
  private async readAndRecord(id: string, confirmRemoval: boolean): Promise<ReadOutcome> {
    const file = await this.readFileWithSig(id);
    if (!file) {
      if (!this.known.has(id)) return { kind: 'absent' };
      if (!confirmRemoval) return { kind: 'missing' };
      this.record(id, null);
      return { kind: 'absent' };
    }
    const rawHash = hash(file.raw);
    const prev = this.known.get(id);
    if (prev && prev.rawHash === rawHash) {
      prev.sig = file.sig;
      return { kind: 'ok', entry: prev };
    }
    const parsed = parseAccountFile(file.raw, id);
    if (!parsed.ok) return { kind: 'bad', rawHash, reason: parsed.reason };
    const entry: Entry = { account: parsed.account, rawHash, sig: file.sig };
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
  private async quarantineLocked(id: string, rawHash: string, reason: string): Promise<boolean> {
    const file = await this.readFileWithSig(id);
    if (!file || hash(file.raw) !== rawHash) return false;
    const name = accountFileName(id);
    const base = `${name}.corrupt-${Math.floor(Date.now() / 1000)}`;
    let target = base;
    for (let n = 2; await exists(join(this.dir, target)); n++) target = `${base}-${n}`;
    await rename(this.path(id), join(this.dir, target));
    await fsyncDir(this.dir);
    this.logger.warn(
      { id, file: name, moved_to: target, reason },
      `Account file ${name} is unreadable, moved aside to ${target}: ${reason}`,
    );
    return true;
  }

  /** Records what the store now knows of a file and tells listeners when the content changed. */
  private record(id: string, entry: Entry | null): void {
    const prev = this.known.get(id);
    if (!entry) {
      if (!prev) return;
      this.known.delete(id);
      this.emit({ id, account: null });
      return;
    }
    this.known.set(id, entry);
    // Equal content in other text (spacing, key order of a hand edit) is not a change.
    if (this.listeners.size && (!prev || JSON.stringify(prev.account) !== JSON.stringify(entry.account))) {
      this.emit({ id, account: entry.account });
    }
  }

  private emit(change: AccountChange): void {
    for (const listener of this.listeners) {
      try {
        // A listener may call the store (without waiting for it inside this write).
        outsideLocks(() => listener(change));
      } catch (e) {
        this.logger.error({ id: change.id, err: (e as Error).message }, 'Account change listener failed');
      }
    }
  }

  /**
   * Lists the folder and re-reads every file whose inode, size or times differ
   * from what was last read (all of them the first time), in bounded parallel.
   */
  private async rescan(opts: { cleanTemp: boolean; lockHeld: boolean }): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      names = [];
    }
    const present = new Set<string>();
    const temps: string[] = [];
    for (const name of names) {
      const id = accountIdOfFileName(name);
      if (id) present.add(id);
      else if (opts.cleanTemp && (isAtomicTempFile(name) || isLockLeftover(name))) temps.push(name);
    }
    const toCheck = [...present];
    for (const id of this.known.keys()) if (!present.has(id)) toCheck.push(id);
    await forEachLimit(toCheck, SCAN_CONCURRENCY, async (id) => {
      try {
        const prev = this.known.get(id);
        if (prev?.sig && present.has(id)) {
          const st = await statCb(this.path(id)).catch((e) => {
            if (isNotFound(e)) return null;
            throw e;
          });
          if (st && sigOf(st) === prev.sig) return;
        }
        await this.refresh(id, opts.lockHeld);
        this.unreadable.delete(id);
      } catch (e) {
        // Not readable at all (permissions, I/O error): the others still load. Said once, not at every rescan.
        const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        if (!this.unreadable.has(id)) {
          this.unreadable.add(id);
          this.logger.warn({ id, err: code }, `Cannot read account file ${accountFileName(id)} (${code}); skipped`);
        }
      }
    });
    if (temps.length) await this.removeOldTempFiles(temps);
  }

  private async removeOldTempFiles(names: string[]): Promise<void> {
    const now = Date.now();
    await forEachLimit(names, SCAN_CONCURRENCY, async (name) => {
      const p = join(this.dir, name);
      try {
        const st = await stat(p);
        if (now - st.mtimeMs < TEMP_FILE_MAX_AGE_MS) return;
        await rm(p, { recursive: true, force: true });
        this.logger.debug({ file: name }, 'Removed a temp file left by an interrupted write');
      } catch {
        // gone already, or not ours to remove
      }
    });
  }

  // ---- AccountStore ----------------------------------------------------------

  async list(): Promise<Account[]> {
    await this.rescan({ cleanTemp: false, lockHeld: false });
    return [...this.known.values()].map((e) => e.account).sort(byCreation);
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
    return this.withStoreLock(async () => {
      // Another process may have added this identity a moment ago: look at the folder, not the memory.
      await this.rescan({ cleanTemp: false, lockHeld: true });
      const existing = this.findByIdentity(identity);
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
    });
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
    if (!this.closed) this.startWatching();
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  withRefreshLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (!isAccountId(id)) return Promise.reject(new InvalidAccountError('id: letters, digits, _ and - only'));
    return withFileLock(join(this.dir, `.refresh-${id}.lock`), fn, {
      ...this.lockOptions,
      waitMs: this.refreshLockWaitMs,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.stopWatching();
    await Promise.allSettled([...this.inflight]);
  }

  // ---- writing ---------------------------------------------------------------

  private withStoreLock<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(join(this.dir, STORE_LOCK), fn, this.lockOptions);
  }

  /** Writes an account file (store lock held) unless its content is already that. */
  private async writeLocked(account: Account, current: Entry | null): Promise<void> {
    const raw = formatAccount(account);
    const rawHash = hash(raw);
    if (current && current.rawHash === rawHash) return;
    const id = account.id;
    await this.perFile.run(id, async () => {
      await writeFileAtomic(this.path(id), raw, 0o600);
      this.record(id, { account, rawHash, sig: null });
    });
  }

  private findByIdentity(identity: Identity): Entry | null {
    let byEmail: Entry | null = null;
    for (const entry of this.known.values()) {
      const a = entry.account;
      if (identity.sub && a.sub && identity.sub === a.sub) return entry;
      if (!byEmail && sameIdentity(identity, { sub: a.sub, email: a.email })) byEmail = entry;
    }
    return byEmail;
  }

  // ---- watching --------------------------------------------------------------

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private startWatching(): void {
    if (!this.watcher) {
      try {
        this.watcher = fsWatch(this.dir, { persistent: false }, (_event, filename) => this.onFolderEvent(filename));
        this.watcher.on('error', (err) => {
          this.logger.warn({ err: err.message }, 'Watching the accounts folder failed; relying on the periodic rescan');
          this.watcher?.close();
          this.watcher = null;
        });
      } catch (e) {
        this.logger.warn({ err: (e as Error).message }, 'Cannot watch the accounts folder; relying on the periodic rescan');
      }
    }
    if (!this.pollTimer) {
      this.pollTimer = setInterval(() => this.poll(), this.pollIntervalMs);
      this.pollTimer.unref();
    }
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  private onFolderEvent(filename: string | Buffer | null): void {
    if (this.closed) return;
    if (filename == null) {
      this.poll();
      return;
    }
    const id = accountIdOfFileName(String(filename));
    if (!id || this.pending.has(id)) return;
    const timer = setTimeout(() => {
      this.pending.delete(id);
      if (this.closed) return;
      this.track(
        this.refresh(id, false).catch((e) =>
          this.logger.warn({ id, err: (e as Error).message }, 'Could not read a changed account file'),
        ),
      );
    }, this.debounceMs);
    timer.unref();
    this.pending.set(id, timer);
  }

  private poll(): void {
    if (this.polling || this.closed) return;
    // The rescan is only a safety net behind inotify (and the only way to see
    // changes where there is none, e.g. NFS): with many files it runs less
    // often, 5 ms per file between passes (every 50 s for 10,000 files: a full
    // pass costs 0.1-0.2 s of CPU, so it stays under 0.5 % of a core).
    const now = Date.now();
    if (now - this.lastPollAt < Math.max(this.pollIntervalMs, this.known.size * RESCAN_MS_PER_FILE) - 50) return;
    this.lastPollAt = now;
    this.polling = true;
    if (!this.watcher && this.listeners.size) this.startWatching();
    this.track(
      this.rescan({ cleanTemp: true, lockHeld: false })
        .catch((e) => this.logger.warn({ err: (e as Error).message }, 'Rescan of the accounts folder failed'))
        .finally(() => {
          this.polling = false;
        }),
    );
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Opens the file store of a data directory: creates `<dataDir>/accounts` (0700) and loads it. */
export async function createFileStore(opts: FileStoreOptions): Promise<FileStore> {
  const store = new FileStore(opts);
  await store.open();
  return store;
}
