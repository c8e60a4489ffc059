// The management API's error boundary: a GatewayError is answered as JSON
// `{"error":{"code","message","fix"?}}` with its status; anything else is a
// generic 500 that never quotes it, logged once with its stack, scrubbed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Router } from '../../src/http/router.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { createLogger, silentLogger } from '../../src/log/logger.ts';
import { registerApiRoutes } from '../../src/api/routes.ts';
import type { ApiDeps } from '../../src/api/deps.ts';
import { OAuthFlowError } from '../../src/oauth/errors.ts';
import { LogCapture } from '../support/stack.ts';

const SECRET = '1//0gLeakedRefreshToken_abcdefghijkl';
const logs = new LogCapture();
let server: Server;
let url: string;

before(async () => {
  // Only what these routes use; every call that is not scripted here fails the test loudly.
  const deps = {
    authenticate: () => ({ ok: true }),
    importRefreshToken: async () => {
      throw new TypeError(`Cannot read properties of null (reading 'sub') for ${SECRET}`);
    },
    startConsent: async () => {
      throw new OAuthFlowError('client_not_configured');
    },
    keys: {
      revoke: async () => {
        throw new RangeError('Invalid array length');
      },
    },
  } as unknown as ApiDeps;
  const router = new Router();
  registerApiRoutes(router, deps, createLogger({ destination: logs.stream as never }));
  server = createHttpServer(router, silentLogger());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(url + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as { error: { code: string; message: string; fix?: string } } };
}

test('an unexpected error is a generic JSON 500 without its text, logged once with its stack and no secret', async () => {
  for (const [method, path, body, name] of [
    ['POST', '/api/accounts', { refresh_token: SECRET }, 'TypeError'],
    ['DELETE', '/api/keys/k1', undefined, 'RangeError'],
  ] as const) {
    logs.lines.length = 0;
    const r = await call(method, path, body);
    assert.equal(r.status, 500, r.text);
    assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message']);
    assert.equal(r.json.error.code, 'internal_error');
    assert.match(r.json.error.message, /see its log/);
    assert.doesNotMatch(r.text, /Cannot read|Invalid array|TypeError|RangeError|1\/\/0g|at (file|node):/);

    const errors = logs.lines.filter((l) => l.level === 50);
    assert.equal(errors.length, 1, logs.text());
    const err = errors[0]!.err as { name: string; stack: string };
    assert.equal(err.name, name);
    assert.match(err.stack, new RegExp(`^${name}: .*\\n\\s+at `));
    assert.equal(errors[0]!.route, path);
    assert.doesNotMatch(logs.text(), /1\/\/0g|LeakedRefreshToken/, 'no token in the log');
  }
});

test('a GatewayError is answered with its status, code, message and fix', async () => {
  const r = await call('POST', '/api/oauth/start', {});
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'client_not_configured');
  assert.match(r.json.error.message, /No OAuth client is configured/);
  assert.match(r.json.error.fix!, /client_secret\.json/);
  // A bad body is the route's own 400.
  const bad = await call('POST', '/api/accounts', { refresh_token: '' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'invalid_request');
});
