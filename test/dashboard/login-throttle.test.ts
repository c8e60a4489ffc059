// Wrong admin tokens are throttled per client address, on the dashboard login
// and on /api/*: one address guessing does not lock anyone else out, and
// guessing over the API is slowed down too (429 + Retry-After).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { startGateway, type Gateway } from '../../src/app/gateway.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { createDashboardSessions } from '../../src/dashboard/session.ts';
import { clientAddress } from '../../src/dashboard/throttle.ts';

const ADMIN = 'admin-token-for-throttle-tests-0123';
let gw: Gateway;
before(async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-throttle-'));
  gw = await startGateway({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_PORT: '0', GRANTPOOL_ADMIN_TOKEN: ADMIN }, logger: silentLogger() });
});
after(() => gw.close());

/** One request from a chosen loopback source address (127.0.0.0/8 is all ours). */
function call(from: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: IncomingMessage['headers']; text: string }> {
  const u = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method, localAddress: from, headers: { ...headers, connection: 'close' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const login = (from: string, token: string) =>
  call(from, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', origin: gw.url }, `token=${encodeURIComponent(token)}`);

test('the dashboard: wrong tokens from one address do not lock the right token out from another', async () => {
  for (let i = 0; i < 10; i++) assert.equal((await login('127.0.0.2', `wrong-${i}`)).status, 401);
  const blocked = await login('127.0.0.2', ADMIN);
  assert.equal(blocked.status, 429, 'the guessing address waits, even with the right token');
  assert.ok(Number(blocked.headers['retry-after']) > 0 && Number(blocked.headers['retry-after']) <= 60);
  const other = await login('127.0.0.1', ADMIN);
  assert.equal(other.status, 303, 'another address logs in');
  assert.match(String(other.headers['set-cookie']), /gp_session=/);
});

test('/api/*: wrong bearer tokens are throttled per address with 429 + Retry-After', async () => {
  let last = 0;
  for (let i = 0; i < 10; i++) {
    last = (await call('127.0.0.3', 'GET', '/api/status', { authorization: `Bearer guess-${i}` })).status;
    assert.equal(last, 401, `guess ${i}`);
  }
  const r = await call('127.0.0.3', 'GET', '/api/status', { authorization: `Bearer guess-more` });
  assert.equal(r.status, 429);
  assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 60);
  const body = JSON.parse(r.text);
  assert.equal(body.error.code, 'too_many_attempts');
  assert.match(body.error.message, /Too many wrong admin tokens from your address/);
  // The right token from the guessing address waits too (else the 429 would tell a guesser when it is right).
  assert.equal((await call('127.0.0.3', 'GET', '/api/status', { authorization: `Bearer ${ADMIN}` })).status, 429);
  // Anyone else is served.
  assert.equal((await call('127.0.0.4', 'GET', '/api/status', { authorization: `Bearer ${ADMIN}` })).status, 200);
});

test('behind a local reverse proxy the client is the last X-Forwarded-For hop; IPv6 counts by /64', () => {
  const req = (remoteAddress: string, xff?: string) => ({ socket: { remoteAddress }, headers: xff ? { 'x-forwarded-for': xff } : {} }) as unknown as IncomingMessage;
  assert.equal(clientAddress(req('127.0.0.1', '1.2.3.4, 203.0.113.9')), '203.0.113.9', 'entries to the left are the client\'s own claims');
  assert.equal(clientAddress(req('198.51.100.7', '203.0.113.9')), '198.51.100.7', 'a remote peer cannot choose its address');
  assert.equal(clientAddress(req('::ffff:198.51.100.7')), '198.51.100.7');
  assert.equal(clientAddress(req('2001:db8:1:2:aaaa::1')), clientAddress(req('2001:db8:1:2:bbbb::2')));
  assert.notEqual(clientAddress(req('2001:db8:1:2::1')), clientAddress(req('2001:db8:1:3::1')));

  let now = 0;
  const s = createDashboardSessions({ adminToken: () => ADMIN, clock: { now: () => now }, maxFailuresPerMinute: 3 });
  const a = req('127.0.0.1', '203.0.113.1');
  const b = req('127.0.0.1', '203.0.113.2');
  for (let i = 0; i < 3; i++) assert.equal(s.login('nope', a).ok, false);
  const blocked = s.login(ADMIN, a);
  assert.equal(!blocked.ok && blocked.status, 429);
  assert.equal(s.login(ADMIN, b).ok, true);
  now += 61_000;
  assert.equal(s.login(ADMIN, a).ok, true, 'free again after a minute');
});
