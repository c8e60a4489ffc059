// One exchange per request (issue 12): every request ends with one request-log
// entry and one outcome, also when the client leaves while the gateway waits
// for it; count-tokens and the model list are judged and reported like
// generate (but not counted as generate requests); X-Grantpool-Account pins
// an account on every door.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { startProxy, systemTestClock, type FakePool, type Harness } from '../support/proxy-harness.ts';
import { clientSignal, forwardTranslated, newTrack, settle, type EngineDeps } from '../../src/proxy/engine.ts';
import { createUpstreamClient } from '../../src/proxy/upstream-client.ts';
import { createOpenAIDoor } from '../../src/proxy/openai/door.ts';
import { createThoughtSignatureCache } from '../../src/proxy/thought-signatures.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { eventually } from '../support/eventually.ts';

let h: (Harness & { fake: FakePool | null }) | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const post = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

const chat = (stream = false) => ({ model: 'gemini-2.5-flash', stream, messages: [{ role: 'user', content: 'hi' }] });
const messages = (stream = false) => ({ model: 'claude-sonnet-4-6', max_tokens: 64, stream, messages: [{ role: 'user', content: 'hi' }] });
const count = { model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'count me' }] };
const ANTHROPIC = { 'anthropic-version': '2023-06-01' };

test('a client that leaves while the gateway waits for it to take the first translated chunk: the request still ends with a log entry and an outcome', async () => {
  h = await startProxy({ accounts: ['a'] });
  const { pool, requestLog, upstream } = h;
  const client = createUpstreamClient();
  const deps: EngineDeps = { config: () => h!.config, pool, logger: silentLogger(), clock: systemTestClock, client, requestLog };
  // A client connection that takes nothing: every write waits for it to drain.
  const socket = new Duplex({ read() {}, write() {}, writableHighWaterMark: 16 });
  const res = new ServerResponse(new IncomingMessage(socket as unknown as Socket));
  res.assignSocket(socket as unknown as Socket);
  const door = createOpenAIDoor({ signatures: createThoughtSignatureCache(), allowRemoteImages: false });
  const track = newTrack(deps, '/v1/chat/completions', 'openai');
  const done = forwardTranslated(deps, res, {
    door,
    parsed: door.parseRequest(chat(true)),
    model: 'gemini-2.5-flash',
    origin: upstream.url,
    modelPath: '/v1beta/models/gemini-2.5-flash',
    signal: clientSignal(res),
    track,
  });
  try {
    await eventually('the first chunk written, waiting for the client', () => res.headersSent && res.writableNeedDrain, 5000);
    socket.destroy();
    const entry = await eventually('the request log entry', () => requestLog.query({ limit: 1 })[0], 5000);
    assert.equal(entry.error, 'client disconnected');
    assert.equal(entry.email, 'a@example.com');
    await done;
    assert.equal(h.fake!.outcomes().length, 1, 'one outcome reported');
    assert.equal(h.fake!.outcomes()[0]!.outcome.kind, 'ok');
  } finally {
    await client.close();
  }
});

test('count_tokens: an invalid upstream answer is reported and fails over, as generate does', async () => {
  h = await startProxy({ accounts: ['a', 'b'] });
  h.upstream.failNext('tok-a-0', 'raw_answer', { raw: { status: 200, headers: { 'content-type': 'application/json' }, body: '{"totalTokens":' } });
  const res = await post(h.url, '/v1/messages/count_tokens', count, ANTHROPIC);
  assert.equal(res.status, 200, await res.clone().text());
  assert.ok(((await res.json()) as { input_tokens: number }).input_tokens > 0);
  const bad = h.fake!.outcomes('server_error');
  assert.equal(bad.length, 1);
  assert.equal(bad[0]!.accountId, 'a');
  assert.match((bad[0]!.outcome as { reason: string }).reason, /not a JSON object|truncated/);
  assert.equal(h.requestLog.query({ limit: 1 })[0]!.retries, 1);
});

test('quota protection counts generate requests only: count-tokens, embeddings and the model list report counts: false', async () => {
  h = await startProxy({ accounts: ['a'] });
  const okOf = () => h!.fake!.outcomes('ok').at(-1)!.outcome as { counts?: boolean };
  assert.equal((await post(h.url, '/v1/messages/count_tokens', count, ANTHROPIC)).status, 200);
  assert.equal(okOf().counts, false, 'Anthropic count_tokens');
  assert.equal((await post(h.url, '/v1beta/models/gemini-2.5-flash:countTokens', { contents: [{ parts: [{ text: 'x' }] }] })).status, 200);
  assert.equal(okOf().counts, false, 'Gemini countTokens');
  const embed = await post(h.url, '/v1beta/models/text-embedding-004:embedContent', { content: { parts: [{ text: 'x' }] } });
  assert.equal(embed.status, 200);
  assert.equal(okOf().counts, false, 'embedContent');
  assert.equal((await fetch(`${h.url}/v1beta/models`)).status, 200);
  assert.equal(okOf().counts, false, 'model list');
  for (const [path, body] of [
    ['/v1/chat/completions', chat()],
    ['/v1/messages', messages()],
    ['/v1beta/models/gemini-2.5-flash:generateContent', { contents: [{ parts: [{ text: 'x' }] }] }],
  ] as const) {
    assert.equal((await post(h.url, path, body, ANTHROPIC)).status, 200);
    assert.notEqual(okOf().counts, false, `${path} counts`);
  }
});

test('X-Grantpool-Account pins the account on the OpenAI and Anthropic doors too', async () => {
  h = await startProxy({ accounts: ['a', 'b', 'c'] });
  const pin = { ...ANTHROPIC, 'x-grantpool-account': 'b@example.com' };
  const calls: [string, unknown][] = [
    ['/v1/chat/completions', chat()],
    ['/v1/chat/completions', chat(true)],
    ['/v1/messages', messages()],
    ['/v1/messages', messages(true)],
    ['/v1/messages/count_tokens', count],
  ];
  for (const [path, body] of calls) {
    const res = await post(h.url, path, body, pin);
    assert.equal(res.status, 200, path);
    await res.text();
  }
  assert.deepEqual(h.upstream.requests.map((r) => r.token), calls.map(() => 'tok-b-0'));
  // Pinned: no failover to another account.
  h.upstream.failNext('tok-b-0', 'unavailable');
  const res = await post(h.url, '/v1/chat/completions', chat(), { 'x-grantpool-account': 'b' });
  assert.equal(res.status, 503);
  assert.equal(h.upstream.requests.length, calls.length + 1);
  const unknown = await post(h.url, '/v1/messages', messages(), { ...ANTHROPIC, 'x-grantpool-account': 'ghost@example.com' });
  assert.equal(unknown.status, 404);
  const err = (await unknown.json()) as { type: string; error: { message: string } };
  assert.equal(err.type, 'error');
  assert.match(err.error.message, /ghost@example\.com/);
});

test('settle: what each answer means', () => {
  const ctx = { now: 1000, refreshed: false };
  assert.deepEqual(settle({ kind: 'usable' }, ctx), { action: 'serve' });
  assert.deepEqual(settle({ kind: 'status', status: 400, text: '{}' }, ctx), { action: 'pass_back', outcome: { kind: 'client_error' } });
  assert.deepEqual(settle({ kind: 'status', status: 401, text: '' }, ctx), { action: 'refresh' });
  assert.deepEqual(settle({ kind: 'status', status: 401, text: '' }, { ...ctx, refreshed: true }), { action: 'fail_over', outcome: { kind: 'unauthorized' }, report: true });
  const refreshFailed = settle({ kind: 'refresh_failed' }, ctx);
  assert.equal(refreshFailed.action === 'fail_over' && refreshFailed.report, false, 'a failed refresh is the pool’s own news');
  assert.deepEqual(settle({ kind: 'unusable', reason: 'upstream answered 200 with JSON null' }, ctx), {
    action: 'fail_over',
    outcome: { kind: 'server_error', reason: 'upstream answered 200 with JSON null' },
    report: true,
  });
  const limited = settle({ kind: 'status', status: 429, text: '{"error":{"code":429,"message":"slow down"}}' }, ctx);
  assert.equal(limited.action === 'fail_over' && limited.outcome.kind, 'rate_limited');
  const forbidden = '{"error":{"code":403,"status":"PERMISSION_DENIED","message":"off","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED"}]}}';
  assert.equal((settle({ kind: 'status', status: 403, text: forbidden }, ctx) as { outcome: { kind: string } }).outcome.kind, 'forbidden');
  assert.equal(settle({ kind: 'status', status: 403, text: forbidden }, { ...ctx, passthrough: true }).action, 'pass_back');
  const net = settle({ kind: 'network', error: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }, ctx);
  assert.deepEqual(net, { action: 'fail_over', outcome: { kind: 'server_error', reason: 'upstream connection reset' }, report: true });
});
