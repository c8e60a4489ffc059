// Failover between accounts before the first byte, and clean endings after it.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

let h: (Harness & { fake: FakePool | null }) | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] });
const gen = (url: string, model = 'gemini-2.5-flash', action = 'generateContent', query = '') =>
  fetch(`${url}/v1beta/models/${model}:${action}${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

function tokenOf(fake: FakePool, id: string): string {
  return fake.accounts.find((a) => a.id === id)!.token;
}

test('401: the account is refreshed once and the request retried on it', async () => {
  h = await startProxy({ accounts: ['a'] });
  h.upstream.failNext('tok-a-0', 'unauthorized');
  const res = await gen(h.url);
  assert.equal(res.status, 200);
  assert.equal(h.fake!.refreshes, 1);
  const tokens = h.upstream.requests.map((r) => r.token);
  assert.deepEqual(tokens, ['tok-a-0', 'tok-a-1']);
  assert.equal(h.requestLog.query()[0]!.retries, 1);
  assert.equal(h.fake!.outcomes('unauthorized').length, 0, 'the refresh was the answer to the first 401');
});

test('401 twice: reported, and the request moves to the next account', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.upstream.failNext('tok-a-0', 'unauthorized');
  h.upstream.failNext('tok-a-1', 'unauthorized');
  const res = await gen(h.url);
  assert.equal(res.status, 200);
  assert.deepEqual(h.upstream.requests.map((r) => r.token), ['tok-a-0', 'tok-a-1', 'tok-b-0']);
  assert.equal(h.fake!.outcomes('unauthorized')[0]!.accountId, 'a');
});

test('401 with a failed refresh moves on at once', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.fake!.accounts[0]!.refreshFails = true;
  h.upstream.failNext('tok-a-0', 'unauthorized');
  assert.equal((await gen(h.url)).status, 200);
  assert.deepEqual(h.upstream.requests.map((r) => r.token), ['tok-a-0', 'tok-b-0']);
});

test('429 with RetryInfo: the account cools down for that long and the request fails over', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.upstream.failNext('tok-a-0', 'rate_limited', { retryDelay: '37s' });
  const before = Date.now();
  const res = await gen(h.url);
  assert.equal(res.status, 200);
  const rl = h.fake!.outcomes('rate_limited')[0]!;
  assert.equal(rl.accountId, 'a');
  assert.equal(rl.model, 'gemini-2.5-flash');
  const until = (rl.outcome as { untilMs: number }).untilMs;
  assert.ok(until >= before + 37_000 && until <= Date.now() + 37_000);
  // The next requests for that model avoid the cooling account.
  await gen(h.url);
  assert.equal(h.upstream.requests.at(-1)!.token, 'tok-b-0');
  const entry = h.requestLog.query({ limit: 2 })[1]!;
  assert.equal(entry.retries, 1);
  assert.equal(entry.email, 'b@example.com');
});

test('daily quota: cooled until the next midnight in Los Angeles', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.upstream.failNext('tok-a-0', 'daily_quota');
  assert.equal((await gen(h.url)).status, 200);
  const until = (h.fake!.outcomes('rate_limited')[0]!.outcome as { untilMs: number }).untilMs;
  const la = new Intl.DateTimeFormat('en-US', { timeZone: 'America/Los_Angeles', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' }).format(new Date(until));
  assert.equal(la, '00:00');
  assert.ok(until > Date.now() && until <= Date.now() + 25 * 3600_000);
});

test('403 SERVICE_DISABLED: the account is reported forbidden with the activation URL, and the request fails over', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.upstream.failNext('tok-a-0', 'service_disabled', { project: '4242' });
  assert.equal((await gen(h.url)).status, 200);
  const f = h.fake!.outcomes('forbidden')[0]!;
  assert.equal(f.accountId, 'a');
  const reason = (f.outcome as { reason: string }).reason;
  assert.match(reason, /SERVICE_DISABLED/);
  assert.match(reason, /Generative Language API has not been used in project 4242/);
  assert.match(reason, /https:\/\/console\.developers\.google\.com\/apis\/api\/generativelanguage\.googleapis\.com\/overview\?project=4242/);
});

test('5xx and connection resets fail over; every account failing gives a 503 that says why', async () => {
  h = await startProxy({ accounts: ['a', 'b', 'c'] });
  h.upstream.failNext('*', 'unavailable');
  h.upstream.failNext('*', 'reset');
  assert.equal((await gen(h.url)).status, 200);
  assert.equal(h.fake!.outcomes('server_error').length, 2);

  h.upstream.failNext('*', 'server_error', { times: 3 });
  const res = await gen(h.url);
  assert.equal(res.status, 503);
  const err = (await res.json()) as { error: { code: number; message: string; status: string } };
  assert.equal(err.error.code, 503);
  assert.equal(err.error.status, 'UNAVAILABLE');
  assert.match(err.error.message, /No account could serve this request.*\(3 tried\).*a@example\.com: upstream 500/);
});

test('max_attempts bounds the accounts tried', async () => {
  h = await startProxy({ accounts: ['a', 'b', 'c', 'd'], config: { upstream: { connect_timeout_ms: 1000, first_byte_timeout_ms: 5000, idle_timeout_ms: 5000, max_attempts: 2 } } });
  h.upstream.failNext('*', 'unavailable', { times: 10 });
  const res = await gen(h.url);
  assert.equal(res.status, 503);
  assert.equal(h.upstream.requests.length, 2);
});

test('every account rate limited: 429 with Retry-After in the protocol shape', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.upstream.failNext('*', 'rate_limited', { times: 2, retryDelay: '20s' });
  const res = await gen(h.url);
  assert.equal(res.status, 429);
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(retryAfter >= 19 && retryAfter <= 20, `retry-after ${retryAfter}`);
  const err = (await res.json()) as { error: { status: string; message: string } };
  assert.equal(err.error.status, 'RESOURCE_EXHAUSTED');
  // Now both are cooling: the pool itself says so, without calling the upstream.
  const n = h.upstream.requests.length;
  const again = await gen(h.url);
  assert.equal(again.status, 429);
  assert.ok(Number(again.headers.get('retry-after')) >= 1);
  assert.equal(h.upstream.requests.length, n);
  // Another model is not affected.
  assert.equal((await gen(h.url, 'gemini-2.5-pro')).status, 200);
});

test('no accounts at all: 503 saying so', async () => {
  h = await startProxy({ accounts: [] });
  const res = await gen(h.url);
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as any).error.message, /no accounts/);
});

test('slow first byte beyond first_byte_timeout_ms fails over', async () => {
  h = await startProxy({ accounts: ['a', 'b'], config: { upstream: { connect_timeout_ms: 1000, first_byte_timeout_ms: 150, idle_timeout_ms: 5000, max_attempts: 5 } } });
  h.upstream.failNext('tok-a-0', 'slow_first_byte', { delayMs: 1000 });
  const res = await gen(h.url);
  assert.equal(res.status, 200);
  const se = h.fake!.outcomes('server_error')[0]!;
  assert.match((se.outcome as { reason: string }).reason, /first-byte timeout/);
});

test('a reset before the first chunk of a stream still fails over', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.upstream.failNext('tok-a-0', 'reset_mid_stream', { afterChunks: 0 });
  const res = await gen(h.url, 'gemini-2.5-flash', 'streamGenerateContent', '?alt=sse');
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /Echo: hello/);
  assert.equal(h.fake!.outcomes('server_error').length, 1);
});

test('mid-stream reset: the Gemini SSE stream ends with an error event, never silently', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.upstream.script({ parts: [{ text: 'x'.repeat(200) }], chunkChars: 20 });
  h.upstream.failNext('tok-a-0', 'reset_mid_stream', { afterChunks: 2 });
  const res = await gen(h.url, 'gemini-2.5-flash', 'streamGenerateContent', '?alt=sse');
  assert.equal(res.status, 200);
  const text = await res.text();
  const events = text.split('\r\n\r\n').filter(Boolean).map((e) => JSON.parse(e.replace(/^data: /, '')));
  assert.equal(events.length, 3);
  assert.equal(events[2].error.code, 503);
  assert.match(events[2].error.message, /incomplete/);
  assert.equal(h.fake!.outcomes('server_error')[0]!.accountId, 'a');
  assert.equal(h.requestLog.query()[0]!.status, 502);
});

test('mid-stream stall beyond idle_timeout_ms ends the stream with an error event', async () => {
  h = await startProxy({ accounts: ['a'], config: { upstream: { connect_timeout_ms: 1000, first_byte_timeout_ms: 5000, idle_timeout_ms: 200, max_attempts: 5 } } });
  h.upstream.script({ parts: [{ text: 'y'.repeat(100) }], chunkChars: 20 });
  h.upstream.failNext('tok-a-0', 'stall_mid_stream', { afterChunks: 1 });
  const res = await gen(h.url, 'gemini-2.5-flash', 'streamGenerateContent', '?alt=sse');
  const text = await res.text();
  assert.match(text, /"error":\{"code":503/);
  assert.match(text, /idle timeout/);
});

test('mid-stream reset on the OpenAI and Anthropic doors ends with their error events', async () => {
  h = await startProxy({ accounts: ['a'] });
  h.upstream.script({ parts: [{ text: 'z'.repeat(200) }], chunkChars: 20 });
  h.upstream.failNext('*', 'reset_mid_stream', { afterChunks: 2 });
  const oa = await fetch(`${h.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gemini-2.5-flash', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const oaText = await oa.text();
  assert.match(oaText, /"error"/);
  assert.ok(!oaText.trimEnd().endsWith('data: [DONE]') || /"error"/.test(oaText));

  h.upstream.script({ parts: [{ text: 'z'.repeat(200) }], chunkChars: 20 });
  h.upstream.failNext('*', 'reset_mid_stream', { afterChunks: 2 });
  const an = await fetch(`${h.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const anText = await an.text();
  assert.match(anText, /event: error/);
  assert.doesNotMatch(anText, /event: message_stop/);
});

test('pinned account (X-Grantpool-Account): no switching; unknown is a clear 4xx', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  const pinned = (who: string) =>
    fetch(`${h!.url}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', headers: { 'x-grantpool-account': who }, body });
  assert.equal((await pinned('b@example.com')).status, 200);
  assert.equal(h.upstream.requests.at(-1)!.token, tokenOf(h.fake!, 'b'));
  h.upstream.failNext(tokenOf(h.fake!, 'b'), 'unavailable');
  const res = await pinned('b');
  assert.equal(res.status, 503);
  assert.equal(h.upstream.requests.length, 2, 'no other account tried');
  const unknown = await pinned('nobody@example.com');
  assert.equal(unknown.status, 404);
  assert.match(((await unknown.json()) as any).error.message, /nobody@example\.com/);
});
