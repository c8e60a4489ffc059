// While the store still reads its accounts (a large pool just started), the
// management API answers at once with the accounts read so far and says how
// far the load is; once it is done the field is gone (docs/design.md,
// "Starting with many accounts").
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Router } from '../../src/http/router.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { registerApiRoutes } from '../../src/api/routes.ts';
import type { ApiDeps } from '../../src/api/deps.ts';
import type { LoadProgress } from '../../src/store/store.ts';
import { fakeAccount } from '../support/fake-accounts.ts';

async function serve(t: TestContext, store: object, extra: Partial<ApiDeps> = {}) {
  const deps = {
    authenticate: () => ({ ok: true }),
    store,
    config: () => ({ public_base_url: 'http://localhost:8045', redirect_uri: 'http://localhost:8045/oauth2callback', effective_auth_mode: 'strict', auth_mode_reason: '', client_secret_path: '', oauth_issuer: '', scopes: [] }),
    version: 'test',
    listenUrl: () => 'http://127.0.0.1:1',
    oauthStatus: () => ({ configured: true }),
    accountState: () => ({ state: 'active' }),
    usageToday: () => ({ requests: 0, tokens: 0 }),
    requestsSince: () => 0,
    ...extra,
  } as unknown as ApiDeps;
  const router = new Router();
  registerApiRoutes(router, deps, silentLogger());
  const server = createHttpServer(router, silentLogger());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return async (path: string) => (await fetch(url + path)).json() as Promise<Record<string, any>>;
}

test('GET /api/accounts and /api/status answer during the load with what was read and a loading field, and without it after', async (t) => {
  const read = [fakeAccount('a'), fakeAccount('b')];
  let progress: LoadProgress | null = { loaded: 2, total: 5 };
  let listed = 0;
  const store = {
    loading: () => progress,
    loadedSoFar: () => [...read],
    // list() waits for the end of the load: the API must not wait for it while loading.
    list: async () => {
      listed++;
      return [...read, fakeAccount('c')];
    },
    encryption: () => null,
  };
  const get = await serve(t, store);

  const accounts = await get('/api/accounts');
  assert.deepEqual(accounts.accounts.map((a: { id: string }) => a.id), ['a', 'b']);
  assert.deepEqual(accounts.loading, { loaded: 2, total: 5 });
  const status = await get('/api/status');
  assert.deepEqual(status.loading, { loaded: 2, total: 5 });
  assert.equal(status.pool.total, 2);
  assert.equal(listed, 0);

  progress = null;
  const after = await get('/api/accounts');
  assert.deepEqual(after.accounts.map((a: { id: string }) => a.id), ['a', 'b', 'c']);
  assert.equal('loading' in after, false);
  assert.equal('loading' in (await get('/api/status')), false);
});

test('GET /api/accounts and /api/status list the accounts the pool holds, oldest first, without listing the store (on files: a stat of every file a call)', async (t) => {
  let listed = 0;
  const store = {
    loading: () => null,
    list: async () => {
      listed++;
      return [];
    },
    encryption: () => null,
  };
  const pool = [fakeAccount('new', { created_at: 1_700_000_300 }), fakeAccount('old', { created_at: 1_700_000_100 })];
  const get = await serve(t, store, { accounts: () => [...pool] });
  assert.deepEqual((await get('/api/accounts')).accounts.map((a: { id: string }) => a.id), ['old', 'new']);
  assert.equal((await get('/api/status')).pool.total, 2);
  assert.equal(listed, 0);
});
