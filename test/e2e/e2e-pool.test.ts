// Issue 3 end to end: the invalid_grant lesson through the real gateway, the
// OIDC stand-in and the Gemini API stand-in, driven by the official SDKs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
const EMAILS = ['p1@example.com', 'p2@example.com', 'p3@example.com'];

before(async () => {
  stack = await startStack();
  for (const email of EMAILS) {
    stack.issuer.addUser({ email, name: email });
    const r = await stack.addAccount(email);
    assert.equal(r.status, 200);
  }
});
after(async () => {
  await stack.close();
});


function openai() {
  return new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });
}

test('requests rotate over the accounts through the OpenAI SDK and the Gen AI SDK', async () => {
  stack.upstream.clearRequests();
  const client = openai();
  for (let i = 0; i < 6; i++) {
    const r = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `hello ${i}` }] });
    assert.equal(r.choices[0]!.message.role, 'assistant');
    assert.ok(r.choices[0]!.message.content);
  }
  const genai = new GoogleGenAI({ apiKey: 'unused', httpOptions: { baseUrl: stack.gateway.url } });
  const g = await genai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' });
  assert.ok(g.text);
  const tokens = new Set(stack.upstream.requests.filter((r) => r.action === 'generateContent').map((r) => r.token));
  assert.equal(tokens.size, 3, 'every account served some requests');
});

test('a revoked account is disabled persistently with the reason and log lines, and no request fails', async () => {
  const victim = await stack.accountFile('p2@example.com');
  stack.issuer.revokeUser('p2@example.com');
  const client = openai();
  for (let i = 0; i < 9; i++) {
    const r = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `after revoke ${i}` }] });
    assert.ok(r.choices[0]!.message.content, 'served by another account');
  }
  const file = await stack.accountFile('p2@example.com');
  assert.equal(file.disabled, true);
  assert.ok(Math.abs(file.disabled_at - Date.now() / 1000) < 120);
  assert.match(file.disabled_reason, /^invalid_grant: /);
  assert.ok(file.disabled_reason.length <= 800);
  assert.ok(!file.disabled_reason.includes(victim.token.refresh_token));
  const msgs = stack.logs.messages();
  assert.ok(msgs.some((m) => /^Token refresh failed \(p2@example\.com\): invalid_grant\b.*, trying next account$/.test(m)), msgs.join('\n'));
  assert.ok(msgs.includes('Disabling account due to invalid_grant (p2@example.com): refresh_token likely revoked/expired'));
  const { body } = await stack.api('GET', `/api/accounts/${victim.id}`);
  assert.equal(body.account.state.state, 'disabled');
  assert.match(body.account.state.reason, /^invalid_grant: /);
  const status = await stack.api('GET', '/api/status');
  assert.equal(status.body.pool.by_state.disabled, 1);
  for (const secret of [victim.token.refresh_token, victim.token.access_token]) assert.ok(!stack.logs.text().includes(secret), 'no token in the log');
});

test('a restart keeps the disabled account out; re-adding it brings it back without a restart', async () => {
  await stack.restartGateway();
  stack.upstream.clearRequests();
  const client = openai();
  for (let i = 0; i < 6; i++) await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'x' }] });
  const victim = await stack.accountFile('p2@example.com');
  const used = new Set(stack.upstream.requests.map((r) => r.token));
  assert.ok(!used.has(victim.token.access_token), 'the disabled account is not used after a restart');
  assert.equal(used.size, 2);

  const r = await stack.addAccount('p2@example.com');
  assert.equal(r.status, 200);
  assert.match(r.html, /re-?enabled|enabled again|back/i);
  const back = await stack.accountFile('p2@example.com');
  assert.equal(back.disabled, false);
  stack.upstream.clearRequests();
  for (let i = 0; i < 6; i++) await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'y' }] });
  assert.ok(new Set(stack.upstream.requests.map((r) => r.token)).has(back.token.access_token), 'served again at once');
});

test('expired tokens are refreshed; an issuer failing with 500 or HTML 403 disables nothing and the pool recovers', async () => {
  stack.clock.advance(2 * 3600_000);
  try {
    stack.issuer.failTokenEndpoint('html403');
    const client = openai();
    const failed = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'z' }] }).catch((e) => e);
    assert.ok(failed instanceof OpenAI.APIError, 'no account can serve while every refresh fails');
    assert.ok([429, 503].includes(failed.status), `status ${failed.status}`);
    stack.issuer.failTokenEndpoint('500');
    await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'z' }] }).catch(() => {});
    for (const email of EMAILS) assert.equal((await stack.accountFile(email)).disabled, false, `${email} not disabled for a transient error`);
    stack.issuer.failTokenEndpoint(null);
    stack.clock.advance(11 * 60_000); // past the longest backoff
    const before = stack.issuer.counters.refreshRequests;
    const ok = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'z' }] });
    assert.ok(ok.choices[0]!.message.content);
    assert.ok(stack.issuer.counters.refreshRequests > before, 'the token was refreshed at the issuer');
  } finally {
    stack.issuer.failTokenEndpoint(null);
  }
});

test('invalid_client disables no account; /api/status names the failing client and since when', async () => {
  stack.clock.advance(2 * 3600_000);
  try {
    stack.issuer.failTokenEndpoint('invalid_client');
    const failedAt = Math.floor(stack.clock.now() / 1000);
    await openai().chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'c' }] }).catch(() => {});
    for (const email of EMAILS) assert.equal((await stack.accountFile(email)).disabled, false, `${email} not disabled for a client error`);
    const { body } = await stack.api('GET', '/api/status');
    const failing = body.oauth.clients.filter((c: { failing: boolean }) => c.failing);
    assert.equal(failing.length, 1, JSON.stringify(body.oauth));
    assert.match(failing[0].error, /^invalid_client/);
    assert.ok(Math.abs(failing[0].since - failedAt) < 5, `since ${failing[0].since}, failed at ${failedAt} (unix seconds)`);
  } finally {
    stack.issuer.failTokenEndpoint(null);
    stack.clock.advance(11 * 60_000); // past the client's retry wait
  }
});

test('an account that did not grant a Gemini scope is never used for the Gemini API, and no request fails for it', async () => {
  stack.issuer.addUser({ email: 'noscope@example.com' });
  const r = await stack.addAccount('noscope@example.com', { grantScopes: ['openid', 'email', 'profile'] });
  assert.equal(r.status, 200);
  const file = await stack.accountFile('noscope@example.com');
  assert.ok(file.missing_scopes.length >= 2);
  stack.upstream.clearRequests();
  const client = openai();
  for (let i = 0; i < 8; i++) await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 's' }] });
  assert.ok(!stack.upstream.requests.some((q) => q.token === file.token.access_token));
});
