// The PostgreSQL store against a real server: what several gateways on one
// database rely on (changes seen by the others, one refresh at a time across
// them, a killed holder locks nobody, migrations safe when started together).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { createPgStore, type PgStore } from '../../src/store/pg-store.ts';
import { MIGRATIONS } from '../../src/store/pg-migrations.ts';
import type { AccountChange } from '../../src/store/store.ts';
import type { Account } from '../../src/store/account.ts';
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

  test('many upserts at once (store copy) are upserts by identity: new ones added, known ones updated under their id, two of one identity make one account, and the others hear of each', async () => {
    const url = await pg.createDatabase('many');
    const a = await open(url);
    const b = await open(url);
    try {
      await a.upsertByIdentity({ sub: 'sub-known', email: 'known@example.com' }, () => makeAccount('known', { sub: 'sub-known', email: 'known@example.com', name: 'Before' }));
      await b.list();
      const heard = new Map<string, AccountChange>();
      const stop = b.watch((c) => void heard.set(c.id, c));
      const item = (id: string, sub: string, email: string, name: string) => ({
        identity: { sub, email },
        build: (found: Account | null) => makeAccount(found ? found.id : id, { sub, email, name }),
      });
      const items = [
        item('elsewhere', 'sub-known', 'known@example.com', 'After'),
        ...Array.from({ length: 1500 }, (_, i) => item(`new${i}`, `sub-new-${i}`, `new${i}@example.com`, `New ${i}`)),
        item('twice', 'sub-twice', 'twice@example.com', 'First'),
        item('twice-again', 'sub-twice', 'twice@example.com', 'Second'),
      ];
      const results = await a.upsertManyByIdentity(items);
      assert.deepEqual(results.map((r) => r.created), [false, ...items.slice(1, -1).map(() => true), false]);
      assert.equal(results[0]!.account.id, 'known', 'the known identity keeps its id');
      assert.equal(results.at(-1)!.account.id, 'twice', 'the second of one identity updates the first');
      const all = await a.list();
      assert.equal(all.length, 1 + 1500 + 1);
      assert.equal(all.find((x) => x.id === 'known')!.name, 'After');
      assert.equal(all.find((x) => x.id === 'twice')!.name, 'Second');
      assert.equal(all.find((x) => x.id === 'new1499')!.email, 'new1499@example.com');
      const until = Date.now() + 3000;
      // The first of the two writes of one identity may be heard before the second: wait for the last word on each.
      const settled = () => heard.size === all.length && heard.get('twice')?.account?.name === 'Second' && heard.get('known')?.account?.name === 'After';
      while (!settled() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      stop();
      assert.equal(heard.size, all.length, 'another store heard of every account written');
      assert.equal(heard.get('known')!.account!.name, 'After');
      assert.equal(heard.get('twice')!.account!.name, 'Second');
      const sql = postgres(url, { onnotice: () => {} });
      const kinds = await sql`SELECT DISTINCT jsonb_typeof(data) AS kind, jsonb_typeof(data->'token') AS token FROM grantpool_accounts`;
      await sql.end();
      assert.deepEqual(kinds.map((k) => [k.kind, k.token]), [['object', 'object']], 'each row holds the account as a JSON object, as one by one');
      const again = await a.upsertManyByIdentity(items.slice(0, 10));
      assert.ok(again.every((r) => !r.created), 'a second copy changes nothing more');
      assert.equal((await a.list()).length, all.length);
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

  test('a refresh lock held too long by another gateway fails the wait after lockWaitMs; once let go, it is taken again', async () => {
    const url = await pg.createDatabase('lockwait');
    const b = await createPgStore({ url, logger: captureLogger().logger, catchUpIntervalMs: 0, lockWaitMs: 300 });
    const sql = postgres(url, { onnotice: () => {}, max: 1 });
    try {
      await sql`SELECT pg_advisory_lock(${0x67707266}, hashtext('acc'))`;
      let ran = false;
      const t0 = Date.now();
      await assert.rejects(
        b.withRefreshLock('acc', async () => (ran = true)),
        (e: Error & { code?: string }) => e.code === 'store_unavailable' && /refreshing account acc/.test(e.message),
      );
      const waited = Date.now() - t0;
      assert.ok(waited >= 250, 'waited for the lock first');
      assert.ok(waited < 10_000, `bounded by lockWaitMs, not by the session's 30 s lock_timeout (${waited} ms)`);
      assert.equal(ran, false);
      assert.equal(b.stats.refreshLockWaiters, 0);

      const waiting = b.withRefreshLock('acc', async () => 'got it');
      await sql`SELECT pg_advisory_unlock(${0x67707266}, hashtext('acc'))`;
      assert.equal(await waiting, 'got it');
    } finally {
      await sql.end({ timeout: 0 });
      await b.close();
    }
  });

  test('a busy pool is not a database that is down: a query that waits past the deadline gets a 503, and the health check, on a connection of its own, keeps the store healthy', async () => {
    const url = await pg.createDatabase('busy');
    const store = await createPgStore({ url, logger: captureLogger().logger, catchUpIntervalMs: 0, max: 1, answerTimeoutMs: 1000, probeIntervalMs: 100 });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    try {
      // The pool's one connection is reserved by a refresh that takes 4 s.
      const holding = store.withRefreshLock('slow', () => sleep(4000));
      await sleep(50);
      const t0 = Date.now();
      await assert.rejects(store.get('any'), (e: Error & { code?: string }) => e.code === 'store_unavailable' && /did not answer within 1 s/.test(e.message));
      assert.ok(Date.now() - t0 < 3000, 'bounded by the deadline');
      await sleep(1500);
      assert.equal(store.problem(), null, 'the database answers the health check: not degraded');
      await holding;
      assert.equal(await store.get('any'), null, 'served again once the connection is free');
    } finally {
      await store.close();
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

  test('the catch-up finds an account removed behind the store\'s back, alone and beside one added', async () => {
    const url = await pg.createDatabase('catchup_removed');
    const a = await open(url);
    const b = await open(url);
    try {
      for (const n of ['x', 'y', 'z']) await a.upsertByIdentity({ sub: n, email: `${n}@example.com` }, () => makeAccount(n, { sub: n, email: `${n}@example.com` }));
      await b.list();
      const sql = postgres(url, { onnotice: () => {} });
      // Removed without NOTIFY, as a remove() whose notification was lost.
      const removeQuietly = (id: string) => sql.begin(async (tx) => {
        await tx`DELETE FROM grantpool_accounts WHERE id = ${id}`;
        await tx`INSERT INTO grantpool_removed_accounts (id, version) VALUES (${id}, nextval('grantpool_change_seq'))`;
      });
      const seen: AccountChange[] = [];
      b.watch((c) => seen.push(c));
      await removeQuietly('y');
      await b.catchUp();
      assert.deepEqual(seen.map((c) => [c.id, c.account === null]), [['y', true]]);
      // One gone and one new: as many rows as the store holds, but not the same ones.
      seen.length = 0;
      await removeQuietly('z');
      const w = makeAccount('w', { sub: 'w', email: 'w@example.com' });
      await sql`INSERT INTO grantpool_accounts (id, sub, email_lower, data, version) VALUES ('w', 'w', 'w@example.com', ${sql.json(w as never)}, nextval('grantpool_change_seq'))`;
      await sql.end();
      await b.catchUp();
      assert.deepEqual(seen.map((c) => [c.id, c.account === null]).sort(), [['w', false], ['z', true]]);
      assert.deepEqual((await b.list()).map((x) => x.id).sort(), ['w', 'x']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
