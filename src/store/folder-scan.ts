// Reading the accounts folder: one file with the signature (inode, size,
// times) of what was read, and the rescan that re-reads every file whose
// signature changed since it was last read (all of them the first time), in
// bounded parallel, and deletes temp files left by killed writers.
import fs from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Logger } from '../log/logger.ts';
import { accountFileName, accountIdOfFileName } from './account-file.ts';
import { isAtomicTempFile } from '../fsx/atomic-write.ts';
import { isLockLeftover } from '../fsx/file-lock.ts';

/** Temp files of killed writers older than this are deleted. */
const TEMP_FILE_MAX_AGE_MS = 60_000;
/** Parallel file operations for a full scan. */
const SCAN_CONCURRENCY = 64;

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

export function hash(text: string): string {
  return createHash('sha1').update(text).digest('base64');
}

function sigOf(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The text of a file and the signature (inode, size, times) of what was read; null if absent. */
export async function readFileWithSig(path: string): Promise<{ raw: string; sig: string } | null> {
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
  /** What was last read of each known file: its signature, null when unknown (after our own write). */
  known: ReadonlyMap<string, { sig: string | null }>;
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
  const toCheck = [...present];
  for (const id of o.known.keys()) if (!present.has(id)) toCheck.push(id);
  await forEachLimit(toCheck, SCAN_CONCURRENCY, async (id) => {
    try {
      const prev = o.known.get(id);
      if (prev?.sig && present.has(id)) {
        const st = await statCb(join(o.dir, accountFileName(id))).catch((e) => {
          if (isNotFound(e)) return null;
          throw e;
        });
        if (st && sigOf(st) === prev.sig) return;
      }
      await o.refresh(id);
      o.unreadable.delete(id);
    } catch (e) {
      // Not readable at all (permissions, I/O error): the others still load. Said once, not at every rescan.
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      if (!o.unreadable.has(id)) {
        o.unreadable.add(id);
        o.logger.warn({ id, err: code }, `Cannot read account file ${accountFileName(id)} (${code}); skipped`);
      }
    }
  });
  if (temps.length) await removeOldTempFiles(o.dir, temps, o.logger);
}

async function removeOldTempFiles(dir: string, names: string[], logger: Logger): Promise<void> {
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
