// Refresh, import and revocation against the oidc-provider stand-in, and the
// classification of refresh failures (by the OAuth error code only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startIssuer, GOOGLE_LIKE_SCOPES, type StandInIssuer } from '../support/oidc-issuer.ts';
import { OAuthClient } from '../../src/oauth/oauth-client.ts';
import { ConsentFlows } from '../../src/oauth/flows.ts';
import { completeConsent, importRefreshToken, type AddAccountDeps } from '../../src/oauth/add-account.ts';
import { OAuthFlowError } from '../../src/oauth/errors.ts';
import type { ClientSecret } from '../../src/oauth/client-secret.ts';
import { RefreshError } from '../../src/oauth/refresh-error.ts';
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import { removeAccount } from '../../src/store/account-ops.ts';
import type { Account } from '../../src/store/account.ts';
import { FakeClock } from '../../src/util/clock.ts';

const REDIRECT = 'http://127.0.0.1:8045/oauth2callback';
let issuer: StandInIssuer;
let realClient: ClientSecret;
const otherClient: ClientSecret = {
  kind: 'web',
  client_id: 'not-registered.apps.googleusercontent.com',
  client_secret: 'GOCSPX-not-a-real-secret',
  redirect_uris: [REDIRECT],
};
let hanging: Server;
let hangingUrl: string;

before(async () => {
  issuer = await startIssuer();
  issuer.allowRedirectUri(REDIRECT);
  realClient = { kind: 'web', client_id: issuer.client.client_id, client_secret: issuer.client.client_secret, redirect_uris: [REDIRECT] };
  // Accepts connections and never answers: for the timeout.
  hanging = createServer(() => {});
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
});

after(async () => {
  issuer.failTokenEndpoint(null);
  hanging.closeAllConnections();
  await new Promise<void>((r) => hanging.close(() => r()));
  await issuer.close();
});

function client(opts: { clients?: ClientSecret[]; clock?: FakeClock; issuerUrl?: string; fetch?: typeof fetch; timeoutMs?: number } = {}) {
  return new OAuthClient({
    issuer: opts.issuerUrl ?? issuer.url,
    scopes: GOOGLE_LIKE_SCOPES,
    redirectUri: REDIRECT,
    clients: opts.clients ?? [realClient],
    clock: opts.clock,
    timeoutMs: opts.timeoutMs ?? 5000,
    fetch: opts.fetch,
  });
}

/** An account added through a real consent. */
async function addedAccount(email: string, clock = new FakeClock(Date.now())): Promise<{ account: Account; deps: AddAccountDeps }> {
  const oauth = client({ clock });
  const store = new MemoryAccountStore();
  const flows = new ConsentFlows({ oauth, clock });
  const deps: AddAccountDeps = { oauth, flows, store, clock };
  const { authUrl } = await flows.start();
  await completeConsent(deps, await issuer.consent(authUrl, { email }));
  const [account] = await store.list();
  return { account: account!, deps };
}

async function refreshError(oauth: OAuthClient, account: Account): Promise<RefreshError> {
  try {
    await oauth.refresh(account);
  } catch (e) {
    assert.ok(e instanceof RefreshError, `a RefreshError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.ok(!e.message.includes(account.token.refresh_token), 'no token in the error');
    assert.ok(e.description.length <= 800);
    return e;
  }
  assert.fail('refresh should have failed');
}

test('refresh: new access token, the refresh token is kept when the answer has none, expiry = now + expires_in', async () => {
  const clock = new FakeClock(Date.now());
  const { account } = await addedAccount('refresh@example.com', clock);
  clock.advance(3_000_000);
  const oauth = client({ clock });
  const before = issuer.counters.refreshRequests;
  const token = await oauth.refresh(account);
  assert.equal(issuer.counters.refreshRequests, before + 1);
  assert.notEqual(token.access_token, account.token.access_token);
  assert.equal(token.refresh_token, account.token.refresh_token, 'Google does not rotate; the old one is kept');
  assert.equal(token.expiry_timestamp, Math.floor(clock.now() / 1000) + 3599);
  assert.equal(token.token_type, 'Bearer');
  assert.deepEqual(token.scope.split(' ').sort(), [...GOOGLE_LIKE_SCOPES].sort());
});

test('a refresh answer with a new refresh_token stores it', () => {
  const oauth = client();
  const token = oauth.toToken(
    { access_token: 'a', refresh_token: 'new-refresh-token', expires_in: 100, scope: null, token_type: 'Bearer', sub: null, client_id: 'c' },
    { refresh_token: 'old-refresh-token', scope: 'openid email' },
  );
  assert.equal(token.refresh_token, 'new-refresh-token');
  assert.equal(token.scope, 'openid email', 'no scope in the answer: the old one stays');
});

test('revoked refresh token → invalid_grant with Google\'s description', async () => {
  const { account } = await addedAccount('revoked@example.com');
  issuer.revokeUser('revoked@example.com');
  const e = await refreshError(client(), account);
  assert.equal(e.kind, 'invalid_grant');
  assert.equal(e.error, 'invalid_grant');
  assert.equal(e.description, 'Token has been expired or revoked.');
  assert.equal(e.status, 400);
});

test('invalid_client from the token endpoint → client (not the account\'s fault)', async () => {
  const { account } = await addedAccount('client@example.com');
  issuer.failTokenEndpoint('invalid_client');
  try {
    const e = await refreshError(client(), account);
    assert.equal(e.kind, 'client');
    assert.equal(e.error, 'invalid_client');
  } finally {
    issuer.failTokenEndpoint(null);
  }
  // And a wrong client secret at the real endpoint.
  const wrongSecret = client({ clients: [{ ...realClient, client_secret: 'GOCSPX-wrong' }] });
  const e2 = await refreshError(wrongSecret, account);
  assert.equal(e2.kind, 'client');
  assert.equal(e2.error, 'invalid_client');
});

test('5xx and Google\'s HTML 403 under refresh storms → transient', async () => {
  const { account } = await addedAccount('storm@example.com');
  try {
    issuer.failTokenEndpoint('500');
    const e500 = await refreshError(client(), account);
    assert.equal(e500.kind, 'transient');
    assert.equal(e500.status, 500);
    issuer.failTokenEndpoint('html403');
    const e403 = await refreshError(client(), account);
    assert.equal(e403.kind, 'transient');
    assert.equal(e403.error, 'non_json');
    assert.equal(e403.status, 403);
    assert.match(e403.description, /text\/html/);
  } finally {
    issuer.failTokenEndpoint(null);
  }
  assert.ok((await client().refresh(account)).access_token, 'works again afterwards');
});

test('network errors and timeouts → transient', async () => {
  const { account } = await addedAccount('net@example.com');
  const oauth = client();
  await oauth.discover();
  // Connection refused: the token request goes to a port nobody listens on.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  let n = 0;
  const refusing = client({
    fetch: (async (url: string | URL | Request, init?: RequestInit) => {
      n++;
      if (n === 1) return fetch(url, init); // discovery
      return fetch(`http://127.0.0.1:${closedPort}/token`, init);
    }) as typeof fetch,
  });
  const eNet = await refreshError(refusing, account);
  assert.equal(eNet.kind, 'transient');
  assert.equal(eNet.error, 'network');
  assert.match(eNet.description, /ECONNREFUSED/);

  const slow = client({
    timeoutMs: 300,
    fetch: (async (url: string | URL | Request, init?: RequestInit) =>
      String(url).endsWith('/token') ? fetch(`${hangingUrl}/token`, init) : fetch(url, init)) as typeof fetch,
  });
  const eTimeout = await refreshError(slow, account);
  assert.equal(eTimeout.kind, 'transient');
  assert.equal(eTimeout.error, 'timeout');
});

test('an account is refreshed with the client that issued its token; unknown client → client error', async () => {
  const { account } = await addedAccount('two-clients@example.com');
  // The primary (first) client is another one; the account records the real one.
  const oauth = client({ clients: [otherClient, realClient] });
  const token = await oauth.refresh(account);
  assert.ok(token.access_token);
  // An account without a recorded client is refreshed with the primary, which the issuer does not know.
  const legacy = await refreshError(oauth, { ...account, oauth_client_id: null });
  assert.equal(legacy.kind, 'client');
  // An account whose client is no longer configured.
  const gone = await refreshError(client(), { ...account, oauth_client_id: 'deleted.apps.googleusercontent.com' });
  assert.equal(gone.kind, 'client');
  assert.equal(gone.error, 'unknown_client');
});

test('discovery is cached, and retried after a failure', async () => {
  let calls = 0;
  let failNext = true;
  const oauth = client({
    fetch: (async (url: string | URL | Request, init?: RequestInit) => {
      if (String(url).includes('/.well-known/openid-configuration')) {
        calls++;
        if (failNext) {
          failNext = false;
          throw new TypeError('fetch failed');
        }
      }
      return fetch(url, init);
    }) as typeof fetch,
  });
  await assert.rejects(oauth.discover(), (e: OAuthFlowError) => e.code === 'issuer_unreachable' && e.status === 502);
  const meta = await oauth.discover();
  assert.equal(meta.token_endpoint, `${issuer.url}/token`);
  await oauth.discover();
  assert.equal(calls, 2, 'one failed and one successful discovery, then cached');
});

test('an http issuer is refused unless it is on loopback', () => {
  assert.throws(() => client({ issuerUrl: 'http://accounts.example.com' }), /must use https/);
  assert.doesNotThrow(() => client({ issuerUrl: 'http://localhost:9' }));
});

test('refresh-token import: validated by refreshing, identity from userinfo, upserted', async () => {
  const { account } = await addedAccount('import@example.com');
  const oauth = client({ clients: [otherClient, realClient] });
  const store = new MemoryAccountStore();
  const deps: AddAccountDeps = { oauth, store };
  const before = issuer.counters.refreshRequests;
  const r = await importRefreshToken(deps, `  ${account.token.refresh_token} `);
  assert.ok(issuer.counters.refreshRequests > before, 'validated at the issuer');
  assert.equal(r.created, true);
  assert.equal(r.account.email, 'import@example.com');
  assert.equal(r.account.sub, account.sub);
  assert.deepEqual(r.missing_scopes, []);
  const [stored] = await store.list();
  assert.equal(stored!.token.refresh_token, account.token.refresh_token);
  assert.equal(stored!.oauth_client_id, realClient.client_id, 'records the client that accepted the token');
  const again = await importRefreshToken(deps, account.token.refresh_token);
  assert.equal(again.created, false);
  assert.equal((await store.list()).length, 1);
});

test('import of a dead refresh token: invalid_grant in plain words, nothing added', async () => {
  const store = new MemoryAccountStore();
  const deps: AddAccountDeps = { oauth: client(), store };
  const bogus = 'this-refresh-token-does-not-exist';
  await assert.rejects(importRefreshToken(deps, bogus), (e: OAuthFlowError) => {
    assert.equal(e.code, 'invalid_grant');
    assert.match(e.fix, /Add the account again/);
    assert.ok(!e.message.includes(bogus));
    return true;
  });
  issuer.failTokenEndpoint('500');
  try {
    await assert.rejects(importRefreshToken(deps, bogus), (e: OAuthFlowError) => e.code === 'issuer_unreachable' && e.status === 502);
  } finally {
    issuer.failTokenEndpoint(null);
  }
  assert.equal((await store.list()).length, 0);
});

test('removal with revocation: afterwards the refresh token gets invalid_grant at the issuer', async () => {
  const { account, deps } = await addedAccount('remove@example.com');
  assert.equal(await issuer.refreshTokenIsActive(account.token.refresh_token), true);
  const oauth = deps.oauth;
  const result = await removeAccount(deps.store, account, (a) => oauth.revoke(a.token.refresh_token, a.oauth_client_id));
  assert.equal(result.revocation, 'revoked');
  assert.equal(await deps.store.get(account.id), null);
  assert.equal(await issuer.refreshTokenIsActive(account.token.refresh_token), false);
  const e = await refreshError(client(), account);
  assert.equal(e.kind, 'invalid_grant');
  // Revoking again: the issuer no longer knows the token, which counts as done.
  assert.equal(await oauth.revoke(account.token.refresh_token, account.oauth_client_id), 'already_revoked');
});
