// The PostgreSQL store against a real server: what several gateways on one
// database rely on (changes seen by the others, one refresh at a time across
// them, a killed holder locks nobody, migrations safe when started together).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { createPgStore, type PgStore } from '../../src/store/pg-store.ts';
import { MIGRATIONS } from '../../src/store/pg-migrations.ts';
import type { AccountChange } from '../../src/store/store.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { captureLogger, makeAccount } from '../support/store-fixtures.ts';

const found = findPostgres();
const skip = typeof found === 'string' ? found : false;

describe('PostgreSQL account store', { skip }, () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
  });
  after(() => pg?.destroy());

  const open = async (url: string, extra: { catchUpIntervalMs?: number } = {}): Promise<PgStore> =>
    createPgStore({ url, logger: captureLogger().logger, catchUpIntervalMs: 0, ...extra });

  function nextChange(store: PgStore, pred: (c: AccountChange) => boolean, ms = 1000): Promise<AccountChange> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => (stop(), reject(new Error(`no matching change within ${ms} ms`))), ms);
      const stop = store.watch((c) => {
        if (!pred(c)) return;
        clearTimeout(t);
        stop();
        resolve(c);
      });
    });
  }

  test('two gateways starting together migrate once', async () => {
    const url = await pg.createDatabase('migrate');
    const [a, b] = await Promise.all([open(url), open(url)]);
    try {
      assert.deepEqual(await a.migrate(), [], 'nothing left to apply');
      const sql = postgres(url, { onnotice: () => {} });
      const rows = await sql`SELECT version FROM grantpool_migrations`;
      await sql.end();
      assert.deepEqual(rows.map((r) => r.version).sort(), MIGRATIONS.map((m) => m.version), 'each migration applied once');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a change made through one store reaches another within 1 s, removals too', async () => {
    const url = await pg.createDatabase('notify');
    const a = await open(url);
    const b = await open(url);
    try {
      await b.list();
      const added = nextChange(b, (c) => c.id === 'acc1' && c.account !== null);
      await a.upsertByIdentity({ sub: 'sub-1', email: 'one@example.com' }, () => makeAccount('acc1', { sub: 'sub-1', email: 'one@example.com' }));
      assert.equal((await added).account!.email, 'one@example.com');

      const patched = nextChange(b, (c) => c.id === 'acc1' && c.account?.proxy_disabled === true);
      await a.update('acc1', (x) => ({ ...x, proxy_disabled: true, proxy_disabled_reason: 'manual' }));
      assert.equal((await patched).account!.proxy_disabled_reason, 'manual');

      const removed = nextChange(b, (c) => c.id === 'acc1' && c.account === null);
      assert.equal(await a.remove('acc1'), true);
      await removed;
      assert.equal(await b.get('acc1'), null);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('concurrent updates from two stores lose nothing', async () => {
    const url = await pg.createDatabase('lost');
    const a = await open(url);
    const b = await open(url);
    try {
      await a.upsertByIdentity({ sub: 's', email: 'c@example.com' }, () => makeAccount('acc', { sub: 's', email: 'c@example.com', last_used: 0 }));
      const bump = (s: PgStore) => s.update('acc', (x) => ({ ...x, last_used: (x.last_used ?? 0) + 1 }));
      await Promise.all(Array.from({ length: 40 }, (_, i) => bump(i % 2 ? a : b)));
      assert.equal((await a.get('acc'))!.last_used, 40);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('two adds of one identity from two stores make one account', async () => {
    const url = await pg.createDatabase('upsert');
    const a = await open(url);
    const b = await open(url);
    try {
      const id = { sub: 'same', email: 'same@example.com' };
      const results = await Promise.all([
        a.upsertByIdentity(id, (e) => e ?? makeAccount('from-a', { sub: 'same', email: 'same@example.com' })),
        b.upsertByIdentity(id, (e) => e ?? makeAccount('from-b', { sub: 'same', email: 'same@example.com' })),
      ]);
      assert.deepEqual(results.map((r) => r.created).sort(), [false, true]);
      assert.equal((await a.list()).length, 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('the refresh lock admits one holder across stores, and a dead holder frees it', async () => {
    const url = await pg.createDatabase('lock');
    const a = await open(url);
    const b = await open(url);
    try {
      let inside = 0;
      let most = 0;
      const hold = (s: PgStore) =>
        s.withRefreshLock('acc', async () => {
          most = Math.max(most, ++inside);
          await new Promise((r) => setTimeout(r, 30));
          inside--;
        });
      await Promise.all([hold(a), hold(b), hold(a), hold(b)]);
      assert.equal(most, 1);

      // A holder whose connection dies (a killed gateway) leaves no lock behind.
      const sql = postgres(url, { onnotice: () => {}, max: 1 });
      await sql`SELECT pg_advisory_lock(${0x67707266}, hashtext('acc'))`;
      const waiting = b.withRefreshLock('acc', async () => 'got it');
      await new Promise((r) => setTimeout(r, 100));
      await sql.end({ timeout: 0 });
      assert.equal(await waiting, 'got it');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a store that missed notifications catches up', async () => {
    const url = await pg.createDatabase('catchup');
    const a = await open(url);
    const b = await open(url);
    try {
      await a.upsertByIdentity({ sub: 'x', email: 'x@example.com' }, () => makeAccount('x', { sub: 'x', email: 'x@example.com' }));
      await b.list();
      // Written behind the stores' backs, without NOTIFY (as a restore or a lost connection would look).
      const sql = postgres(url, { onnotice: () => {} });
      await sql`UPDATE grantpool_accounts SET data = jsonb_set(data, '{disabled}', 'true'), version = nextval('grantpool_change_seq') WHERE id = 'x'`;
      await sql.end();
      const seen: AccountChange[] = [];
      b.watch((c) => seen.push(c));
      await b.catchUp();
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.account!.disabled, true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
