// `npm run bench [-- --quick] [-- --profile] [-- --only=latency,stream,throughput,memory,reload,select,vertex,herd,scale]
//  [-- --accounts=N] [-- --lanes=N] [-- --node-flags="--max-semi-space-size=16"] [-- --keep] [-- --heap-snapshot] [-- --idle=S]
//  [-- --scale-accounts=N]`
// `scale` (bench/scale.ts: three gateways on one PostgreSQL) runs only when --only names it;
// --scale-accounts=N adds one gateway on a database of N accounts (start and memory).
// --profile writes CPU profiles of the gateway and of (b) per door during the throughput
// runs (phases 2 and 6), and of the gateway's idle window (bench/results/profiles/); bench/profile-summary.ts summarises one.
// --idle=S measures the gateway's CPU for S seconds after the load (10 in full runs, 0 in quick ones).
// --heap-snapshot writes the gateway's heap after the load (bench/results/profiles/
// gateway-after-load.heapsnapshot; with --scale-accounts, also gateway-scale-big.heapsnapshot),
// for Chrome DevTools' Memory tab or bench/heap-summary.ts.
//
// Measures what the gateway costs, as ratios and differences against
// baselines taken in the same run (these machines are shared and noisy):
//   (a) the client calling the upstream directly,
//   (b) a bare pass-through proxy (node:http + undici, no parsing).
// The upstream (bench/upstream.ts), the baseline proxy (bench/passthrough.ts)
// and the gateway (bench/gateway-child.ts) each run in their own process; the
// load generator (autocannon, and a timing client for streams) runs here. The
// gateway and the baseline proxy run as `grantpool serve` does: with the Node
// flags and environment of bin/node-flags.js (a variable set for the bench,
// e.g. `MALLOC_ARENA_MAX=8 npm run bench`, overrides it) and a warm compile cache.
// Prints a table with each target and PASS/MISS, and writes
// bench/results/bench-<time>.json (and latest.json, latest.md).
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, get as httpGet } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, cpus, totalmem, release } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { residentBreakdown, residentSplit, startChild, type Child } from './proc.ts';
import { burst, cannon, keepAliveAgent, timedRequest, type Target } from './load.ts';
import { median, percentile, round } from './stats.ts';
import { BENCH_ACCOUNTS_PER_LANE, benchAccountId, expiredIssuerAccount, writeAccountFile, writeAccounts } from './accounts.ts';
import { accountFileName } from '../src/store/account-file.ts';
import { writeFileAtomic } from '../src/fsx/atomic-write.ts';
import type { UpstreamShape } from './upstream.ts';
import { NODE_ENV, NODE_FLAGS } from '../bin/node-flags.js';
import { scalePhase } from './scale.ts';
import type { Row } from './row.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(HERE, 'results');
const API_KEY = 'gp-bench-key-0123456789abcdef';
const ADMIN_TOKEN = 'gpa-bench-admin-token-0123456789';

// ---- options ---------------------------------------------------------------------------

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const PROFILE = argv.includes('--profile');
const KEEP = argv.includes('--keep');
const HEAP_SNAPSHOT = argv.includes('--heap-snapshot');
const onlyArg = argv.find((a) => a.startsWith('--only='));
const ONLY = onlyArg ? new Set(onlyArg.slice(7).split(',')) : null;
const accountsArg = argv.find((a) => a.startsWith('--accounts='));
const N_ACCOUNTS = accountsArg ? Number(accountsArg.slice(11)) : 10_000;
/** Quota lanes (consumer projects) the accounts draw on: 2,000 for 10,000 accounts by default (5 a project); 0: none has a project (one lane). */
const lanesArg = argv.find((a) => a.startsWith('--lanes='));
const N_LANES = lanesArg ? Number(lanesArg.slice(8)) : Math.ceil(N_ACCOUNTS / BENCH_ACCOUNTS_PER_LANE);
if (!Number.isInteger(N_LANES) || N_LANES < 0 || N_LANES > N_ACCOUNTS) throw new Error(`--lanes must be a whole number from 0 to ${N_ACCOUNTS}`);
const PER_LANE = N_LANES === 0 ? 0 : Math.ceil(N_ACCOUNTS / N_LANES);
const SHAPE = N_LANES === 0 ? `${N_ACCOUNTS} accounts on the OAuth client's project` : `${N_ACCOUNTS} accounts on ${Math.ceil(N_ACCOUNTS / PER_LANE)} lanes`;
const phase = (name: string) => !ONLY || ONLY.has(name);
const idleArg = argv.find((a) => a.startsWith('--idle='));
const scaleArg = argv.find((a) => a.startsWith('--scale-accounts='));
const SCALE_ACCOUNTS = scaleArg ? Number(scaleArg.slice(17)) : null;
if (SCALE_ACCOUNTS !== null && !(Number.isInteger(SCALE_ACCOUNTS) && SCALE_ACCOUNTS > 0)) throw new Error('--scale-accounts must be a whole number above 0');
/** Node flags of the gateway and the baseline proxy: Grantpool's own unless --node-flags="..." tries others. */
const flagsArg = argv.find((a) => a.startsWith('--node-flags='));
const NODE_ARGS = flagsArg ? flagsArg.slice(13).split(' ').filter(Boolean) : [...NODE_FLAGS];
/** Where compiled code is cached, as for `grantpool serve` (module.enableCompileCache's default). */
const COMPILE_CACHE = { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), 'node-compile-cache') };
/** Environment of the gateway and (b): Grantpool's own (bin/node-flags.js), unless set in the bench's environment. */
const CHILD_ENV = { ...NODE_ENV, ...process.env, ...COMPILE_CACHE };

const P = QUICK
  ? { rounds: 3, latAmount: 1500, latWarm: 300, streamReqs: 40, streamWarm: 10, pairAmount: 4000, pairs: 5, tputAmount: 6000, tputWarm: 1500, delayedTput: false, reloadRounds: 5, selectN: 100_000, idleMs: 0, floor: false }
  : { rounds: 5, latAmount: 4000, latWarm: 800, streamReqs: 80, streamWarm: 15, pairAmount: 6000, pairs: 11, tputAmount: 20_000, tputWarm: 4000, delayedTput: true, reloadRounds: 11, selectN: 500_000, idleMs: 10_000, floor: true };
if (idleArg) P.idleMs = Number(idleArg.slice(7)) * 1000;

// ---- report rows -----------------------------------------------------------------------

const rows: Row[] = [];
const raw: Record<string, unknown> = {};
/** CPU profiles of the gateway taken with --profile (one per door, during its throughput runs). */
const profiles: { path: string; requests: number }[] = [];

function row(r: Row): void {
  rows.push(r);
  const mark = r.pass === undefined ? '' : r.pass ? '  PASS' : '  MISS';
  console.log(`  ${r.metric}: ${typeof r.value === 'number' ? round(r.value, 3) : r.value} ${r.unit}${r.target ? ` (target ${r.target})` : ''}${mark}`);
}

function log(s: string): void {
  console.log(s);
}

const phaseSeconds: Record<string, number> = {};
async function timed(name: string, fn: () => Promise<void>): Promise<void> {
  const t0 = performance.now();
  await fn();
  phaseSeconds[name] = round((performance.now() - t0) / 1000, 1);
}

// ---- helpers ---------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function healthz(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpGet(`${url}/healthz`, { headers: { authorization: `Bearer ${API_KEY}` }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(2000, () => req.destroy());
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface GatewayRun {
  child: Child;
  url: string;
  spawnToHealthyMs: number;
  startGatewayMs: number;
}

async function startGatewayChild(name: string, dataDir: string, env: Record<string, string>, logFile: string): Promise<GatewayRun> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const execArgv = ['--expose-gc', ...NODE_ARGS];
  const childP = startChild(join(HERE, 'gateway-child.ts'), {
    execArgv,
    logFile,
    env: {
      ...CHILD_ENV,
      GRANTPOOL_DATA_DIR: dataDir,
      GRANTPOOL_HOST: '127.0.0.1',
      GRANTPOOL_PORT: String(port),
      GRANTPOOL_PUBLIC_URL: 'http://localhost:8045',
      GRANTPOOL_AUTH_MODE: 'strict',
      GRANTPOOL_API_KEYS: API_KEY,
      GRANTPOOL_ADMIN_TOKEN: ADMIN_TOKEN,
      ...env,
    },
  });
  let healthyAt = -1;
  let failed = false;
  childP.catch(() => {
    failed = true;
  });
  while (!failed) {
    if ((await healthz(url)) === 200) {
      healthyAt = performance.now();
      break;
    }
    await sleep(5);
  }
  const child = await childP;
  return { child, url, spawnToHealthyMs: healthyAt - t0, startGatewayMs: child.ready.startGatewayMs as number };
}

// ---- request shapes --------------------------------------------------------------------

const GEMINI_BODY = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] });
const OPENAI_BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] });
const OPENAI_STREAM_BODY = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Hello' }] });
const ANTHROPIC_BODY = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] });
const ANTHROPIC_STREAM_BODY = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 256, stream: true, messages: [{ role: 'user', content: 'Hello' }] });
const GEN_PATH = '/v1beta/models/gemini-2.5-flash:generateContent';
const STREAM_PATH = '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse';

const googleHeaders = { 'x-goog-api-key': API_KEY };
const openaiHeaders = { authorization: `Bearer ${API_KEY}` };
const anthropicHeaders = { 'x-api-key': API_KEY, 'anthropic-version': '2023-06-01' };

function targets(direct: string, passthrough: string, gateway: string) {
  return {
    direct: { name: '(a) direct', url: direct, path: GEN_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
    passthrough: { name: '(b) bare proxy', url: passthrough, path: GEN_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
    gemini: { name: 'gateway Gemini', url: gateway, path: GEN_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
    openai: { name: 'gateway OpenAI', url: gateway, path: '/v1/chat/completions', body: OPENAI_BODY, headers: openaiHeaders } as Target,
    anthropic: { name: 'gateway Anthropic', url: gateway, path: '/v1/messages', body: ANTHROPIC_BODY, headers: anthropicHeaders } as Target,
    directStream: { name: '(a) direct stream', url: direct, path: STREAM_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
    passthroughStream: { name: '(b) bare proxy stream', url: passthrough, path: STREAM_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
    geminiStream: { name: 'gateway Gemini stream', url: gateway, path: STREAM_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
    openaiStream: { name: 'gateway OpenAI stream', url: gateway, path: '/v1/chat/completions', body: OPENAI_STREAM_BODY, headers: openaiHeaders } as Target,
    anthropicStream: { name: 'gateway Anthropic stream', url: gateway, path: '/v1/messages', body: ANTHROPIC_STREAM_BODY, headers: anthropicHeaders } as Target,
  };
}
type Targets = ReturnType<typeof targets>;

/** One request to each target: a 200 with a plausible body, or the benchmark stops here. */
async function sanity(t: Targets): Promise<void> {
  const checks: [Target, (body: string) => boolean][] = [
    [t.direct, (b) => b.includes('"candidates"')],
    [t.passthrough, (b) => b.includes('"candidates"')],
    [t.gemini, (b) => b.includes('"candidates"')],
    [t.openai, (b) => b.includes('"chat.completion"')],
    [t.anthropic, (b) => b.includes('"type":"message"')],
    [t.geminiStream, (b) => b.startsWith('data: ')],
    [t.openaiStream, (b) => b.includes('[DONE]')],
    [t.anthropicStream, (b) => b.includes('message_stop')],
  ];
  const agent = keepAliveAgent();
  for (const [target, ok] of checks) {
    const r = await timedRequest(target, agent, { keepBody: true });
    if (r.status !== 200 || !ok(r.body ?? '')) {
      agent.destroy();
      throw new Error(`${target.name} ${target.path} answered ${r.status}: ${(r.body ?? '').slice(0, 300)}`);
    }
  }
  agent.destroy();
}

// ---- phases ----------------------------------------------------------------------------

function checkAllOk(name: string, r: { ok: number; failed: number; statuses: Record<string, number> }): void {
  if (r.failed > 0) throw new Error(`${name}: ${r.failed} request(s) failed (${JSON.stringify(r.statuses)})`);
}

/** 1. Added latency of non-streaming requests at concurrency 1. */
async function latencyPhase(t: Targets): Promise<void> {
  log('\n1. Added latency, non-streaming, one request at a time (zero-delay upstream)');
  const list = [t.direct, t.passthrough, t.gemini, t.openai, t.anthropic];
  const per: Record<string, { p50: number[]; p99: number[] }> = {};
  for (const x of list) per[x.name] = { p50: [], p99: [] };
  for (let r = 0; r < P.rounds; r++) {
    for (const x of list) {
      await cannon(x, { connections: 1, amount: P.latWarm });
      const res = await cannon(x, { connections: 1, amount: P.latAmount });
      checkAllOk(x.name, res);
      per[x.name]!.p50.push(percentile(res.latencies, 50));
      per[x.name]!.p99.push(percentile(res.latencies, 99));
    }
    process.stdout.write(`  round ${r + 1}/${P.rounds}\r`);
  }
  raw.latency = per;
  const base = per[t.direct.name]!;
  row({ section: '1', metric: '(a) direct upstream p50 / p99', value: `${round(median(base.p50))} / ${round(median(base.p99))}`, unit: 'ms' });
  const added = (name: string, q: 'p50' | 'p99') => median(per[name]![q].map((v, i) => v - base[q][i]!));
  row({ section: '1', metric: '(b) bare proxy added p50 / p99 (the floor)', value: `${round(added(t.passthrough.name, 'p50'))} / ${round(added(t.passthrough.name, 'p99'))}`, unit: 'ms' });
  for (const [x, label] of [[t.gemini, 'Gemini native'], [t.openai, 'OpenAI chat (translated)'], [t.anthropic, 'Anthropic messages (translated)']] as const) {
    const a50 = added(x.name, 'p50');
    const a99 = added(x.name, 'p99');
    row({ section: '1', metric: `${label} added p50`, value: a50, unit: 'ms', target: '<= 1', pass: a50 <= 1 });
    row({ section: '1', metric: `${label} added p99`, value: a99, unit: 'ms', target: '<= 5', pass: a99 <= 5 });
  }
}

/** 1b. Streaming: time to first and last byte, one request at a time. */
async function streamPhase(t: Targets, upstream: Child): Promise<void> {
  const shape: Partial<UpstreamShape> = { delayMs: 0, events: 10, gapMs: 2, eventChars: 40 };
  await upstream.ask('config', { shape });
  log(`\n1b. Streaming: ${shape.events} events, ${shape.gapMs} ms apart; time to first / last body byte`);
  const list = [t.directStream, t.passthroughStream, t.geminiStream, t.openaiStream, t.anthropicStream];
  const per: Record<string, { ttfb50: number[]; ttfb99: number[]; ttlb50: number[]; ttlb99: number[]; chunks: number[] }> = {};
  for (const x of list) per[x.name] = { ttfb50: [], ttfb99: [], ttlb50: [], ttlb99: [], chunks: [] };
  for (let r = 0; r < P.rounds; r++) {
    for (const x of list) {
      const agent = keepAliveAgent();
      for (let i = 0; i < P.streamWarm; i++) await timedRequest(x, agent);
      const ttfb: number[] = [];
      const ttlb: number[] = [];
      const chunks: number[] = [];
      for (let i = 0; i < P.streamReqs; i++) {
        const s = await timedRequest(x, agent);
        if (s.status !== 200) throw new Error(`${x.name}: status ${s.status}`);
        ttfb.push(s.ttfb);
        ttlb.push(s.ttlb);
        chunks.push(s.chunks);
      }
      agent.destroy();
      const p = per[x.name]!;
      p.ttfb50.push(percentile(ttfb, 50));
      p.ttfb99.push(percentile(ttfb, 99));
      p.ttlb50.push(percentile(ttlb, 50));
      p.ttlb99.push(percentile(ttlb, 99));
      p.chunks.push(median(chunks));
    }
    process.stdout.write(`  round ${r + 1}/${P.rounds}\r`);
  }
  await upstream.ask('config', { shape: { events: 10, gapMs: 0, eventChars: 40 } });
  raw.stream = per;
  const base = per[t.directStream.name]!;
  const added = (name: string, q: 'ttfb50' | 'ttfb99' | 'ttlb50' | 'ttlb99') => median(per[name]![q].map((v, i) => v - base[q][i]!));
  row({ section: '1', metric: '(a) direct stream TTFB p50 / TTLB p50', value: `${round(median(base.ttfb50))} / ${round(median(base.ttlb50))}`, unit: 'ms' });
  row({ section: '1', metric: '(b) bare proxy added TTFB p50 / TTLB p50', value: `${round(added(t.passthroughStream.name, 'ttfb50'))} / ${round(added(t.passthroughStream.name, 'ttlb50'))}`, unit: 'ms' });
  for (const [x, label] of [[t.geminiStream, 'Gemini stream'], [t.openaiStream, 'OpenAI stream'], [t.anthropicStream, 'Anthropic stream']] as const) {
    const f50 = added(x.name, 'ttfb50');
    row({ section: '1', metric: `${label} added TTFB p50`, value: f50, unit: 'ms', target: '<= 1', pass: f50 <= 1 });
    row({ section: '1', metric: `${label} added TTFB p99`, value: added(x.name, 'ttfb99'), unit: 'ms' });
    row({ section: '1', metric: `${label} added TTLB p50 / p99`, value: `${round(added(x.name, 'ttlb50'))} / ${round(added(x.name, 'ttlb99'))}`, unit: 'ms' });
    const chunks = median(per[x.name]!.chunks);
    row({ section: '1', metric: `${label} chunks seen by the client`, value: chunks, unit: `(upstream sent ${shape.events})`, target: '> 1 (as they arrive)', pass: chunks >= shape.events! / 2 });
  }
}

/**
 * 2. Throughput at concurrency 64 against the bare proxy. After a warm-up of
 * both, short runs alternate (b), gateway, (b), gateway ... and the ratio of
 * each adjacent pair is taken, so that a noisy neighbour (these machines are
 * shared) hits both sides of a pair; the median of the pairs is reported.
 */
async function throughputPhase(t: Targets, upstream: Child, procs: { gateway: Child; passthrough: Child }): Promise<void> {
  const c = 64;
  const variants: { label: string; delayMs: number; doors: Target[]; amount: number; pairs: number }[] = [
    { label: 'zero-delay upstream (CPU-bound)', delayMs: 0, doors: [t.gemini, t.openai, t.anthropic], amount: P.pairAmount, pairs: P.pairs },
  ];
  if (P.delayedTput) variants.push({ label: 'upstream with 20 ms delay', delayMs: 20, doors: [t.gemini, t.openai], amount: 3000, pairs: 3 });
  const out: Record<string, unknown> = {};
  /** Requests per second, and the proxy's CPU time per request (µs) during the run. */
  const run = async (x: Target, proxy: Child | null, amount: number) => {
    const cpu0 = proxy ? (await proxy.ask<{ cpu: { user: number; system: number } }>('stats')).cpu : null;
    const r = await cannon(x, { connections: c, amount });
    const cpu1 = proxy ? (await proxy.ask<{ cpu: { user: number; system: number } }>('stats')).cpu : null;
    checkAllOk(x.name, r);
    const cpuUs = cpu0 && cpu1 ? (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / amount : NaN;
    return { rps: r.rps, cpuUs };
  };
  for (const v of variants) {
    log(`\n2. Throughput at concurrency ${c}, ${v.label}: ${v.pairs} pairs of runs of ${v.amount} requests per door`);
    await upstream.ask('config', { shape: { delayMs: v.delayMs } });
    const res: Record<string, { rps: number[]; baseline: number[]; cpuUs: number[]; baselineCpuUs: number[] }> = {};
    const direct: number[] = [];
    if (v.delayMs === 0) {
      await cannon(t.direct, { connections: c, amount: P.tputWarm });
      for (let i = 0; i < 3; i++) direct.push((await run(t.direct, null, v.amount)).rps);
    }
    for (const x of v.doors) {
      const r = (res[x.name] = { rps: [] as number[], baseline: [] as number[], cpuUs: [] as number[], baselineCpuUs: [] as number[] });
      const warm = v.delayMs ? 1000 : P.tputWarm;
      await cannon(t.passthrough, { connections: c, amount: warm });
      await cannon(x, { connections: c, amount: warm });
      const profilePath = PROFILE && v.delayMs === 0 ? join(RESULTS, 'profiles', `${x.name.replace(/\W+/g, '-')}.cpuprofile`) : null;
      const baselineProfilePath = profilePath?.replace(/\.cpuprofile$/, '-b-bare-proxy.cpuprofile');
      if (profilePath) {
        await procs.gateway.ask('profile-start', { intervalUs: 200 });
        await procs.passthrough.ask('profile-start', { intervalUs: 200 });
      }
      for (let i = 0; i < v.pairs; i++) {
        // (b) first in even pairs, the gateway first in odd ones: whatever favours the first (or second) run of a pair cancels out.
        const bFirst = i % 2 === 0;
        const first = bFirst ? await run(t.passthrough, procs.passthrough, v.amount) : await run(x, procs.gateway, v.amount);
        const second = bFirst ? await run(x, procs.gateway, v.amount) : await run(t.passthrough, procs.passthrough, v.amount);
        const [b, g] = bFirst ? [first, second] : [second, first];
        r.baseline.push(b.rps);
        r.baselineCpuUs.push(b.cpuUs);
        r.rps.push(g.rps);
        r.cpuUs.push(g.cpuUs);
      }
      if (profilePath) {
        await procs.gateway.ask('profile-stop', { path: profilePath });
        await procs.passthrough.ask('profile-stop', { path: baselineProfilePath });
        profiles.push({ path: profilePath, requests: v.pairs * v.amount }, { path: baselineProfilePath!, requests: v.pairs * v.amount });
      }
      process.stdout.write(`  ${x.name} done\r`);
    }
    out[v.label] = { direct, doors: res };
    if (direct.length) row({ section: '2', metric: `${v.label}: (a) direct`, value: Math.round(median(direct)), unit: 'req/s' });
    row({ section: '2', metric: `${v.label}: (b) bare proxy`, value: Math.round(median(v.doors.flatMap((x) => res[x.name]!.baseline))), unit: 'req/s' });
    for (const x of v.doors) {
      const { rps, baseline, cpuUs, baselineCpuUs } = res[x.name]!;
      const ratio = median(rps.map((n, i) => n / baseline[i]!));
      const isTarget = v.delayMs === 0;
      row({
        section: '2',
        metric: `${v.label}: ${x.name}`,
        value: `${Math.round(median(rps))} req/s = ${round(ratio * 100, 1)}`,
        unit: `% of (b) (pairs: ${round(Math.min(...rps.map((n, i) => n / baseline[i]!)) * 100, 0)}-${round(Math.max(...rps.map((n, i) => n / baseline[i]!)) * 100, 0)}%)`,
        ...(isTarget ? { target: '>= 70%', pass: ratio >= 0.7 } : {}),
      });
      if (isTarget) {
        row({
          section: '2',
          metric: `${v.label}: ${x.name} CPU per request, gateway / (b)`,
          value: `${round(median(cpuUs), 1)} / ${round(median(baselineCpuUs), 1)}`,
          unit: 'µs',
        });
      }
    }
  }
  await upstream.ask('config', { shape: { delayMs: 0 } });
  raw.throughput = out;
}

interface Mem {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}
const MB = 1024 * 1024;

/**
 * 5. A 2 MB streamed answer through each door with a client that stops reading
 * for a while: what the gateway holds meanwhile (after a full GC, so garbage
 * does not count) and its peak RSS. Then a 32 MB answer, more than the kernel's
 * socket buffers absorb, to show that backpressure reaches the upstream.
 */
async function memoryPhase(t: Targets, upstream: Child, gw: Child): Promise<void> {
  const sizes = [
    { events: 2048, eventChars: 850, target: true },
    { events: 4096, eventChars: 8000, target: false },
  ];
  const result: Record<string, unknown> = {};
  for (const size of sizes) {
    await upstream.ask('config', { shape: { delayMs: 0, events: size.events, gapMs: 0, eventChars: size.eventChars } });
    log(`\n5. A streamed answer of ${size.events} events of ${size.eventChars} characters; the client stops reading for 400 ms after the first chunk`);
    const doors = size.target
      ? ([[t.geminiStream, 'Gemini stream'], [t.openaiStream, 'OpenAI stream'], [t.anthropicStream, 'Anthropic stream']] as const)
      : ([[t.geminiStream, 'Gemini stream'], [t.openaiStream, 'OpenAI stream']] as const);
    for (const [x, label] of doors) {
      const agent = keepAliveAgent();
      await timedRequest(x, agent); // warm
      const before = (await gw.ask<{ mem: Mem }>('gc-mem')).mem;
      const upBefore = (await upstream.ask<{ stats: { bytesWritten: number } }>('stream-stats')).stats.bytesWritten;
      await gw.ask('sample-start', { everyMs: 2 });
      let during: Mem | null = null;
      let upDuring = 0;
      const s = await timedRequest(x, agent, {
        pauseAfterFirstMs: 400,
        duringPause: async () => {
          during = (await gw.ask<{ mem: Mem }>('gc-mem')).mem;
          upDuring = (await upstream.ask<{ stats: { bytesWritten: number } }>('stream-stats')).stats.bytesWritten - upBefore;
        },
      });
      const sample = await gw.ask<{ base: Mem; peak: Mem; samples: number }>('sample-stop');
      const upTotal = (await upstream.ask<{ stats: { bytesWritten: number } }>('stream-stats')).stats.bytesWritten - upBefore;
      agent.destroy();
      const d = during as Mem | null;
      const held = d ? (d.heapUsed + d.arrayBuffers - before.heapUsed - before.arrayBuffers) / MB : NaN;
      const peakRss = (sample.peak.rss - sample.base.rss) / MB;
      const mb = round(s.bytes / MB, 1);
      result[`${label} ${mb} MB`] = { bytes: s.bytes, upstreamBytes: upTotal, upstreamBytesWhilePaused: upDuring, heldMB: held, peakRssGrowthMB: peakRss, samples: sample.samples, ttlbMs: s.ttlb };
      const complete = s.status === 200 && s.bytes >= upTotal * 0.8;
      const detail = `MB (peak RSS +${round(peakRss, 1)} MB; upstream had sent ${round(upDuring / MB, 2)} of ${round(upTotal / MB, 2)} MB meanwhile)`;
      if (size.target) {
        row({ section: '5', metric: `${label}: ${mb} MB answer; gateway memory held while the client paused`, value: round(held, 2), unit: detail, target: '< 1 MB, complete', pass: complete && held < 1 });
      } else {
        row({ section: '5', metric: `${label}: ${mb} MB answer (backpressure); gateway memory held while the client paused`, value: round(held, 2), unit: detail, ...(complete ? {} : { target: 'complete', pass: false }) });
      }
    }
  }
  await upstream.ask('config', { shape: { events: 10, gapMs: 0, eventChars: 40 } });
  raw.memory = result;
}

/** 4. Live reload of one changed account file, with N accounts loaded. */
async function reloadPhase(gw: Child, dataDir: string): Promise<void> {
  log(`\n4. Live reload: one account file changed on disk (atomic replace), ${P.reloadRounds} times`);
  const active: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < P.reloadRounds; r++) {
    const id = benchAccountId((r * 7919) % N_ACCOUNTS);
    const path = join(dataDir, 'accounts', accountFileName(id));
    const account = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    account.name = `Bench User reloaded ${r} ${Date.now()}`;
    const marked = await gw.ask<{ id: number }>('reload-mark', { accountId: id });
    await writeFileAtomic(path, JSON.stringify(account, null, 2) + '\n');
    const done = await gw.waitFor<{ wallMs: number; activeMs: number }>('reloaded', marked.id, 15_000);
    active.push(done.activeMs);
    wall.push(done.wallMs);
    await sleep(150);
  }
  raw.reload = { activeMs: active, wallMs: wall };
  const med = median(active);
  row({ section: '4', metric: `reload of one changed file: gateway main-thread work (median of ${active.length})`, value: med, unit: 'ms', target: '<= 5', pass: med <= 5 });
  row({ section: '4', metric: 'reload: worst round work / median wall time to applied (incl. debounce)', value: `${round(Math.max(...active))} / ${round(median(wall))}`, unit: 'ms' });
}

async function selectPhase(gw: Child): Promise<void> {
  log(`\n4. Account selection: ${P.selectN} x pool.acquire() in the running gateway`);
  const r = await gw.ask<{ nsPerOp: number; cpuNsPerOp: number; poolSize: number; lanes: number }>('select-bench', { n: P.selectN, model: 'gemini-2.5-flash' });
  raw.select = r;
  const us = r.nsPerOp / 1000;
  row({ section: '4', metric: `one account selection (pool.acquire, ${r.poolSize} accounts on ${r.lanes} lanes)`, value: us, unit: 'µs', target: '<= 10', pass: us <= 10, note: `CPU ${round(r.cpuNsPerOp / 1000, 3)} µs` });
}

/** 3. The refresh herd: 1,000 concurrent requests on one account whose token has expired. */
async function herdPhase(root: string, upstreamUrl: string): Promise<void> {
  log('\n3. Refresh herd: 1,000 concurrent requests (connections opened beforehand), one account, expired access token');
  const { startIssuer } = await import('../test/support/oidc-issuer.ts');
  const issuer = await startIssuer();
  let gw: GatewayRun | null = null;
  try {
    const dataDir = join(root, 'herd');
    await mkdir(join(dataDir, 'accounts'), { recursive: true, mode: 0o700 });
    const secretPath = join(root, 'client_secret.json');
    const redirect = 'http://localhost:8045/oauth2callback';
    await issuer.writeClientSecret(secretPath, redirect);
    const account = await expiredIssuerAccount(issuer, redirect, 'herd@bench.example.com');
    await writeAccountFile(dataDir, account);
    const afterConsent = { ...issuer.counters };
    gw = await startGatewayChild('herd', dataDir, {
      GRANTPOOL_GEMINI_BASE_URL: upstreamUrl,
      GRANTPOOL_OAUTH_ISSUER: issuer.url,
      GRANTPOOL_CLIENT_SECRET_FILE: secretPath,
    }, join(root, 'gateway-herd.log'));
    const direct: Target = { name: 'direct', url: upstreamUrl, path: GEN_PATH, body: GEMINI_BODY, headers: googleHeaders };
    const viaGw: Target = { name: 'gateway', url: gw.url, path: GEN_PATH, body: GEMINI_BODY, headers: googleHeaders };
    const n = 1000;
    const base = await burst(direct, n, '/v1beta/models');
    checkAllOk('herd direct', base);
    const before = { ...issuer.counters };
    const early = before.refreshRequests - afterConsent.refreshRequests;
    if (early !== 0) throw new Error(`the gateway refreshed the token before the burst (${early} refreshes); the herd was not measured`);
    const herd = await burst(viaGw, n, '/healthz');
    const refreshes = issuer.counters.refreshRequests - before.refreshRequests;
    const tokenCalls = issuer.counters.tokenRequests - before.tokenRequests;
    const warm = await burst(viaGw, n, '/healthz');
    const after = issuer.counters.refreshRequests - before.refreshRequests;
    raw.herd = {
      refreshes,
      tokenEndpointCalls: tokenCalls,
      refreshesAfterSecondBurst: after,
      ok: herd.ok,
      failed: herd.failed,
      statuses: herd.statuses,
      direct: { p50: percentile(base.latencies, 50), p99: percentile(base.latencies, 99) },
      herd: { p50: percentile(herd.latencies, 50), p99: percentile(herd.latencies, 99) },
      warm: { p50: percentile(warm.latencies, 50), p99: percentile(warm.latencies, 99) },
    };
    row({ section: '3', metric: `token-endpoint calls for ${n} concurrent requests (${herd.ok} answered 200)`, value: tokenCalls, unit: 'calls', target: '= 1, all 200', pass: tokenCalls === 1 && refreshes === 1 && herd.ok === n });
    row({
      section: '3',
      metric: 'herd burst (refresh included) added latency p50 / p99 over the same burst direct',
      value: `${round(percentile(herd.latencies, 50) - percentile(base.latencies, 50))} / ${round(percentile(herd.latencies, 99) - percentile(base.latencies, 99))}`,
      unit: 'ms',
    });
    row({
      section: '3',
      metric: 'of which waiting for the one refresh (herd burst minus the same burst with a fresh token), p50',
      value: percentile(herd.latencies, 50) - percentile(warm.latencies, 50),
      unit: 'ms',
    });
    row({
      section: '3',
      metric: 'same burst once the token is fresh: added p50 / p99 (1,000 requests queued at once)',
      value: `${round(percentile(warm.latencies, 50) - percentile(base.latencies, 50))} / ${round(percentile(warm.latencies, 99) - percentile(base.latencies, 99))}`,
      unit: 'ms',
    });
  } finally {
    await gw?.child.stop();
    await issuer.close();
  }
}

/**
 * 6. Claude on Vertex AI: the Anthropic door passing a claude-* request
 * through to Vertex AI's Anthropic publisher (rawPredict / streamRawPredict,
 * body edited in its bytes, answer forwarded as it is) against the same door
 * translating it to Gemini, each against the bare proxy (b) on the path it
 * calls, in the same run. Two gateways of 10 accounts each: one whose
 * projects have Vertex AI enabled, one without (claude_fallback "gemini").
 */
async function vertexPhase(root: string, upstream: Child, passthrough: Child): Promise<void> {
  const upstreamUrl = upstream.ready.url as string;
  const passUrl = passthrough.ready.url as string;
  const vertexDir = join(root, 'vertex');
  const plainDir = join(root, 'translated');
  await writeAccounts(vertexDir, 10, 1, true);
  await writeAccounts(plainDir, 10, 1, false);
  const env = { GRANTPOOL_GEMINI_BASE_URL: upstreamUrl, GRANTPOOL_VERTEX_BASE_URL: upstreamUrl };
  const vgw = await startGatewayChild('vertex', vertexDir, env, join(root, 'gateway-vertex.log'));
  const tgw = await startGatewayChild('translated', plainDir, env, join(root, 'gateway-translated.log'));
  try {
    const rawPath = (method: string) => `/v1/projects/bench-project-00000/locations/global/publishers/anthropic/models/claude-sonnet-4-5:${method}`;
    const vertexBody = JSON.stringify({ anthropic_version: 'vertex-2023-10-16', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] });
    const vertexStreamBody = JSON.stringify({ anthropic_version: 'vertex-2023-10-16', max_tokens: 256, stream: true, messages: [{ role: 'user', content: 'Hello' }] });
    const bearer = { authorization: 'Bearer ya29.bench' };
    const x = {
      vDirect: { name: '(a) direct rawPredict', url: upstreamUrl, path: rawPath('rawPredict'), body: vertexBody, headers: bearer } as Target,
      vPass: { name: '(b) bare proxy rawPredict', url: passUrl, path: rawPath('rawPredict'), body: vertexBody, headers: bearer } as Target,
      vGw: { name: 'gateway Anthropic -> Vertex', url: vgw.url, path: '/v1/messages', body: ANTHROPIC_BODY, headers: anthropicHeaders } as Target,
      gDirect: { name: '(a) direct generateContent', url: upstreamUrl, path: GEN_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
      gPass: { name: '(b) bare proxy generateContent', url: passUrl, path: GEN_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
      tGw: { name: 'gateway Anthropic -> Gemini', url: tgw.url, path: '/v1/messages', body: ANTHROPIC_BODY, headers: anthropicHeaders } as Target,
      vDirectStream: { name: '(a) direct streamRawPredict', url: upstreamUrl, path: rawPath('streamRawPredict'), body: vertexStreamBody, headers: bearer } as Target,
      vPassStream: { name: '(b) bare proxy streamRawPredict', url: passUrl, path: rawPath('streamRawPredict'), body: vertexStreamBody, headers: bearer } as Target,
      vGwStream: { name: 'gateway Anthropic -> Vertex stream', url: vgw.url, path: '/v1/messages', body: ANTHROPIC_STREAM_BODY, headers: anthropicHeaders } as Target,
      gDirectStream: { name: '(a) direct streamGenerateContent', url: upstreamUrl, path: STREAM_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
      gPassStream: { name: '(b) bare proxy streamGenerateContent', url: passUrl, path: STREAM_PATH, body: GEMINI_BODY, headers: googleHeaders } as Target,
      tGwStream: { name: 'gateway Anthropic -> Gemini stream', url: tgw.url, path: '/v1/messages', body: ANTHROPIC_STREAM_BODY, headers: anthropicHeaders } as Target,
    };
    // Each gateway serves the path it should: Claude's own message id only comes from Vertex.
    const agent = keepAliveAgent();
    for (const [target, want] of [[x.vGw, 'msg_vrtx_bench0001'], [x.tGw, '"type":"message"'], [x.vGwStream, 'message_stop'], [x.tGwStream, 'message_stop']] as const) {
      const r = await timedRequest(target, agent, { keepBody: true });
      if (r.status !== 200 || !(r.body ?? '').includes(want)) throw new Error(`${target.name} answered ${r.status}: ${(r.body ?? '').slice(0, 300)}`);
    }
    const t = await timedRequest(x.tGw, agent, { keepBody: true });
    if ((t.body ?? '').includes('msg_vrtx_')) throw new Error('the gateway without Vertex lanes answered from Vertex AI');
    agent.destroy();

    log('\n6. Claude on Vertex AI: the Anthropic door passing through (rawPredict) vs translating to Gemini, one request at a time');
    const list = [x.vDirect, x.vPass, x.vGw, x.gDirect, x.gPass, x.tGw];
    const per: Record<string, { p50: number[]; p99: number[] }> = {};
    for (const y of list) per[y.name] = { p50: [], p99: [] };
    for (let r = 0; r < P.rounds; r++) {
      for (const y of list) {
        await cannon(y, { connections: 1, amount: P.latWarm });
        const res = await cannon(y, { connections: 1, amount: P.latAmount });
        checkAllOk(y.name, res);
        per[y.name]!.p50.push(percentile(res.latencies, 50));
        per[y.name]!.p99.push(percentile(res.latencies, 99));
      }
      process.stdout.write(`  round ${r + 1}/${P.rounds}\r`);
    }
    const added = (name: string, base: string, q: 'p50' | 'p99') => median(per[name]![q].map((v, i) => v - per[base]![q][i]!));
    const bV = added(x.vPass.name, x.vDirect.name, 'p50');
    const bG = added(x.gPass.name, x.gDirect.name, 'p50');
    row({ section: '6', metric: '(b) bare proxy added p50: rawPredict / generateContent', value: `${round(bV)} / ${round(bG)}`, unit: 'ms' });
    const pv50 = added(x.vGw.name, x.vDirect.name, 'p50');
    const pv99 = added(x.vGw.name, x.vDirect.name, 'p99');
    const tr50 = added(x.tGw.name, x.gDirect.name, 'p50');
    const tr99 = added(x.tGw.name, x.gDirect.name, 'p99');
    row({ section: '6', metric: 'Anthropic door -> Claude on Vertex (pass-through) added p50 / p99', value: `${round(pv50)} / ${round(pv99)}`, unit: `ms (${round(pv50 / Math.max(bV, 0.001), 1)}x (b)'s p50)`, target: 'p50 <= 1', pass: pv50 <= 1 });
    row({ section: '6', metric: 'Anthropic door -> Gemini (translated) added p50 / p99', value: `${round(tr50)} / ${round(tr99)}`, unit: `ms (${round(tr50 / Math.max(bG, 0.001), 1)}x (b)'s p50)` });
    row({ section: '6', metric: 'pass-through vs translated: added p50 over (b)', value: `${round(pv50 - bV)} vs ${round(tr50 - bG)}`, unit: 'ms', target: 'pass-through <= translated', pass: pv50 - bV <= tr50 - bG });

    // Streams: 10 events, 2 ms apart.
    const shape: Partial<UpstreamShape> = { delayMs: 0, events: 10, gapMs: 2, eventChars: 40 };
    await upstream.ask('config', { shape });
    const slist = [x.vDirectStream, x.vPassStream, x.vGwStream, x.gDirectStream, x.gPassStream, x.tGwStream];
    const sper: Record<string, { ttfb: number[]; ttlb: number[] }> = {};
    for (const y of slist) sper[y.name] = { ttfb: [], ttlb: [] };
    for (let r = 0; r < P.rounds; r++) {
      for (const y of slist) {
        const a = keepAliveAgent();
        for (let i = 0; i < P.streamWarm; i++) await timedRequest(y, a);
        const f: number[] = [];
        const l: number[] = [];
        for (let i = 0; i < P.streamReqs; i++) {
          const s = await timedRequest(y, a);
          if (s.status !== 200) throw new Error(`${y.name}: status ${s.status}`);
          f.push(s.ttfb);
          l.push(s.ttlb);
        }
        a.destroy();
        sper[y.name]!.ttfb.push(percentile(f, 50));
        sper[y.name]!.ttlb.push(percentile(l, 50));
      }
    }
    await upstream.ask('config', { shape: { events: 10, gapMs: 0, eventChars: 40 } });
    const sadded = (name: string, base: string, q: 'ttfb' | 'ttlb') => median(sper[name]![q].map((v, i) => v - sper[base]![q][i]!));
    row({ section: '6', metric: 'stream, Vertex pass-through added TTFB p50 / TTLB p50', value: `${round(sadded(x.vGwStream.name, x.vDirectStream.name, 'ttfb'))} / ${round(sadded(x.vGwStream.name, x.vDirectStream.name, 'ttlb'))}`, unit: `ms ((b): ${round(sadded(x.vPassStream.name, x.vDirectStream.name, 'ttfb'))} / ${round(sadded(x.vPassStream.name, x.vDirectStream.name, 'ttlb'))})` });
    row({ section: '6', metric: 'stream, translated added TTFB p50 / TTLB p50', value: `${round(sadded(x.tGwStream.name, x.gDirectStream.name, 'ttfb'))} / ${round(sadded(x.tGwStream.name, x.gDirectStream.name, 'ttlb'))}`, unit: `ms ((b): ${round(sadded(x.gPassStream.name, x.gDirectStream.name, 'ttfb'))} / ${round(sadded(x.gPassStream.name, x.gDirectStream.name, 'ttlb'))})` });

    // Throughput at concurrency 64: alternating pairs of (b) and the gateway on the same path.
    const c = 64;
    log(`  throughput at concurrency ${c}: ${P.pairs} pairs of runs of ${P.pairAmount} requests`);
    const ratios: Record<string, { rps: number[]; ratio: number[]; cpuUs: number[]; baselineCpuUs: number[] }> = {};
    /** A run, with the CPU time per request (µs) of the proxy that served it. */
    const run = async (y: Target, proxy: Child) => {
      const cpu0 = (await proxy.ask<{ cpu: { user: number; system: number } }>('stats')).cpu;
      const res = await cannon(y, { connections: c, amount: P.pairAmount });
      const cpu1 = (await proxy.ask<{ cpu: { user: number; system: number } }>('stats')).cpu;
      checkAllOk('vertex throughput', res);
      return { rps: res.rps, cpuUs: (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / P.pairAmount };
    };
    for (const [gwTarget, base, gw] of [[x.vGw, x.vPass, vgw.child], [x.tGw, x.gPass, tgw.child]] as const) {
      await cannon(base, { connections: c, amount: P.tputWarm });
      await cannon(gwTarget, { connections: c, amount: P.tputWarm });
      const r = (ratios[gwTarget.name] = { rps: [] as number[], ratio: [] as number[], cpuUs: [] as number[], baselineCpuUs: [] as number[] });
      const profilePath = PROFILE ? join(RESULTS, 'profiles', `${gwTarget.name.replace(/\W+/g, '-')}.cpuprofile`) : null;
      const baselineProfilePath = profilePath?.replace(/\.cpuprofile$/, '-b-bare-proxy.cpuprofile');
      if (profilePath) {
        await gw.ask('profile-start', { intervalUs: 200 });
        await passthrough.ask('profile-start', { intervalUs: 200 });
      }
      for (let i = 0; i < P.pairs; i++) {
        const bFirst = i % 2 === 0;
        const one = bFirst ? await run(base, passthrough) : await run(gwTarget, gw);
        const two = bFirst ? await run(gwTarget, gw) : await run(base, passthrough);
        const [b, g] = bFirst ? [one, two] : [two, one];
        r.rps.push(g.rps);
        r.ratio.push(g.rps / b.rps);
        r.cpuUs.push(g.cpuUs);
        r.baselineCpuUs.push(b.cpuUs);
      }
      if (profilePath) {
        await gw.ask('profile-stop', { path: profilePath });
        await passthrough.ask('profile-stop', { path: baselineProfilePath });
        profiles.push({ path: profilePath, requests: P.pairs * P.pairAmount }, { path: baselineProfilePath!, requests: P.pairs * P.pairAmount });
      }
    }
    const pv = median(ratios[x.vGw.name]!.ratio);
    const tr = median(ratios[x.tGw.name]!.ratio);
    const cpu = (name: string) => `${round(median(ratios[name]!.cpuUs), 1)} / ${round(median(ratios[name]!.baselineCpuUs), 1)}`;
    row({ section: '6', metric: 'throughput, Anthropic door -> Claude on Vertex (pass-through)', value: `${Math.round(median(ratios[x.vGw.name]!.rps))} req/s = ${round(pv * 100, 1)}`, unit: '% of (b) on rawPredict', target: '>= 70%', pass: pv >= 0.7 });
    row({ section: '6', metric: 'pass-through CPU per request, gateway / (b) on rawPredict', value: cpu(x.vGw.name), unit: 'µs' });
    row({ section: '6', metric: 'throughput, Anthropic door -> Gemini (translated)', value: `${Math.round(median(ratios[x.tGw.name]!.rps))} req/s = ${round(tr * 100, 1)}`, unit: '% of (b) on generateContent' });
    row({ section: '6', metric: 'translated CPU per request, gateway / (b) on generateContent', value: cpu(x.tGw.name), unit: 'µs' });
    row({ section: '6', metric: 'throughput: pass-through closer to (b) than translated', value: `${round(pv * 100, 1)}% vs ${round(tr * 100, 1)}%`, unit: 'of (b)', target: 'pass-through >= translated', pass: pv >= tr });
    raw.vertex = { latency: per, stream: sper, throughput: ratios };
  } finally {
    await vgw.child.stop();
    await tgw.child.stop();
  }
}

// ---- output ----------------------------------------------------------------------------

function table(rs: Row[]): string {
  const head = ['#', 'measurement', 'result', 'target', ''];
  const body = rs.map((r) => [r.section, r.metric, `${typeof r.value === 'number' ? round(r.value, 3) : r.value} ${r.unit}`, r.target ?? '', r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

function markdown(rs: Row[], meta: Record<string, unknown>): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    `Measured ${meta.date} on ${meta.machine} (${meta.mode}); reproduce with \`${meta.command}\`.`,
    '',
    '| # | measurement | result | target | |',
    '|---|---|---|---|---|',
    ...rs.map((r) => `| ${r.section} | ${esc(r.metric)} | ${esc(`${typeof r.value === 'number' ? round(r.value, 3) : r.value} ${r.unit}`)} | ${esc(r.target ?? '')} | ${r.pass === undefined ? '' : r.pass ? 'PASS' : '**MISS**'} |`),
  ];
  return lines.join('\n') + '\n';
}

// ---- main ------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const root = await mkdtemp(join(tmpdir(), 'grantpool-bench-'));
  await mkdir(join(RESULTS, 'profiles'), { recursive: true });
  const children: Child[] = [];
  const meta = {
    date: new Date().toISOString(),
    machine: `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown cpu'}), ${Math.round(totalmem() / 1024 ** 3)} GB RAM, Linux ${release()}, Node ${process.version}`,
    mode: QUICK ? 'quick' : 'full',
    command: argv.length ? `npm run bench -- ${argv.join(' ')}` : 'npm run bench',
    nodeFlags: NODE_ARGS.join(' '),
    nodeEnv: Object.fromEntries(Object.keys(NODE_ENV).map((k) => [k, CHILD_ENV[k as keyof typeof CHILD_ENV]])),
    accounts: N_ACCOUNTS,
    lanes: N_LANES,
    params: P,
  };
  log(`Grantpool benchmark (${meta.mode}): ${meta.machine}; Node flags of the gateway and (b): ${NODE_ARGS.join(' ') || '(none)'}, environment ${Object.keys(NODE_ENV).map((k) => `${k}=${CHILD_ENV[k as keyof typeof CHILD_ENV]}`).join(' ')}`);
  log(`work dir ${root}`);
  try {
    const upstream = await startChild(join(HERE, 'upstream.ts'), { logFile: join(root, 'upstream.log') });
    children.push(upstream);
    const upstreamUrl = upstream.ready.url as string;
    const passthrough = await startChild(join(HERE, 'passthrough.ts'), { args: [upstreamUrl], execArgv: NODE_ARGS, env: CHILD_ENV, logFile: join(root, 'passthrough.log') });
    children.push(passthrough);

    const needMain = ['latency', 'stream', 'throughput', 'memory', 'reload', 'select', 'start'].some(phase);
    if (needMain) {
      // One start with a few accounts first, so that the measured start finds the compile cache warm, as every start after a user's first does.
      const warmDir = join(root, 'warm-up');
      await writeAccounts(warmDir, 10);
      await (await startGatewayChild('warm-up', warmDir, { GRANTPOOL_GEMINI_BASE_URL: upstreamUrl }, join(root, 'gateway-warm-up.log'))).child.stop();
      const dataDir = join(root, 'gateway');
      const tw = performance.now();
      await writeAccounts(dataDir, N_ACCOUNTS, PER_LANE);
      log(`wrote ${N_ACCOUNTS} account files (${SHAPE}) in ${Math.round(performance.now() - tw)} ms`);
      const gw = await startGatewayChild('main', dataDir, { GRANTPOOL_GEMINI_BASE_URL: upstreamUrl }, join(root, 'gateway.log'));
      children.push(gw.child);
      const poolSize = gw.child.ready.poolSize as number;
      if (poolSize !== N_ACCOUNTS) throw new Error(`the gateway loaded ${poolSize} accounts, expected ${N_ACCOUNTS}`);
      log(`\n4. Start with ${SHAPE}`);
      row({ section: '4', metric: `start to healthy, ${SHAPE} (process spawn to first 200 from /healthz)`, value: gw.spawnToHealthyMs / 1000, unit: 's', target: '<= 2', pass: gw.spawnToHealthyMs <= 2000 });
      row({ section: '4', metric: 'of which startGateway() (config, store load, pool, listen)', value: gw.startGatewayMs, unit: 'ms' });
      const ready = gw.child.ready as { startCpuMs: number; loadedAtMs: number; loadedCpuMs: number };
      row({ section: '4', metric: 'CPU time of the start: until startGateway() returned / until every account was read (user + system, all threads)', value: `${round(ready.startCpuMs)} / ${round(ready.loadedCpuMs)}`, unit: 'ms' });
      row({ section: '4', metric: 'every account read (gateway process start to the end of the background load)', value: ready.loadedAtMs / 1000, unit: 's' });
      const startMem = gw.child.ready.mem as Mem;
      row({ section: '4', metric: `RSS right after start, ${SHAPE}`, value: startMem.rss / MB, unit: 'MB' });
      // What the accounts and lanes hold, without the garbage of the start: compare `--lanes=0`, the default and `--lanes=N`.
      const live = await gw.child.ask<{ mem: Mem }>('gc-mem');
      row({ section: '4', metric: `live V8 heap right after start (two full GCs), ${SHAPE}`, value: live.mem.heapUsed / MB, unit: 'MB' });

      const t = targets(upstreamUrl, passthrough.ready.url as string, gw.url);
      await sanity(t);
      // Measured while the gateway is otherwise idle, so that the work counted is the reload's.
      if (phase('reload')) await timed('reload', () => reloadPhase(gw.child, dataDir));
      if (phase('select')) await timed('select', () => selectPhase(gw.child));
      if (phase('latency')) await timed('latency', () => latencyPhase(t));
      if (phase('stream')) await timed('stream', () => streamPhase(t, upstream));
      if (phase('throughput')) await timed('throughput', () => throughputPhase(t, upstream, { gateway: gw.child, passthrough }));
      const s = await gw.child.ask<{ mem: Mem; cpu: { user: number; system: number } }>('stats');
      const ptStats = await passthrough.ask<{ mem: Mem }>('stats');
      const resident = { gateway: residentBreakdown(gw.child.proc.pid!), passthrough: residentBreakdown(passthrough.proc.pid!) };
      log(`\n4. Memory after load`);
      row({ section: '4', metric: `gateway RSS after load, ${SHAPE}`, value: s.mem.rss / MB, unit: `MB (V8 heap ${round(s.mem.heapTotal / MB, 1)} MB, ${round(s.mem.heapUsed / MB, 1)} MB used)`, target: '<= 150', pass: s.mem.rss / MB <= 150 });
      if (resident.gateway) row({ section: '4', metric: 'of which: node binary pages / malloc heap / anonymous (V8 heap, buffers, stacks)', value: residentSplit(resident.gateway), unit: 'MB' });
      row({ section: '4', metric: 'floor: (b) bare proxy RSS after the same load (node:http + undici only, no accounts, same Node flags and environment)', value: ptStats.mem.rss / MB, unit: `MB (V8 heap ${round(ptStats.mem.heapTotal / MB, 1)} MB, ${round(ptStats.mem.heapUsed / MB, 1)} MB used)` });
      if (resident.passthrough) row({ section: '4', metric: 'of which (b): node binary pages / malloc heap / anonymous', value: residentSplit(resident.passthrough), unit: 'MB' });
      // What stays once the gateway has fallen idle and given back what the load left (src/app/memory-settle.ts).
      const settled = await gw.child.ask<{ mem: Mem; settled: boolean; waitedMs: number }>('settled', { timeoutMs: 30_000 }, 40_000);
      const when = settled.settled ? `settled ${round(settled.waitedMs / 1000, 1)} s later` : 'not settled within 30 s';
      row({ section: '4', metric: `gateway RSS after load, ${when}, ${SHAPE}`, value: settled.mem.rss / MB, unit: `MB (V8 heap ${round(settled.mem.heapTotal / MB, 1)} MB, ${round(settled.mem.heapUsed / MB, 1)} MB used)` });
      raw.afterLoad = { gateway: s, passthrough: ptStats, resident, settled };
      if (HEAP_SNAPSHOT) {
        const path = join(RESULTS, 'profiles', 'gateway-after-load.heapsnapshot');
        await gw.child.ask('heap-snapshot', { path });
        log(`heap snapshot: ${path} (summary: node bench/heap-summary.ts ${path})`);
      }
      if (phase('memory')) await timed('memory', () => memoryPhase(t, upstream, gw.child));
      if (P.idleMs > 0) {
        const idleProfile = PROFILE ? join(RESULTS, 'profiles', 'gateway-idle.cpuprofile') : undefined;
        const idle = await gw.child.ask<{ cpuMs: number; activeMs: number; settles: number }>('idle', { ms: P.idleMs, profile: idleProfile }, P.idleMs + 30_000);
        if (idleProfile) log(`profile: ${idleProfile} (idle; summary: node bench/profile-summary.ts ${idleProfile})`);
        row({ section: '4', metric: `gateway CPU in the ${P.idleMs / 1000} s after the load (no requests)`, value: (idle.cpuMs / P.idleMs) * 100, unit: `% of one core${idle.settles ? ' (memory given back meanwhile: one compacting GC)' : ''}` });
        // What `top` shows once the gateway has sat idle after everything above (streams of 32 MB included).
        const afterIdle = await gw.child.ask<{ mem: Mem }>('stats');
        row({ section: '4', metric: `gateway RSS after the streaming-memory phase (5) and ${P.idleMs / 1000} s idle`, value: afterIdle.mem.rss / MB, unit: `MB (V8 heap ${round(afterIdle.mem.heapTotal / MB, 1)} MB, ${round(afterIdle.mem.heapUsed / MB, 1)} MB used)` });
        raw.idle = { ...idle, settled: afterIdle, resident: residentBreakdown(gw.child.proc.pid!) };
      }
      await gw.child.stop();
      children.pop();
      if (P.floor && phase('throughput')) {
        // The floor: the same gateway code with 10 accounts and the same load.
        const floorDir = join(root, 'floor');
        await writeAccounts(floorDir, 10);
        const fl = await startGatewayChild('floor', floorDir, { GRANTPOOL_GEMINI_BASE_URL: upstreamUrl }, join(root, 'gateway-floor.log'));
        children.push(fl.child);
        const ft = targets(upstreamUrl, passthrough.ready.url as string, fl.url);
        for (const x of [ft.gemini, ft.openai, ft.anthropic]) await cannon(x, { connections: 64, amount: P.tputAmount * 2 });
        const fs = await fl.child.ask<{ mem: Mem }>('stats');
        row({ section: '4', metric: 'floor: gateway RSS with 10 accounts after a similar load', value: fs.mem.rss / MB, unit: `MB (V8 heap ${round(fs.mem.heapTotal / MB, 1)} MB)` });
        await fl.child.stop();
        children.pop();
        raw.floor = { gateway10: fs };
      }
    }
    if (phase('vertex')) await timed('vertex', () => vertexPhase(root, upstream, passthrough));
    if (phase('herd')) await timed('herd', () => herdPhase(root, upstreamUrl));
    if (ONLY?.has('scale')) {
      const ctx = { root, upstreamUrl, accounts: N_ACCOUNTS, perLane: PER_LANE, bigAccounts: SCALE_ACCOUNTS, quick: QUICK, heapSnapshot: HEAP_SNAPSHOT ? join(RESULTS, 'profiles', 'gateway-scale-big.heapsnapshot') : null, apiKey: API_KEY, adminToken: ADMIN_TOKEN, row, log, raw, startGateway: startGatewayChild };
      await timed('scale', () => scalePhase(ctx));
    }
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => {});
    if (!KEEP) await rm(root, { recursive: true, force: true });
  }

  const elapsed = (performance.now() - started) / 1000;
  const sorted = [...rows].sort((a, b) => a.section.localeCompare(b.section));
  log(`\n${table(sorted)}\n`);
  const misses = rows.filter((r) => r.pass === false).length;
  log(`${rows.filter((r) => r.pass !== undefined).length - misses} targets met, ${misses} missed; ${round(elapsed, 1)} s (${Object.entries(phaseSeconds).map(([k, v]) => `${k} ${v} s`).join(', ')})`);
  const stamp = meta.date.replace(/[:.]/g, '-');
  const json = JSON.stringify({ meta: { ...meta, elapsedSeconds: elapsed, phaseSeconds }, rows, raw }, null, 2);
  await writeFile(join(RESULTS, `bench-${stamp}.json`), json);
  await writeFile(join(RESULTS, 'latest.json'), json);
  await writeFile(join(RESULTS, 'latest.md'), markdown(sorted, meta));
  log(`results: ${join(RESULTS, `bench-${stamp}.json`)} (and latest.json, latest.md)`);
  for (const p of profiles) log(`profile: ${p.path} (${p.requests} requests; summary: node bench/profile-summary.ts ${p.path} ${p.requests})`);
}

await main();
