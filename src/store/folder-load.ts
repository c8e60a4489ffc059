// The first load of a large accounts folder, in the background: the files are
// read one after another, synchronously, in slices of a few milliseconds with
// the event loop free in between (requests are served meanwhile). Reading
// synchronously avoids a thread-pool round trip and two promises per file:
// on a 2-core machine the asynchronous reads cost three times the CPU
// (docs/performance-log.md, 2026-12-01). A file that needs more than one
// synchronous look (unreadable for a moment, busy with a write) is handed to
// the store's asynchronous path and counted when that is done.
import { performance } from 'node:perf_hooks';
import type { LoadProgress } from './store.ts';

/** What the load did with one file: read it, or handed it on (counted as loaded when the promise settles). */
export type LoadStep = void | Promise<unknown>;

export interface FolderLoadOptions {
  ids: readonly string[];
  /** Reads one file (synchronously), or returns the promise of the store's own read. Must not throw. */
  step: (id: string) => LoadStep;
  /** How long one slice reads before it yields. */
  sliceMs: number;
}

export class FolderLoad {
  private readonly o: FolderLoadOptions;
  private next = 0;
  private loaded = 0;
  private stopped = false;
  private readonly handedOn = new Set<Promise<unknown>>();
  private finish!: () => void;
  /** Resolves when every file has been read (or the load was stopped). */
  readonly done: Promise<void>;

  constructor(opts: FolderLoadOptions) {
    this.o = opts;
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  get progress(): LoadProgress {
    return { loaded: this.loaded, total: this.o.ids.length };
  }

  /** Reads for up to `ms`, then goes on in the background. True when everything was read in that time. */
  start(ms: number): boolean {
    this.slice(ms);
    return this.finished();
  }

  /** Every file has been read (or the load was stopped). */
  get isDone(): boolean {
    return this.finished();
  }

  stop(): void {
    this.stopped = true;
    this.finish();
  }

  private finished(): boolean {
    return this.stopped || (this.next >= this.o.ids.length && this.handedOn.size === 0);
  }

  private slice(ms: number): void {
    const until = performance.now() + ms;
    const ids = this.o.ids;
    while (!this.stopped && this.next < ids.length) {
      const handed = this.o.step(ids[this.next++]!);
      if (handed) {
        this.handedOn.add(handed);
        const settled = () => {
          this.handedOn.delete(handed);
          this.loaded++;
          if (this.finished()) this.finish();
        };
        void handed.then(settled, settled);
      } else {
        this.loaded++;
      }
      if ((this.next & 15) === 0 && performance.now() >= until) break;
    }
    if (this.finished()) this.finish();
    else if (this.next < ids.length) setImmediate(() => this.slice(this.o.sliceMs));
  }
}
