// Dashboard login, sessions and CSRF in detail, over HTTP against the real dashboard
// routes (served by the fake management API) and on the sessions object.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { FakeClock } from '../../src/util/clock.ts';
import { createDashboardSessions } from '../../src/dashboard/session.ts';
import { startFakeGateway, type FakeGateway } from '../support/fake-management-api.ts';

const ADMIN = 'admin-token-for-tests-0123456789';
const clock = new FakeClock(Date.UTC(2026, 2, 1, 12));
let gw: FakeGateway;

before(async () => {
  gw = await startFakeGateway({ adminToken: ADMIN, clock });
});
after(async () => {
  await gw.close();
});

async function login(token = ADMIN, headers: Record<string, string> = {}) {
  return fetch(`${gw.url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gw.url, ...headers },
    body: new URLSearchParams({ token }).toString(),
  });
}

/** Logs in and returns the cookie pair and the CSRF token from the app page. */
async function session(): Promise<{ cookie: string; csrf: string }> {
  const res = await login();
  assert.equal(res.status, 303);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const page = await (await fetch(`${gw.url}/`, { headers: { cookie } })).text();
  const m = /<meta name="grantpool-csrf" content="([^"]+)">/.exec(page);
  assert.ok(m, 'the app page carries the CSRF token');
  return { cookie, csrf: m[1]! };
}

const firstAccountId = () => [...gw.accounts.keys()][0]!;

test('the right admin token opens a session with a strict HttpOnly cookie and leads to the app', async () => {
  const res = await login();
  assert.equal(res.status, 303);
  assert.equal(res.headers.get('location'), '/');
  const setCookie = res.headers.get('set-cookie')!;
  assert.match(setCookie, /^gp_session=[A-Za-z0-9_-]{40,};/);
  assert.match(setCookie, /; HttpOnly/);
  assert.match(setCookie, /; SameSite=Strict/);
  assert.match(setCookie, /; Path=\//);
  assert.match(setCookie, /; Max-Age=\d+/);
  assert.doesNotMatch(setCookie, /Secure/, 'no Secure flag on a plain http gateway');

  const page = await fetch(`${gw.url}/`, { headers: { cookie: setCookie.split(';')[0]! } });
  const html = await page.text();
  assert.equal(page.status, 200);
  assert.match(html, /<script type="module" src="\/assets\/app.js">/);
  assert.ok(!html.includes(ADMIN), 'the admin token never appears in the page');
});

test('the cookie is Secure when the public URL is https', () => {
  const s = createDashboardSessions({ adminToken: () => ADMIN, clock, publicUrl: () => 'https://pool.example.com' });
  const r = s.login(ADMIN);
  assert.ok(r.ok);
  assert.match(r.setCookie, /; Secure/);
});

test('a wrong admin token gets the login page again with a clear message and no cookie', async () => {
  const res = await login('not-the-admin-token-at-all');
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('set-cookie'), null);
  const html = await res.text();
  assert.match(html, /That admin token is not right/);
  assert.ok(!html.includes('not-the-admin-token-at-all'), 'the submitted token is not echoed');
  assert.match(html, /name="token"/);
});

test('nothing but the login page is readable without a session', async () => {
  const home = await fetch(`${gw.url}/`);
  const html = await home.text();
  assert.equal(home.status, 200);
  assert.match(html, /Log in to the dashboard/);
  assert.doesNotMatch(html, /grantpool-csrf|app\.js|alice@example\.com/);

  for (const path of ['/assets/app.js', '/assets/accounts.js', '/api/status', '/api/accounts', '/api/keys', '/api/events', '/api/requests']) {
    const res = await fetch(`${gw.url}${path}`);
    assert.equal(res.status, 401, `${path} needs a session`);
    const body = await res.text();
    assert.doesNotMatch(body, /example\.com|gp-/, `${path} leaks nothing`);
  }
  // The login page's stylesheet is public.
  assert.equal((await fetch(`${gw.url}/assets/app.css`)).status, 200);
  // A made-up cookie is no session.
  const forged = await fetch(`${gw.url}/api/accounts`, { headers: { cookie: 'gp_session=forged-session-id' } });
  assert.equal(forged.status, 401);
});

test('pages carry a strict Content-Security-Policy and the app page has no inline script', async () => {
  const { cookie } = await session();
  for (const path of ['/', '/login', '/assets/app.js']) {
    const res = await fetch(`${gw.url}${path}`, { headers: { cookie }, redirect: 'manual' });
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/, path);
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/, path);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
  }
  const html = await (await fetch(`${gw.url}/`, { headers: { cookie } })).text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is an external file');
  assert.doesNotMatch(html, /\son[a-z]+="/, 'no inline event handlers');
  assert.doesNotMatch(html, /https?:\/\/(?!127\.0\.0\.1)/, 'no external assets');
});

test('with the session cookie, reads work and changes need the CSRF header', async () => {
  const { cookie, csrf } = await session();
  const id = firstAccountId();
  assert.equal((await fetch(`${gw.url}/api/accounts`, { headers: { cookie } })).status, 200);

  const patch = (headers: Record<string, string>) =>
    fetch(`${gw.url}/api/accounts/${id}`, {
      method: 'PATCH',
      headers: { cookie, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ proxy_disabled: true }),
    });

  const missing = await patch({});
  assert.equal(missing.status, 403);
  assert.match(((await missing.json()) as { error: { message: string } }).error.message, /X-Grantpool-CSRF/);
  assert.equal(gw.accounts.get(id)!.account.proxy_disabled, false, 'the refused change did not happen');

  assert.equal((await patch({ 'x-grantpool-csrf': 'wrong-csrf-token' })).status, 403);
  assert.equal(gw.accounts.get(id)!.account.proxy_disabled, false);

  const ok = await patch({ 'x-grantpool-csrf': csrf });
  assert.equal(ok.status, 200);
  assert.equal(gw.accounts.get(id)!.account.proxy_disabled, true);

  // DELETE and POST are guarded the same way.
  const del = await fetch(`${gw.url}/api/keys/k1`, { method: 'DELETE', headers: { cookie } });
  assert.equal(del.status, 403);
  const post = await fetch(`${gw.url}/api/keys`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{"label":"x"}' });
  assert.equal(post.status, 403);

  // Put it back for the other tests.
  await patch({ 'x-grantpool-csrf': csrf }).then(() =>
    fetch(`${gw.url}/api/accounts/${id}`, { method: 'PATCH', headers: { cookie, 'content-type': 'application/json', 'x-grantpool-csrf': csrf }, body: '{"proxy_disabled":false}' }));
});

test('a cross-site request is refused even with the cookie and the right CSRF token', async () => {
  const { cookie, csrf } = await session();
  const id = firstAccountId();
  for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }] as Record<string, string>[]) {
    const res = await fetch(`${gw.url}/api/accounts/${id}`, {
      method: 'PATCH',
      headers: { cookie, 'content-type': 'application/json', 'x-grantpool-csrf': csrf, ...headers },
      body: JSON.stringify({ proxy_disabled: true }),
    });
    assert.equal(res.status, 403, JSON.stringify(headers));
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /Cross-site/);
  }
  assert.equal(gw.accounts.get(id)!.account.proxy_disabled, false);
  // The same origin is fine.
  const same = await fetch(`${gw.url}/api/accounts/${id}`, {
    method: 'PATCH',
    headers: { cookie, 'content-type': 'application/json', 'x-grantpool-csrf': csrf, origin: gw.url, 'sec-fetch-site': 'same-origin' },
    body: JSON.stringify({ proxy_disabled: false }),
  });
  assert.equal(same.status, 200);
  // A login form posted from another site opens no session.
  const crossLogin = await login(ADMIN, { origin: 'https://evil.example' });
  assert.equal(crossLogin.status, 401);
  assert.equal(crossLogin.headers.get('set-cookie'), null);
});

test('the bearer admin token works without CSRF; a wrong bearer is refused even with a valid cookie', async () => {
  const { cookie } = await session();
  const res = await fetch(`${gw.url}/api/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: '{"label":"script"}',
  });
  assert.equal(res.status, 201);
  const wrong = await fetch(`${gw.url}/api/accounts`, { headers: { authorization: 'Bearer nope', cookie } });
  assert.equal(wrong.status, 401);
  const body = await wrong.text();
  assert.ok(!body.includes(ADMIN));
});

test('logout ends the session and needs the CSRF token', async () => {
  const { cookie, csrf } = await session();
  const forged = await fetch(`${gw.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
  assert.equal(forged.status, 403);
  assert.equal((await fetch(`${gw.url}/api/accounts`, { headers: { cookie } })).status, 200, 'still logged in');

  const res = await fetch(`${gw.url}/logout`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: gw.url },
    body: new URLSearchParams({ csrf }).toString(),
  });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get('location'), '/login?logged_out=1');
  assert.match(res.headers.get('set-cookie')!, /^gp_session=; .*Max-Age=0/);
  assert.equal((await fetch(`${gw.url}/api/accounts`, { headers: { cookie } })).status, 401);
  const page = await (await fetch(`${gw.url}/login?logged_out=1`, { headers: { cookie } })).text();
  assert.match(page, /You are logged out/);
});

test('sessions end after the idle time and after the maximum age', () => {
  const c = new FakeClock();
  const s = createDashboardSessions({ adminToken: () => ADMIN, clock: c, idleMs: 60_000, maxAgeMs: 300_000 });
  const r = s.login(ADMIN);
  assert.ok(r.ok);
  const req = { headers: { cookie: r.setCookie.split(';')[0] }, method: 'GET' } as unknown as IncomingMessage;
  // Active use keeps it alive up to the maximum age.
  for (let t = 0; t < 4; t++) {
    c.advance(50_000);
    assert.equal(s.authenticate(req).ok, true, `alive after ${(t + 1) * 50} s of use`);
  }
  c.advance(110_000); // 310 s after login: past the maximum age
  const late = s.authenticate(req);
  assert.equal(late.ok, false);
  assert.equal(!late.ok && late.status, 401);
  assert.match(!late.ok ? late.message : '', /session has ended/);

  const r2 = s.login(ADMIN);
  assert.ok(r2.ok);
  const req2 = { headers: { cookie: r2.setCookie.split(';')[0] }, method: 'GET' } as unknown as IncomingMessage;
  c.advance(61_000); // idle too long
  assert.equal(s.authenticate(req2).ok, false);
  assert.equal(s.size(), 0);
});

test('changing the admin token ends every session', () => {
  let token = ADMIN;
  const s = createDashboardSessions({ adminToken: () => token, clock: new FakeClock() });
  const r = s.login(ADMIN);
  assert.ok(r.ok);
  const req = { headers: { cookie: r.setCookie.split(';')[0] }, method: 'GET' } as unknown as IncomingMessage;
  assert.equal(s.authenticate(req).ok, true);
  token = 'a-brand-new-admin-token-9876543210';
  assert.equal(s.authenticate(req).ok, false);
  assert.equal(s.login(ADMIN).ok, false, 'the old token no longer logs in');
});

test('repeated wrong tokens are slowed down with 429, and the right one works again a minute later', () => {
  const c = new FakeClock();
  const s = createDashboardSessions({ adminToken: () => ADMIN, clock: c, maxFailuresPerMinute: 3 });
  for (let i = 0; i < 3; i++) assert.equal(s.login(`wrong-${i}`).ok, false);
  const blocked = s.login(ADMIN);
  assert.equal(blocked.ok, false);
  assert.equal(!blocked.ok && blocked.status, 429);
  c.advance(61_000);
  assert.equal(s.login(ADMIN).ok, true);
});

test('an empty admin token never matches', () => {
  const s = createDashboardSessions({ adminToken: () => '', clock: new FakeClock() });
  assert.equal(s.login('').ok, false);
  const req = { headers: { authorization: 'Bearer ' }, method: 'GET' } as unknown as IncomingMessage;
  assert.equal(s.authenticate(req).ok, false);
});
