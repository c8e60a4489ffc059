// `grantpool risc register` / `grantpool risc status` against a stand-in for
// Google's RISC management API, the real gateway and the OIDC stand-in (which
// signs the verification event the stream delivers).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.ts';
import { startRiscApi, type RiscApiStandIn } from '../support/risc-api.ts';
import { runCli } from '../support/run-cli.ts';

const PUBLIC = 'https://gateway.example.com';
const VERIFICATION = 'https://schemas.openid.net/secevent/risc/event-type/verification';

let stack: Stack;
let google: RiscApiStandIn;
let saFile: string;
const delivered: number[] = [];

before(async () => {
  google = await startRiscApi({
    authorizedDomains: ['example.com'],
    // Google pushes to the registered https URL; here that is the gateway under test.
    deliver: async (url, state) => {
      assert.ok(url.startsWith(PUBLIC));
      const token = await stack.issuer.securityEvent({ [VERIFICATION]: { state } });
      const r = await fetch(`${stack.gateway.url}${new URL(url).pathname}`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: token });
      delivered.push(r.status);
    },
  });
  stack = await startStack({ env: { GRANTPOOL_RISC_API_URL: google.url } });
  saFile = join(stack.dataDir, 'risc-admin.json');
  await google.writeServiceAccount(saFile);
});
after(async () => {
  await stack?.close();
  await google?.close();
});

const cli = (...args: string[]) => runCli(args, stack.env);

test('register refuses a receiver that is not https, and a file that is not a service account key, before calling Google', async () => {
  const plain = await cli('risc', 'register', '--service-account', saFile);
  assert.equal(plain.code, 1);
  assert.match(plain.err, /only to https:\/\/ URLs, and the receiver would be http:\/\/localhost:\d+\/risc/);
  assert.match(plain.err, /fix: Set GRANTPOOL_PUBLIC_URL/);

  const clientFile = join(stack.dataDir, 'client_secret.json');
  const wrong = await cli('risc', 'register', '--service-account', clientFile, '--url', `${PUBLIC}/risc`);
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /is not a service account key file: "type" is missing or wrong \(it is an OAuth client file, not a service account key\)/);
  assert.match(wrong.err, /RISC Configuration Admin role/);
  assert.equal(google.calls.length, 0);
});

test('Google\'s refusal comes back with its words and the fix (a domain that is not authorized)', async () => {
  const r = await cli('risc', 'register', '--service-account', saFile, '--url', 'https://gateway.elsewhere.net/risc');
  assert.equal(r.code, 1);
  assert.match(r.err, /the RISC API refused POST \/v1beta\/stream:update \(403\): The delivery endpoint does not belong to any of your project's domains/);
  assert.match(r.err, /authorized domains of the OAuth consent screen/);
  assert.equal(google.stream, null);
});

test('a key Google does not accept is a 401 with the fix', async () => {
  const other = await startRiscApi({ authorizedDomains: ['example.com'], deliver: async () => {} });
  try {
    const otherFile = join(stack.dataDir, 'other-sa.json');
    await other.writeServiceAccount(otherFile);
    // A key of another project's service account, sent to this project's API.
    const r = await cli('risc', 'register', '--service-account', otherFile, '--url', `${PUBLIC}/risc`);
    assert.equal(r.code, 1);
    assert.match(r.err, /\(401\): Unauthorized\./);
    assert.match(r.err, /fix: The service account key was not accepted/);
  } finally {
    await other.close();
  }
});

test('register configures the push stream and asks for a verification event, which the gateway receives; status shows both', async () => {
  const callsBefore = google.calls.length;
  const r = await cli('risc', 'register', '--service-account', saFile, '--url', `${PUBLIC}/risc`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Stream registered: Google pushes security events to https:\/\/gateway\.example\.com\/risc/);
  assert.deepEqual(google.stream!.delivery, { delivery_method: 'https://schemas.openid.net/secevent/risc/delivery-method/push', url: `${PUBLIC}/risc` });
  for (const e of ['oauth/event-type/tokens-revoked', 'oauth/event-type/token-revoked', 'risc/event-type/account-disabled', 'risc/event-type/sessions-revoked', 'risc/event-type/account-credential-change-required', 'risc/event-type/verification']) {
    assert.ok(google.stream!.events_requested.includes(`https://schemas.openid.net/secevent/${e}`), e);
  }
  assert.deepEqual(google.calls.slice(callsBefore), [
    { method: 'POST', path: '/v1beta/stream:update', authorized: true },
    { method: 'POST', path: '/v1beta/stream:verify', authorized: true },
  ]);
  assert.equal(google.verifications.length, 1);
  assert.match(google.verifications[0]!, /^grantpool \d{4}-/);
  assert.deepEqual(delivered, [202], 'the verification token was accepted');

  const s = await cli('risc', 'status', '--service-account', saFile);
  assert.equal(s.code, 0, s.err);
  assert.match(s.out, /Google delivers to: https:\/\/gateway\.example\.com\/risc {2}\(stream enabled\)/);
  assert.match(s.out, /Events requested: tokens-revoked, token-revoked, account-disabled/);
  assert.match(s.out, /verification +- +state "grantpool \d{4}-/);

  const json = JSON.parse((await cli('risc', 'status', '--json')).out);
  assert.equal(json.google, null);
  assert.equal(json.receiver.received[0].events[0].event, 'verification');
  assert.ok(json.receiver.audiences.includes(stack.issuer.client.client_id));
});

test('status without a running gateway reads what was received from the data directory', async () => {
  await stack.gateway.close();
  const s = await cli('risc', 'status');
  assert.equal(s.code, 0, s.err);
  assert.match(s.out, /gateway not running: events as stored/);
  assert.match(s.out, /verification/);
  await stack.restartGateway();
});

test('status before any stream says so', async () => {
  const fresh = await startRiscApi({ authorizedDomains: ['example.com'], deliver: async () => {} });
  try {
    const file = join(stack.dataDir, 'fresh-sa.json');
    await fresh.writeServiceAccount(file);
    const s = await runCli(['risc', 'status', '--service-account', file], { ...stack.env, GRANTPOOL_RISC_API_URL: fresh.url });
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /Google: no stream registered \(run `grantpool risc register --service-account FILE`\)/);
  } finally {
    await fresh.close();
  }
});
