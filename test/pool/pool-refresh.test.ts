import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeAccount, poolHarness, settle, T0 } from '../support/fake-accounts.ts';
import { refreshErrors } from '../support/fake-refresher.ts';
import { LaggyStore } from '../support/fake-store.ts';
import { NoAccountError } from '../../src/pool/types.ts';
import { backoffMs } from '../../src/pool/cooldowns.ts';
import { mergeToken } from '../../src/pool/refresh.ts';

const expired = (id: string) => fakeAccount(id, { expiresIn: -10 });

test('1000 concurrent acquires on an expired token cause exactly one refresh, written before it is handed out', async () => {
  const h = await poolHarness([expired('a')]);
  const events: string[] = [];
  h.store.watch((c) => {
    if (c.account?.token.access_token.startsWith('ya29.fresh')) events.push('written');
  });
  h.refresher.hold();
  const all = Array.from({ length: 1000 }, () =>
    h.pool.acquire({ model: 'gemini-2.5-flash' }).then((l) => {
      events.push('lease');
      return l;
    }),
  );
  await settle();
  assert.deepEqual(h.pool.refreshingIds(), ['a']);
  assert.deepEqual(h.pool.stateOf('a'), { state: 'refreshing' });
  h.refresher.release();
  const leases = await Promise.all(all);
  assert.equal(h.refresher.calls.length, 1);
  assert.equal(h.refresher.maxConcurrentPerAccount, 1);
  const tokens = new Set(leases.map((l) => l.accessToken));
  assert.equal(tokens.size, 1);
  const [token] = tokens;
  assert.match(token!, /^ya29\.fresh-a-/);
  assert.equal((await h.store.get('a'))!.token.access_token, token);
  assert.equal(events[0], 'written', 'the new token is in the store before anyone gets it');
  assert.equal(events.filter((e) => e === 'written').length, 1);
  assert.deepEqual(h.pool.stateOf('a'), { state: 'active' });
});

test('refresh keeps the stored refresh_token when the answer has none, stores a new one when given', async () => {
  const h = await poolHarness([expired('a'), expired('b')]);
  h.refresher.script('a', { ok: true, refreshToken: '' });
  h.refresher.script('b', { ok: true, refreshToken: '1//rotated-b' });
  await h.pool.acquire({ model: 'm', pinned: 'a' });
  await h.pool.acquire({ model: 'm', pinned: 'b' });
  assert.equal((await h.store.get('a'))!.token.refresh_token, '1//refresh-a');
  assert.equal((await h.store.get('b'))!.token.refresh_token, '1//rotated-b');
  assert.deepEqual(
    mergeToken(
      { access_token: 'old', refresh_token: 'keep', expiry_timestamp: 1, token_type: 'Bearer', scope: 's' },
      { access_token: 'new', refresh_token: 'keep', expiry_timestamp: 2, token_type: 'Bearer', scope: '' },
      'keep',
    ),
    { access_token: 'new', refresh_token: 'keep', expiry_timestamp: 2, token_type: 'Bearer', scope: 's' },
  );
});

test('inside the refresh lock the account is read again: a token another process wrote is adopted', async () => {
  const store = new LaggyStore([expired('a')]);
  const h = await poolHarness([], { store });
  // another gateway refreshes and writes; this one has not seen the change yet
  store.holdNotifications();
  await store.update('a', (cur) => ({
    ...cur,
    token: { ...cur.token, access_token: 'ya29.from-other-process', expiry_timestamp: Math.floor(T0 / 1000) + 3600 },
  }));
  const lease = await h.pool.acquire({ model: 'm' });
  assert.equal(lease.accessToken, 'ya29.from-other-process');
  assert.equal(h.refresher.calls.length, 0, 'no token endpoint call');
  store.deliver();
});

test('background refresh: tick() refreshes tokens with less than refresh_before_seconds left, not the others', async () => {
  const h = await poolHarness([
    fakeAccount('soon', { expiresIn: 200 }),
    fakeAccount('later', { expiresIn: 3000 }),
    fakeAccount('off', { expiresIn: 100, disabled: true, disabled_reason: 'invalid_grant: x' }),
  ]);
  h.pool.tick();
  await settle();
  assert.deepEqual(h.refresher.calls.map((c) => c.id), ['soon']);
  assert.match((await h.store.get('soon'))!.token.access_token, /fresh/);
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.calls.length, 1, 'fresh now, nothing more to do');
  h.clock.advance(2800 * 1000);
  h.pool.tick();
  await settle();
  assert.deepEqual(h.refresher.calls.map((c) => c.id), ['soon', 'later']);
});

test('refresh_before_seconds is configurable', async () => {
  const h = await poolHarness([fakeAccount('a', { expiresIn: 1000 })], { config: { refresh_before_seconds: 1200 } });
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.calls.length, 1);
});

test('a request that finds the token about to expire waits for the refresh; one with minutes left is served at once and refreshes in the background', async () => {
  const h = await poolHarness([fakeAccount('a', { expiresIn: 30 }), fakeAccount('b', { expiresIn: 200 })]);
  const a = await h.pool.acquire({ model: 'm', pinned: 'a' });
  assert.match(a.accessToken, /^ya29\.fresh-a/);
  h.refresher.hold();
  const b = await h.pool.acquire({ model: 'm', pinned: 'b' });
  assert.equal(b.accessToken, 'ya29.initial-b', 'still valid: not held up by the refresh');
  await settle();
  assert.deepEqual(h.pool.refreshingIds(), ['b']);
  h.refresher.release();
  await settle();
  assert.match((await h.pool.acquire({ model: 'm', pinned: 'b' })).accessToken, /^ya29\.fresh-b/);
});

test('transient refresh failures (500, then non-JSON): never disabled, backoff grows, the account comes back when the issuer recovers', async () => {
  const h = await poolHarness([expired('a')]);
  h.refresher.script('a', { ok: false, error: refreshErrors.http500() }, { ok: false, error: refreshErrors.nonJson() });

  const first = await Promise.allSettled(Array.from({ length: 1000 }, () => h.pool.acquire({ model: 'm' })));
  assert.equal(h.refresher.calls.length, 1);
  for (const r of first) {
    assert.equal(r.status, 'rejected');
    const e = (r as PromiseRejectedResult).reason as NoAccountError;
    assert.equal(e.code, 'all_cooling_down');
    assert.equal(e.status, 429);
    assert.equal(e.retryAfterSeconds, 5);
  }
  let s = h.pool.stateOf('a')!;
  assert.equal(s.state, 'cooling_down');
  assert.equal((s as { until: number }).until, Math.ceil((T0 + 5000) / 1000));
  assert.equal((await h.store.get('a'))!.disabled, false);

  // during the backoff nothing is tried
  h.clock.advance(4000);
  await assert.rejects(h.pool.acquire({ model: 'm' }), (e: NoAccountError) => e.code === 'all_cooling_down' && e.retryAfterSeconds === 1);
  assert.equal(h.refresher.calls.length, 1);

  // after it: second failure (HTML answer), longer backoff
  h.clock.advance(1000);
  await assert.rejects(h.pool.acquire({ model: 'm' }), (e: NoAccountError) => e.code === 'all_cooling_down' && e.retryAfterSeconds === 8);
  assert.equal(h.refresher.calls.length, 2);
  assert.equal((await h.store.get('a'))!.disabled, false);

  // issuer recovers: served again after the backoff
  h.clock.advance(7500);
  const lease = await h.pool.acquire({ model: 'm' });
  assert.match(lease.accessToken, /^ya29\.fresh-a/);
  assert.deepEqual(h.pool.stateOf('a'), { state: 'active' });
  const log = h.log.lines();
  assert.ok(!log.some((l) => /Disabling account/.test(l.msg)));
  assert.equal(log.filter((l) => l.msg === 'Token refresh failed (a@example.com): http_500: Internal Server Error, trying next account').length, 1);
});

test('a transient failure of a background refresh leaves a still-valid token in service', async () => {
  const h = await poolHarness([fakeAccount('a', { expiresIn: 200 })]);
  h.refresher.script('a', { ok: false, error: refreshErrors.network() });
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.calls.length, 1);
  assert.equal((await h.pool.acquire({ model: 'm' })).accessToken, 'ya29.initial-a');
  assert.deepEqual(h.pool.stateOf('a'), { state: 'active' });
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.calls.length, 1, 'not retried before the backoff ends');
  h.clock.advance(5000);
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.calls.length, 2);
});

test('backoff: exponential with jitter, bounded by min and max', () => {
  const mid = () => 0.5;
  assert.equal(backoffMs(1, 5, 600, mid), 5000);
  assert.equal(backoffMs(2, 5, 600, mid), 7500);
  assert.equal(backoffMs(3, 5, 600, mid), 15000);
  assert.equal(backoffMs(30, 5, 600, mid), 450_000);
  assert.equal(backoffMs(30, 5, 600, () => 1), 600_000);
  assert.equal(backoffMs(1, 5, 600, () => 0), 5000);
  for (let n = 1; n < 50; n++) {
    const v = backoffMs(n, 5, 600, Math.random);
    assert.ok(v >= 5000 && v <= 600_000, `attempt ${n}: ${v}`);
  }
});

test('after an upstream 401: one shared refresh for concurrent callers, then a fresh lease', async () => {
  const h = await poolHarness([fakeAccount('a')]);
  const lease = await h.pool.acquire({ model: 'm' });
  h.refresher.hold();
  const retries = Array.from({ length: 20 }, () => h.pool.refreshAfterUnauthorized(lease));
  await settle();
  h.refresher.release();
  const fresh = await Promise.all(retries);
  assert.equal(h.refresher.calls.length, 1);
  for (const f of fresh) {
    assert.ok(f);
    assert.notEqual(f!.accessToken, lease.accessToken);
    assert.equal(f!.accessToken, fresh[0]!.accessToken);
  }
  // a late 401 for the old token: the newer token is returned without another refresh
  const late = await h.pool.refreshAfterUnauthorized(lease);
  assert.equal(late!.accessToken, fresh[0]!.accessToken);
  assert.equal(h.refresher.calls.length, 1);
  // the rejected token is never handed out again
  assert.notEqual((await h.pool.acquire({ model: 'm' })).accessToken, lease.accessToken);
});

test('after an upstream 401 whose refresh says invalid_grant: null, and the account is disabled', async () => {
  const h = await poolHarness([fakeAccount('a'), fakeAccount('b')]);
  const lease = await h.pool.acquire({ model: 'm', pinned: 'a' });
  h.refresher.script('a', { ok: false, error: refreshErrors.invalidGrant() });
  assert.equal(await h.pool.refreshAfterUnauthorized(lease), null);
  assert.equal((await h.store.get('a'))!.disabled, true);
  for (let i = 0; i < 4; i++) assert.equal((await h.pool.acquire({ model: 'm' })).accountId, 'b');
});

test('a 401 reported through report() keeps the rejected token from being handed out', async () => {
  const h = await poolHarness([fakeAccount('a')]);
  const lease = await h.pool.acquire({ model: 'm' });
  h.pool.report(lease, 'm', { kind: 'unauthorized' });
  const next = await h.pool.acquire({ model: 'm' });
  assert.notEqual(next.accessToken, lease.accessToken);
  assert.equal(h.refresher.calls.length, 1);
});

test('background refresh works off every due account with bounded concurrency, most urgent first', async () => {
  const accounts = Array.from({ length: 50 }, (_, i) => fakeAccount(`a${i}`, { expiresIn: 250 - i }));
  const h = await poolHarness(accounts, { backgroundConcurrency: 3 });
  h.refresher.delay = () => new Promise((r) => setImmediate(r));
  h.pool.tick();
  for (let i = 0; i < 100 && h.refresher.calls.length < 50; i++) await settle();
  await settle();
  assert.equal(h.refresher.calls.length, 50, 'one tick is enough: finished refreshes make room for the next');
  assert.equal(h.refresher.maxConcurrentTotal, 3);
  assert.deepEqual(h.refresher.calls.slice(0, 3).map((c) => c.id), ['a49', 'a48', 'a47']);
  for (const a of accounts) assert.match((await h.store.get(a.id))!.token.access_token, /fresh/);
});

test('stop() waits for a refresh in flight so its token is written', async () => {
  const h = await poolHarness([fakeAccount('a', { expiresIn: 100 })]);
  h.refresher.hold();
  h.pool.tick();
  await settle();
  const stopping = h.pool.stop();
  h.refresher.release();
  await stopping;
  assert.match((await h.store.get('a'))!.token.access_token, /fresh/);
});

test('with the token endpoint down, one request waits on at most three failing refreshes, then takes a ready token', async () => {
  const accounts = [...Array.from({ length: 10 }, (_, i) => expired(`x${i}`)), fakeAccount('ready', { expiresIn: 3600 })];
  const h = await poolHarness(accounts, { config: { strategy: 'fill_first' } });
  h.refresher.defaultStep = { ok: false, error: refreshErrors.http500() };
  const lease = await h.pool.acquire({ model: 'gemini-2.5-flash' });
  assert.equal(lease.accountId, 'ready');
  assert.ok(h.refresher.calls.length <= 3, `${h.refresher.calls.length} refreshes waited on`);
});

test('access tokens that live under a minute are used: refreshed when due, handed out for most of their life', async () => {
  // an issuer that grants 30-second tokens (under the 60 s on-demand margin)
  const h = await poolHarness([fakeAccount('a', { expiresIn: 30 })]);
  h.refresher.defaultStep = { ok: true, lifetimeSeconds: 30 };
  const first = await h.pool.acquire({ model: 'flash' });
  assert.equal(first.accountId, 'a');
  assert.notEqual(first.accessToken, 'ya29.initial-a', 'refreshed once, since how long it lives was unknown');
  assert.equal(h.refresher.callsFor('a'), 1);
  // the new token is used, not refreshed again on every request
  for (let i = 0; i < 5; i++) {
    h.clock.advance(2000);
    assert.equal((await h.pool.acquire({ model: 'flash' })).accessToken, first.accessToken);
  }
  assert.equal(h.refresher.callsFor('a'), 1);
  assert.equal(h.pool.stateOf('a')!.state, 'active');
  // before it runs out, the background refresh renews it; requests never wait on it
  h.clock.advance(8000); // 20 s old: 10 s left
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.callsFor('a'), 2);
  const renewed = await h.pool.acquire({ model: 'flash' });
  assert.notEqual(renewed.accessToken, first.accessToken);
  assert.equal(h.refresher.callsFor('a'), 2);
});
