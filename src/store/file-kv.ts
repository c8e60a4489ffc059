// A SharedKv kept in one file of the data directory, for the state that must
// outlive a restart on the file backend (the security events already
// handled, docs/security.md). Every operation reads the file, and every change
// is a read-modify-write under a cross-process lock, written atomically, so
// the CLI and a gateway on one data directory see one map. Meant for small,
// rarely written state: it holds at most `maxEntries` entries (expired ones
// are dropped on every write, then the oldest). PostgreSQL keeps the same in
// its shared-state table (pg-shared-state.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsx/atomic-write.ts';
import { withFileLock } from '../fsx/file-lock.ts';
import type { SharedKv } from './shared-state.ts';

interface Entry {
  ns: string;
  key: string;
  value: unknown;
  expires_at_ms: number;
}

interface KvFile {
  version: 1;
  entries: Entry[];
}

export interface FileKvOptions {
  now?: () => number;
  /** Entries kept at most. Default 20,000. */
  maxEntries?: number;
}

export class FileKv implements SharedKv {
  private readonly path: string;
  private readonly lockDir: string;
  private readonly now: () => number;
  private readonly maxEntries: number;

  /** `dir` is the data directory; the map lives in `<dir>/state.json`. */
  constructor(dir: string, opts: FileKvOptions = {}) {
    this.path = join(dir, 'state.json');
    this.lockDir = join(dir, '.state.lock');
    this.now = opts.now ?? Date.now;
    this.maxEntries = opts.maxEntries ?? 20_000;
  }

  async get<T>(ns: string, key: string): Promise<T | null> {
    const e = (await this.read()).find((x) => x.ns === ns && x.key === key);
    return e && e.expires_at_ms > this.now() ? (e.value as T) : null;
  }

  async set(ns: string, key: string, value: unknown, expiresAtMs: number): Promise<void> {
    await this.update(ns, key, () => ({ value, expiresAtMs, result: undefined }));
  }

  update<T, R>(ns: string, key: string, change: (current: T | null) => { value: T; expiresAtMs: number; result: R } | { result: R }): Promise<R> {
    return withFileLock(this.lockDir, async () => {
      const now = this.now();
      const entries = (await this.read()).filter((e) => e.expires_at_ms > now);
      const i = entries.findIndex((e) => e.ns === ns && e.key === key);
      const next = change(i >= 0 ? (structuredClone(entries[i]!.value) as T) : null);
      if ('value' in next) {
        if (i >= 0) entries.splice(i, 1);
        entries.push({ ns, key, value: next.value, expires_at_ms: Math.ceil(next.expiresAtMs) });
        await this.write(entries.slice(-this.maxEntries));
      }
      return next.result;
    });
  }

  async delete(ns: string, key: string): Promise<void> {
    await withFileLock(this.lockDir, async () => {
      const entries = await this.read();
      const kept = entries.filter((e) => !(e.ns === ns && e.key === key));
      if (kept.length !== entries.length) await this.write(kept);
    });
  }

  /** The entries on disk; a missing file is an empty map, an unreadable one too (it is rewritten on the next change). */
  private async read(): Promise<Entry[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    try {
      const parsed = JSON.parse(text) as Partial<KvFile>;
      return Array.isArray(parsed.entries) ? parsed.entries.filter(isEntry) : [];
    } catch {
      return [];
    }
  }

  private async write(entries: Entry[]): Promise<void> {
    const file: KvFile = { version: 1, entries };
    await writeFileAtomic(this.path, `${JSON.stringify(file)}\n`);
  }
}

function isEntry(e: unknown): e is Entry {
  if (!e || typeof e !== 'object') return false;
  const x = e as Record<string, unknown>;
  return typeof x.ns === 'string' && typeof x.key === 'string' && typeof x.expires_at_ms === 'number' && 'value' in x;
}
