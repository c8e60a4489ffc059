// A gateway on PostgreSQL with many accounts serves before every row is read:
// the store reads pages in the background, the pool serves with what it has,
// and in the end holds every account with the changes other gateways made
// while it read (NOTIFY, then a catch-up by version). Against a real server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { createPgStore } from '../../src/store/pg-store.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { captureLog, defaultPoolConfig, fakeAccount, T0 } from '../support/fake-accounts.ts';
import { FakeRefresher } from '../support/fake-refresher.ts';
import { createPool } from '../../src/pool/pool.ts';
import { NoAccountError } from '../../src/pool/types.ts';
import { FakeClock } from '../../src/util/clock.ts';

const found = findPostgres();
const skip = typeof found === 'string' ? found : false;
const N = 1000;
const idOf = (i: number) => `acc-${String(i).padStart(4, '0')}`;

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('PostgreSQL: background load', { skip }, () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
  });
  after(() => pg?.destroy());

  test('the pool serves with the rows read so far and ends with every account, changes made meanwhile by another gateway included', async (t) => {
    const url = await pg.createDatabase('bgload');
    const log = captureLog();
    const writer = await createPgStore({ url, logger: log.logger, catchUpIntervalMs: 0 });
    t.after(() => writer.close());
    const sql = postgres(url, { onnotice: () => {} });
    t.after(() => sql.end());
    for (let i = 0; i < N; i += 250) {
      const rows = Array.from({ length: 250 }, (_, j) => {
        const a = fakeAccount(idOf(i + j));
        return { id: a.id, sub: a.sub, email_lower: a.email, data: sql.json(a as never), version: 0 };
      });
      await sql`INSERT INTO grantpool_accounts ${sql(rows)}`;
    }
    // Versions from the store's sequence, as its own writes take them.
    await sql`UPDATE grantpool_accounts SET version = nextval('grantpool_change_seq')`;

    // Pages of 5 rows: 200 round trips, during which the other gateway changes things.
    const store = await createPgStore({ url, logger: log.logger, catchUpIntervalMs: 0, backgroundLoad: { pageSize: 5 } });
    t.after(() => store.close());
    const clock = new FakeClock(T0);
    const pool = createPool({ store, refresher: new FakeRefresher(clock), clock, logger: log.logger, config: defaultPoolConfig, backgroundIntervalMs: 0 });
    await pool.start();
    t.after(() => pool.stop());

    const progress = store.loading();
    assert.ok(progress && progress.total === N && progress.loaded < N, `still loading: ${JSON.stringify(progress)}`);
    assert.ok(pool.size >= 5 && pool.size < N);
    const lease = await pool.acquire({ model: 'm' });
    assert.ok(store.loadedSoFar().some((a) => a.id === lease.accountId));
    const last = idOf(N - 1);
    await assert.rejects(pool.acquire({ model: 'm', pinned: last }), (e: NoAccountError) => e.code === 'loading' && e.status === 503 && e.retryAfterSeconds === 1);

    // Another gateway changes accounts read already, not yet read, removes one and adds one.
    assert.ok(store.loading(), 'the changes start while the store is still loading');
    await Promise.all([
      writer.update(idOf(0), (cur) => ({ ...cur, name: 'changed (read early)' })),
      writer.update(last, (cur) => ({ ...cur, name: 'changed (read last)' })),
      writer.update(idOf(N - 2), (cur) => ({ ...cur, proxy_disabled: true, proxy_disabled_reason: 'manual' })),
      writer.remove(idOf(N - 3)),
      writer.upsertByIdentity({ sub: 'sub-new', email: 'new@example.com' }, () => fakeAccount('zz-new', { sub: 'sub-new', email: 'new@example.com' })),
    ]);

    await store.whenLoaded();
    assert.equal(store.loading(), null);
    const name = (id: string) => pool.accounts().find((a) => a.id === id)?.name;
    await until('every change reached the pool', () => name(idOf(0)) === 'changed (read early)' && name(last) === 'changed (read last)' && name('zz-new') !== undefined && name(idOf(N - 3)) === undefined);
    assert.equal(pool.size, N);
    assert.deepEqual(pool.stateOf(idOf(N - 2)), { state: 'proxy_disabled', reason: 'manual' });
    assert.deepEqual(new Set((await store.list()).map((a) => a.id)), new Set(pool.accounts().map((a) => a.id)));
    assert.ok(log.lines().filter((l) => /added to the pool/.test(String(l.msg))).length <= 2, 'the rows read by the load are not announced one by one');
  });
});
