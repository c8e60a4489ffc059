// Replacing client_secret.json (on disk, or by an upload) with another OAuth
// client: accounts issued by the old client go on refreshing with it, new
// consents use the new one, and the old client is kept in <data dir>/clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(() => stack.close());

const ask = () =>
  new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 }).chat.completions.create({
    model: 'gemini-2.5-flash',
    messages: [{ role: 'user', content: 'hello' }],
  });

test('after client_secret.json is replaced with a new client, an account of the old client still refreshes', async () => {
  const oldClient = stack.issuer.client;
  stack.issuer.addUser({ email: 'old@example.com' });
  assert.equal((await stack.addAccount('old@example.com')).status, 200);
  const before = await stack.accountFile('old@example.com');
  assert.equal(before.oauth_client_id, oldClient.client_id);

  const newClient = stack.issuer.addClient();
  const redirect = `${stack.env.GRANTPOOL_PUBLIC_URL ?? `http://localhost:${stack.env.GRANTPOOL_PORT}`}/oauth2callback`;
  await stack.issuer.writeClientSecret(join(stack.dataDir, 'client_secret.json'), redirect, newClient);
  await stack.restartGateway();
  assert.equal(stack.gateway.oauth.status().clientId, newClient.client_id);

  stack.clock.advance(2 * 3600_000); // every token has expired
  const refreshes = stack.issuer.counters.refreshRequests;
  const r = await ask();
  assert.ok(r.choices[0]!.message.content);
  assert.ok(stack.issuer.counters.refreshRequests > refreshes, 'the token was refreshed at the issuer');
  const after = await stack.accountFile('old@example.com');
  assert.notEqual(after.token.access_token, before.token.access_token, 'a new access token');
  assert.equal(after.oauth_client_id, oldClient.client_id, 'still the client that issued it');
  assert.ok(!stack.logs.text().includes('unknown_client'), 'no unknown_client');

  // A new consent goes through the new client.
  stack.issuer.addUser({ email: 'new@example.com' });
  assert.equal((await stack.addAccount('new@example.com')).status, 200);
  assert.equal((await stack.accountFile('new@example.com')).oauth_client_id, newClient.client_id);

  // Both clients are kept, 0600, in the data directory; /api/status names both.
  const dir = join(stack.dataDir, 'clients');
  assert.deepEqual((await readdir(dir)).sort(), [`${newClient.client_id}.json`, `${oldClient.client_id}.json`].sort());
  for (const name of await readdir(dir)) assert.equal((await stat(join(dir, name))).mode & 0o777, 0o600);
  assert.equal(JSON.parse(await readFile(join(dir, `${oldClient.client_id}.json`), 'utf8')).web.client_secret, oldClient.client_secret);
  const status = await stack.api('GET', '/api/status');
  const ids = status.body.oauth.clients.map((c: { client_id: string }) => c.client_id);
  assert.ok(ids.includes(oldClient.client_id) && ids.includes(newClient.client_id), JSON.stringify(status.body.oauth));
});

test('after an upload of another client, accounts of both earlier clients still refresh', async () => {
  const third = stack.issuer.addClient();
  const redirect = `http://localhost:${stack.env.GRANTPOOL_PORT}/oauth2callback`;
  const tmp = join(stack.dataDir, 'third.json');
  await stack.issuer.writeClientSecret(tmp, redirect, third);
  const up = await stack.api('POST', '/api/client-secret', JSON.parse(await readFile(tmp, 'utf8')), { allowError: true });
  assert.ok(up.status < 300, JSON.stringify(up.body));
  assert.equal(stack.gateway.oauth.status().clientId, third.client_id);

  stack.clock.advance(2 * 3600_000);
  const beforeOld = await stack.accountFile('old@example.com');
  const beforeNew = await stack.accountFile('new@example.com');
  for (let i = 0; i < 4; i++) await ask();
  assert.notEqual((await stack.accountFile('old@example.com')).token.access_token, beforeOld.token.access_token);
  assert.notEqual((await stack.accountFile('new@example.com')).token.access_token, beforeNew.token.access_token);
  assert.ok(!stack.logs.text().includes('unknown_client'));
});
