// Cross-process mutual exclusion on a lock directory, for the file store.
//
// proper-lockfile does the cross-process part (an atomic mkdir, kept fresh by
// touching its mtime; a lock whose mtime is older than `staleMs` is taken over).
// Two additions:
// - an in-process queue per lock in front of it, because proper-lockfile is not
//   re-entrant and callers in one process must wait their turn, not spin;
// - an owner record (`<lock>/owner`: pid and host) so that a lock left behind by
//   a holder killed with SIGKILL is taken over at once on the same host instead
//   of after the stale time. It is plugged in through proper-lockfile's `fs`
//   option: the stat of a lock whose owner process is gone reports an old mtime.
import lockfile from 'proper-lockfile';
import fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const OWNER_FILE = 'owner';
const HOST = hostname();

/** Lock directories this process holds right now. */
const held = new Set<string>();

/** Runs `fn` after every earlier call with the same key has settled. */
export class KeyedQueue {
  private tails = new Map<string, Promise<unknown>>();

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

export class LockTimeoutError extends Error {
  constructor(lockDir: string, waitMs: number) {
    super(
      `could not get the lock ${lockDir} within ${Math.round(waitMs / 1000)} s: another Grantpool process holds it ` +
        `(if no Grantpool process is running, remove that folder)`,
    );
    this.name = 'LockTimeoutError';
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
  const [pidText, host] = record.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0 || host !== HOST) return false;
  // Our own pid on a lock we do not hold: left behind by an earlier process with the same pid.
  if (pid === process.pid) return true;
  return processIsGone(pid);
}

type Callback<T = void> = (err: NodeJS.ErrnoException | null, value?: T) => void;

/** The fs that proper-lockfile uses: node:fs plus the owner record. */
const ownerAwareFs = {
  realpath: fs.realpath,
  utimes: fs.utimes,
  mkdir(path: string, cb: Callback) {
    fs.mkdir(path, (err) => {
      if (err) return cb(err);
      held.add(path);
      // Without a record (killed right here) the lock still goes stale by its mtime.
      fs.writeFile(join(path, OWNER_FILE), `${process.pid} ${HOST}\n`, () => cb(null));
    });
  },
  rmdir(path: string, cb: Callback) {
    held.delete(path);
    fs.unlink(join(path, OWNER_FILE), () => fs.rmdir(path, cb));
  },
  rmdirSync(path: string) {
    held.delete(path);
    try {
      fs.unlinkSync(join(path, OWNER_FILE));
    } catch {
      // no record
    }
    fs.rmdirSync(path);
  },
  stat(path: string, cb: Callback<fs.Stats | { mtime: Date }>) {
    fs.stat(path, (err, st) => {
      if (err || held.has(path)) return cb(err, st);
      fs.readFile(join(path, OWNER_FILE), 'utf8', (readErr, record) => {
        if (!readErr && ownerIsGone(record)) return cb(null, { ...st, mtime: new Date(0) });
        cb(null, st);
      });
    });
  },
};

const RETRYABLE = new Set(['ELOCKED', 'EEXIST', 'ENOTEMPTY']);

async function acquire(lockDir: string, opts: FileLockOptions): Promise<() => Promise<void>> {
  const waitMs = opts.waitMs ?? 30_000;
  const deadline = Date.now() + waitMs;
  let delay = 1;
  for (;;) {
    try {
      return await lockfile.lock(lockDir, {
        lockfilePath: lockDir,
        realpath: false,
        stale: opts.staleMs ?? 10_000,
        retries: 0,
        fs: ownerAwareFs,
        onCompromised: opts.onCompromised ?? (() => {}),
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (!RETRYABLE.has(code)) throw e;
      if (Date.now() >= deadline) throw new LockTimeoutError(lockDir, waitMs);
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 20);
    }
  }
}

/**
 * Runs `fn` while holding the lock directory `lockDir` (created on acquire,
 * removed on release), serialised with every other caller in this process and
 * in other processes.
 */
export function withFileLock<T>(lockDir: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  return lockQueue.run(lockDir, async () => {
    const release = await acquire(lockDir, opts);
    try {
      return await fn();
    } finally {
      // A compromised lock is already gone; nothing more to release.
      await release().catch(() => {});
    }
  });
}
