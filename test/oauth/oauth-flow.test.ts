// The whole add-account path against a real OIDC issuer (oidc-provider stand-in):
// consent URL → consent at the issuer → GET /oauth2callback on a small node:http
// server that mounts the callback handler → account in the store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { startIssuer, CLOUD_PLATFORM, RETRIEVER, GOOGLE_LIKE_SCOPES, type StandInIssuer } from '../support/oidc-issuer.ts';
import { OAuthClient } from '../../src/oauth/oauth-client.ts';
import { ConsentFlows } from '../../src/oauth/flows.ts';
import { completeConsent, missingScopes, type AddAccountDeps } from '../../src/oauth/add-account.ts';
import { oauthCallbackHandler } from '../../src/oauth/callback-route.ts';
import { OAuthFlowError } from '../../src/oauth/errors.ts';
import { Router } from '../../src/http/router.ts';
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { createLogger } from '../../src/log/logger.ts';

let issuer: StandInIssuer;
let server: Server;
let redirectUri: string;
let current: AddAccountDeps | null = null;
const logLines: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  }),
});

before(async () => {
  issuer = await startIssuer();
  const router = new Router();
  router.on('GET', '/oauth2callback', oauthCallbackHandler({ addAccount: () => current, logger }));
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const found = router.match(req.method ?? 'GET', url.pathname);
    if (!found || 'allowed' in found) {
      res.writeHead(404).end();
      return;
    }
    Promise.resolve(found.handler({ req, res, url, params: found.params })).catch((e) => {
      res.writeHead(500).end(String(e));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2callback`;
  issuer.allowRedirectUri(redirectUri);
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await issuer.close();
});

/** A fresh gateway side: store, OAuth client, pending consents; the callback server uses it. */
function gateway(opts: { clock?: FakeClock } = {}) {
  const clock = opts.clock ?? new FakeClock(Date.now());
  const store = new MemoryAccountStore();
  const oauth = new OAuthClient({
    issuer: issuer.url,
    scopes: GOOGLE_LIKE_SCOPES,
    redirectUri,
    clients: [{ kind: 'web', client_id: issuer.client.client_id, client_secret: issuer.client.client_secret, redirect_uris: [redirectUri] }],
    logger,
    timeoutMs: 5000,
    clock,
  });
  const flows = new ConsentFlows({ oauth, clock });
  const deps: AddAccountDeps = { oauth, flows, store, clock, logger };
  current = deps;
  return { clock, store, oauth, flows, deps };
}

/** The browser following the issuer's redirect to the gateway. */
async function visit(url: string) {
  const r = await fetch(url, { redirect: 'manual' });
  const html = await r.text();
  const outcome = /data-outcome="([^"]+)"/.exec(html)?.[1];
  const error = /data-error="([^"]+)"/.exec(html)?.[1];
  return { status: r.status, html, outcome, error };
}

test('consent URL carries every parameter Google needs', async () => {
  const { flows } = gateway();
  const { authUrl, state } = await flows.start({ loginHint: 'ada@example.com' });
  const u = new URL(authUrl);
  assert.equal(u.origin + u.pathname, `${issuer.url}/o/oauth2/v2/auth`, 'from discovery');
  const q = u.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), issuer.client.client_id);
  assert.equal(q.get('redirect_uri'), redirectUri);
  assert.deepEqual(q.get('scope')?.split(' '), GOOGLE_LIKE_SCOPES);
  assert.equal(q.get('access_type'), 'offline');
  assert.equal(q.get('prompt'), 'consent');
  assert.equal(q.get('include_granted_scopes'), 'true');
  assert.equal(q.get('login_hint'), 'ada@example.com');
  assert.equal(q.get('state'), state);
  assert.ok(state.length >= 32, 'state is long and random');
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
  const other = await flows.start();
  assert.notEqual(other.state, state, 'one state per flow');
  assert.notEqual(new URL(other.authUrl).searchParams.get('code_challenge'), q.get('code_challenge'), 'one verifier per flow');
  assert.equal(new URL(other.authUrl).searchParams.has('login_hint'), false);
});

test('success: the account is added with identity, refresh token and client id; the page names it and shows no token', async () => {
  const { flows, store } = gateway();
  issuer.addUser({ email: 'ada@example.com', name: 'Ada Lovelace' });
  const { authUrl } = await flows.start({ loginHint: 'ada@example.com' });
  const callback = await issuer.consent(authUrl, { email: 'ada@example.com' });
  const logStart = logLines.length;
  const page = await visit(callback);
  assert.equal(page.status, 200, page.html);
  assert.equal(page.outcome, 'added');
  assert.match(page.html, /ada@example\.com/);
  assert.match(page.html, /Ada Lovelace/);
  assert.doesNotMatch(page.html, /data-missing-scopes/);

  const accounts = await store.list();
  assert.equal(accounts.length, 1);
  const a = accounts[0]!;
  assert.equal(a.email, 'ada@example.com');
  assert.equal(a.name, 'Ada Lovelace');
  assert.match(a.sub ?? '', /^\d{21}$/);
  assert.equal(a.oauth_client_id, issuer.client.client_id);
  assert.ok(a.token.refresh_token.length > 10);
  assert.ok(a.token.access_token.length > 10);
  assert.equal(a.token.token_type, 'Bearer');
  assert.ok(a.token.expiry_timestamp > Date.now() / 1000 + 3000, 'expiry = now + expires_in');
  assert.deepEqual(a.missing_scopes, []);
  assert.equal(a.disabled, false);
  assert.match(a.id, /^[a-f0-9]{32}$/);

  const code = new URL(callback).searchParams.get('code')!;
  for (const secret of [a.token.refresh_token, a.token.access_token, code, issuer.client.client_secret]) {
    assert.ok(!page.html.includes(secret), 'no token or code on the page');
    assert.ok(!logLines.slice(logStart).join('').includes(secret), 'no token or code in the log');
  }
  assert.ok(logLines.slice(logStart).some((l) => l.includes('Account added (ada@example.com)')));
});

test('wrong state: 400, nothing added, no token request', async () => {
  const { flows, store } = gateway();
  const { authUrl } = await flows.start();
  const callback = new URL(await issuer.consent(authUrl, { email: 'mallory@example.com' }));
  callback.searchParams.set('state', 'not-a-state-this-gateway-made');
  const before = issuer.counters.tokenRequests;
  const page = await visit(callback.href);
  assert.equal(page.status, 400);
  assert.equal(page.error, 'state_unknown');
  assert.match(page.html, /not started here/);
  assert.equal((await store.list()).length, 0);
  assert.equal(issuer.counters.tokenRequests, before);

  const noState = new URL(callback);
  noState.searchParams.delete('state');
  const page2 = await visit(noState.href);
  assert.equal(page2.status, 400);
  assert.equal(page2.error, 'state_missing');
});

test('reused state: the second visit gets 400 and changes nothing', async () => {
  const { flows, store } = gateway();
  const { authUrl } = await flows.start();
  const callback = await issuer.consent(authUrl, { email: 'reuse@example.com' });
  assert.equal((await visit(callback)).outcome, 'added');
  const stored = await store.list();
  const tokensBefore = issuer.counters.tokenRequests;
  const again = await visit(callback);
  assert.equal(again.status, 400);
  assert.equal(again.error, 'state_used');
  assert.match(again.html, /already finished/);
  assert.deepEqual(await store.list(), stored);
  assert.equal(issuer.counters.tokenRequests, tokensBefore, 'the code is not sent again');
});

test('expired state (10 minutes, fake clock): 400, nothing added', async () => {
  const clock = new FakeClock(Date.now());
  const { flows, store } = gateway({ clock });
  const late = await flows.start();
  const inTime = await flows.start();
  const lateCallback = await issuer.consent(late.authUrl, { email: 'slow@example.com' });
  const inTimeCallback = await issuer.consent(inTime.authUrl, { email: 'quick@example.com' });
  clock.advance(9 * 60 * 1000 + 59 * 1000);
  assert.equal((await visit(inTimeCallback)).outcome, 'added', 'still valid just before 10 minutes');
  clock.advance(2000);
  const page = await visit(lateCallback);
  assert.equal(page.status, 400);
  assert.equal(page.error, 'state_expired');
  assert.match(page.html, /10 minutes/);
  assert.deepEqual((await store.list()).map((a) => a.email), ['quick@example.com']);
  assert.equal((await visit(lateCallback)).error, 'state_expired', 'still expired (not "already used") on a second visit');
  assert.deepEqual(await flows.take('never-issued'), { ok: false, reason: 'unknown' });
  // Nothing is left pending: one consent was used, the other expired.
  assert.deepEqual(await flows.take(inTime.state), { ok: false, reason: 'used' });
  assert.deepEqual(await flows.take(late.state), { ok: false, reason: 'expired' });
});

test('access_denied: explained in plain words, nothing added', async () => {
  const { flows, store } = gateway();
  const { authUrl } = await flows.start();
  const callback = await issuer.consent(authUrl, { email: 'no@example.com', deny: true });
  assert.equal(new URL(callback).searchParams.get('error'), 'access_denied');
  const page = await visit(callback);
  assert.equal(page.status, 400);
  assert.equal(page.error, 'access_denied');
  assert.match(page.html, /Access was not granted/);
  assert.match(page.html, /Allow/);
  assert.equal((await store.list()).length, 0);
  // The state was used by the error answer.
  assert.equal((await visit(callback)).error, 'state_used');
});

test('Google errors sent to the callback get their own page', async () => {
  const { flows } = gateway();
  for (const code of ['admin_policy_enforced', 'disallowed_useragent', 'org_internal', 'invalid_client', 'invalid_request', 'redirect_uri_mismatch', 'something_new']) {
    const { state } = await flows.start();
    const page = await visit(`${redirectUri}?error=${code}&error_description=${encodeURIComponent('details from Google')}&state=${state}`);
    assert.equal(page.outcome, 'error');
    assert.equal(page.error, code);
    assert.ok(page.status >= 400);
    assert.match(page.html, /What to do/);
    assert.match(page.html, /details from Google/);
    if (code === 'redirect_uri_mismatch') assert.ok(page.html.includes(redirectUri), 'names the redirect URI to register');
    if (code === 'something_new') assert.match(page.html, /Google reported an error/);
  }
});

test('reduced scopes (granular consent): added, and the page and account say what is missing', async () => {
  const { flows, store } = gateway();
  const { authUrl } = await flows.start();
  const callback = await issuer.consent(authUrl, {
    email: 'partial@example.com',
    grantScopes: ['openid', 'email', 'profile', CLOUD_PLATFORM],
  });
  const page = await visit(callback);
  assert.equal(page.status, 200);
  assert.equal(page.outcome, 'added');
  assert.match(page.html, /data-missing-scopes/);
  assert.ok(page.html.includes(RETRIEVER));
  const [a] = await store.list();
  assert.deepEqual(a!.missing_scopes, [RETRIEVER]);
  assert.ok(a!.token.scope.split(' ').includes(CLOUD_PLATFORM));
  assert.ok(!a!.token.scope.split(' ').includes(RETRIEVER));
});

test('missing refresh token: explained (remove the app access, add again), nothing added', async () => {
  const { flows, store } = gateway();
  const { authUrl } = await flows.start();
  const callback = await issuer.consent(authUrl, { email: 'again@example.com', omitRefreshToken: true });
  const page = await visit(callback);
  assert.equal(page.status, 400);
  assert.equal(page.error, 'no_refresh_token');
  assert.match(page.html, /again@example\.com/);
  assert.match(page.html, /https:\/\/myaccount\.google\.com\/permissions/);
  assert.equal((await store.list()).length, 0);
});

test('re-adding a disabled account clears disabled*, keeps id, created_at and proxy_disabled', async () => {
  const clock = new FakeClock(Date.now());
  const { flows, store } = gateway({ clock });
  const first = await flows.start();
  assert.equal((await visit(await issuer.consent(first.authUrl, { email: 'back@example.com' }))).outcome, 'added');
  const [original] = await store.list();
  await store.update(original!.id, (a) => ({
    ...a,
    project_id: 'my-project',
    disabled: true,
    disabled_at: 1700000000,
    disabled_reason: 'invalid_grant: Token has been expired or revoked.',
    proxy_disabled: true,
    proxy_disabled_at: 1700000001,
    proxy_disabled_reason: 'manual',
  }));
  issuer.revokeUser('back@example.com');
  clock.advance(60_000);

  const second = await flows.start();
  const page = await visit(await issuer.consent(second.authUrl, { email: 'back@example.com' }));
  assert.equal(page.status, 200);
  assert.equal(page.outcome, 'reenabled');
  const accounts = await store.list();
  assert.equal(accounts.length, 1, 'upserted by identity, not duplicated');
  const a = accounts[0]!;
  assert.equal(a.id, original!.id);
  assert.equal(a.created_at, original!.created_at);
  assert.equal(a.project_id, 'my-project');
  assert.equal(a.disabled, false);
  assert.equal(a.disabled_at, null);
  assert.equal(a.disabled_reason, null);
  assert.equal(a.proxy_disabled, true, 'a person took it out of the proxy; that stays');
  assert.equal(a.proxy_disabled_reason, 'manual');
  assert.notEqual(a.token.refresh_token, original!.token.refresh_token);
});

test('paste completion: a copied redirect URL (with spaces) or its query string finishes the flow; same state rules', async () => {
  const { flows, store, deps } = gateway();
  const one = await flows.start();
  const pasted = `  ${await issuer.consent(one.authUrl, { email: 'remote@example.com' })}\n`;
  const r = await completeConsent(deps, pasted);
  assert.equal(r.created, true);
  assert.equal(r.account.email, 'remote@example.com');
  assert.equal('refresh_token' in r.account.token, false, 'the result carries no token');
  await assert.rejects(completeConsent(deps, pasted), (e: OAuthFlowError) => e.code === 'state_used' && e.status === 400);

  const two = await flows.start();
  const query = new URL(await issuer.consent(two.authUrl, { email: 'remote2@example.com' })).search;
  assert.equal((await completeConsent(deps, query)).account.email, 'remote2@example.com');
  await assert.rejects(completeConsent(deps, 'hello there'), (e: OAuthFlowError) => e.code === 'invalid_callback_url');
  assert.equal((await store.list()).length, 2);
});

test('no OAuth client configured: the callback says so', async () => {
  current = null;
  const page = await visit(`${redirectUri}?code=x&state=y`);
  assert.equal(page.status, 503);
  assert.equal(page.error, 'client_not_configured');
  assert.match(page.html, /client_secret\.json/);
});

test('HEAD does not use up the state', async () => {
  const { flows } = gateway();
  const { authUrl } = await flows.start();
  const callback = await issuer.consent(authUrl, { email: 'head@example.com' });
  const head = await fetch(callback, { method: 'HEAD' });
  assert.equal(head.status, 405);
  assert.equal((await visit(callback)).outcome, 'added');
});

test('granted scopes as Google names them: userinfo.email / userinfo.profile count as email / profile', () => {
  const granted = 'openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile ' + CLOUD_PLATFORM;
  assert.deepEqual(missingScopes(GOOGLE_LIKE_SCOPES, granted), [RETRIEVER]);
  assert.deepEqual(missingScopes(GOOGLE_LIKE_SCOPES, null), [], 'no scope in the answer: as requested (RFC 6749 5.1)');
  assert.deepEqual(missingScopes(GOOGLE_LIKE_SCOPES, 'openid'), ['email', 'profile', CLOUD_PLATFORM, RETRIEVER]);
});
