// Vertex AI settings (SPEC section 8): defaults, validation, environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.ts';

async function dir() {
  return mkdtemp(join(tmpdir(), 'grantpool-config-vertex-'));
}

test('vertex settings have their documented defaults', async () => {
  const { config } = await loadConfig({ env: { GRANTPOOL_DATA_DIR: await dir() } });
  assert.equal(config.vertex_location, 'global');
  assert.equal(config.vertex_base_url, 'https://aiplatform.googleapis.com');
  assert.deepEqual(config.gemini_services, ['gemini_api', 'vertex']);
  assert.deepEqual(config.vertex_claude_models, {});
  assert.equal(config.claude_fallback, 'gemini');
});

test('vertex settings from config.json and the environment; bad values name the key', async () => {
  const dataDir = await dir();
  await writeFile(
    join(dataDir, 'config.json'),
    JSON.stringify({ vertex_location: 'us-east5', gemini_services: ['vertex'], vertex_claude_models: { 'claude-opus-4-5*': 'claude-opus-4-5@20251101' }, claude_fallback: 'none' }),
  );
  const { config } = await loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_VERTEX_BASE_URL: 'http://127.0.0.1:9999' } });
  assert.equal(config.vertex_location, 'us-east5');
  assert.equal(config.vertex_base_url, 'http://127.0.0.1:9999');
  assert.deepEqual(config.gemini_services, ['vertex']);
  assert.deepEqual(config.vertex_claude_models, { 'claude-opus-4-5*': 'claude-opus-4-5@20251101' });
  assert.equal(config.claude_fallback, 'none');

  const bad = async (raw: unknown, re: RegExp, env: Record<string, string> = {}) => {
    await writeFile(join(dataDir, 'config.json'), JSON.stringify(raw));
    await assert.rejects(loadConfig({ env: { GRANTPOOL_DATA_DIR: dataDir, ...env } }), (e: Error) => e instanceof ConfigError && re.test(e.message));
  };
  await bad({ gemini_services: ['gemini_api', 'bedrock'] }, /config key "gemini_services\.1"/);
  await bad({ gemini_services: [] }, /config key "gemini_services"/);
  await bad({ gemini_services: ['vertex', 'vertex'] }, /gemini_services.*twice/);
  await bad({ claude_fallback: 'openai' }, /config key "claude_fallback"/);
  await bad({ vertex_location: 'US East/5' }, /config key "vertex_location".*Vertex AI location/);
  await bad({}, /vertex_base_url.*must use https/, { GRANTPOOL_VERTEX_BASE_URL: 'http://vertex.example.com' });
});
