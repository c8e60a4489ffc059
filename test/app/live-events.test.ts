// The dashboard's live events: a proxied request sends its log entry and the
// one account it changed, not a snapshot of every account; store changes,
// state changes and states that end by the clock reach the dashboard as the
// accounts that changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLiveEvents, type LiveEvent } from '../../src/app/live-events.ts';
import { createRequestLog, type RequestLogEntry } from '../../src/proxy/request-log.ts';
import { publicAccount, type Account } from '../../src/store/account.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { fakeAccount, poolHarness, settle, T0 } from '../support/fake-accounts.ts';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

function entry(accountId: string): RequestLogEntry {
  return {
    time: T0, route: '/v1/chat/completions', protocol: 'openai', model_requested: 'gpt-4o', model_used: 'gemini-2.5-flash',
    account_id: accountId, email: `${accountId}@example.com`, status: 200, latency_ms: 5, first_byte_ms: 2, tokens_in: 10, tokens_out: 5,
    retries: 0, error: null,
  };
}

async function setup(n: number) {
  const accounts = Array.from({ length: n }, (_, i) => fakeAccount(`acc${String(i).padStart(5, '0')}`));
  const h = await poolHarness(accounts);
  const requestLog = createRequestLog({ size: 100 });
  const view = (a: Account) => ({ ...publicAccount(a), state: h.pool.accountState(a), usage_today: h.pool.usageToday(a.id) });
  const live = createLiveEvents({ store: h.store, pool: h.pool, requestLog, view, logger: silentLogger(), coalesceMs: 20, sweepMs: 30 });
  const events: LiveEvent[] = [];
  const stop = live.subscribe((e) => events.push(e));
  const accountsEvents = () => events.filter((e) => e.type === 'accounts').map((e) => e.data as { changed: { id: string; state: { state: string } }[]; removed: string[] });
  return { h, requestLog, live, events, stop, accountsEvents, accounts };
}

test('a proxied request sends its entry and only the account it used, however many accounts there are', async (t) => {
  const s = await setup(3000);
  t.after(() => s.live.close());
  const id = s.accounts[1234]!.id;
  s.requestLog.record(entry(id));
  assert.equal(s.events[0]?.type, 'request', 'the entry at once');
  await wait(80);
  const got = s.accountsEvents();
  assert.equal(got.length, 1);
  assert.deepEqual(got[0]!.changed.map((a) => a.id), [id]);
  assert.deepEqual(got[0]!.removed, []);
  const bytes = JSON.stringify(s.events.at(-1)!.data).length;
  assert.ok(bytes < 4000, `the accounts event is ${bytes} bytes (a snapshot of 3000 accounts would be megabytes)`);
  assert.ok(!JSON.stringify(s.events).includes('refresh-'), 'no token in an event');
});

test('changes within the coalescing window make one event with each changed account once', async (t) => {
  const s = await setup(50);
  t.after(() => s.live.close());
  for (let i = 0; i < 30; i++) s.requestLog.record(entry(s.accounts[i % 3]!.id));
  await wait(80);
  const got = s.accountsEvents();
  assert.equal(got.length, 1);
  assert.deepEqual(got[0]!.changed.map((a) => a.id).sort(), s.accounts.slice(0, 3).map((a) => a.id));
});

test('store changes, additions and removals reach the dashboard as changed and removed accounts', async (t) => {
  const s = await setup(5);
  t.after(() => s.live.close());
  const [a, b] = s.accounts;
  await s.h.store.update(a!.id, (x) => ({ ...x, proxy_disabled: true, proxy_disabled_reason: 'manual' }));
  await s.h.store.remove(b!.id);
  await s.h.store.put(fakeAccount('newcomer'));
  await settle();
  await wait(80);
  const merged = s.accountsEvents();
  const changed = merged.flatMap((e) => e.changed);
  const removed = merged.flatMap((e) => e.removed);
  assert.equal(changed.find((x) => x.id === a!.id)?.state.state, 'proxy_disabled');
  assert.ok(changed.some((x) => x.id === 'newcomer'));
  assert.deepEqual(removed, [b!.id]);
  assert.ok(changed.length <= 3, `only the changed accounts: ${changed.map((x) => x.id)}`);
});

test('a cooldown that ends by the clock is sent when it ends', async (t) => {
  const s = await setup(3);
  t.after(() => s.live.close());
  const lease = await s.h.pool.acquire({ model: 'gemini-2.5-flash' });
  s.h.pool.report(lease, 'gemini-2.5-flash', { kind: 'rate_limited', untilMs: T0 + 60_000, reason: 'RESOURCE_EXHAUSTED' });
  await wait(80);
  // A 429 cools the lane (the accounts that share the project's quota), the account used among them.
  const latest = new Map(s.accountsEvents().flatMap((e) => e.changed).map((x) => [x.id, x.state.state]));
  assert.equal(latest.get(lease.accountId), 'cooling_down');
  const cooling = [...latest].filter(([, state]) => state === 'cooling_down').map(([id]) => id).sort();
  const before = s.accountsEvents().length;
  s.h.clock.advance(61_000);
  await wait(120);
  const after = s.accountsEvents().slice(before).flatMap((e) => e.changed);
  assert.deepEqual(after.map((x) => [x.id, x.state.state]).sort(), cooling.map((id) => [id, 'active']), 'each account that cooled down, once, now active');
});

test('nothing is built without listeners, and nothing is sent after unsubscribing', async (t) => {
  const s = await setup(5);
  t.after(() => s.live.close());
  s.stop();
  s.requestLog.record(entry(s.accounts[0]!.id));
  await s.h.store.update(s.accounts[1]!.id, (x) => ({ ...x, name: 'Changed' }));
  await wait(80);
  assert.deepEqual(s.events, []);
  const again: LiveEvent[] = [];
  s.live.subscribe((e) => again.push(e));
  await wait(80);
  assert.deepEqual(again, [], 'changes made while no one listened are not replayed (a dashboard loads the full list when it connects)');
});
