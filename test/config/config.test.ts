// config.json and environment variables: validated at start, env wins, secrets
// generated once on first start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { startGateway } from '../../src/app/gateway.ts';
import { silentLogger } from '../../src/log/logger.ts';

async function dir() {
  return mkdtemp(join(tmpdir(), 'grantpool-config-'));
}

test('first start creates the data directory 0700 and config.json 0600 with a key and an admin token, once', async () => {
  const parent = await dir();
  const dataDir = join(parent, 'data');
  const first = await loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir }, persistSecrets: true });
  assert.match(first.generated.apiKey!, /^gp-/);
  assert.ok(first.generated.adminToken);
  assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(dataDir, 'config.json'))).mode & 0o777, 0o600);
  const saved = JSON.parse(await readFile(join(dataDir, 'config.json'), 'utf8'));
  assert.equal(saved.api_keys[0].key, first.generated.apiKey);
  const second = await loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir }, persistSecrets: true });
  assert.deepEqual(second.generated, {}, 'nothing generated the second time');
  assert.equal(second.config.api_keys[0]!.key, first.generated.apiKey);
  assert.equal(second.config.redirect_uri, 'http://localhost:8045/oauth2callback');
  assert.equal(second.config.effective_auth_mode, 'off', 'auto is off on loopback');
});

test('an existing data directory with loose permissions is tightened to 0700', async () => {
  const dataDir = join(await dir(), 'loose');
  await mkdir(dataDir, { mode: 0o755 });
  await chmod(dataDir, 0o755);
  await loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir } });
  assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
});

test('an unknown key or a bad value stops the start naming the key', async () => {
  const dataDir = await dir();
  await writeFile(join(dataDir, 'config.json'), JSON.stringify({ port: 8045, colour: 'blue' }));
  await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir } }), (e: Error) => e instanceof ConfigError && /unknown key "colour"/.test(e.message));
  await writeFile(join(dataDir, 'config.json'), JSON.stringify({ upstream: { max_attempts: 'many' } }));
  await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir } }), /config key "upstream\.max_attempts"/);
  await writeFile(join(dataDir, 'config.json'), '{ not json');
  await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir } }), /config\.json is not valid JSON/);
  await writeFile(join(dataDir, 'config.json'), '{"admin_token": gpa-SECRETVALUE123}');
  await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir } }), (e: Error) => /not valid JSON/.test(e.message) && !e.message.includes('SECRETVALUE'));
  await writeFile(join(dataDir, 'config.json'), '{}');
  await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_PORT: 'eighty' } }), /"port" \(from GRANTPOOL_PORT\)/);
  await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_MODEL_ALIASES: '{bad' } }), /GRANTPOOL_MODEL_ALIASES is not valid JSON/);
});

test('environment variables win over config.json', async () => {
  const dataDir = await dir();
  await writeFile(join(dataDir, 'config.json'), JSON.stringify({ port: 9000, auth_mode: 'off', model_aliases: { 'a-*': 'gemini-x' } }));
  const { config } = await loadConfig({
    env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_PORT: '9100', GRANTPOOL_AUTH_MODE: 'strict', GRANTPOOL_API_KEYS: 'k-one-123456, k-two-123456', GRANTPOOL_MODEL_ALIASES: '{"b-*":"gemini-y"}', GRANTPOOL_PUBLIC_URL: 'https://gp.example.com/' },
  });
  assert.equal(config.port, 9100);
  assert.equal(config.effective_auth_mode, 'strict');
  assert.deepEqual(config.api_keys.map((k) => k.key), ['k-one-123456', 'k-two-123456']);
  assert.deepEqual(config.model_aliases, { 'b-*': 'gemini-y' });
  assert.equal(config.redirect_uri, 'https://gp.example.com/oauth2callback');
});

test('http issuers and upstreams are accepted only on loopback', async () => {
  const dataDir = await dir();
  await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_OAUTH_ISSUER: 'http://issuer.example.com' } }), /oauth_issuer.*must use https/);
  await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_GEMINI_BASE_URL: 'http://10.0.0.1:8080' } }), /gemini_base_url/);
  await loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_OAUTH_ISSUER: 'http://127.0.0.1:9999' } });
});

test('a redirect URI that breaks Google\'s rules stops the gateway naming the rule', async () => {
  const dataDir = await dir();
  await assert.rejects(
    startGateway({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_PORT: '0', GRANTPOOL_PUBLIC_URL: 'http://203.0.113.7:8045' }, logger: silentLogger() }),
    (e: Error) => e instanceof ConfigError && /redirect URI/.test(e.message) && /https|IP/i.test(e.message),
  );
});

test('without client_secret.json the gateway starts and /api/status says exactly what is missing', async () => {
  const dataDir = await dir();
  const gw = await startGateway({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_PORT: '0', GRANTPOOL_ADMIN_TOKEN: 'admin-token-for-tests-123' }, logger: silentLogger() });
  try {
    const res = await fetch(`${gw.url}/api/status`, { headers: { authorization: 'Bearer admin-token-for-tests-123' } });
    const body = await res.json();
    assert.equal(body.oauth.configured, false);
    assert.match(body.oauth.problem, /no OAuth client file at .*client_secret\.json/);
    assert.match(body.oauth.fix, /Web application/);
    const start = await fetch(`${gw.url}/api/oauth/start`, { method: 'POST', headers: { authorization: 'Bearer admin-token-for-tests-123' } });
    assert.equal(start.status, 409);
    assert.match((await start.json()).error.message, /client_secret\.json/);
  } finally {
    await gw.close();
  }
});
