// Dashboard login over plain HTTP against the real gateway: nothing readable
// without a session, HttpOnly SameSite=Strict cookie, CSRF-safe mutations, logout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../src/app/gateway.ts';
import { silentLogger } from '../../src/log/logger.ts';

const ADMIN = 'admin-token-for-session-tests';
let gw: Gateway;

before(async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-session-'));
  gw = await startGateway({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_PORT: '0', GRANTPOOL_ADMIN_TOKEN: ADMIN }, logger: silentLogger() });
});
after(async () => {
  await gw.close();
});

function login(token: string, headers: Record<string, string> = {}) {
  return fetch(`${gw.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gw.url, ...headers },
    body: new URLSearchParams({ token }).toString(),
  });
}

test('without a session only the login page is served, and the API refuses', async () => {
  const page = await (await fetch(`${gw.url}/`)).text();
  assert.match(page, /Admin token/);
  assert.doesNotMatch(page, /grantpool-csrf/);
  assert.equal((await fetch(`${gw.url}/api/accounts`)).status, 401);
  assert.equal((await fetch(`${gw.url}/assets/app.js`)).status, 401);
});

test('a wrong token is refused; the right one opens an HttpOnly SameSite=Strict session', async () => {
  const bad = await login('not-the-admin-token');
  assert.equal(bad.status, 401);
  assert.equal(bad.headers.get('set-cookie'), null);
  const ok = await login(ADMIN);
  assert.ok([302, 303].includes(ok.status));
  const cookie = ok.headers.get('set-cookie')!;
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.ok(!cookie.includes(ADMIN), 'the cookie is a session id, not the admin token');
  const foreign = await login(ADMIN, { origin: 'https://evil.example' });
  assert.equal(foreign.headers.get('set-cookie'), null, 'no login from another site');
});

test('with the cookie, reads work and mutations need the CSRF token and the same origin; logout ends it', async () => {
  const cookie = (await login(ADMIN)).headers.get('set-cookie')!.split(';')[0]!;
  const app = await (await fetch(`${gw.url}/`, { headers: { cookie } })).text();
  const csrf = /name="grantpool-csrf" content="([^"]+)"/.exec(app)![1]!;
  assert.equal((await fetch(`${gw.url}/api/accounts`, { headers: { cookie } })).status, 200);
  const post = (headers: Record<string, string>) =>
    fetch(`${gw.url}/api/keys`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: '{"label":"x"}' });
  assert.equal((await post({})).status, 403, 'no CSRF header');
  assert.equal((await post({ 'x-grantpool-csrf': 'wrong' })).status, 403);
  assert.equal((await post({ 'x-grantpool-csrf': csrf, origin: 'https://evil.example' })).status, 403);
  assert.equal((await post({ 'x-grantpool-csrf': csrf, origin: gw.url })).status, 201);
  const forged = await fetch(`${gw.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: gw.url } });
  assert.equal(forged.status, 403, 'logout is CSRF-protected too');
  const out = await fetch(`${gw.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: gw.url, 'x-grantpool-csrf': csrf } });
  assert.ok(out.status < 400);
  assert.equal((await fetch(`${gw.url}/api/accounts`, { headers: { cookie } })).status, 401);
});
