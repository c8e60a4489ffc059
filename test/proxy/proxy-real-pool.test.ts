// The proxy on the real token pool (memory store, fake refresher, fake clock):
// what an upstream answer does to the account, as the pool and the store show it.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type Harness } from '../support/proxy-harness.ts';
import { fakeAccount, poolHarness, settle, T0, type Harness as PoolHarness } from '../support/fake-accounts.ts';

let h: Harness | null = null;
let p: PoolHarness | null = null;
afterEach(async () => {
  await h?.close();
  await p?.pool.stop();
  h = p = null;
});

async function setup(ids: string[]) {
  // each account on its own project (lane, docs/design.md "Lanes"): their quotas are independent
  p = await poolHarness(ids.map((id) => fakeAccount(id, { project_id: `project-${id}` })));
  const revoked = new Set<string>();
  h = await startProxy({
    pool: p.pool,
    clock: p.clock,
    upstream: { validateToken: (t) => t.startsWith('ya29.') && !revoked.has(t) },
  });
  return { p, h, revoked };
}

const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] });
const gen = (url: string, model = 'gemini-2.5-flash') =>
  fetch(`${url}/v1beta/models/${model}:generateContent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

test('429 with RetryInfo cools the account for that model until the time Google gave', async () => {
  const { p, h } = await setup(['a', 'b']);
  h.upstream.failNext('ya29.initial-a', 'rate_limited', { retryDelay: '37s' });
  h.upstream.failNext('ya29.initial-b', 'rate_limited', { retryDelay: '37s' });
  // Both accounts answer 429 once: the client gets a 429 with Retry-After.
  const res = await gen(h.url);
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '37');
  for (const id of ['a', 'b']) {
    const s = p.pool.stateOf(id)!;
    assert.equal(s.state, 'cooling_down');
    assert.equal((s as { until: number }).until, (T0 + 37_000) / 1000, 'unix seconds');
  }
  // Other models still work; after the cooldown the model works again.
  assert.equal((await gen(h.url, 'gemini-2.5-pro')).status, 200);
  assert.equal((await gen(h.url)).status, 429);
  p.clock.advance(38_000);
  assert.equal((await gen(h.url)).status, 200);
});

test('403 SERVICE_DISABLED takes the account out of the proxy with the reason, and the request is served by another', async () => {
  const { p, h } = await setup(['a', 'b']);
  h.upstream.failNext('ya29.initial-a', 'service_disabled', { project: '777' });
  for (let i = 0; i < 2; i++) assert.equal((await gen(h.url)).status, 200);
  await settle(20);
  const stored = await p.store.get('a');
  assert.equal(stored!.proxy_disabled, true);
  assert.match(stored!.proxy_disabled_reason ?? '', /SERVICE_DISABLED/);
  assert.match(stored!.proxy_disabled_reason ?? '', /overview\?project=777/);
  assert.equal(p.pool.stateOf('a')!.state, 'proxy_disabled');
});

test('401 refreshes the token once (through the refresher) and retries on the same account', async () => {
  const { p, h } = await setup(['a']);
  h.upstream.failNext('ya29.initial-a', 'unauthorized');
  const res = await gen(h.url);
  assert.equal(res.status, 200);
  assert.equal(p.refresher.callsFor('a'), 1);
  const tokens = h.upstream.requests.map((r) => r.token);
  assert.equal(tokens[0], 'ya29.initial-a');
  assert.match(tokens[1]!, /^ya29\.fresh-a-/);
  const stored = await p.store.get('a');
  assert.equal(stored!.token.access_token, tokens[1]);
});

test('usage from usageMetadata reaches the pool', async () => {
  const { p, h } = await setup(['a']);
  h.upstream.script({ parts: [{ text: 'counted' }], usage: { promptTokenCount: 40, candidatesTokenCount: 2 } });
  assert.equal((await gen(h.url)).status, 200);
  await settle();
  const today = p.pool.usageToday('a');
  assert.equal(today.requests, 1);
  assert.equal(today.tokens, 42);
});
