// `~` in the paths a user writes (GRANTPOOL_DATA_DIR, client_secret_file,
// encryption key files, `--new-key @file`) is their home directory, as in a shell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, resolveDataDir } from '../../src/config/load.ts';
import { keyArgument, loadEncryptionKeys } from '../../src/config/encryption-keys.ts';

// os.homedir() follows $HOME: a temporary home keeps the real one untouched.
const home = await mkdtemp(join(tmpdir(), 'grantpool-home-'));
process.env.HOME = home;

test('GRANTPOOL_DATA_DIR: ~ and ~/dir are in the home directory; ~user/dir and a relative path are not expanded', () => {
  assert.equal(resolveDataDir({ GRANTPOOL_DATA_DIR: '~/gp' }), join(home, 'gp'));
  assert.equal(resolveDataDir({ GRANTPOOL_DATA_DIR: '~' }), home);
  assert.equal(resolveDataDir({ GRANTPOOL_DATA_DIR: '~other/gp' }), resolve('~other/gp'));
  assert.equal(resolveDataDir({ GRANTPOOL_DATA_DIR: 'gp' }), resolve('gp'));
  assert.equal(resolveDataDir({}), join(home, '.grantpool'));
});

test('client_secret_file and encryption key files: ~/ is the home directory, a relative path is in the data directory', async () => {
  const key = randomBytes(32).toString('base64');
  await writeFile(join(home, 'grantpool.key'), key, { mode: 0o600 });
  await writeFile(join(home, 'old.key'), randomBytes(32).toString('base64'), { mode: 0o600 });
  const { config } = await loadConfig({ env: { GRANTPOOL_DATA_DIR: '~/data', GRANTPOOL_CLIENT_SECRET_FILE: '~/cs.json' } });
  assert.equal(config.data_dir, join(home, 'data'));
  assert.equal(config.client_secret_path, join(home, 'cs.json'));
  const keys = await loadEncryptionKeys({ data_dir: config.data_dir, encryption_key_file: '~/grantpool.key', encryption_old_key_files: ['~/old.key'] }, {});
  assert.equal(keys.source, join(home, 'grantpool.key'));
  assert.equal(keys.current?.toString('base64'), key);
  assert.equal(keys.old.length, 1);
  await assert.rejects(loadEncryptionKeys({ data_dir: config.data_dir, encryption_key_file: 'grantpool.key', encryption_old_key_files: [] }, {}), (e: Error) =>
    e.message.includes(join(home, 'data', 'grantpool.key')),
  );
});

test('--new-key @~/file reads the file in the home directory', async () => {
  const key = randomBytes(32);
  await writeFile(join(home, 'new.key'), key.toString('base64'), { mode: 0o600 });
  assert.deepEqual(await keyArgument('@~/new.key', '--new-key'), key);
});
