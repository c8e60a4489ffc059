// Proxy API keys per GRANTPOOL_AUTH_MODE, from every accepted header, with protocol-shaped refusals.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';
import { effectiveAuthMode, keyMatches } from '../../src/proxy/auth.ts';

const KEY = 'gp-test-key-0123456789';
let h: Harness & { fake: FakePool | null };
before(async () => {
  h = await startProxy({ accounts: ['a'], config: { auth_mode: 'all_except_health', api_keys: [{ key: KEY, label: 'test', created_at: null }] } });
});
after(() => h.close());

const geminiBody = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
const openaiBody = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
const anthropicBody = JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });

function send(path: string, body: string | null, headers: Record<string, string> = {}) {
  return fetch(h.url + path, { method: body === null ? 'GET' : 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

test('each accepted key source lets a request through', async () => {
  const gem = '/v1beta/models/gemini-2.5-flash:generateContent';
  assert.equal((await send(gem, geminiBody, { authorization: `Bearer ${KEY}` })).status, 200);
  assert.equal((await send(gem, geminiBody, { 'x-api-key': KEY })).status, 200);
  assert.equal((await send(gem, geminiBody, { 'x-goog-api-key': KEY })).status, 200);
  assert.equal((await send(`${gem}?key=${KEY}`, geminiBody)).status, 200);
  assert.equal((await send('/v1/chat/completions', openaiBody, { authorization: `Bearer ${KEY}` })).status, 200);
  assert.equal((await send('/v1/messages', anthropicBody, { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' })).status, 200);
  // The key never reaches the upstream.
  assert.ok(h.upstream.requests.every((r) => !r.sentApiKey && r.token !== KEY));
  assert.ok(h.upstream.requests.every((r) => !JSON.stringify(r.query).includes(KEY)));
});

test('a missing or wrong key gets 401 in the route protocol shape, naming the accepted headers', async () => {
  const oa = await send('/v1/chat/completions', openaiBody, { authorization: 'Bearer wrong' });
  assert.equal(oa.status, 401);
  const oaBody = (await oa.json()) as any;
  assert.equal(typeof oaBody.error.message, 'string');
  assert.equal(oaBody.error.type, 'invalid_request_error');
  assert.equal(oaBody.error.code, 'invalid_api_key');
  assert.match(oaBody.error.message, /Authorization: Bearer.*x-api-key.*x-goog-api-key.*\?key=/);

  const an = await send('/v1/messages', anthropicBody);
  assert.equal(an.status, 401);
  const anBody = (await an.json()) as any;
  assert.equal(anBody.type, 'error');
  assert.equal(anBody.error.type, 'authentication_error');
  assert.match(anBody.error.message, /x-api-key/);

  const ge = await send('/v1beta/models/gemini-2.5-flash:generateContent', geminiBody, { 'x-goog-api-key': 'nope' });
  assert.equal(ge.status, 401);
  const geBody = (await ge.json()) as any;
  assert.deepEqual(Object.keys(geBody.error).sort(), ['code', 'message', 'status']);
  assert.equal(geBody.error.code, 401);
  assert.equal(geBody.error.status, 'UNAUTHENTICATED');

  for (const path of ['/v1/models', '/v1beta/models', '/google/drive/v3/files']) {
    assert.equal((await send(path, null)).status, 401, path);
  }
  assert.equal(h.upstream.requests.filter((r) => r.status !== 200).length, 0, 'refused requests never reach the upstream');
});

test('GET /healthz is exempt under all_except_health, not under strict', async () => {
  assert.equal((await send('/healthz', null)).status, 200);
  h.config.auth_mode = 'strict';
  try {
    assert.equal((await send('/healthz', null)).status, 401);
    assert.equal((await send('/healthz', null, { authorization: `Bearer ${KEY}` })).status, 200);
  } finally {
    h.config.auth_mode = 'all_except_health';
  }
});

test('off lets everything through; auto depends on the listen address', async () => {
  h.config.auth_mode = 'off';
  try {
    assert.equal((await send('/v1/chat/completions', openaiBody)).status, 200);
  } finally {
    h.config.auth_mode = 'all_except_health';
  }
  assert.equal(effectiveAuthMode('auto', '127.0.0.1'), 'off');
  assert.equal(effectiveAuthMode('auto', '::1'), 'off');
  assert.equal(effectiveAuthMode('auto', 'localhost'), 'off');
  assert.equal(effectiveAuthMode('auto', '0.0.0.0'), 'all_except_health');
  assert.equal(effectiveAuthMode('auto', '192.168.1.5'), 'all_except_health');
  assert.equal(effectiveAuthMode('strict', '127.0.0.1'), 'strict');
});

test('key comparison checks every key and rejects near misses', () => {
  const keys = [{ key: 'first-key-000' }, { key: KEY }];
  assert.equal(keyMatches(KEY, keys), true);
  assert.equal(keyMatches(KEY.slice(0, -1), keys), false);
  assert.equal(keyMatches(`${KEY}x`, keys), false);
  assert.equal(keyMatches('', keys), false);
  assert.equal(keyMatches(KEY, []), false);
});
