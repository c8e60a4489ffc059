// Google's Cross-Account Protection end to end: security event tokens signed
// by the OIDC stand-in (its RISC configuration document and key set), posted
// to the real gateway's POST /risc as Google pushes them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack.ts';

const OAUTH = 'https://schemas.openid.net/secevent/oauth/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';

let stack: Stack;
const EMAILS = ['r1@example.com', 'r2@example.com', 'r3@example.com', 'r4@example.com', 'r5@example.com', 'r6@example.com'];

before(async () => {
  stack = await startStack();
  for (const email of EMAILS) {
    stack.issuer.addUser({ email });
    assert.equal((await stack.addAccount(email)).status, 200);
  }
});
after(async () => {
  await stack?.close();
});

async function post(token: string, contentType = 'application/secevent+jwt'): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${stack.gateway.url}/risc`, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/json' }, body: token });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

function subjectOf(sub: string) {
  return { subject_type: 'iss-sub', iss: stack.issuer.riscIssuer, sub };
}

async function state(email: string): Promise<{ state: string; reason?: string }> {
  const { body } = await stack.api('GET', '/api/accounts');
  return body.accounts.find((a: any) => a.email === email).state;
}

async function apiAccount(email: string): Promise<any> {
  const { body } = await stack.api('GET', '/api/accounts');
  return body.accounts.find((a: any) => a.email === email);
}

function openai() {
  return new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });
}

test('tokens-revoked disables the account at once, without a refresh, and it stays disabled after a restart', async () => {
  const email = EMAILS[0]!;
  const file = await stack.accountFile(email);
  const refreshesBefore = stack.issuer.counters.refreshRequests;
  const tokenRequestsBefore = stack.issuer.counters.tokenRequests;

  const r = await post(await stack.issuer.securityEvent({ [`${OAUTH}tokens-revoked`]: { subject: subjectOf(file.sub) } }));
  assert.equal(r.status, 202);
  assert.equal(r.body, null, '202 with no body');

  // Out of the pool at once: the live state, the file, and no request is served with it.
  assert.deepEqual(await state(email), { state: 'disabled', reason: 'risc: tokens-revoked' });
  const after1 = await stack.accountFile(email);
  assert.equal(after1.disabled, true);
  assert.equal(after1.disabled_reason, 'risc: tokens-revoked');
  assert.equal(after1.security_events[0].event, 'tokens-revoked');
  stack.upstream.clearRequests();
  const client = openai();
  for (let i = 0; i < 8; i++) await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `after ${i}` }] });
  assert.ok(stack.upstream.requests.length >= 8);
  assert.ok(!stack.upstream.requests.some((q) => q.token === file.token.access_token), 'the disabled account served nothing');
  assert.equal(stack.issuer.counters.refreshRequests, refreshesBefore, 'no refresh was attempted for it');
  assert.equal(stack.issuer.counters.tokenRequests, tokenRequestsBefore, 'the token endpoint saw nothing');

  // The log names the account, never a token.
  const line = stack.logs.lines.find((l) => String(l.msg).startsWith(`Disabling account ${email}`));
  assert.ok(line, stack.logs.messages().slice(-10).join('\n'));
  assert.equal(line.account_id, file.id);
  assert.equal(line.event, 'tokens-revoked');
  assert.ok(!stack.logs.text().includes(file.token.refresh_token));

  await stack.restartGateway();
  assert.deepEqual(await state(email), { state: 'disabled', reason: 'risc: tokens-revoked' });
});

test('token-revoked finds the account by the 16-character prefix of its refresh token, or by its double SHA-512', async () => {
  const [byPrefix, byHash] = [EMAILS[1]!, EMAILS[2]!];
  const a = await stack.accountFile(byPrefix);
  const b = await stack.accountFile(byHash);
  const oauthToken = (alg: string, token: string) => ({ subject: { subject_type: 'oauth_token', token_type: 'refresh_token', token_identifier_alg: alg, token } });

  assert.equal((await post(await stack.issuer.securityEvent({ [`${OAUTH}token-revoked`]: oauthToken('prefix', a.token.refresh_token.slice(0, 16)) }))).status, 202);
  assert.deepEqual(await state(byPrefix), { state: 'disabled', reason: 'risc: token-revoked' });
  assert.equal((await state(byHash)).state, 'active', 'the other account is untouched');

  const hash = createHash('sha512').update(createHash('sha512').update(b.token.refresh_token).digest()).digest('base64');
  assert.equal((await post(await stack.issuer.securityEvent({ [`${OAUTH}token-revoked`]: oauthToken('hash_base64_sha512_sha512', hash) }))).status, 202);
  assert.deepEqual(await state(byHash), { state: 'disabled', reason: 'risc: token-revoked' });
  assert.ok(!stack.logs.text().includes(a.token.refresh_token.slice(0, 16)), 'the prefix is not logged');
  assert.ok(!stack.logs.text().includes(hash), 'the hash is not logged');
});

test('account-disabled carries Google\'s reason into disabled_reason; sessions-revoked is recorded and shown, not disabled', async () => {
  const hijacked = EMAILS[3]!;
  const sessions = EMAILS[4]!;
  const h = await stack.accountFile(hijacked);
  const s = await stack.accountFile(sessions);
  assert.equal((await post(await stack.issuer.securityEvent({ [`${RISC}account-disabled`]: { subject: subjectOf(h.sub), reason: 'hijacking' } }))).status, 202);
  assert.deepEqual(await state(hijacked), { state: 'disabled', reason: 'risc: account-disabled (hijacking)' });

  assert.equal((await post(await stack.issuer.securityEvent({ [`${RISC}sessions-revoked`]: { subject: subjectOf(s.sub) } }))).status, 202);
  assert.equal((await state(sessions)).state, 'active');
  const shown = await apiAccount(sessions);
  assert.equal(shown.security_events.length, 1);
  assert.equal(shown.security_events[0].event, 'sessions-revoked');
  assert.ok(Math.abs(shown.security_events[0].received_at - Date.now() / 1000) < 60);
});

test('a bad signature, a wrong aud, a wrong iss or an unknown kid is a 400 and changes nothing', async () => {
  const email = EMAILS[5]!;
  const file = await stack.accountFile(email);
  const events = { [`${OAUTH}tokens-revoked`]: { subject: subjectOf(file.sub) } };
  const good = await stack.issuer.securityEvent(events);
  const [h, p, sig] = good.split('.');
  const flipped = `${sig!.slice(0, 10)}${sig![10] === 'A' ? 'B' : 'A'}${sig!.slice(11)}`;
  const otherPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), jti: 'forged' })).toString('base64url');
  const cases: [string, string, string][] = [
    ['bad signature', `${h}.${p}.${flipped}`, 'authentication_failed'],
    ['payload swapped under the signature', `${h}.${otherPayload}.${sig}`, 'authentication_failed'],
    ['wrong aud', await stack.issuer.securityEvent(events, { claims: { aud: 'someone-else.apps.googleusercontent.com' } }), 'invalid_audience'],
    ['wrong iss', await stack.issuer.securityEvent(events, { claims: { iss: 'https://accounts.example.com/' } }), 'invalid_issuer'],
    ['unknown kid', await stack.issuer.securityEvent(events, { key: 'unpublished' }), 'invalid_key'],
    ['not a JWT', 'hello', 'invalid_request'],
    ['JSON instead of a token', JSON.stringify({ events }), 'invalid_request'],
  ];
  for (const [name, token, err] of cases) {
    const r = await post(token);
    assert.equal(r.status, 400, name);
    assert.equal(r.body.err, err, name);
    assert.equal(typeof r.body.description, 'string', name);
    assert.ok(!/\n\s+at /.test(r.body.description), `${name}: no stack`);
  }
  const big = await post('a'.repeat(100_000));
  assert.equal(big.status, 400);
  assert.equal((await state(email)).state, 'active');
  assert.deepEqual((await stack.accountFile(email)).security_events, []);
});

test('a replayed jti is handled once, also after a restart', async () => {
  const email = EMAILS[5]!;
  const file = await stack.accountFile(email);
  const token = await stack.issuer.securityEvent({ [`${RISC}account-credential-change-required`]: { subject: subjectOf(file.sub) } });
  assert.equal((await post(token)).status, 202);
  assert.equal((await post(token)).status, 202, 'a redelivery is acknowledged');
  await stack.restartGateway();
  assert.equal((await post(token)).status, 202);
  const shown = await apiAccount(email);
  assert.deepEqual(shown.security_events.map((e: any) => e.event), ['account-credential-change-required'], 'recorded once');
  assert.equal(shown.state.state, 'active', 'credential-change-required does not disable');
  assert.ok(stack.logs.messages().some((m) => m.includes('was handled before')));
});

test('verification is logged with its state; an event for nobody changes nothing', async () => {
  assert.equal((await post(await stack.issuer.securityEvent({ [`${RISC}verification`]: { state: 'grantpool check 42' } }))).status, 202);
  const line = stack.logs.lines.find((l) => l.event === 'verification');
  assert.ok(line);
  assert.equal(line.state, 'grantpool check 42');
  assert.equal((await post(await stack.issuer.securityEvent({ [`${OAUTH}tokens-revoked`]: { subject: subjectOf('99999999999') } }))).status, 202);
  assert.ok(stack.logs.messages().some((m) => /tokens-revoked changes nothing: it names no account/.test(m)));
});

test('re-adding a disabled account enables it again and clears its security events', async () => {
  const email = EMAILS[0]!;
  assert.equal((await state(email)).state, 'disabled');
  assert.equal((await stack.addAccount(email)).status, 200);
  const file = await stack.accountFile(email);
  assert.equal(file.disabled, false);
  assert.equal(file.disabled_reason, null);
  assert.deepEqual(file.security_events, []);
  assert.equal((await state(email)).state, 'active');
});

test('a rotated key is fetched when a token names it; Google unreachable is a 503 that Google retries', async () => {
  const email = EMAILS[5]!;
  const file = await stack.accountFile(email);
  // The keys were fetched for earlier tokens; a new key appears and signs the next one.
  await stack.issuer.rotateRiscKey();
  stack.clock.advance(31_000); // past the refetch cooldown for unknown key ids
  const jwksBefore = stack.issuer.counters.jwksRequests;
  const rotated = await stack.issuer.securityEvent({ [`${RISC}sessions-revoked`]: { subject: subjectOf(file.sub) } });
  assert.equal((await post(rotated)).status, 202);
  assert.equal(stack.issuer.counters.jwksRequests, jwksBefore + 1, 'the key set was fetched again once');

  // A fresh gateway with Google down: 503 with Retry-After, and the event is not marked handled.
  await stack.restartGateway();
  stack.issuer.failRisc(true);
  const token = await stack.issuer.securityEvent({ [`${RISC}account-disabled`]: { subject: subjectOf(file.sub), reason: 'bulk-account' } });
  const down = await post(token);
  assert.equal(down.status, 503);
  assert.ok(Number(down.headers.get('retry-after')) > 0);
  assert.equal((await state(email)).state, 'active');
  const fetches = stack.issuer.counters.riscConfigRequests;
  assert.equal((await post(token)).status, 503);
  assert.equal(stack.issuer.counters.riscConfigRequests, fetches, 'a failed fetch is not repeated at once');
  stack.issuer.failRisc(false);
  stack.clock.advance(31_000);
  assert.equal((await post(token)).status, 202);
  assert.deepEqual(await state(email), { state: 'disabled', reason: 'risc: account-disabled (bulk-account)' });
});
