// Proxy API keys managed through the management API: shown once, listed
// without values, effective at once, revoked, and never lost to a race.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../src/app/gateway.ts';
import { silentLogger } from '../../src/log/logger.ts';

const ADMIN = 'admin-token-for-key-tests';
let gw: Gateway;
let dataDir: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'grantpool-keys-'));
  gw = await startGateway({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_PORT: '0', GRANTPOOL_ADMIN_TOKEN: ADMIN, GRANTPOOL_AUTH_MODE: 'strict' }, logger: silentLogger() });
});
after(async () => {
  await gw.close();
});

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(gw.url + path, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

test('a created key is shown once, listed without its value, and works at once; a revoked key stops working', async () => {
  const created = await api('POST', '/api/keys', { label: 'laptop' });
  assert.equal(created.status, 201);
  assert.match(created.body.key, /^gp-/);
  const listed = await api('GET', '/api/keys');
  assert.ok(!JSON.stringify(listed.body).includes(created.body.key), 'the list never shows a key value');
  const entry = listed.body.keys.find((k: { id: string }) => k.id === created.body.id);
  assert.equal(entry.label, 'laptop');
  assert.ok(created.body.key.startsWith(entry.prefix.replace('…', '')));

  const withKey = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${created.body.key}` } });
  assert.notEqual(withKey.status, 401);
  await withKey.arrayBuffer();
  const without = await fetch(`${gw.url}/v1/models`);
  assert.equal(without.status, 401);
  assert.match((await without.json()).error.message, /x-api-key/);

  assert.equal((await api('DELETE', `/api/keys/${created.body.id}`)).status, 200);
  const after = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${created.body.key}` } });
  assert.equal(after.status, 401);
  assert.equal((await api('DELETE', `/api/keys/${created.body.id}`)).status, 404);
});

test('keys created at the same time are all saved in config.json', async () => {
  const made = await Promise.all(Array.from({ length: 8 }, (_, i) => api('POST', '/api/keys', { label: `k${i}` })));
  const saved = JSON.parse(await readFile(join(dataDir, 'config.json'), 'utf8')).api_keys.map((k: { key: string }) => k.key);
  for (const m of made) assert.ok(saved.includes(m.body.key), 'no key lost');
});
