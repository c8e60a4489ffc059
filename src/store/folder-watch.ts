// Watching the accounts folder while someone listens: fs.watch on the folder
// (events debounced per file) plus a slow safety rescan, because inotify can
// miss events and some file systems (NFS) have none. The watcher only says
// which file to read again, or that the whole folder should be rescanned.
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log/logger.ts';
import { accountIdOfFileName } from './account-file.ts';

/** Safety rescan pace with many files: milliseconds between passes per known file. */
const RESCAN_MS_PER_FILE = 5;

export interface FolderWatchOptions {
  dir: string;
  logger: Logger;
  /** Safety rescan period (at least; slower with many files). */
  pollIntervalMs: number;
  /** Per-file debounce of folder events. */
  debounceMs: number;
  /** Number of files known now (paces the rescan). */
  knownCount: () => number;
  /** Reads one changed file again. */
  readFile: (id: string) => Promise<unknown>;
  /** Rescans the whole folder. */
  rescan: () => Promise<void>;
}

export class FolderWatch {
  private readonly o: FolderWatchOptions;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly inflight = new Set<Promise<unknown>>();
  private watcher: FSWatcher | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private lastPollAt = 0;
  private running = false;

  constructor(opts: FolderWatchOptions) {
    this.o = opts;
  }

  start(): void {
    this.running = true;
    // The folder was just read whole (the store's open): the first safety rescan is a full period away.
    if (this.lastPollAt === 0) this.lastPollAt = Date.now();
    if (!this.watcher) {
      try {
        this.watcher = fsWatch(this.o.dir, { persistent: false }, (_event, filename) => this.onFolderEvent(filename));
        this.watcher.on('error', (err) => {
          this.o.logger.warn({ err: err.message }, 'Watching the accounts folder failed; relying on the periodic rescan');
          this.watcher?.close();
          this.watcher = null;
        });
      } catch (e) {
        this.o.logger.warn({ err: (e as Error).message }, 'Cannot watch the accounts folder; relying on the periodic rescan');
      }
    }
    if (!this.pollTimer) {
      this.pollTimer = setInterval(() => this.poll(), this.o.pollIntervalMs);
      this.pollTimer.unref();
    }
  }

  /** The whole folder was just read (the store's first load): the next safety rescan is a full period away. */
  scanned(): void {
    this.lastPollAt = Date.now();
  }

  stop(): void {
    this.running = false;
    this.watcher?.close();
    this.watcher = null;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  /** Stops, and waits for the reads it started. */
  async close(): Promise<void> {
    this.stop();
    await Promise.allSettled([...this.inflight]);
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private onFolderEvent(filename: string | Buffer | null): void {
    if (!this.running) return;
    if (filename == null) {
      this.poll();
      return;
    }
    const id = accountIdOfFileName(String(filename));
    if (!id || this.pending.has(id)) return;
    const timer = setTimeout(() => {
      this.pending.delete(id);
      if (!this.running) return;
      this.track(
        this.o.readFile(id).catch((e) =>
          this.o.logger.warn({ id, err: (e as Error).message }, 'Could not read a changed account file'),
        ),
      );
    }, this.o.debounceMs);
    timer.unref();
    this.pending.set(id, timer);
  }

  private poll(): void {
    if (this.polling || !this.running) return;
    // The rescan is only a safety net behind inotify (and the only way to see
    // changes where there is none, e.g. NFS): with many files it runs less
    // often, 5 ms per file between passes (every 50 s for 10,000 files: a full
    // pass costs 0.1-0.2 s of CPU, so it stays under 0.5 % of a core).
    const now = Date.now();
    if (now - this.lastPollAt < Math.max(this.o.pollIntervalMs, this.o.knownCount() * RESCAN_MS_PER_FILE) - 50) return;
    this.lastPollAt = now;
    this.polling = true;
    if (!this.watcher) this.start();
    this.track(
      this.o.rescan()
        .catch((e) => this.o.logger.warn({ err: (e as Error).message }, 'Rescan of the accounts folder failed'))
        .finally(() => {
          this.polling = false;
        }),
    );
  }
}
