// The gateway under test, in its own process (so that its RSS and CPU are
// measured apart from the load generator, and the machine's cores are shared
// as they would be in use). Started by bench/run.ts with the environment that
// configures it and an IPC channel for measurements taken inside the process.
//
// Messages (each answered with the same `id`):
//   stats                   memory, CPU time and event-loop utilisation so far
//   gc-mem                  memory after two full garbage collections (needs --expose-gc)
//   sample-start/-stop      peak memory while sampling every `everyMs`
//   reload-mark {accountId} from now on, wait for the store's change of this account
//                           and answer with the wall time and the main thread's busy time
//   account-state {accountId} the pool's state of one account (what this gateway does with it now)
//   select-bench {n,model}  n x pool.acquire() on the live pool: ns per selection (wall and CPU), lanes
//   idle {ms, profile?}     CPU time used while nothing is asked of the gateway (and its CPU profile)
//   settled {timeoutMs}     waits (nothing asked of the gateway) until it next gives memory back
//                           after a burst (src/app/memory-settle.ts), then memory as in stats
//   profile-start {intervalUs} / profile-stop {path}   a CPU profile of just this window
//   heap-snapshot {path}    a V8 heap snapshot (what the heap holds after the load)
//   close
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { startProfile, stopProfile } from './child-profiler.ts';
import { startGateway } from '../src/app/gateway.ts';
import { createLogger } from '../src/log/logger.ts';

type Msg = { type: string; id: number; [k: string]: unknown };

const send = (m: Record<string, unknown>) => process.send!(m);

const logger = createLogger({ level: process.env.GRANTPOOL_LOG_LEVEL ?? 'info' });
const t0 = performance.now();
const gateway = await startGateway({ env: process.env, logger });
const startGatewayMs = performance.now() - t0;
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
// CPU time since the process started: the start is CPU-bound, so on a loaded machine this says more than the wall time.
const startCpuMs = cpuMs();
// With many accounts the gateway serves before every one is read; the measurements below want them all.
await gateway.store.whenLoaded?.();
const loadedAtMs = performance.now();
const loadedCpuMs = cpuMs();

function mem() {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** V8 heap spaces (size and used, bytes): where RSS beyond the live data goes. */
function spaces() {
  return Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
}

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

// reload-mark: the account id being waited for, and where the clock started
let reloadWait: { id: number; accountId: string; at: number; elu: ReturnType<typeof performance.eventLoopUtilization> } | null = null;
gateway.store.watch((change) => {
  // The pool registered its listener first, so it has applied this change already.
  const w = reloadWait;
  if (!w || change.id !== w.accountId) return;
  reloadWait = null;
  const elu = performance.eventLoopUtilization(w.elu);
  send({ type: 'reloaded', id: w.id, wallMs: performance.now() - w.at, activeMs: elu.active });
});

let sampler: { timer: NodeJS.Timeout; base: ReturnType<typeof mem>; peak: ReturnType<typeof mem>; samples: number } | null = null;

process.on('message', async (m: Msg) => {
  switch (m.type) {
    case 'stats':
      send({ type: 'stats', id: m.id, mem: mem(), spaces: spaces(), cpu: process.cpuUsage(), elu: performance.eventLoopUtilization(), uptimeMs: performance.now(), poolSize: gateway.pool.size });
      return;
    case 'gc-mem':
      gcNow();
      send({ type: 'gc-mem', id: m.id, mem: mem(), spaces: spaces() });
      return;
    case 'sample-start': {
      if (sampler) clearInterval(sampler.timer);
      const base = mem();
      const s = { base, peak: { ...base }, samples: 0, timer: setInterval(() => {
        const now = mem();
        s.samples++;
        for (const k of Object.keys(now) as (keyof typeof now)[]) if (now[k] > s.peak[k]) s.peak[k] = now[k];
      }, Number(m.everyMs ?? 5)) };
      sampler = s;
      send({ type: 'ok', id: m.id });
      return;
    }
    case 'sample-stop': {
      const s = sampler;
      sampler = null;
      if (s) clearInterval(s.timer);
      send({ type: 'sample', id: m.id, base: s?.base, peak: s?.peak, samples: s?.samples ?? 0 });
      return;
    }
    case 'reload-mark':
      reloadWait = { id: m.id, accountId: String(m.accountId), at: performance.now(), elu: performance.eventLoopUtilization() };
      send({ type: 'marked', id: m.id });
      return;
    case 'account-state':
      send({ type: 'account-state', id: m.id, state: gateway.pool.stateOf(String(m.accountId))?.state ?? null });
      return;
    case 'select-bench': {
      const n = Number(m.n);
      const model = String(m.model);
      for (let i = 0; i < 1000; i++) await gateway.pool.acquire({ model }); // warm-up
      const cpu0 = process.cpuUsage();
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await gateway.pool.acquire({ model });
      const ns = Number(process.hrtime.bigint() - start) / n;
      const cpu = process.cpuUsage(cpu0);
      // CPU time too: on a loaded machine wall time includes waiting for a core
      const cpuNsPerOp = ((cpu.user + cpu.system) * 1000) / n;
      send({ type: 'select-bench', id: m.id, nsPerOp: ns, cpuNsPerOp, poolSize: gateway.pool.size, lanes: gateway.pool.summary().lanes });
      return;
    }
    case 'idle': {
      if (m.profile) await startProfile(1000);
      const c0 = process.cpuUsage();
      const e0 = performance.eventLoopUtilization();
      const settles0 = gateway.memory.settles;
      await new Promise((r) => setTimeout(r, Number(m.ms)));
      const c = process.cpuUsage(c0);
      if (m.profile) await stopProfile(String(m.profile));
      send({ type: 'idle', id: m.id, cpuMs: (c.user + c.system) / 1000, activeMs: performance.eventLoopUtilization(e0).active, settles: gateway.memory.settles - settles0 });
      return;
    }
    case 'settled': {
      const from = gateway.memory.settles;
      const t0 = performance.now();
      const until = t0 + Number(m.timeoutMs ?? 30_000);
      while (gateway.memory.settles === from && performance.now() < until) await new Promise((r) => setTimeout(r, 250));
      send({ type: 'settled', id: m.id, mem: mem(), spaces: spaces(), settled: gateway.memory.settles > from, waitedMs: performance.now() - t0 });
      return;
    }
    case 'profile-start':
      await startProfile(Number(m.intervalUs ?? 200));
      send({ type: 'ok', id: m.id });
      return;
    case 'profile-stop':
      await stopProfile(String(m.path));
      send({ type: 'ok', id: m.id });
      return;
    case 'heap-snapshot':
      writeHeapSnapshot(String(m.path));
      send({ type: 'ok', id: m.id });
      return;
    case 'close':
      await gateway.close();
      send({ type: 'closed', id: m.id });
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

send({
  type: 'ready',
  url: gateway.url,
  startGatewayMs,
  startCpuMs,
  loadedAtMs,
  loadedCpuMs,
  poolSize: gateway.pool.size,
  mem: mem(),
});
