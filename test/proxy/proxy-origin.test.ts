// Web pages cannot use a gateway that needs no key (SPEC section 5): requests
// from another site and DNS-rebound Host names get 403 in the route's shape;
// with a valid key, cross-origin use is allowed and CORS preflights answered.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';

const KEY = 'gp-origin-test-key-0123456789';
let h: Harness & { fake: FakePool | null };
before(async () => {
  h = await startProxy({ accounts: ['a'], config: { auth_mode: 'off', api_keys: [{ key: KEY, label: 'test', created_at: null }] } });
});
after(() => h.close());

const openaiBody = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
const anthropicBody = JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
const geminiBody = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });

function post(path: string, body: string, headers: Record<string, string> = {}) {
  // text/plain: the "simple" request a page can send without a preflight.
  return fetch(h.url + path, { method: 'POST', headers: { 'content-type': 'text/plain', ...headers }, body });
}

/** A raw request with a chosen Host header (fetch does not let a caller set it). */
function withHost(path: string, host: string, method = 'GET', body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const u = new URL(h.url + path);
    const req = request({ host: u.hostname, port: u.port, path, method, headers: { host, 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('auth off: a request from another site gets 403 in the protocol shape and never reaches the upstream', async () => {
  const before = h.upstream.requests.length;
  const oa = await post('/v1/chat/completions', openaiBody, { origin: 'https://evil.example' });
  assert.equal(oa.status, 403);
  const oaBody = (await oa.json()) as any;
  assert.equal(oaBody.error.type, 'permission_error');
  assert.match(oaBody.error.message, /another site|not from the gateway/i);
  assert.equal(oa.headers.get('access-control-allow-origin'), null, 'the page may not read the answer');

  const an = await post('/v1/messages', anthropicBody, { 'sec-fetch-site': 'cross-site' });
  assert.equal(an.status, 403);
  const anBody = (await an.json()) as any;
  assert.equal(anBody.type, 'error');
  assert.equal(anBody.error.type, 'permission_error');

  const ge = await post('/v1beta/models/gemini-2.5-flash:generateContent', geminiBody, { origin: 'null' });
  assert.equal(ge.status, 403);
  const geBody = (await ge.json()) as any;
  assert.equal(geBody.error.code, 403);
  assert.equal(geBody.error.status, 'PERMISSION_DENIED');

  // Another port on localhost is another origin (a local dev server's page).
  const port = await post('/v1/chat/completions', openaiBody, { origin: 'http://127.0.0.1:3000', 'sec-fetch-site': 'same-site' });
  assert.equal(port.status, 403);
  const google = await fetch(`${h.url}/google/drive/v3/files`, { headers: { origin: 'https://evil.example' } });
  assert.equal(google.status, 403);
  const health = await fetch(`${h.url}/healthz`, { headers: { 'sec-fetch-site': 'cross-site' } });
  assert.equal(health.status, 403);
  assert.equal(h.upstream.requests.length, before, 'refused requests never reach the upstream');
});

test('auth off: programs (no Origin) and the gateway\'s own pages still get through', async () => {
  assert.equal((await post('/v1/chat/completions', openaiBody)).status, 200);
  assert.equal((await post('/v1/chat/completions', openaiBody, { origin: h.url, 'sec-fetch-site': 'same-origin' })).status, 200);
  assert.equal((await post('/v1/chat/completions', openaiBody, { 'sec-fetch-site': 'none' })).status, 200);
  const local = await withHost('/v1/chat/completions', `localhost:${new URL(h.url).port}`, 'POST', openaiBody);
  assert.equal(local.status, 200);
  assert.equal((await withHost('/healthz', '[::1]:8045')).status, 200);
});

test('auth off: a Host that is neither loopback nor the public URL host (DNS rebinding) gets 403', async () => {
  const r = await withHost('/v1/chat/completions', 'rebind.attacker.example:8045', 'POST', openaiBody);
  assert.equal(r.status, 403);
  assert.equal(r.body.error.type, 'permission_error');
  assert.match(r.body.error.message, /Host header names "rebind\.attacker\.example"/);
  const g = await withHost('/v1beta/models', 'rebind.attacker.example');
  assert.equal(g.status, 403);
  assert.equal(g.body.error.status, 'PERMISSION_DENIED');

  // The public URL's host is the gateway's own name.
  h.config.public_url = 'https://gp.example.com';
  try {
    assert.equal((await withHost('/v1/chat/completions', 'gp.example.com', 'POST', openaiBody)).status, 200);
    const own = await post('/v1/chat/completions', openaiBody, { origin: 'https://gp.example.com' });
    assert.equal(own.status, 200);
    assert.equal((await withHost('/v1/chat/completions', 'other.example.com', 'POST', openaiBody)).status, 403);
  } finally {
    h.config.public_url = null;
  }
});

test('with a valid key, cross-origin requests are allowed and readable, and a rebound Host does not matter', async () => {
  const r = await fetch(`${h.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, origin: 'https://chat-app.example', 'sec-fetch-site': 'cross-site' },
    body: openaiBody,
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://chat-app.example');
  assert.match(r.headers.get('vary') ?? '', /origin/i);
  const body = (await r.json()) as any;
  assert.equal(body.object, 'chat.completion');
  assert.equal((await withHost('/v1/chat/completions', 'rebind.attacker.example', 'POST', openaiBody, { 'x-api-key': KEY })).status, 200);

  // A wrong key from a page is refused too (403: it is let in only as a keyless request, which a page may not make).
  const wrong = await post('/v1/chat/completions', openaiBody, { authorization: 'Bearer wrong-key', origin: 'https://chat-app.example' });
  assert.equal(wrong.status, 403);
});

test('CORS preflights are answered on every proxy route, echoing the asked headers', async () => {
  for (const path of ['/v1/chat/completions', '/v1/messages', '/v1beta/models/gemini-2.5-flash:streamGenerateContent', '/v1/models', '/google/drive/v3/files']) {
    const r = await fetch(h.url + path, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://chat-app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, anthropic-version, x-stainless-os',
        'access-control-request-private-network': 'true',
      },
    });
    assert.equal(r.status, 204, path);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://chat-app.example', path);
    assert.match(r.headers.get('access-control-allow-methods') ?? '', /POST/, path);
    assert.equal(r.headers.get('access-control-allow-headers'), 'authorization, content-type, anthropic-version, x-stainless-os', path);
    assert.equal(r.headers.get('access-control-allow-private-network'), 'true', path);
  }
  // A header list that is not a list of tokens is not echoed.
  const bad = await fetch(`${h.url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin: 'https://a.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-a, <script>' },
  });
  assert.equal(bad.status, 204);
  assert.equal(bad.headers.get('access-control-allow-headers'), null);
  // A plain OPTIONS (no preflight) is not a route.
  const plain = await fetch(`${h.url}/v1/chat/completions`, { method: 'OPTIONS' });
  assert.equal(plain.status, 405);
});

test('with a key required, a page with a wrong key can read the 401 (so the app can say so)', async () => {
  h.config.auth_mode = 'all_except_health';
  try {
    const r = await post('/v1/chat/completions', openaiBody, { authorization: 'Bearer nope', origin: 'https://chat-app.example' });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://chat-app.example');
    // The exempt health check is let in without a key, so it is checked like any keyless request.
    assert.equal((await fetch(`${h.url}/healthz`, { headers: { origin: 'https://evil.example' } })).status, 403);
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
  } finally {
    h.config.auth_mode = 'off';
  }
});
