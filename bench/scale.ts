// The scale-out phase (`npm run bench -- --only=scale`): three gateways, each
// its own process, on one PostgreSQL cluster that this phase starts itself
// (test/support/postgres.ts: initdb + pg_ctl in a temp dir on a free loopback
// port), against one gateway on a data directory in the same run. The
// accounts reach the database through `grantpool store copy`, as a user's do.
//
//   7a. added latency (over the direct call) of the three, requests spread
//       over them, and of the one on files;
//   7b. throughput at concurrency 64 of the three together against the one on
//       files (alternating pairs of runs, the ratio of each pair), CPU per request;
//   7c. the database's share: queries per proxied request during that load,
//       minus what the gateways send when idle (their own counter, which
//       /metrics shows, and the server's transaction count as a cross-check);
//   7d. a change made on one gateway (PATCH /api/accounts/{id}) until the pools
//       of the two others have applied it;
//   7e. the refresh herd across instances: one account with an expired token,
//       ~1,000 concurrent requests over the three, token-endpoint calls;
//   7f. start to healthy and RSS after load of one gateway on PostgreSQL with
//       the run's accounts (targets from 100,000 accounts on; --scale-accounts=N
//       measures N in a database of its own: its RSS right after a burst of
//       requests, and once it has fallen idle and given memory back).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { cannon, burst, keepAliveAgent, timedRequest, type CannonResult, type Target } from './load.ts';
import { median, percentile, round } from './stats.ts';
import { benchAccountId, expiredIssuerAccount, writeAccounts } from './accounts.ts';
import { residentBreakdown, residentSplit, type Child } from './proc.ts';
import type { Row } from './row.ts';
import { dbShare, dbWindow } from './db-share.ts';
import { main as cli } from '../src/cli/main.ts';
import { createPgStore } from '../src/store/pg-store.ts';
import { createLogger } from '../src/log/logger.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../test/support/postgres.ts';

interface GatewayRun {
  child: Child;
  url: string;
  spawnToHealthyMs: number;
}

export interface ScaleContext {
  root: string;
  upstreamUrl: string;
  /** Accounts in the pool of every gateway of the phase (--accounts). */
  accounts: number;
  perLane: number;
  /** --scale-accounts=N: also start one gateway on a database of N accounts (7f). */
  bigAccounts: number | null;
  quick: boolean;
  /** --heap-snapshot: where 7f writes its gateway's heap after the load (null: not written). */
  heapSnapshot: string | null;
  apiKey: string;
  adminToken: string;
  row(r: Row): void;
  log(s: string): void;
  startGateway(name: string, dataDir: string, env: Record<string, string>, logFile: string): Promise<GatewayRun>;
  /** The raw figures, saved in the results JSON. */
  raw: Record<string, unknown>;
}

const MB = 1024 * 1024;
const GEN_PATH = '/v1beta/models/gemini-2.5-flash:generateContent';
const GEMINI_BODY = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The healthy and memory targets of issue 16 hold from this many accounts on. */
const BIG = 100_000;

export async function scalePhase(ctx: ScaleContext): Promise<void> {
  const found = findPostgres();
  if (typeof found === 'string') {
    ctx.log(`\n7. Scale-out on PostgreSQL: skipped (${found})`);
    ctx.row({ section: '7', metric: 'scale-out on PostgreSQL', value: 'skipped', unit: found });
    return;
  }
  const P = ctx.quick ? { rounds: 2, latAmount: 1500, pairs: 3, pairAmount: 4000, warm: 1500, changes: 10, herd: 1000, idleMs: 3000 } : { rounds: 3, latAmount: 3000, pairs: 5, pairAmount: 6000, warm: 3000, changes: 20, herd: 1000, idleMs: 5000 };
  const raw: Record<string, unknown> = (ctx.raw.scale = {});
  const t0 = performance.now();
  const pg = await startPostgres(found, { settings: ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track = 'all'"] });
  const running: Child[] = [];
  try {
    ctx.log(`\n7. Scale-out: three gateways on one PostgreSQL 15 (${pg.url}, started in ${Math.round(performance.now() - t0)} ms), ${ctx.accounts} accounts`);
    const filesDir = join(ctx.root, 'scale-files');
    await writeAccounts(filesDir, ctx.accounts, ctx.perLane);
    const url = await pg.createDatabase('scale');
    const copyMs = await storeCopy(ctx, filesDir, url);
    ctx.row({ section: '7', metric: `grantpool store copy of ${ctx.accounts} accounts (files -> PostgreSQL)`, value: copyMs / 1000, unit: `s (${round((copyMs * 1000) / ctx.accounts, 0)} µs an account)` });

    const start = async (name: string, env: Record<string, string>) => {
      const dir = join(ctx.root, `scale-${name}`);
      await mkdir(dir, { recursive: true });
      const gw = await ctx.startGateway(name, dir, { GRANTPOOL_GEMINI_BASE_URL: ctx.upstreamUrl, ...env }, join(ctx.root, `gateway-scale-${name}.log`));
      running.push(gw.child);
      return gw;
    };
    const files = await start('files', {});
    // A alone first: its start is the one measured (7f); B and C start together.
    const a = await start('pg-a', { GRANTPOOL_DATABASE_URL: url });
    const [b, c] = await Promise.all([start('pg-b', { GRANTPOOL_DATABASE_URL: url }), start('pg-c', { GRANTPOOL_DATABASE_URL: url })]);
    const three = [a, b, c];
    for (const g of [files, ...three]) await fullPool(g, ctx.accounts);
    const target = (name: string, u: string): Target => ({ name, url: u, path: GEN_PATH, body: GEMINI_BODY, headers: { 'x-goog-api-key': ctx.apiKey } });
    const direct = target('(a) direct', ctx.upstreamUrl);
    const onFiles = target('one gateway on files', files.url);
    const onPg = three.map((g, i) => target(`gateway ${'ABC'[i]} on PostgreSQL`, g.url));
    for (const t of [onFiles, ...onPg]) await sane(t);

    // 7a. Added latency, one request at a time; the three take turns (a block each).
    ctx.log('  7a. added latency, one request at a time');
    const lat = { direct: { p50: [] as number[], p99: [] as number[] }, files: { p50: [] as number[], p99: [] as number[] }, pg: { p50: [] as number[], p99: [] as number[] } };
    for (let r = 0; r < P.rounds; r++) {
      const d = await oneAtATime([direct], P.latAmount);
      const f = await oneAtATime([onFiles], P.latAmount);
      const p = await oneAtATime(onPg, P.latAmount);
      for (const [k, v] of [['direct', d], ['files', f], ['pg', p]] as const) {
        lat[k].p50.push(percentile(v, 50));
        lat[k].p99.push(percentile(v, 99));
      }
    }
    raw.latency = lat;
    const added = (k: 'files' | 'pg', q: 'p50' | 'p99') => median(lat[k][q].map((v, i) => v - lat.direct[q][i]!));
    ctx.row({ section: '7', metric: '(a) direct upstream p50 / p99', value: `${round(median(lat.direct.p50))} / ${round(median(lat.direct.p99))}`, unit: 'ms' });
    ctx.row({ section: '7', metric: 'one gateway on files: added p50 / p99', value: `${round(added('files', 'p50'))} / ${round(added('files', 'p99'))}`, unit: 'ms' });
    const pg50 = added('pg', 'p50');
    const pg99 = added('pg', 'p99');
    ctx.row({ section: '7', metric: 'three gateways on PostgreSQL (requests spread over them): added p50', value: pg50, unit: 'ms', target: '<= 1', pass: pg50 <= 1 });
    ctx.row({ section: '7', metric: 'three gateways on PostgreSQL: added p99', value: pg99, unit: 'ms', target: '<= 5', pass: pg99 <= 5 });

    // 7b + 7c. Throughput at concurrency 64, and the queries the three send meanwhile.
    ctx.log(`  7b. throughput at concurrency 64: ${P.pairs} rounds of runs of ${P.pairAmount} requests: one on files, A alone, the three together`);
    const db = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await db`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
      const idle = await dbWindow(db, three, ctx.adminToken, () => sleep(P.idleMs));
      await cannon(onFiles, { connections: 64, amount: P.warm });
      await spread(onPg, 64, P.warm);
      // Each round: the one on files, A alone (the database's cost without a second process) and the three, in a rotating order.
      const tput = { files: [] as number[], alone: [] as number[], pg: [] as number[], ratio: [] as number[], aloneRatio: [] as number[], filesCpuUs: [] as number[], aloneCpuUs: [] as number[], pgCpuUs: [] as number[] };
      let pgRequests = 0;
      const loaded = await dbWindow(db, three, ctx.adminToken, async () => {
        const runs = [
          () => withCpu([files.child], P.pairAmount, () => cannon(onFiles, { connections: 64, amount: P.pairAmount })),
          () => withCpu([a.child], P.pairAmount, () => cannon(onPg[0]!, { connections: 64, amount: P.pairAmount })),
          () => withCpu(three.map((g) => g.child), P.pairAmount, () => spread(onPg, 64, P.pairAmount)),
        ];
        for (let i = 0; i < P.pairs; i++) {
          const got: Awaited<ReturnType<(typeof runs)[number]>>[] = [];
          for (let k = 0; k < runs.length; k++) {
            const which = (i + k) % runs.length;
            got[which] = await runs[which]!();
          }
          const [f, one, p] = got as [typeof got[0], typeof got[0], typeof got[0]];
          tput.files.push(f.rps);
          tput.alone.push(one.rps);
          tput.pg.push(p.rps);
          tput.ratio.push(p.rps / f.rps);
          tput.aloneRatio.push(one.rps / f.rps);
          tput.filesCpuUs.push(f.cpuUs);
          tput.aloneCpuUs.push(one.cpuUs);
          tput.pgCpuUs.push(p.cpuUs);
          pgRequests += p.ok + one.ok;
        }
      });
      raw.throughput = tput;
      const ratio = median(tput.ratio);
      const spanOf = (rs: number[]) => `${round(Math.min(...rs) * 100, 0)}-${round(Math.max(...rs) * 100, 0)}%`;
      ctx.row({ section: '7', metric: 'throughput at concurrency 64: one gateway on files', value: Math.round(median(tput.files)), unit: 'req/s' });
      ctx.row({
        section: '7',
        metric: 'throughput at concurrency 64: one gateway on PostgreSQL alone (A)',
        value: `${Math.round(median(tput.alone))} req/s = ${round(median(tput.aloneRatio) * 100, 1)}`,
        unit: `% of the one on files (rounds: ${spanOf(tput.aloneRatio)})`,
      });
      ctx.row({
        section: '7',
        metric: 'throughput at concurrency 64: three gateways on PostgreSQL together (on the same cores)',
        value: `${Math.round(median(tput.pg))} req/s = ${round(ratio * 100, 1)}`,
        unit: `% of the one on files (rounds: ${spanOf(tput.ratio)})`,
        target: '>= 80%',
        pass: ratio >= 0.8,
      });
      ctx.row({ section: '7', metric: 'CPU per request: one on files / A alone / the three (sum of their CPU)', value: `${round(median(tput.filesCpuUs), 1)} / ${round(median(tput.aloneCpuUs), 1)} / ${round(median(tput.pgCpuUs), 1)}`, unit: 'µs' });

      // 7c: what the load added over the idle rate, per request the three answered.
      const share = dbShare(idle, loaded, pgRequests);
      raw.database = { idleMs: idle.ms, loadedMs: loaded.ms, requests: pgRequests, gatewayQueries: { idle: idle.gatewayQueries, loaded: loaded.gatewayQueries }, ...share };
      for (const t of share.top) ctx.log(`    ${round(t.excess, 0)} calls beyond the idle rate (${round(t.perRequest, 4)} a request): ${t.query}`);
      ctx.row({
        section: '7',
        metric: 'database statements per proxied request on the hot path (pg_stat_statements: statements called >= 1 per 100 requests beyond their idle rate)',
        value: share.hot.length ? round(share.hot.reduce((n, h) => n + h.excess, 0) / pgRequests, 4) : 0,
        unit: share.hot.length ? `(${share.hot.length} statement(s), first: ${share.hot[0]!.query.replace(/\s+/g, ' ').slice(0, 80)})` : `(none of the ${loaded.statements.size} statements run meanwhile)`,
        target: '0',
        pass: share.hot.length === 0,
      });
      ctx.row({
        section: '7',
        metric: 'all database statements per proxied request during that load, minus the idle rate (batched usage counts included)',
        value: round(share.statementsPerRequest, 4),
        unit: `(server: pg_stat_statements, ${pgRequests} requests in ${round(loaded.ms / 1000, 1)} s; the gateways' own grantpool_db_queries_total: ${round(share.gatewayQueriesPerRequest, 4)})`,
      });
    } finally {
      await db.end({ timeout: 5 });
    }

    // 7d. A change on A until B's and C's pools have it.
    ctx.log(`  7d. ${P.changes} changes (PATCH /api/accounts/{id} on A), until B and C apply them`);
    const reach: number[] = [];
    const patchMs: number[] = [];
    for (let i = 0; i < P.changes; i++) {
      const id = benchAccountId((i * 7919 + 13) % ctx.accounts);
      const marks = await Promise.all([b, c].map((g) => g.child.ask<{ id: number }>('reload-mark', { accountId: id })));
      const sent = performance.now();
      const seen = [b, c].map((g, k) => g.child.waitFor('reloaded', marks[k]!.id, 10_000).then(() => performance.now() - sent));
      const res = await fetch(`${a.url}/api/accounts/${id}`, { method: 'PATCH', headers: { authorization: `Bearer ${ctx.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ proxy_disabled: true }) });
      patchMs.push(performance.now() - sent);
      if (res.status !== 200) throw new Error(`PATCH on A answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      await res.arrayBuffer();
      reach.push(...(await Promise.all(seen)));
      for (const g of [b, c]) {
        const s = await g.child.ask<{ state: string | null }>('account-state', { accountId: id });
        if (s.state !== 'proxy_disabled') throw new Error(`${g.url} says ${id} is ${s.state} after the change reached it`);
      }
      await sleep(100);
    }
    raw.propagation = { reachMs: reach, patchMs };
    const r99 = percentile(reach, 99);
    ctx.row({ section: '7', metric: `a change on A (PATCH, answered in ${round(median(patchMs), 1)} ms p50) applied by the pools of B and C: p50`, value: percentile(reach, 50), unit: 'ms' });
    ctx.row({ section: '7', metric: `a change on A applied by B and C: p99 (${reach.length} arrivals)`, value: r99, unit: 'ms', target: '<= 1000', pass: r99 <= 1000 });

    // 7f with the run's accounts: A's start (alone) and its memory after all of the above.
    const aStats = await a.child.ask<{ mem: { rss: number; heapUsed: number } }>('stats');
    raw.startAndMemory = { spawnToHealthyMs: a.spawnToHealthyMs, stats: aStats };
    startAndMemoryRows(ctx, ctx.accounts, a.spawnToHealthyMs, aStats.mem);

    for (const g of [files, ...three]) await g.child.stop();
    running.length = 0;

    // 7e. The herd, on gateways of their own with one real account.
    await herd(ctx, pg, P.herd, running);

    if (ctx.bigAccounts) await big(ctx, pg, ctx.bigAccounts, running);
  } finally {
    for (const c of running.reverse()) await c.stop().catch(() => {});
    pg.destroy();
  }
}

function startAndMemoryRows(ctx: ScaleContext, n: number, healthyMs: number, mem: { rss: number; heapUsed: number }, when = ''): void {
  const targeted = n >= BIG;
  ctx.row({ section: '7', metric: `one gateway on PostgreSQL, ${n} accounts: spawn to healthy`, value: healthyMs / 1000, unit: 's', ...(targeted ? { target: '<= 2', pass: healthyMs <= 2000 } : {}) });
  ctx.row({ section: '7', metric: `one gateway on PostgreSQL, ${n} accounts: RSS after load${when}`, value: mem.rss / MB, unit: `MB (V8 heap ${round(mem.heapUsed / MB, 1)} MB used)`, ...(targeted ? { target: '<= 200', pass: mem.rss / MB <= 200 } : {}) });
}

/** `grantpool store copy --from <dir> --to <url>`, in this process; its time in ms. */
async function storeCopy(ctx: ScaleContext, from: string, to: string): Promise<number> {
  const lines: string[] = [];
  const out = { write: (t: string) => void lines.push(t), error: (t: string) => void lines.push(t), color: false };
  const t0 = performance.now();
  const code = await cli(['store', 'copy', '--from', from, '--to', to], out, { GRANTPOOL_DATA_DIR: from, GRANTPOOL_LOG_LEVEL: 'warn' });
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`store copy failed: ${lines.join('')}`);
  ctx.log(`  ${lines.at(-1)!.trim()} in ${round(ms / 1000, 1)} s`);
  return ms;
}

/** Waits until the gateway's pool holds all `n` accounts (a gateway may report healthy before it has loaded them all). */
async function fullPool(g: GatewayRun, n: number): Promise<void> {
  const until = performance.now() + 120_000;
  for (;;) {
    const s = await g.child.ask<{ poolSize: number }>('stats');
    if (s.poolSize === n) return;
    if (performance.now() > until) throw new Error(`${g.url} holds ${s.poolSize} accounts, expected ${n}`);
    await sleep(50);
  }
}

async function sane(t: Target): Promise<void> {
  const agent = keepAliveAgent();
  const r = await timedRequest(t, agent, { keepBody: true });
  agent.destroy();
  if (r.status !== 200 || !(r.body ?? '').includes('"candidates"')) throw new Error(`${t.name} answered ${r.status}: ${(r.body ?? '').slice(0, 300)}`);
}

/** Latencies of `amount` requests one at a time, a block on each target in turn. */
async function oneAtATime(targets: Target[], amount: number): Promise<number[]> {
  const out: number[] = [];
  for (const t of targets) {
    const n = Math.ceil(amount / targets.length);
    await cannon(t, { connections: 1, amount: Math.ceil(n / 5) });
    const r = await cannon(t, { connections: 1, amount: n });
    if (r.failed) throw new Error(`${t.name}: ${r.failed} failed (${JSON.stringify(r.statuses)})`);
    out.push(...r.latencies);
  }
  return out;
}

/** `amount` requests over `connections` connections shared out over the targets, all at once. */
async function spread(targets: Target[], connections: number, amount: number): Promise<CannonResult> {
  const k = targets.length;
  const part = (i: number, n: number) => Math.floor(n / k) + (i < n % k ? 1 : 0);
  const t0 = performance.now();
  const rs = await Promise.all(targets.map((t, i) => cannon(t, { connections: part(i, connections), amount: part(i, amount) })));
  const elapsedMs = Math.max(...rs.map((r) => r.elapsedMs)) || performance.now() - t0;
  const ok = rs.reduce((n, r) => n + r.ok, 0);
  const failed = rs.reduce((n, r) => n + r.failed, 0);
  if (failed) throw new Error(`${failed} request(s) failed over ${targets.map((t) => t.name).join(', ')}`);
  const statuses: Record<string, number> = {};
  for (const r of rs) for (const [s, n] of Object.entries(r.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
  return { latencies: rs.flatMap((r) => r.latencies), ok, failed, elapsedMs, rps: (ok / elapsedMs) * 1000, statuses };
}

/** A load run with the CPU time (µs) its gateways spent per request. */
async function withCpu(procs: Child[], amount: number, run: () => Promise<CannonResult>): Promise<{ rps: number; ok: number; cpuUs: number }> {
  const cpu = async () => (await Promise.all(procs.map((p) => p.ask<{ cpu: { user: number; system: number } }>('stats')))).reduce((n, s) => n + s.cpu.user + s.cpu.system, 0);
  const c0 = await cpu();
  const r = await run();
  const c1 = await cpu();
  if (r.failed) throw new Error(`${r.failed} request(s) failed (${JSON.stringify(r.statuses)})`);
  return { rps: r.rps, ok: r.ok, cpuUs: (c1 - c0) / amount };
}

/** 7e. One account whose access token has expired, `n` concurrent requests spread over three gateways. */
async function herd(ctx: ScaleContext, pg: TestPostgres, n: number, running: Child[]): Promise<void> {
  ctx.log(`  7e. refresh herd: ${n} concurrent requests spread over three gateways, one account, expired access token`);
  const { startIssuer } = await import('../test/support/oidc-issuer.ts');
  const issuer = await startIssuer();
  try {
    const url = await pg.createDatabase('herd');
    const secretPath = join(ctx.root, 'scale-client_secret.json');
    const redirect = 'http://localhost:8045/oauth2callback';
    await issuer.writeClientSecret(secretPath, redirect);
    const account = await expiredIssuerAccount(issuer, redirect, 'herd@bench.example.com');
    const store = await createPgStore({ url, logger: createLogger({ level: 'warn' }), catchUpIntervalMs: 0 });
    await store.upsertByIdentity({ sub: account.sub, email: account.email }, () => account);
    await store.close();
    const afterConsent = { ...issuer.counters };
    const env = { GRANTPOOL_GEMINI_BASE_URL: ctx.upstreamUrl, GRANTPOOL_DATABASE_URL: url, GRANTPOOL_OAUTH_ISSUER: issuer.url, GRANTPOOL_CLIENT_SECRET_FILE: secretPath };
    const gws: GatewayRun[] = [];
    for (const name of ['a', 'b', 'c']) {
      const dir = join(ctx.root, `scale-herd-${name}`);
      await mkdir(dir, { recursive: true });
      const g = await ctx.startGateway(`herd-${name}`, dir, env, join(ctx.root, `gateway-scale-herd-${name}.log`));
      running.push(g.child);
      gws.push(g);
    }
    const targets = gws.map((g, i): Target => ({ name: `herd ${i}`, url: g.url, path: GEN_PATH, body: GEMINI_BODY, headers: { 'x-goog-api-key': ctx.apiKey } }));
    const early = issuer.counters.refreshRequests - afterConsent.refreshRequests;
    if (early !== 0) throw new Error(`a gateway refreshed the token before the burst (${early} refreshes); the herd was not measured`);
    const before = { ...issuer.counters };
    const r = await burst(targets, n, '/healthz');
    const tokenCalls = issuer.counters.tokenRequests - before.tokenRequests;
    const refreshes = issuer.counters.refreshRequests - before.refreshRequests;
    // The same burst with the token fresh: what queueing 1,000 requests costs without a refresh.
    const warm = await burst(targets, n, '/healthz');
    (ctx.raw.scale as Record<string, unknown>).herd = { tokenCalls, refreshes, ok: r.ok, failed: r.failed, statuses: r.statuses, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), warm: { p50: percentile(warm.latencies, 50), p99: percentile(warm.latencies, 99) } };
    ctx.row({ section: '7', metric: `refresh herd over three gateways: token-endpoint calls for ${n} concurrent requests (${r.ok} answered 200)`, value: tokenCalls, unit: 'calls', target: '= 1, all 200', pass: tokenCalls === 1 && refreshes === 1 && r.ok === n });
    ctx.row({ section: '7', metric: 'refresh herd over three gateways: latency p50 / p99 (refresh included)', value: `${round(percentile(r.latencies, 50))} / ${round(percentile(r.latencies, 99))}`, unit: 'ms' });
    ctx.row({ section: '7', metric: 'of which waiting for the one refresh (herd burst minus the same burst with the token fresh), p50', value: percentile(r.latencies, 50) - percentile(warm.latencies, 50), unit: `ms (fresh burst p50 / p99: ${round(percentile(warm.latencies, 50))} / ${round(percentile(warm.latencies, 99))} ms)` });
    for (const g of gws) await g.child.stop();
    running.splice(running.length - gws.length, gws.length);
  } finally {
    await issuer.close();
  }
}

/** 7f with --scale-accounts=N: one gateway on a database of N accounts, from spawn to healthy, and its RSS after load. */
async function big(ctx: ScaleContext, pg: TestPostgres, n: number, running: Child[]): Promise<void> {
  ctx.log(`  7f. one gateway on PostgreSQL with ${n} accounts`);
  const filesDir = join(ctx.root, 'scale-big-files');
  const tw = performance.now();
  await writeAccounts(filesDir, n, ctx.perLane);
  ctx.log(`  wrote ${n} account files in ${Math.round(performance.now() - tw)} ms`);
  const url = await pg.createDatabase('big');
  const copyMs = await storeCopy(ctx, filesDir, url);
  ctx.row({ section: '7', metric: `grantpool store copy of ${n} accounts (files -> PostgreSQL)`, value: copyMs / 1000, unit: `s (${round((copyMs * 1000) / n, 0)} µs an account)` });
  const dir = join(ctx.root, 'scale-big');
  await mkdir(dir, { recursive: true });
  const g = await ctx.startGateway('big', dir, { GRANTPOOL_GEMINI_BASE_URL: ctx.upstreamUrl, GRANTPOOL_DATABASE_URL: url }, join(ctx.root, 'gateway-scale-big.log'));
  running.push(g.child);
  await fullPool(g, n);
  const loaded = await g.child.ask<{ mem: { rss: number; heapUsed: number } }>('stats');
  ctx.row({ section: '7', metric: `one gateway on PostgreSQL, ${n} accounts: RSS once every account is read, before any request`, value: loaded.mem.rss / MB, unit: `MB (V8 heap ${round(loaded.mem.heapUsed / MB, 1)} MB used)` });
  const t: Target = { name: 'big', url: g.url, path: GEN_PATH, body: GEMINI_BODY, headers: { 'x-goog-api-key': ctx.apiKey } };
  await sane(t);
  // The load of the files gateway's memory row in the main phases: a throughput run's worth.
  const r = await cannon(t, { connections: 64, amount: ctx.quick ? 10_000 : 30_000 });
  if (r.failed) throw new Error(`big: ${r.failed} request(s) failed (${JSON.stringify(r.statuses)})`);
  const s = await g.child.ask<{ mem: { rss: number; heapUsed: number } }>('stats');
  ctx.row({ section: '7', metric: `one gateway on PostgreSQL, ${n} accounts: RSS right after ${r.ok + r.failed} requests`, value: s.mem.rss / MB, unit: `MB (V8 heap ${round(s.mem.heapUsed / MB, 1)} MB used)` });
  // What stays once the gateway has fallen idle and given back what the burst left (src/app/memory-settle.ts).
  const settled = await g.child.ask<{ mem: { rss: number; heapUsed: number }; settled: boolean; waitedMs: number }>('settled', { timeoutMs: 30_000 }, 40_000);
  if (!settled.settled) ctx.log(`  the gateway gave no memory back within 30 s of the burst (is --expose-gc among the Node flags?)`);
  (ctx.raw.scale as Record<string, unknown>).big = { accounts: n, spawnToHealthyMs: g.spawnToHealthyMs, loaded, stats: s, settled, rps: r.rps };
  startAndMemoryRows(ctx, n, g.spawnToHealthyMs, settled.mem, settled.settled ? `, settled ${round(settled.waitedMs / 1000, 1)} s after the burst` : ', not settled');
  const resident = residentBreakdown(g.child.proc.pid!);
  if (resident) {
    (ctx.raw.scale as Record<string, unknown>).bigResident = resident;
    ctx.row({ section: '7', metric: 'of which: node binary pages / malloc heap / anonymous (V8 heap, buffers, stacks)', value: residentSplit(resident), unit: 'MB' });
  }
  if (ctx.heapSnapshot) {
    await g.child.ask('heap-snapshot', { path: ctx.heapSnapshot });
    ctx.log(`heap snapshot: ${ctx.heapSnapshot} (summary: node bench/heap-summary.ts ${ctx.heapSnapshot})`);
  }
  await g.child.stop();
  running.pop();
}
