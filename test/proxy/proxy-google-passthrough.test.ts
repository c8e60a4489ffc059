// ANY /google/{path}: forwarded to the Google API base with the pool's token, the client's credentials dropped.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startProxy, type FakePool, type Harness } from '../support/proxy-harness.ts';
import { buildPassthrough } from '../../src/proxy/google-passthrough.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}
let google: Server;
let seen: Seen[] = [];
let validTokens = new Set<string>();
let h: Harness & { fake: FakePool | null };

before(async () => {
  google = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() };
    seen.push(s);
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!validTokens.has(token)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } }));
      return;
    }
    if (req.url!.startsWith('/forbidden')) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 403, message: 'Insufficient Permission', status: 'PERMISSION_DENIED' } }));
      return;
    }
    res.writeHead(req.url!.startsWith('/created') ? 201 : 200, { 'content-type': 'application/json', etag: '"v1"', 'set-cookie': 'x=y' });
    res.end(JSON.stringify({ ok: true, echo: s.body }));
  });
  await new Promise<void>((r) => google.listen(0, '127.0.0.1', r));
  const googleUrl = `http://127.0.0.1:${(google.address() as AddressInfo).port}`;
  h = await startProxy({ accounts: ['a', 'b'], googleApiBaseUrl: googleUrl });
  for (const a of h.fake!.accounts) validTokens.add(a.token);
  h.fake!.accounts[1]!.projectId = 'proj-b';
  h.fake!.onToken = (t) => validTokens.add(t);
});
after(async () => {
  await h.close();
  google.closeAllConnections();
  await new Promise<void>((r) => google.close(() => r()));
});

test('method, path, query, body and content headers are forwarded; credentials and hop-by-hop headers are not', async () => {
  seen = [];
  const res = await fetch(`${h.url}/google/drive/v3/files/abc%2Fdef?fields=id%2Cname&key=client-api-key&alt=json`, {
    method: 'PATCH',
    headers: {
      'content-type': 'application/json',
      'x-api-key': 'client',
      'x-goog-api-key': 'client',
      cookie: 'session=1',
      'if-match': '"v0"',
      'x-goog-request-reason': 'test',
      'x-grantpool-session': 's1',
    },
    body: JSON.stringify({ name: 'renamed' }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('etag'), '"v1"');
  assert.equal(res.headers.get('set-cookie'), null);
  const body = (await res.json()) as { echo: string };
  assert.equal(body.echo, '{"name":"renamed"}');
  const s = seen[0]!;
  assert.equal(s.method, 'PATCH');
  assert.equal(s.url, '/drive/v3/files/abc%2Fdef?fields=id%2Cname&alt=json');
  assert.match(s.headers.authorization!, /^Bearer tok-[ab]-0$/);
  assert.equal(s.headers['x-api-key'], undefined);
  assert.equal(s.headers['x-goog-api-key'], undefined);
  assert.equal(s.headers.cookie, undefined);
  assert.equal(s.headers['x-grantpool-session'], undefined);
  assert.equal(s.headers['if-match'], '"v0"');
  assert.equal(s.headers['x-goog-request-reason'], 'test');
  assert.equal(s.headers['content-type'], 'application/json');
});

test('X-Grantpool-Account pins one account; unknown is a clear 4xx', async () => {
  seen = [];
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${h.url}/google/oauth2/v3/userinfo`, { headers: { 'x-grantpool-account': 'b@example.com' } });
    assert.equal(res.status, 200);
  }
  assert.ok(seen.every((s) => s.headers.authorization === `Bearer ${h.fake!.accounts[1]!.token}`));
  assert.ok(seen.every((s) => s.headers['x-goog-user-project'] === 'proj-b'));
  const unknown = await fetch(`${h.url}/google/oauth2/v3/userinfo`, { headers: { 'x-grantpool-account': 'ghost' } });
  assert.equal(unknown.status, 404);
  const err = (await unknown.json()) as { error: { message: string; status: string } };
  assert.match(err.error.message, /ghost/);
});

test('a 401 refreshes and retries; a 403 is passed back without taking the account out', async () => {
  seen = [];
  validTokens.delete(h.fake!.accounts[0]!.token);
  const res = await fetch(`${h.url}/google/created/thing`, { method: 'POST', headers: { 'x-grantpool-account': 'a' }, body: 'raw body' });
  assert.equal(res.status, 201);
  assert.equal(seen.length, 2);
  assert.notEqual(seen[0]!.headers.authorization, seen[1]!.headers.authorization);

  const f = await fetch(`${h.url}/google/forbidden/x`);
  assert.equal(f.status, 403);
  assert.equal(((await f.json()) as any).error.message, 'Insufficient Permission');
  assert.equal(h.fake!.outcomes('forbidden').length, 0);
});

test('buildPassthrough keeps a base path and drops the key parameter', () => {
  const t = buildPassthrough('https://example.googleapis.com/base/', new URL('http://gw/google/v1/x?key=k&a=1'), {
    authorization: 'Bearer client',
    'content-type': 'text/plain',
    connection: 'keep-alive',
    'transfer-encoding': 'chunked',
  });
  assert.equal(t.origin, 'https://example.googleapis.com');
  assert.equal(t.path, '/base/v1/x?a=1');
  assert.deepEqual(t.headers, { 'content-type': 'text/plain' });
});
