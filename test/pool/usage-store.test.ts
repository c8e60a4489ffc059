// The UsageStore contract on every backend, and what sharing through
// PostgreSQL adds: no lost increment when gateways count at once, a commit
// that lands late is not missed, a batch sent twice counts once, no round
// trip per request, and a database that goes away costs no count.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { MemoryUsageStore } from '../../src/pool/usage.ts';
import { FileUsageStore } from '../../src/pool/usage-file.ts';
import { SharedUsageStore } from '../../src/pool/shared-usage.ts';
import { MemoryUsageCounters } from '../../src/store/usage-counters.ts';
import { createPgStore, type PgStore } from '../../src/store/pg-store.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { captureLogger } from '../support/store-fixtures.ts';
import { fakeAccount, poolHarness } from '../support/fake-accounts.ts';
import { usageStoreContract } from './usage-contract.ts';
import { eventually } from '../support/eventually.ts';

usageStoreContract('in memory', { durable: false, shared: false }, async () => ({
  open: async () => new MemoryUsageStore(),
  close: async () => {},
}));

usageStoreContract('data directory', { durable: true, shared: false }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-'));
  return {
    open: async () => {
      const u = new FileUsageStore(dir, { debounceMs: 60_000 });
      await u.load();
      return u;
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
});

usageStoreContract('shared (in-process counters)', { durable: true, shared: true }, async () => {
  const counters = new MemoryUsageCounters();
  const open: SharedUsageStore[] = [];
  return {
    open: async () => {
      const u = new SharedUsageStore(counters, { intervalMs: 200 });
      open.push(u);
      await u.load();
      return u;
    },
    close: async () => void (await Promise.all(open.map((u) => u.close()))),
  };
});

test('data directory: a start after a crash between a day file and usage.json counts each record once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grantpool-usage-'));
  try {
    const u = new FileUsageStore(dir, { debounceMs: 60_000 });
    await u.load();
    u.add('2026-01-01', 'a', 'm', { requests: 3 });
    u.add('2026-01-03', 'a', 'm', { requests: 1 });
    await u.flush();
    const before = await readFile(join(dir, 'usage.json'), 'utf8');
    const log = (JSON.parse(before) as { log: number }).log;
    u.retire('2026-01-02');
    await u.flush();
    await u.close();
    assert.ok(!(await readFile(join(dir, 'usage.json'), 'utf8')).includes('2026-01-01'), 'usage.json no longer holds the retired day');
    // What a crash after the day file but before the new usage.json leaves: the old usage.json, and its log with one more record.
    await writeFile(join(dir, 'usage.json'), before);
    await writeFile(join(dir, `usage.${log}.log`), `${JSON.stringify(['2026-01-01', 'a', 'm', 2, 0, 0])}\n${JSON.stringify(['2026-01-03', 'a', 'm', 1, 0, 0])}\n`);
    const again = new FileUsageStore(dir, { debounceMs: 60_000 });
    await again.load();
    again.retire('2026-01-02');
    // The day file was written after that log (it holds its records); the 2026-01-03 record is not in any file yet.
    assert.deepEqual((await again.history('0000')).map((r) => `${r.date} ${r.requests}`), ['2026-01-01 3', '2026-01-03 2']);
    await again.flush();
    assert.deepEqual(again.records('0000').map((r) => `${r.date} ${r.requests}`), ['2026-01-03 2']);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('shared usage: a database that fails keeps every count in memory and sends it once when it is back', async () => {
  const counters = new MemoryUsageCounters();
  let down = false;
  let lostReply = false;
  const flaky = {
    add: async (id: string, rows: Parameters<MemoryUsageCounters['add']>[1]) => {
      if (down) throw new Error('connect ECONNREFUSED');
      const out = await counters.add(id, rows);
      if (lostReply) throw new Error('connection reset after commit');
      return out;
    },
    changes: async (c: string | null, d: string) => {
      if (down) throw new Error('connect ECONNREFUSED');
      return counters.changes(c, d);
    },
    totals: (f: string, b: string, a?: string) => counters.totals(f, b, a),
    prune: (d: string) => counters.prune(d),
  };
  const errors: string[] = [];
  let recovered = 0;
  const u = new SharedUsageStore(flaky, { intervalMs: 50, maxRetryMs: 100, onError: (e) => errors.push(e.message), onRecovered: () => recovered++ });
  const other = new SharedUsageStore(counters, { intervalMs: 50 });
  await u.load();
  await other.load();
  try {
    down = true;
    for (let i = 0; i < 100; i++) u.add('2026-03-01', 'a', 'm', { requests: 1 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(u.get('2026-03-01', 'a', 'm').requests, 100, 'counted here all along');
    assert.equal(other.get('2026-03-01', 'a', 'm').requests, 0);
    assert.deepEqual(errors, ['connect ECONNREFUSED'], 'said once, not per try');
    // The batch is committed but its reply lost: sent again, it must count once.
    down = false;
    lostReply = true;
    await new Promise((r) => setTimeout(r, 200));
    lostReply = false;
    for (let i = 0; i < 5; i++) u.add('2026-03-01', 'a', 'm', { requests: 1 });
    await u.flush();
    await other.flush();
    assert.equal(other.get('2026-03-01', 'a', 'm').requests, 105, 'every count arrived, none twice');
    assert.equal(u.get('2026-03-01', 'a', 'm').requests, 105);
    assert.equal(recovered, 1);
    assert.equal(u.unsentRequests(), 0);
  } finally {
    await u.close();
    await other.close();
  }
});

test('shared usage: quota protection sees the counts of the other gateways (lane sums are built again)', async () => {
  const counters = new MemoryUsageCounters();
  const config = { quota_protection: { enabled: true, threshold_percent: 10, limits: { flash: { requests_per_day: 10 } } } };
  // Synced only when the test says so (flush).
  const usageA = new SharedUsageStore(counters, { intervalMs: 3_600_000 });
  const usageB = new SharedUsageStore(counters, { intervalMs: 3_600_000 });
  await usageA.load();
  await usageB.load();
  // Two accounts on one project: one lane, whose sum the guard keeps.
  const accounts = [fakeAccount('a', { project_id: 'shared-proj' }), fakeAccount('b', { project_id: 'shared-proj' })];
  const a = await poolHarness(accounts, { usage: usageA, config });
  const b = await poolHarness(accounts, { usage: usageB, config });
  try {
    const l0 = await b.pool.acquire({ model: 'flash' });
    b.pool.report(l0, 'flash', { kind: 'ok', tokensIn: 1 });
    for (let i = 0; i < 9; i++) {
      const l = await a.pool.acquire({ model: 'flash' });
      a.pool.report(l, 'flash', { kind: 'ok', tokensIn: 1 });
    }
    assert.equal(b.pool.stateOf('a')!.state, 'active', 'B alone used 1 of 10');
    await usageA.flush();
    await usageB.flush();
    // 10 of 10 used across the gateways: the lane (both accounts) is protected on B too.
    assert.equal(b.pool.stateOf('a')!.state, 'quota_protected', 'B counts what A used');
    assert.equal(b.pool.stateOf('b')!.state, 'quota_protected');
  } finally {
    await a.pool.stop();
    await b.pool.stop();
    await usageA.close();
    await usageB.close();
  }
});

const found = findPostgres();
describe('usage shared through PostgreSQL', { skip: typeof found === 'string' ? found : false }, () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
  });
  after(() => pg?.destroy());

  async function gateways(name: string) {
    const url = await pg.createDatabase(name);
    const stores: PgStore[] = [];
    const usages: SharedUsageStore[] = [];
    return {
      url,
      open: async (opts: { intervalMs?: number; maxRetryMs?: number } = {}) => {
        const store = await createPgStore({ url, logger: captureLogger().logger, catchUpIntervalMs: 0 });
        stores.push(store);
        const u = new SharedUsageStore(store.usageCounters(), { intervalMs: 200, ...opts });
        usages.push(u);
        await u.load();
        return u;
      },
      stores,
      close: async () => {
        await Promise.all(usages.map((u) => u.close(1000)));
        await Promise.all(stores.map((s) => s.close()));
      },
    };
  }

  usageStoreContract('PostgreSQL', { durable: true, shared: true }, () => gateways('usage_contract'));

  test('three gateways counting at once lose no increment; no round trip per request', async () => {
    const g = await gateways('usage_herd');
    try {
      const us = [await g.open(), await g.open(), await g.open()];
      const trips = us.map((u) => u.roundTrips);
      const t0 = Date.now();
      for (let i = 0; i < 3000; i++) {
        us[i % 3]!.add('2026-04-01', `acct-${i % 5}`, i % 2 ? 'flash' : 'pro', { requests: 1, tokens_out: 2 });
        if (i % 100 === 0) await new Promise((r) => setTimeout(r, 10));
      }
      await Promise.all(us.map((u) => u.flush()));
      await Promise.all(us.map((u) => u.flush()));
      const elapsedTicks = Math.ceil((Date.now() - t0) / 200) + 3;
      for (const u of us) {
        const total = u.records('2026-04-01').reduce((s, r) => s + r.requests, 0);
        assert.equal(total, 3000, 'every gateway sees all 3000');
      }
      const sql = postgres(g.url, { onnotice: () => {} });
      const [row] = await sql<{ n: number; t: number }[]>`SELECT sum(requests)::float8 AS n, sum(tokens_out)::float8 AS t FROM grantpool_usage`;
      await sql.end();
      assert.deepEqual(row, { n: 3000, t: 6000 });
      us.forEach((u, i) => assert.ok(u.roundTrips - trips[i]! <= 2 * elapsedTicks + 4, `${u.roundTrips - trips[i]!} round trips for 1000 requests over ${elapsedTicks} ticks`));
    } finally {
      await g.close();
    }
  });

  test('a batch sent twice (its reply lost) counts once; a commit that lands late is still read', async () => {
    const g = await gateways('usage_cursor');
    try {
      const reader = await g.open();
      const counters = g.stores[0]!.usageCounters();
      const inc = [{ date: '2026-05-01', account_id: 'a', model: 'm', requests: 2, tokens_in: 0, tokens_out: 0 }];
      await counters.add('batch-1', inc);
      const again = await counters.add('batch-1', inc);
      assert.deepEqual(again.map((r) => r.requests), [2], 'the second send reports the total, adds nothing');
      // A slow writer: its transaction starts before the reader's next reads and commits after them.
      const sql = postgres(g.url, { onnotice: () => {} });
      let commit!: () => void;
      const gate = new Promise<void>((r) => (commit = r));
      const slow = sql.begin(async (tx) => {
        await tx`INSERT INTO grantpool_usage (day, account_id, model, requests) VALUES ('2026-05-01', 'slow', 'm', 7)`;
        await gate;
      });
      await new Promise((r) => setTimeout(r, 100));
      await counters.add('batch-2', [{ ...inc[0]!, account_id: 'fast', requests: 1 }]);
      await reader.flush(); // reads past the fast commit while the slow one is open
      assert.equal(reader.get('2026-05-01', 'fast', 'm').requests, 1);
      assert.equal(reader.get('2026-05-01', 'slow', 'm').requests, 0);
      commit();
      await slow;
      await sql.end();
      await reader.flush();
      assert.equal(reader.get('2026-05-01', 'slow', 'm').requests, 7, 'the late commit was not skipped');
      assert.equal(reader.get('2026-05-01', 'a', 'm').requests, 2);
    } finally {
      await g.close();
    }
  });

  test('the database stopped: counting goes on in memory, and everything is sent when it is back', async () => {
    const g = await gateways('usage_outage');
    try {
      const a = await g.open({ intervalMs: 100, maxRetryMs: 300 });
      const b = await g.open({ intervalMs: 100, maxRetryMs: 300 });
      a.add('2026-06-01', 'x', 'm', { requests: 10 });
      await a.flush();
      await b.flush();
      assert.equal(b.get('2026-06-01', 'x', 'm').requests, 10);
      pg.stop();
      try {
        const t0 = Date.now();
        for (let i = 0; i < 50; i++) a.add('2026-06-01', 'x', 'm', { requests: 1 });
        assert.ok(Date.now() - t0 < 50, 'adding never waits for the database');
        assert.equal(a.get('2026-06-01', 'x', 'm').requests, 60);
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(a.unsentRequests(), 50);
      } finally {
        pg.start();
      }
      await eventually('the counts made during the outage to arrive', () => b.get('2026-06-01', 'x', 'm').requests === 60, 15_000);
      assert.equal(a.get('2026-06-01', 'x', 'm').requests, 60, 'and were counted once');
    } finally {
      await g.close();
    }
  });
});
