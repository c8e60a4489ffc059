// Gives memory back to the system once the gateway is idle after a burst.
//
// V8 keeps the heap a burst grew to: the request objects that outlived a
// young-generation GC sit in the old generation until its next full GC, and a
// full GC that does not compact returns next to nothing (pages stay committed,
// each with a few live objects). V8's own memory reducer starts only after a
// full GC, which a burst that fits in the old generation's headroom never
// causes. So after a burst (or the start), once no request has come for
// idleMs (a load balancer's health checks and the dashboard's event stream do
// not count), none is open and the event loop has had next to nothing to do,
// one compacting GC runs (V8's "last resort" collection, as under memory
// pressure): with 100,000 accounts on PostgreSQL, RSS 216 -> 177 MB after
// 10,000 requests, for a pause of ~0.2 s in a lull (docs/design.md,
// docs/performance.md). It needs `--expose-gc` (bin/node-flags.js); without
// it nothing runs.
import type { Server } from 'node:http';
import { getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.ts';
import type { Clock } from '../util/clock.ts';

export interface SettlePolicy {
  /** No request and the event loop (nearly) idle for this long. */
  idleMs: number;
  /** At most one settle in this long. */
  minIntervalMs: number;
  /** The V8 heap (committed) must have grown by this much since the last settle... */
  minGrowthBytes: number;
  /** ...and by this share of what it was then. */
  minGrowthShare: number;
  /** How often the idle check runs. */
  checkMs: number;
  /** Event loop busier than this over a check is activity (a reload, a refresh, a catch-up). */
  busyUtilization: number;
}

export const SETTLE_POLICY: SettlePolicy = {
  idleMs: 10_000,
  minIntervalMs: 60_000,
  minGrowthBytes: 8 * 1024 * 1024,
  minGrowthShare: 0.1,
  checkMs: 2_500,
  busyUtilization: 0.05,
};

export interface SettleFacts {
  nowMs: number;
  /** Requests open now. */
  open: number;
  /** The last request, or the last check that found the event loop busier than busyUtilization (or other work in progress). */
  lastActivityMs: number;
  /** The last settle (null: none yet). */
  lastSettleMs: number | null;
  /** V8's committed heap now, and right after the last settle (0 before the first). */
  heapBytes: number;
  heapAfterSettle: number;
}

/** Whether to run a compacting GC now (pure). */
export function shouldSettle(f: SettleFacts, p: SettlePolicy = SETTLE_POLICY): boolean {
  if (f.open > 0 || f.nowMs - f.lastActivityMs < p.idleMs) return false;
  if (f.lastSettleMs !== null && f.nowMs - f.lastSettleMs < p.minIntervalMs) return false;
  return f.heapBytes - f.heapAfterSettle >= Math.max(p.minGrowthBytes, f.heapAfterSettle * p.minGrowthShare);
}

type V8Gc = (options?: { type?: string; execution?: string; flavor?: string }) => void;

/** The compacting GC of a process started with --expose-gc, else null. */
export function exposedGc(): (() => void) | null {
  const gc = (globalThis as { gc?: V8Gc }).gc;
  return typeof gc === 'function' ? () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }) : null;
}

export interface MemorySettleOptions {
  gc: (() => void) | null;
  logger: Logger;
  /** Paths whose requests are neither activity nor open work (health checks, the dashboard's event stream). */
  quietPaths?: ReadonlySet<string>;
  /** Monotonic by default (a step of the wall clock neither holds it off nor cuts the wait). */
  clock?: Clock;
  /** Other work in progress that a pause would hold up (the pool's background load). */
  busy?: () => boolean;
  heapBytes?: () => number;
  /** The event loop's utilization (0..1) since the previous call. */
  utilization?: () => number;
  policy?: SettlePolicy;
}

function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

export interface MemorySettle {
  /** Settles run so far. */
  readonly settles: number;
  /** Runs the idle check now (the timer calls it every checkMs). */
  check(): void;
  close(): void;
}

export function watchMemory(server: Server, o: MemorySettleOptions): MemorySettle {
  const policy = o.policy ?? SETTLE_POLICY;
  const clock = o.clock ?? { now: () => performance.now() };
  const heapBytes = o.heapBytes ?? (() => getHeapStatistics().total_heap_size);
  const quiet = o.quietPaths ?? new Set<string>();
  let open = 0;
  let lastActivityMs = clock.now();
  let lastSettleMs: number | null = null;
  let heapAfterSettle = 0;
  let settles = 0;
  const utilization = o.utilization ?? loopUtilization();
  const gc = o.gc;

  const ended = () => {
    open--;
    lastActivityMs = clock.now();
  };
  const onRequest = (req: { url?: string }, res: { once(event: 'close', fn: () => void): unknown }) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if (quiet.has(q < 0 ? url : url.slice(0, q))) return;
    lastActivityMs = clock.now();
    open++;
    res.once('close', ended);
  };
  if (gc) server.on('request', onRequest);

  const check = () => {
    if (!gc) return;
    const nowMs = clock.now();
    if (utilization() > policy.busyUtilization || o.busy?.()) lastActivityMs = nowMs;
    const before = heapBytes();
    if (!shouldSettle({ nowMs, open, lastActivityMs, lastSettleMs, heapBytes: before, heapAfterSettle }, policy)) return;
    const t0 = performance.now();
    gc();
    heapAfterSettle = heapBytes();
    lastSettleMs = clock.now();
    settles++;
    // The pause itself is not activity: the event loop was busy with the GC.
    utilization();
    const mb = (n: number) => Math.round(n / 104857.6) / 10;
    o.logger.debug({ heap_before_mb: mb(before), heap_after_mb: mb(heapAfterSettle), pause_ms: Math.round(performance.now() - t0) }, 'Memory given back after a burst');
  };
  const timer = gc ? setInterval(check, policy.checkMs) : null;
  timer?.unref();

  return {
    get settles() {
      return settles;
    },
    check,
    close() {
      if (timer) clearInterval(timer);
      server.off('request', onRequest);
    },
  };
}
