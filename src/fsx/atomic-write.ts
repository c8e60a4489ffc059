// Atomic file replacement: temp file in the same folder, fsync, rename, fsync
// the folder. A reader sees the old content or the new one, never a mix, even
// if the process is killed half way.
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { noteWrite } from './storage-errors.ts';

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  try {
    await writeAtomically(path, data, mode);
  } catch (e) {
    noteWrite(path, e);
    throw e;
  }
  noteWrite(path);
}

async function writeAtomically(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** True for the temp files writeFileAtomic leaves behind only when killed mid-write. */
export function isAtomicTempFile(name: string): boolean {
  return name.startsWith('.') && name.includes('.tmp-');
}
