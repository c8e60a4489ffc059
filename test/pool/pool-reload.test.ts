import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeAccount, poolHarness, settle, T0, captureLog, defaultPoolConfig } from '../support/fake-accounts.ts';
import { FakeRefresher, refreshErrors } from '../support/fake-refresher.ts';
import { LaggyStore } from '../support/fake-store.ts';
import { NoAccountError } from '../../src/pool/types.ts';
import { createPool } from '../../src/pool/pool.ts';
import { createFileStore } from '../../src/store/file-store.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { eventually } from '../support/eventually.ts';

const NOW_S = Math.floor(T0 / 1000);

test('live reload: a new account is served at once, a removed one never again', async () => {
  const h = await poolHarness([fakeAccount('a')]);
  await h.store.put(fakeAccount('b'));
  const ids = new Set([(await h.pool.acquire({ model: 'm' })).accountId, (await h.pool.acquire({ model: 'm' })).accountId]);
  assert.deepEqual([...ids].sort(), ['a', 'b']);
  await h.store.remove('a');
  for (let i = 0; i < 4; i++) assert.equal((await h.pool.acquire({ model: 'm' })).accountId, 'b');
  await assert.rejects(h.pool.acquire({ model: 'm', pinned: 'a' }), (e: NoAccountError) => e.code === 'pinned_unknown');
  assert.equal(h.pool.stateOf('a'), null);
  await h.store.remove('b');
  await assert.rejects(h.pool.acquire({ model: 'm' }), (e: NoAccountError) => e.code === 'no_accounts');
});

test('live reload: a new token replaces the old; flags set by a person apply at once', async () => {
  const h = await poolHarness([fakeAccount('a')]);
  await h.store.update('a', (cur) => ({ ...cur, token: { ...cur.token, access_token: 'ya29.edited' } }));
  assert.equal((await h.pool.acquire({ model: 'm' })).accessToken, 'ya29.edited');
  await h.store.update('a', (cur) => ({ ...cur, proxy_disabled: true, proxy_disabled_reason: 'manual', proxy_disabled_at: NOW_S }));
  assert.deepEqual(h.pool.stateOf('a'), { state: 'proxy_disabled', reason: 'manual' });
  await assert.rejects(h.pool.acquire({ model: 'm' }), (e: NoAccountError) => e.code === 'all_disabled');
  await h.store.update('a', (cur) => ({ ...cur, proxy_disabled: false, proxy_disabled_reason: null, proxy_disabled_at: null }));
  assert.equal((await h.pool.acquire({ model: 'm' })).accountId, 'a');
  await h.store.update('a', (cur) => ({ ...cur, disabled: true, disabled_reason: 'by hand' }));
  assert.deepEqual(h.pool.stateOf('a'), { state: 'disabled', reason: 'by hand' });
});

test('live reload: cooldowns survive changes to the file; an in-flight refresh is not dropped', async () => {
  const h = await poolHarness([fakeAccount('a'), fakeAccount('b', { expiresIn: -5 })]);
  const la = await h.pool.acquire({ model: 'm', pinned: 'a' });
  h.pool.report(la, 'm', { kind: 'rate_limited', untilMs: T0 + 60_000, reason: 'RESOURCE_EXHAUSTED' });
  await h.store.update('a', (cur) => ({ ...cur, name: 'renamed' }));
  await h.store.put(fakeAccount('c'));
  assert.equal(h.pool.stateOf('a')!.state, 'cooling_down');

  h.refresher.hold();
  const waiting = Array.from({ length: 10 }, () => h.pool.acquire({ model: 'x', pinned: 'b' }));
  await settle();
  await h.store.update('b', (cur) => ({ ...cur, name: 'edited during refresh' }));
  assert.deepEqual(h.pool.stateOf('b'), { state: 'refreshing' });
  h.refresher.release();
  const leases = await Promise.all(waiting);
  assert.equal(h.refresher.callsFor('b'), 1);
  assert.ok(leases.every((l) => /^ya29\.fresh-b/.test(l.accessToken)));
  const file = (await h.store.get('b'))!;
  assert.equal(file.name, 'edited during refresh', 'the refresh did not overwrite the edit');
  assert.match(file.token.access_token, /^ya29\.fresh-b/);
});

test('live reload: a notification that arrives late does not undo an invalid_grant disable', async () => {
  const store = new LaggyStore([fakeAccount('a', { expiresIn: -5 }), fakeAccount('b')]);
  const h = await poolHarness([], { store });
  h.refresher.script('a', { ok: false, error: refreshErrors.invalidGrant() });
  // an edit whose notification is still in flight when the refresh fails
  store.holdNotifications();
  await store.update('a', (cur) => ({ ...cur, name: 'edited' }));
  const lease = await h.pool.acquire({ model: 'm', pinned: 'b' });
  assert.equal(lease.accountId, 'b');
  await assert.rejects(h.pool.acquire({ model: 'm', pinned: 'a' }));
  store.deliver(1); // the stale "edited, not disabled" notification
  assert.equal(h.pool.stateOf('a')!.state, 'disabled');
  for (let i = 0; i < 4; i++) assert.equal((await h.pool.acquire({ model: 'm' })).accountId, 'b');
  store.deliver();
  assert.equal(h.pool.stateOf('a')!.state, 'disabled');
});

test('start: 10,000 accounts load, are counted by state, and serve', async () => {
  const accounts = Array.from({ length: 10_000 }, (_, i) =>
    fakeAccount(`acct${i}`, i % 10 === 0 ? { disabled: true, disabled_reason: 'invalid_grant: revoked' } : {}),
  );
  const h = await poolHarness(accounts);
  const s = h.pool.summary();
  assert.equal(s.total, 10_000);
  assert.equal(s.by_state.disabled, 1000);
  assert.equal(s.by_state.active, 9000);
  const seen = new Set<string>();
  for (let i = 0; i < 9000; i++) seen.add((await h.pool.acquire({ model: 'm' })).accountId);
  assert.equal(seen.size, 9000, 'round robin reaches every usable account once per round');
  assert.ok([...seen].every((id) => Number(id.slice(4)) % 10 !== 0));
});

test('the pool works over the file store: a file edited by hand reaches the live pool', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-pool-'));
  const log = captureLog();
  const store = await createFileStore({ dataDir, logger: log.logger, pollIntervalMs: 200 });
  try {
    const clock = new FakeClock(T0);
    const refresher = new FakeRefresher(clock);
    refresher.script('dead', { ok: false, error: refreshErrors.invalidGrant() });
    await store.upsertByIdentity({ sub: 'sub-live', email: 'live@example.com' }, () => fakeAccount('live'));
    await store.upsertByIdentity({ sub: 'sub-dead', email: 'dead@example.com' }, () => fakeAccount('dead', { expiresIn: -5 }));
    const pool = createPool({ store, refresher, clock, logger: log.logger, config: { ...defaultPoolConfig, strategy: 'fill_first' }, backgroundIntervalMs: 0 });
    await pool.start();

    await assert.rejects(pool.acquire({ model: 'm', pinned: 'dead' }));
    const onDisk = JSON.parse(await readFile(join(dataDir, 'accounts', 'dead.json'), 'utf8'));
    assert.equal(onDisk.disabled, true);
    assert.equal(onDisk.disabled_at, NOW_S);
    assert.equal(onDisk.disabled_reason, 'invalid_grant: Token has been expired or revoked.');

    // a person adds an account file with an editor
    const added = fakeAccount('byhand');
    await writeFile(join(dataDir, 'accounts', 'byhand.json'), JSON.stringify(added, null, 2), { mode: 0o600 });
    await eventually('the pool to see the hand-made account', () => pool.stateOf('byhand')?.state === 'active');
    assert.equal((await pool.acquire({ model: 'm', pinned: 'byhand' })).accessToken, 'ya29.initial-byhand');

    // and deletes one
    await unlink(join(dataDir, 'accounts', 'live.json'));
    await eventually('the pool to drop the removed account', () => pool.stateOf('live') === null);
    assert.equal((await pool.acquire({ model: 'm' })).accountId, 'byhand');
    await pool.stop();
  } finally {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

