import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeAccount, poolHarness, settle, T0 } from '../support/fake-accounts.ts';
import { refreshErrors } from '../support/fake-refresher.ts';
import { NoAccountError } from '../../src/pool/types.ts';
import { RefreshError } from '../../src/oauth/refresh-error.ts';
import { createPool } from '../../src/pool/pool.ts';
import { FakeRefresher } from '../support/fake-refresher.ts';
import { captureLog, defaultPoolConfig } from '../support/fake-accounts.ts';

const expired = (id: string, extra = {}) => fakeAccount(id, { expiresIn: -10, ...extra });
const NOW_S = Math.floor(T0 / 1000);

test('invalid_grant: account written disabled with the exact fields, out of the pool at once, the request moves on', async () => {
  const h = await poolHarness([expired('a'), fakeAccount('b')], { config: { strategy: 'fill_first' } });
  h.refresher.script('a', { ok: false, error: refreshErrors.invalidGrant('Token has been expired or revoked.') });

  const lease = await h.pool.acquire({ model: 'gemini-2.5-flash' });
  assert.equal(lease.accountId, 'b', 'the waiting request continued with the next account');

  const file = (await h.store.get('a'))!;
  assert.equal(file.disabled, true);
  assert.equal(file.disabled_at, NOW_S);
  assert.equal(file.disabled_reason, 'invalid_grant: Token has been expired or revoked.');
  assert.equal(file.proxy_disabled, false, 'disabled and proxy_disabled are different states');
  assert.equal(file.token.refresh_token, '1//refresh-a', 'credentials are left as they were');

  const lines = h.log.lines();
  const failed = lines.find((l) => l.msg === 'Token refresh failed (a@example.com): invalid_grant: Token has been expired or revoked., trying next account');
  const disabling = lines.find((l) => l.msg === 'Disabling account due to invalid_grant (a@example.com): refresh_token likely revoked/expired');
  assert.ok(failed, 'first log line');
  assert.ok(disabling, 'second log line');
  assert.ok(lines.indexOf(failed!) < lines.indexOf(disabling!));
  for (const l of [failed!, disabling!]) {
    assert.equal(l.account_id, 'a');
    assert.equal(l.email, 'a@example.com');
    assert.equal(l.error, 'invalid_grant');
  }
  const text = JSON.stringify(lines);
  assert.ok(!text.includes('1//refresh-a') && !text.includes('ya29.initial-a'), 'no token in the log');

  assert.deepEqual(h.pool.stateOf('a'), { state: 'disabled', reason: 'invalid_grant: Token has been expired or revoked.' });
  for (let i = 0; i < 10; i++) assert.equal((await h.pool.acquire({ model: 'gemini-2.5-flash' })).accountId, 'b');
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.callsFor('a'), 1, 'never refreshed again');
});

test('invalid_grant: stays disabled across a restart; re-adding with new credentials brings it back without a restart', async () => {
  const h = await poolHarness([expired('a'), fakeAccount('b')]);
  h.refresher.script('a', { ok: false, error: refreshErrors.invalidRapt() });
  await h.pool.acquire({ model: 'm', pinned: 'b' });
  await assert.rejects(h.pool.acquire({ model: 'm', pinned: 'a' }), (e: NoAccountError) => e.code === 'pinned_unusable' && /invalid_rapt/.test(e.message));
  assert.equal((await h.store.get('a'))!.disabled_reason, 'invalid_grant: reauth related error (invalid_rapt)');
  await h.pool.stop();

  // restart: a new pool over the same store
  const log = captureLog();
  const refresher = new FakeRefresher(h.clock);
  const restarted = createPool({ store: h.store, refresher, clock: h.clock, logger: log.logger, config: defaultPoolConfig, backgroundIntervalMs: 0 });
  await restarted.start();
  assert.equal(restarted.stateOf('a')!.state, 'disabled');
  for (let i = 0; i < 5; i++) assert.equal((await restarted.acquire({ model: 'm' })).accountId, 'b');
  restarted.tick();
  await settle();
  assert.equal(refresher.callsFor('a'), 0);

  // re-added (what the OAuth code does: new refresh token, disabled_* cleared)
  await h.store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, (existing) => ({
    ...existing!,
    token: { ...existing!.token, access_token: 'ya29.readded', refresh_token: '1//new-refresh-a', expiry_timestamp: NOW_S + 3600 },
    disabled: false,
    disabled_at: null,
    disabled_reason: null,
  }));
  assert.deepEqual(restarted.stateOf('a'), { state: 'active' });
  const served = new Set<string>();
  for (let i = 0; i < 4; i++) served.add((await restarted.acquire({ model: 'm' })).accountId);
  assert.ok(served.has('a'), 'served at once');
  assert.equal((await restarted.acquire({ model: 'm', pinned: 'a' })).accessToken, 'ya29.readded');
  await restarted.stop();
});

test('invalid_grant: the reason is at most 800 characters and never holds a token', async () => {
  const h = await poolHarness([expired('a')]);
  const long = `Bad grant for 1//refresh-a and ya29.something-secret ${'x'.repeat(2000)}`;
  h.refresher.script('a', { ok: false, error: new RefreshError('invalid_grant', 'invalid_grant', long, 400) });
  await assert.rejects(h.pool.acquire({ model: 'm' }));
  const reason = (await h.store.get('a'))!.disabled_reason!;
  assert.ok(reason.startsWith('invalid_grant: Bad grant for [redacted] and [redacted] xxx'));
  assert.ok(reason.length <= 800, `${reason.length}`);
  assert.ok(!h.log.lines().some((l) => JSON.stringify(l).includes('1//refresh-a')));
});

test('a refresh that fails with invalid_grant after the account was re-added does not disable the new credentials', async () => {
  const h = await poolHarness([expired('a')]);
  h.refresher.hold();
  h.refresher.script('a', { ok: false, error: refreshErrors.invalidGrant() });
  const pending = h.pool.acquire({ model: 'm' });
  await settle();
  await h.store.update('a', (cur) => ({ ...cur, token: { ...cur.token, refresh_token: '1//new', access_token: 'ya29.new', expiry_timestamp: NOW_S + 3600 } }));
  h.refresher.release();
  await pending.catch(() => {});
  const file = (await h.store.get('a'))!;
  assert.equal(file.disabled, false);
  assert.equal((await h.pool.acquire({ model: 'm' })).accessToken, 'ya29.new');
});

test('all accounts disabled: 503 that says how many and why', async () => {
  const h = await poolHarness([
    fakeAccount('a', { disabled: true, disabled_reason: 'invalid_grant: Token has been expired or revoked.' }),
    fakeAccount('b', { disabled: true, disabled_reason: 'invalid_grant: Token has been expired or revoked.' }),
    fakeAccount('c', { proxy_disabled: true, proxy_disabled_reason: 'manual' }),
  ]);
  await assert.rejects(h.pool.acquire({ model: 'm' }), (e: NoAccountError) => {
    assert.equal(e.code, 'all_disabled');
    assert.equal(e.status, 503);
    assert.match(e.message, /All 3 account\(s\) are unusable: 2 disabled \(2× invalid_grant: Token has been expired or revoked\.\), 1 taken out of the proxy \(1× manual\)/);
    return true;
  });
});

test('no accounts at all: 503 no_accounts', async () => {
  const h = await poolHarness([]);
  await assert.rejects(h.pool.acquire({ model: 'm' }), (e: NoAccountError) => e.code === 'no_accounts' && e.status === 503 && /No Google account/.test(e.message));
});

test('invalid_client: nothing is disabled, the client is reported with a fix, retried slowly, and recovers', async () => {
  const h = await poolHarness([
    expired('a'),
    expired('b'),
    fakeAccount('valid', { expiresIn: 3000 }),
    expired('other', { clientId: 'client-b.apps.googleusercontent.com' }),
  ]);
  h.refresher.script('a', { ok: false, error: refreshErrors.invalidClient() });
  h.refresher.defaultStep = { ok: false, error: refreshErrors.invalidClient() };
  h.refresher.script('other', { ok: true });

  const served = new Set<string>();
  for (let i = 0; i < 6; i++) served.add((await h.pool.acquire({ model: 'm' })).accountId);
  assert.deepEqual([...served].sort(), ['other', 'valid'], 'accounts with a usable token and other clients keep serving');
  assert.equal(h.refresher.calls.filter((c) => c.id === 'a' || c.id === 'b').length, 1, 'one failure marks the client; its other accounts wait');

  for (const id of ['a', 'b']) assert.equal((await h.store.get(id))!.disabled, false);
  const summary = h.pool.summary();
  assert.equal(summary.failing_clients.length, 1);
  assert.equal(summary.failing_clients[0]!.client_id, 'client-a.apps.googleusercontent.com');
  assert.equal(summary.failing_clients[0]!.error, 'invalid_client');
  assert.match(summary.failing_clients[0]!.fix, /client_secret\.json/);
  assert.equal(summary.failing_clients[0]!.since, NOW_S);
  const logged = h.log.lines().find((l) => l.oauth_client_id === 'client-a.apps.googleusercontent.com' && l.level === 50);
  assert.ok(logged);
  assert.match(logged!.msg, /no account is disabled/);
  assert.equal(h.pool.stateOf('a')!.state, 'cooling_down');
  assert.match((h.pool.stateOf('a') as { reason: string }).reason, /misconfigured/);

  // only accounts of the failing client left: the reason names the client problem
  await assert.rejects(h.pool.acquire({ model: 'm', exclude: new Set(['valid', 'other']) }), (e: NoAccountError) => {
    assert.equal(e.code, 'client_misconfigured');
    assert.equal(e.status, 503);
    assert.match(e.message, /OAuth client is misconfigured/);
    assert.match(e.message, /invalid_client/);
    return true;
  });

  // retried slowly: nothing before 5 minutes, then one probe
  h.clock.advance(60_000);
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.calls.filter((c) => c.id === 'a' || c.id === 'b').length, 1);
  h.clock.advance(240_000);
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.calls.filter((c) => c.id === 'a' || c.id === 'b').length, 2, 'one probe per interval');

  // the client is fixed: the next probe succeeds and every account of it comes back
  h.refresher.defaultStep = { ok: true };
  h.clock.advance(300_000);
  h.pool.tick();
  await settle();
  h.pool.tick();
  await settle();
  assert.equal(h.pool.summary().failing_clients.length, 0);
  assert.deepEqual(h.pool.stateOf('a'), { state: 'active' });
  assert.deepEqual(h.pool.stateOf('b'), { state: 'active' });
  assert.ok(h.log.messages().includes('OAuth client client-a.apps.googleusercontent.com works again'));
});

test('unauthorized_client is a client problem too, with its own fix text', async () => {
  const h = await poolHarness([expired('a')]);
  h.refresher.script('a', { ok: false, error: refreshErrors.unauthorizedClient() });
  await assert.rejects(h.pool.acquire({ model: 'm' }), (e: NoAccountError) => e.code === 'client_misconfigured');
  assert.equal((await h.store.get('a'))!.disabled, false);
  assert.match(h.pool.failingClients()[0]!.fix, /different OAuth client/);
  h.pool.resetClientFailures();
  assert.equal(h.pool.failingClients().length, 0);
});

test('429: that account cools down for that model until the time Google gave, then serves again', async () => {
  // each on its own project (lane): a 429 on one does not touch the other's quota
  const h = await poolHarness([fakeAccount('a', { project_id: 'project-a' }), fakeAccount('b', { project_id: 'project-b' })]);
  const la = await h.pool.acquire({ model: 'flash', pinned: 'a' });
  const lb = await h.pool.acquire({ model: 'flash', pinned: 'b' });
  h.pool.report(la, 'flash', { kind: 'rate_limited', untilMs: T0 + 3_600_000, reason: 'RESOURCE_EXHAUSTED: daily quota' });
  // a later, shorter hint does not shorten it
  h.pool.report(la, 'flash', { kind: 'rate_limited', untilMs: T0 + 1000, reason: 'short' });
  h.pool.report(lb, 'flash', { kind: 'rate_limited', untilMs: T0 + 30_000, reason: 'RESOURCE_EXHAUSTED: retry in 30s' });
  assert.deepEqual(h.pool.stateOf('a'), { state: 'cooling_down', until: NOW_S + 3600, reason: 'RESOURCE_EXHAUSTED: daily quota', model: 'flash' });

  await assert.rejects(h.pool.acquire({ model: 'flash' }), (e: NoAccountError) => {
    assert.equal(e.code, 'all_cooling_down');
    assert.equal(e.status, 429);
    assert.equal(e.retryAfterSeconds, 30, 'the earliest account back');
    return true;
  });
  assert.ok((await h.pool.acquire({ model: 'pro' })).accountId, 'other models are not affected');
  h.clock.advance(30_000);
  assert.equal((await h.pool.acquire({ model: 'flash' })).accountId, 'b');
  assert.equal((await h.pool.acquire({ model: 'flash' })).accountId, 'b');
  h.clock.advance(3_600_000);
  const both = new Set([(await h.pool.acquire({ model: 'flash' })).accountId, (await h.pool.acquire({ model: 'flash' })).accountId]);
  assert.deepEqual([...both].sort(), ['a', 'b']);
});

test('403: proxy_disabled written with the reason; the account is out of the proxy at once', async () => {
  const h = await poolHarness([fakeAccount('a'), fakeAccount('b')]);
  const la = await h.pool.acquire({ model: 'm', pinned: 'a' });
  const reason = 'SERVICE_DISABLED: Generative Language API has not been used in project 123; enable it at https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=123';
  h.pool.report(la, 'm', { kind: 'forbidden', reason });
  for (let i = 0; i < 4; i++) assert.equal((await h.pool.acquire({ model: 'm' })).accountId, 'b');
  await settle();
  const file = (await h.store.get('a'))!;
  assert.equal(file.proxy_disabled, true);
  assert.equal(file.proxy_disabled_at, NOW_S);
  assert.equal(file.proxy_disabled_reason, reason);
  assert.equal(file.disabled, false);
  assert.deepEqual(h.pool.stateOf('a'), { state: 'proxy_disabled', reason });
  // put back by a person (PATCH / CLI): served again
  await h.store.update('a', (cur) => ({ ...cur, proxy_disabled: false, proxy_disabled_at: null, proxy_disabled_reason: null }));
  const ids = new Set([(await h.pool.acquire({ model: 'm' })).accountId, (await h.pool.acquire({ model: 'm' })).accountId]);
  assert.deepEqual([...ids].sort(), ['a', 'b']);
});

test('5xx: a short cooldown (server_error_cooldown_seconds) for that account and model', async () => {
  const h = await poolHarness([fakeAccount('a')], { config: { server_error_cooldown_seconds: 10 } });
  const l = await h.pool.acquire({ model: 'm' });
  h.pool.report(l, 'm', { kind: 'server_error', reason: 'HTTP 503' });
  await assert.rejects(h.pool.acquire({ model: 'm' }), (e: NoAccountError) => e.code === 'all_cooling_down' && e.retryAfterSeconds === 10);
  h.clock.advance(10_000);
  assert.equal((await h.pool.acquire({ model: 'm' })).accountId, 'a');
  // a 400 caused by the request changes nothing
  h.pool.report(l, 'm', { kind: 'client_error' });
  assert.deepEqual(h.pool.stateOf('a'), { state: 'active' });
});

test('ok: usage is counted; last_used is written at most once a minute', async () => {
  const h = await poolHarness([fakeAccount('a')]);
  let writes = 0;
  h.store.watch(() => writes++);
  const l = await h.pool.acquire({ model: 'flash' });
  for (let i = 0; i < 50; i++) h.pool.report(l, 'flash', { kind: 'ok', tokensIn: 10, tokensOut: 5 });
  await settle();
  assert.equal(writes, 1);
  assert.equal((await h.store.get('a'))!.last_used, NOW_S);
  h.clock.advance(30_000);
  h.pool.report(l, 'flash', { kind: 'ok' });
  await settle();
  assert.equal(writes, 1);
  h.clock.advance(30_000);
  h.pool.report(l, 'flash', { kind: 'ok' });
  await settle();
  assert.equal(writes, 2);
  assert.equal((await h.store.get('a'))!.last_used, NOW_S + 60);
  assert.deepEqual(h.pool.usageToday('a'), { requests: 52, tokens: 750 });
  assert.deepEqual(await h.pool.usage({ days: 7 }), [
    { date: '2026-01-15', account_id: 'a', email: 'a@example.com', model: 'flash', requests: 52, tokens_in: 500, tokens_out: 250 },
  ]);
});

test('state order: disabled before quota protection before proxy_disabled', async () => {
  const h = await poolHarness(
    [
      fakeAccount('both', { disabled: true, disabled_reason: 'invalid_grant: x', proxy_disabled: true, proxy_disabled_reason: 'manual' }),
      fakeAccount('quota', { proxy_disabled: true, proxy_disabled_reason: 'manual' }),
    ],
    { config: { quota_protection: { enabled: true, threshold_percent: 10, limits: { flash: { requests_per_day: 10 } } } } },
  );
  h.usage.add('2026-01-15', 'quota', 'flash', { requests: 10 });
  assert.deepEqual(h.pool.stateOf('both'), { state: 'disabled', reason: 'invalid_grant: x' });
  assert.equal(h.pool.stateOf('quota')!.state, 'quota_protected');
  assert.deepEqual(h.pool.summary().by_state, { active: 0, refreshing: 0, cooling_down: 0, quota_protected: 1, proxy_disabled: 0, disabled: 1 });
});

test('unauthorized_client for one account: it retries slowly on its own even after other accounts of the client work again', async () => {
  const h = await poolHarness([expired('wrong'), expired('fine')]);
  h.refresher.script('wrong', { ok: false, error: refreshErrors.unauthorizedClient() }, { ok: false, error: refreshErrors.unauthorizedClient() });
  await h.pool.acquire({ model: 'm', pinned: 'wrong' }).catch(() => {});
  assert.equal(h.refresher.callsFor('wrong'), 1);
  // after the client's retry interval, another account of the client refreshes fine
  h.clock.advance(300_000);
  assert.match((await h.pool.acquire({ model: 'm', pinned: 'fine' })).accessToken, /fresh-fine/);
  assert.equal(h.pool.failingClients().length, 0);
  h.clock.advance(1000);
  h.pool.tick();
  await settle();
  // "wrong" was probed again at most once per interval
  const before = h.refresher.callsFor('wrong');
  for (let i = 0; i < 5; i++) await h.pool.acquire({ model: 'm' });
  h.pool.tick();
  await settle();
  assert.equal(h.refresher.callsFor('wrong'), before, 'not retried on every request');
  assert.ok(before <= 2);
  assert.equal((await h.store.get('wrong'))!.disabled, false);
  assert.match((h.pool.stateOf('wrong') as { reason: string }).reason, /misconfigured \(unauthorized_client\)/);
});

test('state listeners hear about refreshes, cooldowns, disables and file changes; accountState covers unseen accounts', async () => {
  const h = await poolHarness([expired('a'), fakeAccount('b', { project_id: 'project-b' })]);
  const heard: string[] = [];
  const stop = h.pool.onStateChange((id) => heard.push(id));
  h.refresher.script('a', { ok: false, error: refreshErrors.invalidGrant() });
  await h.pool.acquire({ model: 'm' });
  assert.ok(heard.includes('a'));
  heard.length = 0;
  const lb = await h.pool.acquire({ model: 'm', pinned: 'b' });
  h.pool.report(lb, 'm', { kind: 'rate_limited', untilMs: T0 + 1000, reason: 'x' });
  assert.deepEqual(heard, ['b']);
  await h.store.update('b', (c) => ({ ...c, name: 'n' }));
  assert.deepEqual(heard, ['b', 'b']);
  stop();
  await h.store.update('b', (c) => ({ ...c, name: 'm' }));
  assert.equal(heard.length, 2);
  assert.deepEqual(h.pool.accountState(fakeAccount('unseen', { proxy_disabled: true, proxy_disabled_reason: 'manual' })), { state: 'proxy_disabled', reason: 'manual' });
  assert.equal(h.pool.accountState((await h.store.get('a'))!).state, 'disabled');
});
