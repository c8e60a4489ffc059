// A gateway on a data directory does not load what its configuration does not
// use: the PostgreSQL store and its driver, and jose's verifier (RISC tokens,
// loaded with the first one); the command line loads only the command it runs.
// Their code would sit in memory for nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const GATEWAY = new URL('../../src/app/gateway.ts', import.meta.url).href;
const CLI = new URL('../../src/cli/main.ts', import.meta.url).href;

// Records every module the gateway's start loads, then prints their URLs.
const RECORD = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
`;
const SCRIPT = `${RECORD}
const { startGateway } = await import(${JSON.stringify(GATEWAY)});
const gateway = await startGateway({ env: JSON.parse(process.env.GATEWAY_ENV) });
await gateway.close();
process.stdout.write(JSON.stringify(loaded));
`;

test('a gateway on a data directory starts without loading the PostgreSQL store, the postgres driver or the RISC verifier', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-lazy-'));
  try {
    const env = { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_HOST: '127.0.0.1', GRANTPOOL_PORT: '0', GRANTPOOL_ADMIN_TOKEN: 'test-admin-token-0123456789' };
    const { stdout } = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', SCRIPT], {
      env: { ...process.env, GATEWAY_ENV: JSON.stringify(env), GRANTPOOL_LOG_LEVEL: 'silent' },
    });
    const loaded = JSON.parse(stdout) as string[];
    assert.ok(loaded.some((u) => u.endsWith('/src/store/file-store.ts')), 'the data directory store is loaded');
    assert.deepEqual(loaded.filter((u) => /\/src\/store\/pg-|\/node_modules\/postgres\//.test(u)), []);
    // openid-client uses a few of jose's modules; the verifier is jose's JWT verification.
    assert.deepEqual(loaded.filter((u) => /\/node_modules\/jose\/dist\/webapi\/(index|jwt\/verify)\.js$/.test(u)), []);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('the command line loads a command when it runs: `grantpool serve` holds no PostgreSQL copy tool, RISC registration or account command', async () => {
  const { stdout } = await run(process.execPath, ['--no-warnings', '--input-type=module', '-e', `${RECORD}\nawait import(${JSON.stringify(CLI)});\nprocess.stdout.write(JSON.stringify(loaded));`]);
  const loaded = JSON.parse(stdout) as string[];
  assert.ok(loaded.some((u) => u.endsWith('/src/cli/main.ts')));
  assert.deepEqual(loaded.filter((u) => /\/src\/cli\/(accounts|store|risc|doctor|status|encrypt|projects|serve)\.ts$|\/src\/store\/pg-|\/src\/risc\/management\.ts$/.test(u)), []);
});
