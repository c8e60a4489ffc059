// Writes that fail because the disk cannot take them (full, over quota,
// read-only). They are noted here, per folder, so that /healthz and
// /api/status can name the cause while the gateway keeps serving from memory,
// and explained in one line wherever a person sees them.
import { dirname } from 'node:path';

const STORAGE_CODES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
};

/** True for an error a full or read-only disk causes. */
export function isStorageError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && Object.hasOwn(STORAGE_CODES, code);
}

/** One line for a person: what failed and what to do (null when `e` is not a storage error). */
export function describeStorageError(e: unknown, what = 'a file'): string | null {
  if (!isStorageError(e)) return null;
  const err = e as NodeJS.ErrnoException;
  const where = err.path ? ` (${err.path})` : '';
  return `could not write ${what}${where}: ${STORAGE_CODES[err.code!]} (${err.code}); free some space on that disk (or make it writable) and try again`;
}

interface Failure {
  message: string;
  since: number;
}

/** Folder -> its first storage failure since writes last worked. */
const failing = new Map<string, Failure>();

/**
 * Notes the outcome of a write to `path` (a file; its folder is named). A
 * write that works means the disk has room again: every noted failure ends
 * (one that persists elsewhere is noted again by its next failed write).
 */
export function noteWrite(path: string, error?: unknown): void {
  if (error === undefined) {
    if (failing.size > 0) failing.clear();
    return;
  }
  const dir = dirname(path);
  if (!isStorageError(error)) return;
  const code = (error as NodeJS.ErrnoException).code!;
  if (!failing.has(dir)) failing.set(dir, { message: `cannot write to ${dir}: ${STORAGE_CODES[code]} (${code}); serving from memory, changes are written again once there is space`, since: Date.now() });
}

/** What is wrong with writing to disk right now (one line per folder), for /healthz and /api/status. */
export function storageProblems(under?: string): string[] {
  const out: string[] = [];
  for (const [dir, f] of failing) {
    if (under && dir !== under && !dir.startsWith(`${under}/`)) continue;
    out.push(`${f.message} (since ${new Date(f.since).toISOString()})`);
  }
  return out;
}
