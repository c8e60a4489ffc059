// Tokens encrypted at rest (SPEC section 11) through the real gateway: accounts
// added and refreshed with a key leave no token in the data directory; a
// restart without the key (or with another key) changes no byte, serves
// nothing with those accounts and says why; with the key back, all serve.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack.ts';
import { keyId } from '../../src/store/token-cipher.ts';

const KEY = randomBytes(32);
const OTHER = randomBytes(32);
const EMAILS = ['e1@example.com', 'e2@example.com'];
let stack: Stack;

before(async () => {
  stack = await startStack({ env: { GRANTPOOL_ENCRYPTION_KEY: KEY.toString('base64') } });
  for (const email of EMAILS) {
    stack.issuer.addUser({ email, name: email });
    assert.equal((await stack.addAccount(email)).status, 200);
  }
});
after(() => stack.close());

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else out.push(p);
  }
  return out;
}

async function hashDataDir(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of await files(stack.dataDir)) out[p] = createHash('sha256').update(await readFile(p)).digest('hex');
  return out;
}

function chat(text: string) {
  return new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 }).chat.completions.create({
    model: 'gemini-2.5-flash',
    messages: [{ role: 'user', content: text }],
  });
}

test('with a key, no refresh or access token is anywhere in the data directory after adding and refreshing accounts', async () => {
  for (let i = 0; i < 4; i++) assert.ok((await chat(`hello ${i}`)).choices[0]!.message.content);
  const refreshesBefore = stack.issuer.counters.refreshRequests;
  stack.clock.advance(2 * 3600_000); // every access token is now past its expiry: the next requests refresh
  for (let i = 0; i < 4; i++) assert.ok((await chat(`after refresh ${i}`)).choices[0]!.message.content);
  assert.ok(stack.issuer.counters.refreshRequests >= refreshesBefore + 2, 'both accounts were refreshed');

  const secrets = new Set<string>();
  for (const a of await stack.gateway.store.list()) {
    secrets.add(a.token.refresh_token);
    secrets.add(a.token.access_token);
  }
  for (const r of stack.upstream.requests) if (r.token) secrets.add(r.token);
  assert.ok(secrets.size >= 6, `refresh tokens and old and new access tokens (${secrets.size})`);
  await stack.gateway.close(); // usage and everything else flushed
  for (const p of await files(stack.dataDir)) {
    const text = await readFile(p, 'latin1');
    for (const s of secrets) assert.ok(!text.includes(s), `no token in ${p}`);
  }
  for (const f of await stack.accountFiles()) {
    assert.match(f.token.refresh_token, new RegExp(`^enc:v1:${keyId(KEY)}:`));
    assert.match(f.token.access_token, new RegExp(`^enc:v1:${keyId(KEY)}:`));
  }
  await stack.restartGateway();
  const { body } = await stack.api('GET', '/api/status');
  assert.deepEqual(body.encryption, { key_id: keyId(KEY), old_key_ids: [], plain: 0, encrypted: 2, encrypted_with_old_key: 0, locked: [] });
  assert.ok(stack.logs.messages().some((m) => m.startsWith(`Tokens are encrypted at rest with key id ${keyId(KEY)} (GRANTPOOL_ENCRYPTION_KEY)`)));
});

for (const [label, key] of [['without the key', null], ['with another key', OTHER]] as const) {
  test(`a restart ${label} changes no byte, serves nothing with those accounts, and says why`, async () => {
    await stack.gateway.close();
    const before = await hashDataDir();
    const refreshes = stack.issuer.counters.refreshRequests;
    if (key) stack.env.GRANTPOOL_ENCRYPTION_KEY = key.toString('base64');
    else delete stack.env.GRANTPOOL_ENCRYPTION_KEY;
    stack.logs.lines = [];
    await stack.restartGateway();
    try {
      stack.clock.advance(2 * 3600_000); // tempt refreshes
      const res = await fetch(`${stack.gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'x' }] }),
      });
      assert.equal(res.status, 503);
      const answer = await res.json();
      assert.match(JSON.stringify(answer), /encrypted with a key this gateway does not have/);

      const status = (await stack.api('GET', '/api/status')).body;
      assert.ok(status.problems.some((p: string) => p.includes(`2 account(s) have tokens encrypted with a key this gateway does not have (key id ${keyId(KEY)})`)), JSON.stringify(status.problems));
      assert.equal(status.encryption.key_id, key ? keyId(key) : null);
      assert.deepEqual(status.encryption.locked.map((a: { email: string }) => a.email).sort(), EMAILS);
      assert.equal(status.pool.by_state.disabled, 2);
      const health = await (await fetch(`${stack.gateway.url}/healthz`)).json();
      assert.equal(health.status, 'degraded');

      const { body } = await stack.api('GET', '/api/accounts');
      for (const a of body.accounts) {
        assert.equal(a.state.state, 'disabled');
        assert.equal(a.state.reason, `encrypted with a key this gateway does not have (key id ${keyId(KEY)})`);
      }
      // Changing such an account is refused with the reason; nothing is written.
      const patch = await stack.api('PATCH', `/api/accounts/${body.accounts[0].id}`, { proxy_disabled: true }, { allowError: true });
      assert.equal(patch.status, 409);
      assert.match(patch.body.error.message, /left unchanged/);
      const errors = stack.logs.lines.filter((l) => l.level === 50).map((l) => String(l.msg));
      assert.ok(errors.some((m) => /^2 account\(s\) have tokens encrypted with a key this gateway does not have/.test(m)), errors.join('\n'));
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await stack.gateway.close();
    }
    assert.deepEqual(await hashDataDir(), before, 'not one byte of the data directory changed');
    assert.equal(stack.issuer.counters.refreshRequests, refreshes, 'no refresh was tried');
  });
}

test('with the key back, every account serves again', async () => {
  stack.env.GRANTPOOL_ENCRYPTION_KEY = KEY.toString('base64');
  await stack.restartGateway();
  const tokens = new Set<string>();
  stack.upstream.clearRequests();
  for (let i = 0; i < 4; i++) assert.ok((await chat(`back ${i}`)).choices[0]!.message.content);
  for (const r of stack.upstream.requests) tokens.add(r.token!);
  assert.equal(tokens.size, 2);
  assert.deepEqual((await stack.api('GET', '/api/status')).body.problems, []);
});

test('an account no key here decrypts can be deleted; its token is not sent to Google for revocation', async () => {
  delete stack.env.GRANTPOOL_ENCRYPTION_KEY;
  await stack.restartGateway();
  const revocations = stack.issuer.counters.revocations;
  const { body } = await stack.api('GET', '/api/accounts');
  const victim = body.accounts[0];
  const res = await stack.api('DELETE', `/api/accounts/${victim.id}`);
  assert.equal(res.body.removed, true);
  assert.equal(res.body.revocation, 'failed');
  assert.match(res.body.revocation_error, /encrypted with a key this gateway does not have, so it was not revoked/);
  assert.equal(stack.issuer.counters.revocations, revocations, 'no ciphertext sent to the revocation endpoint');
  assert.equal((await stack.accountFiles()).length, 1);
});
