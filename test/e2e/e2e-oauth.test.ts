// Issue 2 end to end: adding Google accounts through the real gateway over
// HTTP, against the OIDC stand-in acting as accounts.google.com.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.ts';
import { CLOUD_PLATFORM, RETRIEVER } from '../support/oidc-issuer.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack.close();
});


test('the consent URL carries everything Google needs', async () => {
  const { body } = await stack.api('POST', '/api/oauth/start', { login_hint: 'hint@example.com' });
  const u = new URL(body.auth_url);
  assert.equal(u.origin + '/', new URL(stack.issuer.url).origin + '/');
  const q = u.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('access_type'), 'offline');
  assert.equal(q.get('prompt'), 'consent');
  assert.equal(q.get('include_granted_scopes'), 'true');
  assert.equal(q.get('login_hint'), 'hint@example.com');
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.ok(q.get('code_challenge'));
  assert.ok((q.get('state') ?? '').length >= 16);
  assert.equal(q.get('redirect_uri'), `http://localhost:${stack.env.GRANTPOOL_PORT}/oauth2callback`);
  for (const s of ['openid', 'email', CLOUD_PLATFORM]) assert.ok(q.get('scope')!.split(' ').includes(s), s);
});

test('a consent adds the account, stored 0600 with its identity and tokens, never shown by the API', async () => {
  stack.issuer.addUser({ email: 'alice@example.com', name: 'Alice' });
  const r = await stack.addAccount('alice@example.com');
  assert.equal(r.status, 200);
  assert.match(r.html, /alice@example\.com/);
  const file = await stack.accountFile('alice@example.com');
  assert.ok(file, 'account file written');
  assert.equal(file.name, 'Alice');
  assert.ok(file.sub);
  assert.ok(file.token.refresh_token && file.token.access_token);
  assert.equal(file.disabled, false);
  const { body } = await stack.api('GET', '/api/accounts');
  const text = JSON.stringify(body);
  assert.ok(!text.includes(file.token.refresh_token) && !text.includes(file.token.access_token), 'no token in the API answer');
  assert.ok(!r.html.includes(file.token.refresh_token));
  assert.equal(body.accounts.find((a: any) => a.email === 'alice@example.com').state.state, 'active');
  const { mode } = await stat(join(stack.dataDir, 'accounts', `${file.id}.json`));
  assert.equal(mode & 0o777, 0o600);
});

test('a wrong, reused or unknown state is refused with 400 and adds nothing', async () => {
  stack.issuer.addUser({ email: 'bob@example.com', name: 'Bob' });
  const { body } = await stack.api('POST', '/api/oauth/start', {});
  const callback = await stack.issuer.consent(body.auth_url, { email: 'bob@example.com' });
  const local = callback.replace(/^http:\/\/localhost:\d+/, stack.gateway.url);
  const forged = new URL(local);
  forged.searchParams.set('state', 'not-the-state');
  const bad = await fetch(forged);
  assert.equal(bad.status, 400);
  assert.equal(await stack.accountFile('bob@example.com'), null);
  const ok = await fetch(local);
  assert.equal(ok.status, 200);
  const again = await fetch(local);
  assert.equal(again.status, 400, 'a state works once');
  assert.match(await again.text(), /already|used/i);
});

test('an expired state (over 10 minutes) is refused', async () => {
  stack.issuer.addUser({ email: 'late@example.com', name: 'Late' });
  const { body } = await stack.api('POST', '/api/oauth/start', {});
  const callback = await stack.issuer.consent(body.auth_url, { email: 'late@example.com' });
  stack.clock.advance(11 * 60_000);
  try {
    const res = await fetch(callback.replace(/^http:\/\/localhost:\d+/, stack.gateway.url));
    assert.equal(res.status, 400);
    assert.match(await res.text(), /expired/i);
    assert.equal(await stack.accountFile('late@example.com'), null);
  } finally {
    stack.clock.advance(-11 * 60_000);
  }
});

test('access_denied is explained in plain words', async () => {
  stack.issuer.addUser({ email: 'denier@example.com' });
  const r = await stack.addAccount('denier@example.com', { deny: true });
  assert.equal(r.status, 400);
  assert.match(r.html, /denied|did not allow|cancel/i);
  assert.equal(await stack.accountFile('denier@example.com'), null);
});

test('granular consent: fewer scopes still add the account and say which are missing', async () => {
  stack.issuer.addUser({ email: 'partial@example.com' });
  const r = await stack.addAccount('partial@example.com', { grantScopes: ['openid', 'email', 'profile', RETRIEVER] });
  assert.equal(r.status, 200);
  assert.match(r.html, /cloud-platform/);
  const file = await stack.accountFile('partial@example.com');
  assert.deepEqual(file.missing_scopes, [CLOUD_PLATFORM]);
});

test('a token answer without refresh_token is explained and adds nothing', async () => {
  stack.issuer.addUser({ email: 'norefresh@example.com' });
  const r = await stack.addAccount('norefresh@example.com', { omitRefreshToken: true });
  assert.equal(r.status, 400);
  assert.match(r.html, /myaccount\.google\.com\/permissions|remove/i);
  assert.equal(await stack.accountFile('norefresh@example.com'), null);
});

test('paste completion: the redirect URL given to POST /api/oauth/complete adds the account, once', async () => {
  stack.issuer.addUser({ email: 'paste@example.com', name: 'Paste' });
  const { body } = await stack.api('POST', '/api/oauth/start', {});
  const callback = await stack.issuer.consent(body.auth_url, { email: 'paste@example.com' });
  const done = await stack.api('POST', '/api/oauth/complete', { callback_url: callback });
  assert.equal(done.status, 201);
  assert.equal(done.body.account.email, 'paste@example.com');
  assert.equal(done.body.created, true);
  const again = await stack.api('POST', '/api/oauth/complete', { callback_url: callback }, { allowError: true });
  assert.equal(again.status, 400);
});

test('re-adding a disabled account with new credentials clears the disable flags and serves it at once', async () => {
  stack.issuer.addUser({ email: 'phoenix@example.com' });
  await stack.addAccount('phoenix@example.com');
  const before = await stack.accountFile('phoenix@example.com');
  await stack.gateway.store.update(before.id, (a) => ({ ...a, disabled: true, disabled_at: 1700000000, disabled_reason: 'invalid_grant: Token has been expired or revoked.' }));
  assert.equal((await stack.api('GET', `/api/accounts/${before.id}`)).body.account.state.state, 'disabled');
  const r = await stack.addAccount('phoenix@example.com');
  assert.equal(r.status, 200);
  const after = await stack.accountFile('phoenix@example.com');
  assert.equal(after.id, before.id, 'same account, upserted by identity');
  assert.equal(after.disabled, false);
  assert.equal(after.disabled_reason, null);
  assert.equal(after.disabled_at, null);
  assert.notEqual(after.token.refresh_token, before.token.refresh_token);
  assert.equal((await stack.api('GET', `/api/accounts/${before.id}`)).body.account.state.state, 'active');
});

test('refresh-token import validates the token and upserts; a dead token is refused', async () => {
  stack.issuer.addUser({ email: 'import@example.com', name: 'Imp' });
  const { body } = await stack.api('POST', '/api/oauth/start', {});
  const callback = await stack.issuer.consent(body.auth_url, { email: 'import@example.com' });
  await stack.api('POST', '/api/oauth/complete', { callback_url: callback });
  const file = await stack.accountFile('import@example.com');
  await stack.api('DELETE', `/api/accounts/${file.id}?revoke=false`);
  const imported = await stack.api('POST', '/api/accounts', { refresh_token: file.token.refresh_token });
  assert.equal(imported.status, 201);
  assert.equal(imported.body.account.email, 'import@example.com');
  assert.ok(!JSON.stringify(imported.body).includes(file.token.refresh_token));
  const dead = await stack.api('POST', '/api/accounts', { refresh_token: 'not-a-real-token' }, { allowError: true });
  assert.ok(dead.status >= 400 && dead.status < 500, `status ${dead.status}`);
  assert.match(dead.body.error.message, /expired|revoked|invalid/i);
  const empty = await stack.api('POST', '/api/accounts', {}, { allowError: true });
  assert.equal(empty.status, 400);
});

test('removal revokes the refresh token at the issuer', async () => {
  stack.issuer.addUser({ email: 'gone@example.com' });
  await stack.addAccount('gone@example.com');
  const file = await stack.accountFile('gone@example.com');
  assert.equal(await stack.issuer.refreshTokenIsActive(file.token.refresh_token), true);
  const r = await stack.api('DELETE', `/api/accounts/${file.id}`);
  assert.equal(r.body.revocation, 'revoked');
  assert.equal(await stack.accountFile('gone@example.com'), null);
  assert.equal(await stack.issuer.refreshTokenIsActive(file.token.refresh_token), false);
  assert.equal((await stack.api('GET', `/api/accounts/${file.id}`, undefined, { allowError: true })).status, 404);
});

test('the management API refuses requests without the admin token', async () => {
  const res = await fetch(`${stack.gateway.url}/api/accounts`);
  assert.equal(res.status, 401);
  const body = await res.json();
  assert.ok(body.error.message);
});

test('fields a person added to an account file never reach an API answer', async () => {
  stack.issuer.addUser({ email: 'extra@example.com' });
  await stack.addAccount('extra@example.com');
  const file = await stack.accountFile('extra@example.com');
  await stack.gateway.store.update(file.id, (a) => ({ ...a, refresh_token: 'LEAKED-top-level-secret', credentials: { client_secret: 'LEAKED-client-secret' } }) as typeof a);
  const { body } = await stack.api('GET', `/api/accounts/${file.id}`);
  const text = JSON.stringify(body) + JSON.stringify((await stack.api('GET', '/api/accounts')).body);
  assert.ok(!text.includes('LEAKED'), text);
  assert.equal(body.account.email, 'extra@example.com');
});
