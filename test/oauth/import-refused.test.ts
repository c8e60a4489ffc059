// An import the issuer answered with a refusal of its own (a 100 KB token it
// cannot parse, an HTML 403) reports what the issuer said; only a real
// network failure or a 5xx says that Google could not be reached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  stack.issuer.failTokenEndpoint(null);
  await stack.close();
});

test('a 100 KB refresh token gets what the issuer said, not "could not be reached"', async () => {
  const token = `1//${'x'.repeat(100_000)}`;
  const r = await stack.api('POST', '/api/accounts', { refresh_token: token }, { allowError: true });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'refresh_token_refused');
  assert.doesNotMatch(r.body.error.message, /could not be reached/);
  assert.match(r.body.error.message, /Google refused this refresh token/);
  assert.match(r.body.error.message, /Google said: "HTTP 400 invalid_request: failed to parse the request body \(the token given is 100003 characters long\)"/);
  assert.match(r.body.error.fix, /about 100 characters/);
  assert.ok(!JSON.stringify(r.body).includes('x'.repeat(50)), 'the token is not echoed');
  assert.deepEqual(await stack.accountFiles(), [], 'nothing was added');
});

test('an HTML refusal names the status; a 5xx still says Google could not be reached', async () => {
  stack.issuer.failTokenEndpoint('html403');
  const html = await stack.api('POST', '/api/accounts', { refresh_token: '1//some-token' }, { allowError: true });
  assert.equal(html.body.error.code, 'refresh_token_refused');
  assert.match(html.body.error.message, /HTTP 403 non_json: the token endpoint answered HTTP 403 with text\/html/);
  stack.issuer.failTokenEndpoint('500');
  const down = await stack.api('POST', '/api/accounts', { refresh_token: '1//some-token' }, { allowError: true });
  assert.equal(down.status, 502);
  assert.equal(down.body.error.code, 'issuer_unreachable');
  stack.issuer.failTokenEndpoint(null);
});
