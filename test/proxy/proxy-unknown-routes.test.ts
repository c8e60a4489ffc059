// A path under the doors that no route takes: the key check first, then a 404
// (or a 405 with Allow) in the shape of the protocol the path belongs to, and
// a log line.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';
import { createLogger } from '../../src/log/logger.ts';
import { LogCapture } from '../support/stack.ts';

const KEY = 'gp-test-key-0123456789';
const logs = new LogCapture();
let h: Harness & { fake: FakePool | null };
before(async () => {
  h = await startProxy({
    accounts: ['a'],
    config: { auth_mode: 'all_except_health', api_keys: [{ key: KEY, label: 'test', created_at: null }] },
    logger: createLogger({ destination: logs.stream, level: 'info' }),
  });
});
after(() => h.close());

async function call(method: string, path: string, headers: Record<string, string> = {}) {
  const r = await fetch(h.url + path, { method, headers });
  return { status: r.status, allow: r.headers.get('allow'), type: r.headers.get('content-type'), body: (await r.json()) as any };
}

test('an unknown /v1 path is a 404 in OpenAI shape, after the key check, and is logged', async () => {
  const noKey = await call('POST', '/v1/completions');
  assert.equal(noKey.status, 401);
  assert.equal(noKey.body.error.code, 'invalid_api_key');
  const r = await call('POST', '/v1/completions', { authorization: `Bearer ${KEY}` });
  assert.equal(r.status, 404);
  assert.match(r.type!, /application\/json/);
  assert.equal(typeof r.body.error.message, 'string');
  assert.match(r.body.error.message, /\/v1\/completions/);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message', 'param', 'type'], 'the OpenAI error shape');
  assert.equal(r.body.error.code, 'not_found');
  assert.ok(logs.lines.some((l) => l.path === '/v1/completions' && l.status === 404 && l.protocol === 'openai'), logs.text());
  assert.ok(logs.lines.some((l) => l.path === '/v1/completions' && l.status === 401), 'the refused attempt is logged too');
});

test('an unknown /v1 path from an Anthropic client is a 404 in Anthropic shape', async () => {
  const r = await call('POST', '/v1/messages/batches', { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' });
  assert.equal(r.status, 404);
  assert.equal(r.body.type, 'error');
  assert.equal(r.body.error.type, 'not_found_error');
  const noKey = await call('POST', '/v1/messages/batches', { 'anthropic-version': '2023-06-01' });
  assert.equal(noKey.status, 401);
  assert.equal(noKey.body.error.type, 'authentication_error');
});

test('an unknown /v1beta path is a 404 in Google shape', async () => {
  const r = await call('GET', '/v1beta/cachedContents', { 'x-goog-api-key': KEY });
  assert.equal(r.status, 404);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message', 'status']);
  assert.equal(r.body.error.code, 404);
  assert.equal(r.body.error.status, 'NOT_FOUND');
  assert.ok(logs.lines.some((l) => l.path === '/v1beta/cachedContents' && l.status === 404 && l.protocol === 'gemini'), logs.text());
});

test('a wrong method on a door is 405 with Allow, in the door protocol shape', async () => {
  const r = await call('GET', '/v1/chat/completions', { authorization: `Bearer ${KEY}` });
  assert.equal(r.status, 405);
  assert.equal(r.allow, 'POST, OPTIONS', 'browsers may preflight a door (CORS with a key)');
  assert.equal(r.body.error.code, 'method_not_allowed');
  assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message', 'param', 'type']);
  const g = await call('DELETE', '/v1beta/models', { 'x-goog-api-key': KEY });
  assert.equal(g.status, 405);
  assert.equal(g.allow, 'GET, OPTIONS');
  assert.equal(g.body.error.code, 405);
  assert.equal(g.body.error.status, 'UNIMPLEMENTED');
});
