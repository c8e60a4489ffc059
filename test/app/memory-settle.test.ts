// Giving memory back after a burst: one compacting GC once the gateway has
// fallen idle, never while a request is open or the event loop is busy, and
// not again until the heap has grown back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SETTLE_POLICY, shouldSettle, watchMemory, type SettleFacts, type SettlePolicy } from '../../src/app/memory-settle.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { NODE_FLAGS } from '../../bin/node-flags.js';
import { HEALTH_PATH } from '../../src/proxy/routes.ts';
import { EVENTS_PATH } from '../../src/api/routes.ts';

const MB = 1024 * 1024;
const T0 = Date.UTC(2026, 11, 3);

function facts(over: Partial<SettleFacts> = {}): SettleFacts {
  return { nowMs: T0 + 60_000, open: 0, lastActivityMs: T0, lastSettleMs: null, heapBytes: 120 * MB, heapAfterSettle: 0, ...over };
}

test('settles once the event loop has been idle long enough, with no request open', () => {
  assert.equal(shouldSettle(facts()), true);
  assert.equal(shouldSettle(facts({ open: 1 })), false, 'a request (a stream) is open');
  assert.equal(shouldSettle(facts({ lastActivityMs: T0 + 60_000 - SETTLE_POLICY.idleMs + 1 })), false, 'busy a moment ago');
  assert.equal(shouldSettle(facts({ lastActivityMs: T0 + 60_000 - SETTLE_POLICY.idleMs })), true);
});

test('settles again only after the minimum interval and once the heap has grown back', () => {
  const after = { lastSettleMs: T0, heapAfterSettle: 100 * MB };
  assert.equal(shouldSettle(facts({ ...after, nowMs: T0 + SETTLE_POLICY.minIntervalMs - 1, heapBytes: 200 * MB, lastActivityMs: T0 - 60_000 })), false, 'too soon');
  const later = { ...after, nowMs: T0 + SETTLE_POLICY.minIntervalMs, lastActivityMs: T0 };
  assert.equal(shouldSettle(facts({ ...later, heapBytes: 109 * MB })), false, 'grown by less than 10 %');
  assert.equal(shouldSettle(facts({ ...later, heapBytes: 110 * MB })), true);
  // a small heap needs the absolute minimum
  assert.equal(shouldSettle(facts({ ...later, heapAfterSettle: 20 * MB, heapBytes: 27 * MB })), false);
  assert.equal(shouldSettle(facts({ ...later, heapAfterSettle: 20 * MB, heapBytes: 28 * MB })), true);
});

async function harness(opts: { gc: boolean; policy?: SettlePolicy; busy?: () => boolean }) {
  const clock = new FakeClock(T0);
  let heap = 150 * MB;
  let busy = 0;
  let gcs = 0;
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    if (req.url === '/hold' || req.url === EVENTS_PATH) held.push(res);
    else res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const settle = watchMemory(server, {
    gc: opts.gc ? () => {
      gcs++;
      heap = 100 * MB;
    } : null,
    clock,
    logger: silentLogger(),
    quietPaths: new Set([HEALTH_PATH, EVENTS_PATH]),
    heapBytes: () => heap,
    utilization: () => busy,
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.busy ? { busy: opts.busy } : {}),
  });
  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      request({ port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject).end();
    });
  /** A request that reaches the server and stays open until held[i].end(). */
  const hold = async (path = '/hold') => {
    const n = held.length;
    const answered = get(path);
    while (held.length === n) await new Promise((r) => setTimeout(r, 5));
    answered.catch(() => {}); // one still open when the test ends is cut
    return { answered };
  };
  return {
    clock, settle, get, hold, held,
    gcs: () => gcs,
    grow: (bytes: number) => (heap += bytes),
    busy: (u: number) => (busy = u),
    close: async () => {
      settle.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

test('no compacting GC while a request is open; one once it has ended and the gateway is idle', async (t) => {
  const h = await harness({ gc: true });
  t.after(() => h.close());
  const { answered } = await h.hold();
  h.clock.advance(SETTLE_POLICY.idleMs * 3);
  h.settle.check();
  assert.equal(h.gcs(), 0, 'a stream is open');
  h.held[0]!.end('done');
  assert.equal(await answered, 200);
  h.settle.check();
  assert.equal(h.gcs(), 0, 'idle counts from the end of the request');
  // the server sees the response close a moment after the client has it
  for (let i = 0; i < 100 && h.gcs() === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    h.clock.advance(SETTLE_POLICY.idleMs);
    h.settle.check();
  }
  assert.equal(h.gcs(), 1);
  assert.equal(h.settle.settles, 1);
  h.clock.advance(SETTLE_POLICY.minIntervalMs * 2);
  h.settle.check();
  assert.equal(h.gcs(), 1, 'the heap has not grown since');
  assert.equal(await h.get('/'), 200);
  h.grow(30 * MB);
  h.clock.advance(SETTLE_POLICY.idleMs);
  h.settle.check();
  assert.equal(h.gcs(), 2, 'grown back: given back again');
});

test('a busy event loop (a reload, a refresh, a catch-up) puts it off until idle for long enough', async (t) => {
  const h = await harness({ gc: true });
  t.after(() => h.close());
  h.clock.advance(SETTLE_POLICY.idleMs * 2);
  h.busy(0.2);
  h.settle.check();
  assert.equal(h.gcs(), 0);
  h.busy(0.01);
  h.clock.advance(SETTLE_POLICY.idleMs - 1);
  h.settle.check();
  assert.equal(h.gcs(), 0, 'not idle long enough yet');
  h.clock.advance(1);
  h.settle.check();
  assert.equal(h.gcs(), 1);
});

test('a request, however light, puts it off for the idle time; health checks and the dashboard\'s event stream do not', async (t) => {
  const h = await harness({ gc: true });
  t.after(() => h.close());
  h.clock.advance(SETTLE_POLICY.idleMs * 2);
  assert.equal(await h.get('/v1/models'), 200);
  h.settle.check();
  assert.equal(h.gcs(), 0, 'a request came a moment ago');
  h.clock.advance(SETTLE_POLICY.idleMs - 1);
  h.settle.check();
  assert.equal(h.gcs(), 0);
  // a dashboard tab open all along, and a load balancer polling
  await h.hold(EVENTS_PATH);
  h.clock.advance(1);
  assert.equal(await h.get(HEALTH_PATH), 200);
  assert.equal(await h.get(`${HEALTH_PATH}?probe=1`), 200);
  h.settle.check();
  assert.equal(h.gcs(), 1);
});

test('nothing while the pool is still reading its accounts', async (t) => {
  let loading = true;
  const h = await harness({ gc: true, busy: () => loading });
  t.after(() => h.close());
  h.clock.advance(SETTLE_POLICY.idleMs * 3);
  h.settle.check();
  assert.equal(h.gcs(), 0);
  loading = false;
  h.settle.check();
  assert.equal(h.gcs(), 0, 'idle counts from the end of the load');
  h.clock.advance(SETTLE_POLICY.idleMs);
  h.settle.check();
  assert.equal(h.gcs(), 1);
});

test('its timer checks on its own, and close() stops it', async (t) => {
  const h = await harness({ gc: true, policy: { ...SETTLE_POLICY, idleMs: 0, minIntervalMs: 0, checkMs: 10 } });
  t.after(() => h.close());
  const waitFor = async (n: number) => {
    for (let i = 0; i < 200 && h.gcs() < n; i++) await new Promise((r) => setTimeout(r, 5));
  };
  await waitFor(1);
  assert.equal(h.gcs(), 1);
  h.grow(30 * MB);
  await waitFor(2);
  assert.equal(h.gcs(), 2, 'again once the heap grew');
  h.settle.close();
  h.grow(30 * MB);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(h.gcs(), 2, 'closed');
});

test('without --expose-gc nothing runs', async (t) => {
  const h = await harness({ gc: false });
  t.after(() => h.close());
  assert.equal(await h.get('/'), 200);
  h.clock.advance(SETTLE_POLICY.idleMs * 10);
  h.settle.check();
  assert.equal(h.settle.settles, 0);
});

test('the gateway is started with --expose-gc, and its GC gives back pages a full GC keeps', () => {
  assert.ok(NODE_FLAGS.includes('--expose-gc'));
  const module = fileURLToPath(new URL('../../src/app/memory-settle.ts', import.meta.url));
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', `
    const { exposedGc } = await import(${JSON.stringify(module)});
    const { getHeapStatistics } = await import('node:v8');
    let junk = [];
    for (let i = 0; i < 400000; i++) junk.push({ i, s: 'x' + i });
    globalThis.gc(); // in the old generation now
    const keep = junk.filter((_, i) => i % 50 === 0); // a few live objects on every page
    junk = null;
    globalThis.gc(); // a full GC: the pages stay
    const before = getHeapStatistics().total_heap_size;
    exposedGc()();
    console.log(JSON.stringify({ before, after: getHeapStatistics().total_heap_size, kept: keep.length }));
  `], { encoding: 'utf8' });
  const { before, after, kept } = JSON.parse(out) as { before: number; after: number; kept: number };
  assert.equal(kept, 8000);
  assert.ok(after < before - 10 * MB, `committed heap after a full GC ${before} -> ${after} after the settle's`);
  const without = execFileSync(process.execPath, ['--input-type=module', '-e', `
    const { exposedGc } = await import(${JSON.stringify(module)});
    console.log(exposedGc() === null);
  `], { encoding: 'utf8' });
  assert.equal(without.trim(), 'true');
});
