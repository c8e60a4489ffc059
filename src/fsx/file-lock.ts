// Cross-process mutual exclusion on a lock directory, for the file store.
//
// proper-lockfile does the cross-process part: a lock is a directory that
// appears atomically, kept fresh by touching its mtime; a lock not touched for
// `staleMs` is taken over. Two additions:
// - an in-process queue per lock in front of it, because proper-lockfile is not
//   re-entrant and callers in one process must wait their turn, not spin;
// - an owner record (`<lock>/owner`: pid, host, nonce) so that a lock left
//   behind by a holder killed with SIGKILL is taken over at once on the same
//   host instead of after the stale time. It is plugged in through
//   proper-lockfile's `fs` option:
//   * acquire: the lock folder is built aside with its owner record and renamed
//     into place, so a lock never exists without its owner (rename onto an
//     existing, non-empty lock fails);
//   * stat: a lock whose owner process is gone reports an old mtime (stale);
//   * release: the lock is renamed out of the way first, then deleted;
//   * take-over of a stale lock: one process at a time (`<lock>.break`), which
//     checks again that the lock is still the stale one before moving it away.
// A lock that cannot be written because the disk is full or read-only fails
// open within this process (the in-process queue still serialises its
// callers): a full disk must not stop refreshes and the writes that may work.
import lockfile from 'proper-lockfile';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AsyncLocalStorage } from 'node:async_hooks';
import { GatewayError } from '../util/errors.ts';
import { isStorageError, noteWrite } from './storage-errors.ts';

const OWNER_FILE = 'owner';
const HOST = hostname();
/** A `.break` folder older than this was left by a process killed while taking over a lock. */
const BREAKER_STALE_MS = 2000;

/** Lock directories this process holds right now, with the nonce of their owner record. */
const held = new Map<string, string>();
const heldNonces = new Set<string>();

/** Folders named like this next to a lock are leftovers of killed processes (see isLockLeftover). */
function asideName(path: string, kind: 'new' | 'old'): string {
  return `${path}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** True for the folders this module leaves behind only when killed half way (safe to delete when old). */
export function isLockLeftover(name: string): boolean {
  return name.startsWith('.') && /\.lock\.(new|old)-\d+-[0-9a-f]+$|\.lock\.break$/.test(name);
}

/** Runs `fn` after every earlier call with the same key has settled. */
export class KeyedQueue {
  private tails = new Map<string, Promise<unknown>>();

  /** Some work on this key is queued or running. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

/** One queue per lock path for the whole process (several stores may share a folder). */
const lockQueue = new KeyedQueue();

export class LockTimeoutError extends GatewayError {
  constructor(lockDir: string, waitMs: number, opts: { cause?: unknown } = {}) {
    super(
      'lock_timeout',
      `could not get the lock ${lockDir} within ${Math.round(waitMs / 1000)} s: another Grantpool process holds it ` +
        `(if no Grantpool process is running, remove that folder)`,
      { status: 503, cause: opts.cause },
    );
  }
}

export interface FileLockOptions {
  /** A lock not refreshed for this long is taken over (proper-lockfile minimum: 2000). */
  staleMs?: number;
  /** Give up (LockTimeoutError) after waiting this long for another holder. */
  waitMs?: number;
  /** Called when the lock was taken away while held (event loop blocked longer than staleMs). */
  onCompromised?: (err: Error) => void;
}

function processIsGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** True when the owner record names a process on this host that no longer runs. */
function ownerIsGone(record: string): boolean {
  const [pidText, host, nonce] = record.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0 || host !== HOST) return false;
  // Our own pid on a lock we do not hold: left behind by an earlier process with the same pid.
  if (pid === process.pid) return !heldNonces.has(nonce ?? '');
  return processIsGone(pid);
}

function errorWithCode(message: string, code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

function codeOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

async function readOwner(dir: string): Promise<string | null> {
  try {
    return await fsp.readFile(join(dir, OWNER_FILE), 'utf8');
  } catch {
    return null;
  }
}

async function removeTree(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

/** Creates the lock folder with its owner record in one step (rename), or fails with EEXIST. */
async function createLock(path: string): Promise<void> {
  // Cheap answer while someone holds it (the usual case when waiting).
  if (await fsp.stat(path).then(() => true, () => false)) throw errorWithCode('lock exists', 'EEXIST');
  const aside = asideName(path, 'new');
  const nonce = randomBytes(6).toString('hex');
  await fsp.mkdir(aside);
  try {
    await fsp.writeFile(join(aside, OWNER_FILE), `${process.pid} ${HOST} ${nonce}\n`);
    await fsp.rename(aside, path);
  } catch (e) {
    await removeTree(aside).catch(() => {});
    const code = codeOf(e);
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw errorWithCode('lock exists', 'EEXIST');
    throw e;
  }
  held.set(path, nonce);
  heldNonces.add(nonce);
}

function forget(path: string): void {
  const nonce = held.get(path);
  if (nonce) heldNonces.delete(nonce);
  held.delete(path);
}

/** The stat proper-lockfile judges staleness by: a lock whose owner is gone looks ancient. */
async function lockStat(path: string): Promise<fs.Stats | { mtime: Date }> {
  const st = await fsp.stat(path);
  if (held.has(path)) return st;
  const owner = await readOwner(path);
  if (owner !== null && ownerIsGone(owner)) return { ...st, mtime: new Date(0) };
  return st;
}

/** Releases a lock this process holds: moved out of the way first, so the name is free at once. */
async function releaseLock(path: string): Promise<void> {
  forget(path);
  const old = asideName(path, 'old');
  await fsp.rename(path, old);
  await removeTree(old);
}

/** Takes away a stale lock, one process at a time, after checking that it is still stale. */
async function breakLock(path: string, staleMs: number): Promise<void> {
  const breaker = `${path}.break`;
  try {
    await fsp.mkdir(breaker);
  } catch (e) {
    if (codeOf(e) !== 'EEXIST') throw e;
    const st = await fsp.stat(breaker).catch(() => null);
    if (st && st.mtimeMs < Date.now() - BREAKER_STALE_MS) await fsp.rmdir(breaker).catch(() => {});
    throw errorWithCode('lock is being taken over by another process', 'ELOCKED');
  }
  try {
    let owner: string | null;
    try {
      const st = await lockStat(path);
      owner = await readOwner(path);
      if (st.mtime.getTime() >= Date.now() - staleMs) throw errorWithCode('lock is held', 'ELOCKED');
    } catch (e) {
      if (codeOf(e) === 'ENOENT') return;
      throw e;
    }
    const old = asideName(path, 'old');
    try {
      await fsp.rename(path, old);
    } catch (e) {
      if (codeOf(e) === 'ENOENT') return;
      throw e;
    }
    if ((await readOwner(old)) !== owner) {
      // Not the lock that was judged stale (someone took over meanwhile): put it back.
      await fsp.rename(old, path).catch(() => {});
      throw errorWithCode('lock is held', 'ELOCKED');
    }
    await removeTree(old);
  } finally {
    await fsp.rmdir(breaker).catch(() => {});
  }
}

type Callback<T = void> = (err: NodeJS.ErrnoException | null, value?: T) => void;

function callbackify<A extends unknown[], T>(fn: (...args: A) => Promise<T>) {
  return (...args: [...A, Callback<T>]) => {
    const cb = args.pop() as Callback<T>;
    fn(...(args as unknown as A)).then(
      (v) => cb(null, v),
      (e: NodeJS.ErrnoException) => cb(e),
    );
  };
}

const lockFsByStaleMs = new Map<number, object>();

/** The fs that proper-lockfile uses (its `fs` option): node:fs with the owner record rules above. */
function lockFs(staleMs: number): object {
  let lfs = lockFsByStaleMs.get(staleMs);
  if (!lfs) {
    lfs = {
      realpath: fs.realpath,
      utimes: fs.utimes,
      mkdir: callbackify(createLock),
      stat: callbackify(lockStat),
      rmdir: callbackify((path: string) => (held.has(path) ? releaseLock(path) : breakLock(path, staleMs))),
      // Only called at exit for the locks still held.
      rmdirSync(path: string) {
        forget(path);
        const old = asideName(path, 'old');
        fs.renameSync(path, old);
        fs.rmSync(old, { recursive: true, force: true });
      },
    };
    lockFsByStaleMs.set(staleMs, lfs);
  }
  return lfs;
}

const RETRYABLE = new Set(['ELOCKED', 'EEXIST', 'ENOTEMPTY']);

async function acquire(lockDir: string, opts: FileLockOptions): Promise<() => Promise<void>> {
  const waitMs = opts.waitMs ?? 30_000;
  const staleMs = Math.max(opts.staleMs ?? 10_000, 2000);
  const deadline = Date.now() + waitMs;
  let delay = 1;
  for (;;) {
    try {
      return await lockfile.lock(lockDir, {
        lockfilePath: lockDir,
        realpath: false,
        stale: staleMs,
        retries: 0,
        fs: lockFs(staleMs),
        onCompromised: opts.onCompromised ?? (() => {}),
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (isStorageError(e)) {
        // The disk is full (or read-only): the lock cannot be written. Fail open within this
        // process (its callers are still serialised by the in-process queue) rather than stop
        // every refresh and write; other processes on this folder are not excluded meanwhile.
        noteWrite(lockDir, e);
        return async () => {};
      }
      if (!RETRYABLE.has(code)) throw e;
      if (Date.now() >= deadline) throw new LockTimeoutError(lockDir, waitMs);
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 20);
    }
  }
}

/** The locks held by the current asynchronous call chain (to refuse re-entry instead of waiting forever). */
const holding = new AsyncLocalStorage<ReadonlySet<string>>();

export class LockReentryError extends GatewayError {
  constructor(lockDir: string) {
    super('lock_reentry', `${lockDir} is already held by this call chain: the lock is not re-entrant (it would wait for itself)`);
  }
}

/**
 * Runs `fn` while holding the lock directory `lockDir` (created on acquire,
 * removed on release), serialised with every other caller in this process and
 * in other processes. Calling it again for the same lock from inside `fn` is an
 * error (LockReentryError), not a deadlock.
 */
export function withFileLock<T>(lockDir: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const outer = holding.getStore();
  if (outer?.has(lockDir)) return Promise.reject(new LockReentryError(lockDir));
  const inner = new Set(outer);
  inner.add(lockDir);
  return lockQueue.run(lockDir, async () => {
    const release = await acquire(lockDir, opts);
    try {
      return await holding.run(inner, fn);
    } finally {
      // A compromised lock is already gone; nothing more to release.
      await release().catch(() => {});
    }
  });
}

/** Runs `fn` outside every held lock's call chain (for callbacks that may start work of their own). */
export function outsideLocks<T>(fn: () => T): T {
  return holding.exit(fn);
}
