// Reading the accounts folder: one file with the signature (inode, size,
// times) of what was read, and the rescan that re-reads every file whose
// signature changed since it was last read (all of them the first time), in
// bounded parallel, and deletes temp files left by killed writers. Also the
// synchronous read of one file that the store's first load uses (in short
// slices: no thread-pool round trip per file).
import fs from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import { accountFileName, accountIdOfFileName } from './account-file.ts';
import { fsyncDir, isAtomicTempFile } from '../fsx/atomic-write.ts';
import { isLockLeftover } from '../fsx/file-lock.ts';

/** Temp files of killed writers older than this are deleted. */
const TEMP_FILE_MAX_AGE_MS = 60_000;
/** Parallel file operations for a full scan. */
const SCAN_CONCURRENCY = 64;

// The callback forms: about twice as fast as fs/promises for many small files.
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

/**
 * A hash of a file's text: 48 bits of its SHA-1, as a number (kept per
 * account; a string would cost three times the memory).
 */
export function hash(text: string): number {
  return createHash('sha1').update(text).digest().readUIntBE(0, 6);
}

const sigWords = new Float64Array(4);
const sigBits = new Uint32Array(sigWords.buffer);

/**
 * The signature of what was read: inode, size, modification and change times,
 * mixed into one 53-bit number (kept per account; equal files have equal
 * signatures, and a changed file gets another but with a chance of 2^-53).
 */
export function sigOf(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): number {
  sigWords[0] = st.ino;
  sigWords[1] = st.size;
  sigWords[2] = st.mtimeMs;
  sigWords[3] = st.ctimeMs;
  let h1 = 0x9e3779b9;
  let h2 = 0x85ebca6b;
  for (let i = 0; i < 8; i++) {
    const w = sigBits[i]!;
    h1 = Math.imul(h1 ^ w, 0xcc9e2d51);
    h1 = (h1 << 13) | (h1 >>> 19);
    h2 = Math.imul(h2 ^ w, 0x1b873593) + i;
    h2 = (h2 << 17) | (h2 >>> 15);
  }
  h1 = Math.imul(h1 ^ (h2 >>> 16), 0x85ebca6b);
  h2 = Math.imul(h2 ^ (h1 >>> 13), 0xc2b2ae35);
  return (h1 >>> 0) * 0x200000 + ((h2 >>> 0) >>> 11);
}

export function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The text of a file and the signature (inode, size, times) of what was read; null if absent. */
export async function readFileWithSig(path: string): Promise<{ raw: string; sig: number } | null> {
  let fd: number;
  try {
    fd = await openCb(path, 'r');
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

/** One buffer for the synchronous reads (the first load reads one file at a time). */
let syncBuffer = Buffer.allocUnsafe(16 * 1024);

/** readFileWithSig, synchronously: for the store's first load, which reads files in short slices. */
export function readFileWithSigSync(path: string): { raw: string; sig: number } | null {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.size + 1 > syncBuffer.length) syncBuffer = Buffer.allocUnsafe(st.size + 1024);
    let length = 0;
    for (;;) {
      const n = fs.readSync(fd, syncBuffer, length, syncBuffer.length - length, length);
      length += n;
      if (n === 0 || length < syncBuffer.length) break;
      const bigger = Buffer.allocUnsafe(syncBuffer.length * 2);
      syncBuffer.copy(bigger, 0, 0, length);
      syncBuffer = bigger;
    }
    return { raw: syncBuffer.toString('utf8', 0, length), sig: sigOf(st) };
  } finally {
    fs.closeSync(fd);
  }
}

/** The account ids of the files in the folder (none when it does not exist), and the temp files of interrupted writes. */
export async function listFolder(dir: string): Promise<{ ids: string[]; temps: string[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (!isNotFound(e)) throw e;
    names = [];
  }
  const ids: string[] = [];
  const temps: string[] = [];
  for (const name of names) {
    const id = accountIdOfFileName(name);
    if (id) ids.push(id);
    else if (isAtomicTempFile(name) || isLockLeftover(name)) temps.push(name);
  }
  return { ids, temps };
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

export interface RescanOptions {
  dir: string;
  logger: Logger;
  /** The known files: the signature of what was last read of each, null when unknown (after our own write). */
  known: { ids(): Iterable<string>; sig(id: string): number | null | undefined };
  /** Brings one file up to date (reads it, records it, reports a removal). */
  refresh: (id: string) => Promise<unknown>;
  /** Ids whose files could not be read at all; said once, not at every rescan. */
  unreadable: Set<string>;
  /** Also delete old temp files of interrupted writes. */
  cleanTemp: boolean;
}

/**
 * Lists the folder and re-reads every file whose inode, size or times differ
 * from what was last read (all of them the first time), and every known file
 * that is no longer listed (to report its removal).
 */
export async function rescanFolder(o: RescanOptions): Promise<void> {
  let names: string[];
  try {
    names = await readdir(o.dir);
  } catch (e) {
    if (!isNotFound(e)) throw e;
    names = [];
  }
  const present = new Set<string>();
  const temps: string[] = [];
  for (const name of names) {
    const id = accountIdOfFileName(name);
    if (id) present.add(id);
    else if (o.cleanTemp && (isAtomicTempFile(name) || isLockLeftover(name))) temps.push(name);
  }
  const changed = await filesToReread(o, [...present]);
  for (const id of o.known.ids()) if (!present.has(id)) changed.push(id);
  await forEachLimit(changed, SCAN_CONCURRENCY, async (id) => {
    try {
      await o.refresh(id);
      o.unreadable.delete(id);
    } catch (e) {
      noteUnreadable(o.unreadable, id, e, o.logger);
    }
  });
  if (temps.length) await removeOldTempFiles(o.dir, temps, o.logger);
}

/** Files a turn of the event loop stats synchronously (about 2 µs each: well under a millisecond a batch). */
const STAT_BATCH = 256;

/**
 * The ids among `ids` whose file may differ from what was last read: not
 * known, written by us since (sig null), or with another signature. The
 * files are stat'ed synchronously in batches, the event loop free between
 * them: a stat through the thread pool costs about ten times the CPU of the
 * stat itself, which for the safety rescan of 10,000 unchanged files was
 * ~140 ms every 50 s. A file that cannot be stat'ed is left in (its read
 * reports the error).
 */
async function filesToReread(o: RescanOptions, ids: string[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i += STAT_BATCH) {
    if (i > 0) await new Promise<void>((r) => setImmediate(r));
    for (const id of ids.slice(i, i + STAT_BATCH)) {
      const sig = o.known.sig(id);
      if (sig != null) {
        try {
          const st = fs.statSync(join(o.dir, accountFileName(id)), { throwIfNoEntry: false });
          if (st && sigOf(st) === sig) continue;
        } catch {
          // ENOTDIR, EACCES, EIO: the refresh reads it and says why it cannot
        }
      }
      out.push(id);
    }
  }
  return out;
}

/** A file not readable at all (permissions, I/O error): the others still load. Said once, not at every rescan. */
export function noteUnreadable(unreadable: Set<string>, id: string, e: unknown, logger: Logger): void {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  if (unreadable.has(id)) return;
  unreadable.add(id);
  logger.warn({ id, err: code }, `Cannot read account file ${accountFileName(id)} (${code}); skipped`);
}

/**
 * Moves `<dir>/<name>` aside to `<name>.corrupt-<unix time>` if its text still
 * is the unreadable one (`same`); call with the store lock held.
 */
export async function moveAside(dir: string, name: string, same: (raw: string) => boolean, reason: string, logger: Logger): Promise<boolean> {
  const file = await readFileWithSig(join(dir, name));
  if (!file || !same(file.raw)) return false;
  const base = `${name}.corrupt-${Math.floor(Date.now() / 1000)}`;
  let target = base;
  for (let n = 2; await exists(join(dir, target)); n++) target = `${base}-${n}`;
  await rename(join(dir, name), join(dir, target));
  await fsyncDir(dir);
  logger.warn({ id: name.replace(/\.json$/, ''), file: name, moved_to: target, reason }, `Account file ${name} is unreadable, moved aside to ${target}: ${reason}`);
  return true;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Deletes the temp files (of killed writers) among `names` that are older than a minute. */
export async function removeOldTempFiles(dir: string, names: string[], logger: Logger): Promise<void> {
  const now = Date.now();
  await forEachLimit(names, SCAN_CONCURRENCY, async (name) => {
    const p = join(dir, name);
    try {
      const st = await stat(p);
      if (now - st.mtimeMs < TEMP_FILE_MAX_AGE_MS) return;
      await rm(p, { recursive: true, force: true });
      logger.debug({ file: name }, 'Removed a temp file left by an interrupted write');
    } catch {
      // gone already, or not ours to remove
    }
  });
}
