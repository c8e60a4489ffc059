// Issue 17: an upstream answer that cannot be used, before anything reached
// the client, is treated like a 5xx (the account cools down, the request fails
// over): a 200 with an HTML page, truncated or empty JSON, JSON `null`, a
// stream without a usable first event, a stall before the first event. A
// huge error body is still classified by its status.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import { SseReader } from '../../src/proxy/sse.ts';

let h: (Harness & { fake: FakePool | null }) | null = null;
let google: Server | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
  if (google) {
    google.closeAllConnections();
    await new Promise<void>((r) => google!.close(() => r()));
    google = null;
  }
});

const JSON_TYPE = { 'content-type': 'application/json; charset=UTF-8' };
const SSE_TYPE = { 'content-type': 'text/event-stream' };
const HTML = { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>' };
const BROKEN_JSON = [
  { status: 200, headers: JSON_TYPE, body: '{"candidates":[{"content":{"parts":[{"text":"cut' },
  { status: 200, headers: JSON_TYPE, body: '' },
  { status: 200, headers: JSON_TYPE, body: 'null' },
  HTML,
];
const BROKEN_SSE = [
  { status: 200, headers: SSE_TYPE, body: 'data: null\r\n\r\n' },
  { status: 200, headers: SSE_TYPE, body: '' },
  { status: 200, headers: SSE_TYPE, body: 'data: {"candidates":[{"content":{"par\r\n\r\n' },
  HTML,
];

const gemini = { contents: [{ role: 'user', parts: [{ text: 'hello' }] }] };
const chat = (stream: boolean) => ({ model: 'gemini-2.5-flash', stream, messages: [{ role: 'user', content: 'hello' }] });
const messages = (stream: boolean) => ({ model: 'claude-sonnet-4-6', max_tokens: 64, stream, messages: [{ role: 'user', content: 'hello' }] });

const ROUTES: { name: string; path: string; body: unknown; stream: boolean; good: RegExp }[] = [
  { name: 'Gemini generateContent', path: '/v1beta/models/gemini-2.5-flash:generateContent', body: gemini, stream: false, good: /Echo: hello/ },
  { name: 'Gemini stream (SSE)', path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', body: gemini, stream: true, good: /Echo: hello/ },
  { name: 'Gemini countTokens', path: '/v1beta/models/gemini-2.5-flash:countTokens', body: gemini, stream: false, good: /totalTokens/ },
  { name: 'OpenAI JSON', path: '/v1/chat/completions', body: chat(false), stream: false, good: /Echo: hello/ },
  { name: 'OpenAI stream', path: '/v1/chat/completions', body: chat(true), stream: true, good: /\[DONE\]/ },
  { name: 'Anthropic JSON', path: '/v1/messages', body: messages(false), stream: false, good: /Echo: hello/ },
  { name: 'Anthropic stream', path: '/v1/messages', body: messages(true), stream: true, good: /message_stop/ },
  { name: 'Anthropic count_tokens', path: '/v1/messages/count_tokens', body: { model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'x' }] }, stream: false, good: /input_tokens/ },
];

const post = (path: string, body: unknown) =>
  fetch(`${h!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body) });

test('a 200 with a broken body fails over on every route, and the account is reported with a reason in plain words', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  for (const route of ROUTES) {
    for (const raw of route.stream ? BROKEN_SSE : BROKEN_JSON) {
      const what = `${route.name} with ${JSON.stringify(raw.body.slice(0, 30))}`;
      h.upstream.clearFailures();
      h.fake!.reports.length = 0;
      for (const a of h.fake!.accounts) a.cooling.clear();
      h.upstream.failNext('*', 'raw_answer', { raw, times: 2 });
      const res = await post(route.path, route.body);
      const text = await res.text();
      // Both failed: a 503 in the route's shape (never a TypeError's text, never a committed 200).
      assert.equal(res.status, 503, `${what}: ${text}`);
      assert.doesNotMatch(text, /TypeError|Cannot read|undefined/, what);
      const bad = h.fake!.outcomes('server_error');
      assert.equal(bad.length, 2, `${what}: both attempts reported`);
      for (const r of bad) assert.match((r.outcome as { reason: string }).reason, /^upstream (answered 200|ended the stream|sent an event)/, what);
      // One broken answer: the other account serves it.
      h.fake!.reports.length = 0;
      h.upstream.failNext('*', 'raw_answer', { raw });
      const ok = await post(route.path, route.body);
      const okText = await ok.text();
      assert.equal(ok.status, 200, `${what}: ${okText}`);
      assert.match(okText, route.good, what);
      assert.equal(h.fake!.outcomes('server_error').length, 1, what);
      assert.equal(h.requestLog.query({ limit: 1 })[0]!.retries, 1, what);
    }
  }
});

test('/google pass-through: an HTML page or a JSON answer that is empty or null fails over; other answers pass as they are', async () => {
  let brokenLeft = 0;
  google = createServer((req, res) => {
    req.resume();
    const token = (req.headers.authorization ?? '').slice('Bearer '.length);
    const url = req.url ?? '';
    // The first `brokenLeft` answers are broken; with ?always, every answer for account a.
    const always = url.includes('always') && token === 'tok-a-0';
    const broken = always || brokenLeft-- > 0 ? url : '';
    if (broken.includes('html')) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>Sign in to the Wi-Fi</body></html>');
    } else if (broken.includes('empty')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end();
    } else if (broken.includes('null')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('null');
    } else if (url.includes('text')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('plain text is fine');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'drive#about', token }));
    }
  });
  await new Promise<void>((r) => google!.listen(0, '127.0.0.1', r));
  h = await startProxy({ accounts: ['a', 'b'], googleApiBaseUrl: `http://127.0.0.1:${(google.address() as AddressInfo).port}` });
  for (const kind of ['html', 'empty', 'null']) {
    h.fake!.reports.length = 0;
    brokenLeft = 1;
    const res: Response = await fetch(`${h.url}/google/drive/v3/about?case=${kind}`);
    const body = (await res.json()) as { kind: string; token: string };
    assert.equal(res.status, 200, kind);
    assert.equal(body.kind, 'drive#about', kind);
    const bad = h.fake!.outcomes('server_error');
    assert.equal(bad.length, 1, kind);
    assert.notEqual(`tok-${bad[0]!.accountId}-0`, body.token, `${kind}: served by the other account`);
    assert.match((bad[0]!.outcome as { reason: string }).reason, /^upstream answered 200 with (an HTML page|an empty JSON body|JSON null)/, kind);
    assert.equal(h.requestLog.query({ limit: 1 })[0]!.retries, 1, kind);
  }
  // Account a always answers these broken; pinned to it, the client gets a 503 that says why (not the page).
  const pinned = await fetch(`${h.url}/google/drive/v3/about?case=html&always=1`, { headers: { 'x-grantpool-account': 'a' } });
  assert.equal(pinned.status, 503);
  assert.match(((await pinned.json()) as { error: { message: string } }).error.message, /HTML page/);
  // A client that asks for HTML gets it; a plain-text answer passes.
  const wantsHtml = await fetch(`${h.url}/google/x?case=html&always=1`, { headers: { 'x-grantpool-account': 'a', accept: 'text/html' } });
  assert.equal(wantsHtml.status, 200);
  assert.match(await wantsHtml.text(), /Wi-Fi/);
  const plain = await fetch(`${h.url}/google/text`, { headers: { 'x-grantpool-account': 'a' } });
  assert.equal(await plain.text(), 'plain text is fine');
});

test('a streamed error answer over 1 MiB is still classified by its status (429: rate limited, not a network error)', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  const huge = JSON.stringify({ error: { code: 429, message: `Resource has been exhausted ${'x'.repeat(2 * 1024 * 1024)}`, status: 'RESOURCE_EXHAUSTED' } });
  for (const path of ['/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', '/v1beta/models/gemini-2.5-flash:generateContent']) {
    h.fake!.reports.length = 0;
    for (const a of h.fake!.accounts) a.cooling.clear();
    h.upstream.failNext('*', 'raw_answer', { raw: { status: 429, headers: JSON_TYPE, body: huge } });
    const res = await post(path, gemini);
    assert.equal(res.status, 200, path);
    await res.text();
    const limited = h.fake!.outcomes('rate_limited');
    assert.equal(limited.length, 1, `${path}: ${JSON.stringify(h.fake!.reports.map((r) => r.outcome)).slice(0, 300)}`);
    assert.match((limited[0]!.outcome as { reason: string }).reason, /rate limited: Resource has been exhausted/);
    assert.equal(h.fake!.outcomes('server_error').length, 0, path);
  }
});

test('a stream that stalls before its first event fails over after the stream first-byte timeout', async () => {
  h = await startProxy({
    accounts: ['a', 'b'],
    config: { upstream: { connect_timeout_ms: 1000, first_byte_timeout_ms: 20_000, stream_first_byte_timeout_ms: 300, idle_timeout_ms: 20_000, max_attempts: 5 } },
  });
  for (const [path, body] of [
    ['/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', gemini],
    ['/v1/chat/completions', chat(true)],
    ['/v1/messages', messages(true)],
  ] as const) {
    h.fake!.reports.length = 0;
    h.upstream.failNext('*', 'stall_mid_stream', { afterChunks: 0 });
    const started = Date.now();
    const res = await post(path, body);
    const text = await res.text();
    assert.equal(res.status, 200, path);
    assert.match(text, /Echo: hello/, path);
    assert.ok(Date.now() - started < 5000, `${path}: failed over in ${Date.now() - started} ms`);
    const se = h.fake!.outcomes('server_error');
    assert.equal(se.length, 1, path);
    assert.match((se[0]!.outcome as { reason: string }).reason, /first-byte timeout/);
  }
});

test('default timeouts fail over before common clients give up (300 s), streams sooner', () => {
  const upstream = ConfigSchema.parse({}).upstream;
  assert.ok(upstream.first_byte_timeout_ms <= 150_000, `first_byte_timeout_ms ${upstream.first_byte_timeout_ms}`);
  assert.ok((upstream.stream_first_byte_timeout_ms ?? 60_000) <= 60_000);
  const set = ConfigSchema.parse({ upstream: { stream_first_byte_timeout_ms: 15_000 } }).upstream;
  assert.equal(set.stream_first_byte_timeout_ms, 15_000);
});

test('SSE reader: an event larger than the limit without a blank line stops the reader instead of growing without bound', () => {
  const got: string[] = [];
  const r = new SseReader((d) => got.push(d), 1024);
  r.push(Buffer.from('data: {"a":1}\n\n'));
  r.push(Buffer.from(`data: ${'x'.repeat(600)}`));
  assert.equal(r.overflowed, false);
  r.push(Buffer.from('y'.repeat(600)));
  assert.equal(r.overflowed, true);
  r.push(Buffer.from('\n\ndata: {"b":2}\n\n'));
  r.end();
  assert.deepEqual(got, ['{"a":1}']);
});

test('SSE reader: any split of the bytes gives the same events', () => {
  const text = 'data: {"a":1}\r\n\r\ndata: {"b":\r\ndata: 2}\n\n: c\n\ndata: x\r\rdata: é€😀\n\ndata: last';
  const bytes = Buffer.from(text);
  const whole: string[] = [];
  const w = new SseReader((d) => whole.push(d));
  w.push(bytes);
  w.end();
  assert.deepEqual(whole, ['{"a":1}', '{"b":\n2}', 'x', 'é€😀', 'last']);
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let n = 0; n < 300; n++) {
    const got: string[] = [];
    const r = new SseReader((d) => got.push(d));
    let i = 0;
    while (i < bytes.length) {
      const len = 1 + Math.floor(rnd() * 6);
      r.push(bytes.subarray(i, i + len));
      i += len;
    }
    r.end();
    assert.deepEqual(got, whole);
  }
});

test('a JSON null or non-JSON event after a translated stream started ends it with an error event in plain words, never a TypeError', async () => {
  h = await startProxy({ accounts: ['a'] });
  const first = JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'Hel' }] }, index: 0 }] });
  for (const [route, bad, ending] of [
    ['/v1/chat/completions', 'null', /"error"/],
    ['/v1/messages', 'null', /event: error/],
    ['/v1/chat/completions', '{"candidates":[', /"error"/],
  ] as const) {
    h.fake!.reports.length = 0;
    h.upstream.failNext('*', 'raw_answer', { raw: { status: 200, headers: SSE_TYPE, body: `data: ${first}\r\n\r\ndata: ${bad}\r\n\r\n` } });
    const res = await post(route, route === '/v1/messages' ? messages(true) : chat(true));
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.match(text, /Hel/, 'the first event was translated');
    assert.match(text, ending, `${route}: ${text.slice(-300)}`);
    assert.doesNotMatch(text, /TypeError|Cannot read/);
    const se = h.fake!.outcomes('server_error');
    assert.equal(se.length, 1);
    assert.match((se[0]!.outcome as { reason: string }).reason, /^upstream sent an event that is not (a JSON object|JSON)$/);
    assert.equal(h.requestLog.query({ limit: 1 })[0]!.status, 502);
  }
});
