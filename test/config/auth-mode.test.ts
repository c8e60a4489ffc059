// `auth_mode: auto` (SPEC section 5): off only when both the listen address and
// the public URL are loopback; a gateway behind a reverse proxy asks for a key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideAuthMode } from '../../src/config/auth-mode.ts';
import { loadConfig } from '../../src/config/load.ts';
import { startGateway } from '../../src/app/gateway.ts';
import { silentLogger } from '../../src/log/logger.ts';

test('auto is off only when the listen address and the public URL are both loopback', () => {
  assert.equal(decideAuthMode('auto', '127.0.0.1', 'http://localhost:8045').mode, 'off');
  assert.equal(decideAuthMode('auto', '::1', 'http://127.0.0.1:8045').mode, 'off');
  assert.equal(decideAuthMode('auto', '127.0.0.1').mode, 'off', 'the default public URL is http://localhost:<port>');
  const proxied = decideAuthMode('auto', '127.0.0.1', 'https://gp.example.com');
  assert.equal(proxied.mode, 'all_except_health');
  assert.match(proxied.reason, /public URL https:\/\/gp\.example\.com is not a loopback URL/);
  const lan = decideAuthMode('auto', '0.0.0.0', 'http://localhost:8045');
  assert.equal(lan.mode, 'all_except_health');
  assert.match(lan.reason, /listens on 0\.0\.0\.0/);
  assert.equal(decideAuthMode('off', '0.0.0.0', 'https://gp.example.com').mode, 'off', 'an explicit mode is kept');
  assert.match(decideAuthMode('strict', '127.0.0.1').reason, /set to "strict"/);
});

test('loadConfig resolves auto with the public URL', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-authmode-'));
  const { config } = await loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_HOST: '127.0.0.1', GRANTPOOL_PUBLIC_URL: 'https://gp.example.com/' } });
  assert.equal(config.effective_auth_mode, 'all_except_health');
  assert.match(config.auth_mode_reason, /reverse proxy/);
});

test('a gateway on 127.0.0.1 behind a reverse proxy asks for a key on every proxy route, /google included, and /api/status says why', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-authmode-'));
  const admin = 'admin-token-for-tests-123';
  const gw = await startGateway({
    env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_HOST: '127.0.0.1', GRANTPOOL_PORT: '0', GRANTPOOL_PUBLIC_URL: 'https://gp.example.com', GRANTPOOL_ADMIN_TOKEN: admin },
    logger: silentLogger(),
  });
  try {
    // As the reverse proxy forwards it: Host is the public name, no key.
    for (const [method, path] of [['POST', '/v1/chat/completions'], ['GET', '/google/drive/v3/files'], ['GET', '/v1beta/models'], ['POST', '/v1/messages']] as const) {
      const r = await fetch(gw.url + path, { method, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
      assert.equal(r.status, 401, `${method} ${path}`);
    }
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200, 'health stays exempt');
    const status = await (await fetch(`${gw.url}/api/status`, { headers: { authorization: `Bearer ${admin}` } })).json();
    assert.equal(status.auth_mode, 'all_except_health');
    assert.match(status.auth_mode_reason, /public URL https:\/\/gp\.example\.com is not a loopback URL/);
  } finally {
    await gw.close();
  }
});
