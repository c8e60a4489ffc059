import { test } from 'node:test';
import assert from 'node:assert/strict';
import { item, items, testSelector } from '../support/selector-items.ts';
import { fakeAccount, poolHarness, GEMINI_SCOPE, CLOUD_SCOPE } from '../support/fake-accounts.ts';
import { NoAccountError } from '../../src/pool/types.ts';

test('selector: round robin visits every servable item in turn and skips the others', () => {
  const s = testSelector({ strategy: 'round_robin', sessionAffinity: false });
  for (const it of items('a', 'b', 'c', 'd')) s.add(it);
  const picks = Array.from({ length: 8 }, () => s.pick(() => true)!.id);
  assert.deepEqual(picks, ['a', 'b', 'c', 'd', 'a', 'b', 'c', 'd']);
  const noC = Array.from({ length: 6 }, () => s.pick((x) => x.id !== 'c')!.id);
  assert.deepEqual(noC, ['a', 'b', 'd', 'a', 'b', 'd']);
  assert.equal(s.pick(() => false), null);
});

test('selector: fill first stays on one item until it cannot serve, then stays on the next', () => {
  const s = testSelector({ strategy: 'fill_first', sessionAffinity: false });
  const [a, b, c] = items('a', 'b', 'c');
  for (const it of [a!, b!, c!]) s.add(it);
  assert.deepEqual([1, 2, 3].map(() => s.pick(() => true)!.id), ['a', 'a', 'a']);
  assert.equal(s.pick((x) => x.id !== 'a')!.id, 'b');
  assert.equal(s.pick(() => true)!.id, 'b', 'stays on b');
  s.remove(b!);
  assert.equal(s.pick(() => true)!.id, 'a');
});

test('selector: session affinity keeps the bound item while it can serve and rebinds when not', () => {
  const s = testSelector({ strategy: 'round_robin', sessionAffinity: true, maxSessions: 2 });
  for (const it of items('a', 'b', 'c')) s.add(it);
  const first = s.pick(() => true, 'session-1')!.id;
  s.pick(() => true); // moves the cursor
  assert.equal(s.pick(() => true, 'session-1')!.id, first);
  const rebound = s.pick((x) => x.id !== first, 'session-1')!.id;
  assert.notEqual(rebound, first);
  assert.equal(s.pick(() => true, 'session-1')!.id, rebound, 'stays on the new binding');
  // bounded: the least recently used binding is dropped
  s.pick(() => true, 'session-2');
  s.pick(() => true, 'session-3');
  assert.equal(s.boundTo('session-1'), null);
  assert.notEqual(s.boundTo('session-3'), null);
});

test('selector: removing items keeps the ring consistent', () => {
  const s = testSelector({ strategy: 'round_robin', sessionAffinity: false });
  const [a, b, c, d] = items('a', 'b', 'c', 'd');
  for (const it of [a!, b!, c!, d!]) s.add(it);
  s.remove(a!);
  s.remove(d!);
  s.remove(a!); // not in it any more
  s.remove(item('zzz'));
  assert.equal(s.size, 2);
  const seen = new Set(Array.from({ length: 4 }, () => s.pick(() => true)!.id));
  assert.deepEqual([...seen].sort(), ['b', 'c']);
});

test('pool: round robin over accounts; session key sticks to its account until it cools down', async () => {
  // each on its own project (lane), so that a 429 cools one account only
  const h = await poolHarness(['a', 'b', 'c'].map((id) => fakeAccount(id, { project_id: `project-${id}` })));
  const ids = [];
  for (let i = 0; i < 6; i++) ids.push((await h.pool.acquire({ model: 'gemini-2.5-flash' })).accountId);
  assert.deepEqual(ids, ['a', 'b', 'c', 'a', 'b', 'c']);

  const bound = await h.pool.acquire({ model: 'gemini-2.5-flash', sessionKey: 'conv-1' });
  for (let i = 0; i < 3; i++) {
    assert.equal((await h.pool.acquire({ model: 'gemini-2.5-flash', sessionKey: 'conv-1' })).accountId, bound.accountId);
  }
  h.pool.report(bound, 'gemini-2.5-flash', { kind: 'rate_limited', untilMs: h.clock.now() + 60_000, reason: 'quota' });
  const moved = await h.pool.acquire({ model: 'gemini-2.5-flash', sessionKey: 'conv-1' });
  assert.notEqual(moved.accountId, bound.accountId);
  assert.equal((await h.pool.acquire({ model: 'gemini-2.5-flash', sessionKey: 'conv-1' })).accountId, moved.accountId);
  // the cooldown is per model: another model may still use the first account
  const other = await h.pool.acquire({ model: 'gemini-2.5-pro', pinned: bound.accountId });
  assert.equal(other.accountId, bound.accountId);
});

test('pool: fill_first uses one account until it cannot serve', async () => {
  const h = await poolHarness([fakeAccount('a'), fakeAccount('b')], { config: { strategy: 'fill_first' } });
  const first = await h.pool.acquire({ model: 'm' });
  assert.equal((await h.pool.acquire({ model: 'm' })).accountId, first.accountId);
  h.pool.report(first, 'm', { kind: 'server_error', reason: 'HTTP 503' });
  const next = await h.pool.acquire({ model: 'm' });
  assert.notEqual(next.accountId, first.accountId);
  assert.equal((await h.pool.acquire({ model: 'm' })).accountId, next.accountId);
});

test('pool: only accounts with one of the needed scopes are candidates', async () => {
  const h = await poolHarness([
    fakeAccount('cloud', { scope: `openid email ${CLOUD_SCOPE}` }),
    fakeAccount('gem', { scope: `openid email ${GEMINI_SCOPE}` }),
  ]);
  for (let i = 0; i < 4; i++) {
    assert.equal((await h.pool.acquire({ model: 'm', anyOfScopes: [GEMINI_SCOPE] })).accountId, 'gem');
  }
  const any = new Set<string>();
  for (let i = 0; i < 4; i++) any.add((await h.pool.acquire({ model: 'm', anyOfScopes: [] })).accountId);
  assert.deepEqual([...any].sort(), ['cloud', 'gem']);
  await assert.rejects(h.pool.acquire({ model: 'm', anyOfScopes: ['https://www.googleapis.com/auth/drive'] }), (e: NoAccountError) => {
    assert.equal(e.code, 'no_scope');
    assert.equal(e.status, 503);
    assert.match(e.message, /auth\/drive/);
    return true;
  });
});

test('pool: pinning by id or email; unknown is 404, unusable says why', async () => {
  const h = await poolHarness([fakeAccount('a'), fakeAccount('b', { proxy_disabled: true, proxy_disabled_reason: 'manual' })]);
  assert.equal((await h.pool.acquire({ model: 'm', pinned: 'a' })).accountId, 'a');
  assert.equal((await h.pool.acquire({ model: 'm', pinned: 'A@Example.com' })).accountId, 'a');
  await assert.rejects(h.pool.acquire({ model: 'm', pinned: 'nobody@example.com' }), (e: NoAccountError) => {
    assert.equal(e.code, 'pinned_unknown');
    assert.equal(e.status, 404);
    return true;
  });
  await assert.rejects(h.pool.acquire({ model: 'm', pinned: 'b' }), (e: NoAccountError) => {
    assert.equal(e.code, 'pinned_unusable');
    assert.equal(e.status, 503);
    assert.match(e.message, /taken out of the proxy: manual/);
    return true;
  });
  const lease = await h.pool.acquire({ model: 'm', pinned: 'a' });
  h.pool.report(lease, 'm', { kind: 'rate_limited', untilMs: h.clock.now() + 30_000, reason: 'RESOURCE_EXHAUSTED' });
  await assert.rejects(h.pool.acquire({ model: 'm', pinned: 'a' }), (e: NoAccountError) => {
    assert.equal(e.code, 'pinned_unusable');
    assert.equal(e.status, 429);
    assert.equal(e.retryAfterSeconds, 30);
    return true;
  });
});

test('pool: requests skip accounts in `exclude`; nothing left is "exhausted"', async () => {
  const h = await poolHarness([fakeAccount('a'), fakeAccount('b')]);
  assert.equal((await h.pool.acquire({ model: 'm', exclude: new Set(['a']) })).accountId, 'b');
  await assert.rejects(h.pool.acquire({ model: 'm', exclude: new Set(['a', 'b']) }), (e: NoAccountError) => e.code === 'exhausted' && e.status === 503);
});
