// The HTTP server: unknown routes and wrong methods are logged and answered in
// JSON; requests node:http cannot parse get a short JSON answer, 431 for
// oversize headers, instead of a bare 400 with an empty body.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Router } from '../../src/http/router.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { sendJson } from '../../src/http/http-util.ts';
import { createLogger } from '../../src/log/logger.ts';
import { LogCapture } from '../support/stack.ts';

let server: Server;
let port: number;
const logs = new LogCapture();

before(async () => {
  const router = new Router()
    .on('GET', '/things', ({ res }) => sendJson(res, 200, { ok: true }))
    .on('POST', '/things', ({ res }) => sendJson(res, 201, { ok: true }))
    .fallback('/area/*rest', ({ res, allowed }) => sendJson(res, allowed ? 405 : 404, { area: true, allowed: allowed ?? null }))
    .on('DELETE', '/area/known', ({ res }) => sendJson(res, 200, { deleted: true }));
  server = createHttpServer(router, createLogger({ destination: logs.stream, level: 'info' }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** Sends raw bytes and returns what the server answered before closing. */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => resolve(got));
    s.on('error', reject);
    s.write(bytes);
  });
}

function parse(answer: string): { status: number; headers: string; body: any } {
  const [head, body] = [answer.slice(0, answer.indexOf('\r\n\r\n')), answer.slice(answer.indexOf('\r\n\r\n') + 4)];
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: body ? JSON.parse(body) : null };
}

test('malformed HTTP gets a 400 with a JSON body saying so', async () => {
  const a = parse(await raw('GET /things HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n'));
  assert.equal(a.status, 400);
  assert.match(a.headers, /content-type: application\/json/);
  assert.equal(a.body.error.code, 'malformed_request');
  assert.match(a.body.error.message, /not valid HTTP/);
  const b = parse(await raw('GET /things HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'));
  assert.equal(b.status, 400);
  assert.equal(b.body.error.code, 'malformed_request');
});

test('oversize headers get 431 with a JSON body', async () => {
  const a = parse(await raw(`GET /things HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`));
  assert.equal(a.status, 431);
  assert.equal(a.body.error.code, 'headers_too_large');
});

test('a wrong method on a known path is 405 with Allow; an unknown path is 404; both are logged', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/things`, { method: 'PUT' });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET, POST');
  await r.arrayBuffer();
  const n = await fetch(`http://127.0.0.1:${port}/nothing/here`);
  assert.equal(n.status, 404);
  assert.equal((await n.json()).error.code, 'not_found');
  assert.ok(logs.lines.some((l) => l.status === 405 && l.path === '/things' && l.method === 'PUT'), logs.text());
  assert.ok(logs.lines.some((l) => l.status === 404 && l.path === '/nothing/here'), logs.text());
});

test('a fallback answers the paths of its area no route takes, and learns the allowed methods of known ones', async () => {
  const unknown = await fetch(`http://127.0.0.1:${port}/area/unknown`);
  assert.equal(unknown.status, 404);
  assert.deepEqual(await unknown.json(), { area: true, allowed: null });
  const wrong = await fetch(`http://127.0.0.1:${port}/area/known`, { method: 'GET' });
  assert.equal(wrong.status, 405);
  assert.deepEqual(await wrong.json(), { area: true, allowed: ['DELETE'] });
  const right = await fetch(`http://127.0.0.1:${port}/area/known`, { method: 'DELETE' });
  assert.deepEqual(await right.json(), { deleted: true }, 'a route wins over a fallback registered before it');
});
