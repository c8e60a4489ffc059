import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import type { AccountChange } from '../../src/store/store.ts';
import { fakeAccount } from '../support/fake-accounts.ts';

test('memory store: list/get return read-only accounts; update is read-modify-write on a draft and tells watchers', async () => {
  const store = new MemoryAccountStore([fakeAccount('a'), fakeAccount('b')]);
  const seen: AccountChange[] = [];
  const stop = store.watch((c) => seen.push(c));

  const a = (await store.get('a'))!;
  assert.throws(() => {
    a.email = 'mutated@example.com';
  }, TypeError);
  assert.throws(() => {
    a.token.access_token = 'mutated';
  }, TypeError);
  assert.equal((await store.get('a'))!.email, 'a@example.com', 'what others read is unchanged');

  const updated = await store.update('a', (cur) => {
    cur.proxy_disabled = true; // the callback's draft may be changed in place
    return cur;
  });
  assert.equal(updated!.proxy_disabled, true);
  assert.equal((await store.get('a'))!.proxy_disabled, true);
  assert.deepEqual(seen.map((c) => [c.id, c.account?.proxy_disabled]), [['a', true]]);

  // change returning null leaves it as it is, without a notification
  const same = await store.update('a', () => null);
  assert.equal(same!.proxy_disabled, true);
  assert.equal(seen.length, 1);

  assert.equal(await store.update('missing', (c) => c), null);

  assert.equal(await store.remove('b'), true);
  assert.equal(await store.remove('b'), false);
  assert.deepEqual(seen.at(-1), { id: 'b', account: null });
  assert.deepEqual((await store.list()).map((x) => x.id), ['a']);

  stop();
  await store.update('a', (cur) => ({ ...cur, name: 'x' }));
  assert.equal(seen.length, 2, 'no notification after unwatch');
});

test('memory store: writes are validated against the account schema', async () => {
  const store = new MemoryAccountStore([fakeAccount('a')]);
  await assert.rejects(store.update('a', (cur) => ({ ...cur, token: { ...cur.token, refresh_token: '' } })));
  assert.equal((await store.get('a'))!.token.refresh_token, '1//refresh-a');
});

test('memory store: upsertByIdentity matches sub first, else email (case-insensitive)', async () => {
  const store = new MemoryAccountStore([fakeAccount('a')]);
  const seen: AccountChange[] = [];
  store.watch((c) => seen.push(c));

  const bySub = await store.upsertByIdentity({ sub: 'sub-a', email: 'renamed@example.com' }, (existing) => {
    assert.ok(existing);
    return { ...existing!, email: 'renamed@example.com' };
  });
  assert.equal(bySub.created, false);
  assert.equal(bySub.account.id, 'a');

  const byEmail = await store.upsertByIdentity({ sub: null, email: 'RENAMED@example.com' }, (existing) => {
    assert.equal(existing?.id, 'a');
    return { ...existing!, name: 'found by email' };
  });
  assert.equal(byEmail.created, false);

  const created = await store.upsertByIdentity({ sub: 'sub-new', email: 'new@example.com' }, (existing) => {
    assert.equal(existing, null);
    return fakeAccount('new', { sub: 'sub-new' });
  });
  assert.equal(created.created, true);
  assert.equal((await store.list()).length, 2);
  assert.deepEqual(seen.map((c) => c.id), ['a', 'a', 'new']);
});

test('memory store: withRefreshLock runs one holder per id at a time, other ids in parallel', async () => {
  const store = new MemoryAccountStore([fakeAccount('a'), fakeAccount('b')]);
  let inA = 0;
  let maxA = 0;
  let bRanDuringA = false;
  const order: number[] = [];
  let releaseFirst!: () => void;
  const firstGate = new Promise<void>((r) => (releaseFirst = r));
  const holders = [0, 1, 2].map((i) =>
    store.withRefreshLock('a', async () => {
      inA++;
      maxA = Math.max(maxA, inA);
      order.push(i);
      if (i === 0) await firstGate;
      await new Promise((r) => setImmediate(r));
      inA--;
      return i;
    }),
  );
  await new Promise((r) => setImmediate(r));
  await store.withRefreshLock('b', async () => {
    bRanDuringA = inA > 0;
  });
  releaseFirst();
  assert.deepEqual(await Promise.all(holders), [0, 1, 2]);
  assert.equal(maxA, 1);
  assert.deepEqual(order, [0, 1, 2]);
  assert.equal(bRanDuringA, true, 'another account is not blocked by a held lock');

  // a failing holder releases the lock
  await assert.rejects(store.withRefreshLock('a', async () => {
    throw new Error('boom');
  }));
  assert.equal(await store.withRefreshLock('a', async () => 'next'), 'next');
});
