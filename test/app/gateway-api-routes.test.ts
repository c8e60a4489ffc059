// The management API's catch-all: a wrong method on a known path is 405 with
// Allow, an unknown path is 404, both in the API's JSON error shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(() => stack.close());

test('a wrong method on a known management API path is 405 with Allow', async () => {
  const r = await stack.api('PUT', '/api/accounts', {}, { allowError: true });
  assert.equal(r.status, 405);
  assert.equal(r.body.error.code, 'method_not_allowed');
  const raw = await fetch(`${stack.gateway.url}/api/accounts`, { method: 'PUT', headers: { authorization: `Bearer ${stack.env.GRANTPOOL_ADMIN_TOKEN}` } });
  assert.equal(raw.headers.get('allow'), 'GET, POST');
  await raw.arrayBuffer();
  const byId = await fetch(`${stack.gateway.url}/api/accounts/abc`, { method: 'POST' });
  assert.equal(byId.status, 405);
  assert.equal(byId.headers.get('allow'), 'GET, PATCH, DELETE');
  await byId.arrayBuffer();
});

test('an unknown management API path is still 404', async () => {
  const r = await stack.api('GET', '/api/nothing', undefined, { allowError: true });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'not_found');
});
