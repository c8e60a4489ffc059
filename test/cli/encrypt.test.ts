// `grantpool encrypt`, `encrypt --rotate`, `decrypt` on a data directory
// (docs/security.md): round trips, the key checks, and a SIGKILL in the middle
// of `grantpool encrypt` leaving every account readable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMain } from '../support/cli-main.ts';
import { createFileStore } from '../../src/store/file-store.ts';
import { sealerFor } from '../../src/store/open-store.ts';
import { keyId } from '../../src/store/token-cipher.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { makeAccount, tempDataDir } from '../support/store-fixtures.ts';
import { BIN } from '../support/run-cli.ts';

const KEY = randomBytes(32);
const NEW = randomBytes(32);

async function plainStore(dataDir: string, n: number): Promise<Map<string, { refresh: string; access: string }>> {
  await mkdir(join(dataDir, 'accounts'), { recursive: true, mode: 0o700 });
  const tokens = new Map<string, { refresh: string; access: string }>();
  for (let i = 0; i < n; i++) {
    const a = makeAccount(`acc${i}`, { sub: `sub-${i}`, email: `u${i}@example.com` });
    const refresh = `1//refresh-${i}-${randomBytes(8).toString('hex')}`;
    const access = `ya29.access-${i}-${randomBytes(8).toString('hex')}`;
    tokens.set(a.id, { refresh, access });
    await writeFile(join(dataDir, 'accounts', `${a.id}.json`), JSON.stringify({ ...a, token: { ...a.token, refresh_token: refresh, access_token: access } }, null, 2), { mode: 0o600 });
  }
  return tokens;
}

async function accountFiles(dataDir: string): Promise<any[]> {
  const dir = join(dataDir, 'accounts');
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, n), 'utf8'))));
}

async function allText(dataDir: string): Promise<string> {
  let text = '';
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else text += await readFile(join(d, e.name), 'latin1');
    }
  };
  await walk(dataDir);
  return text;
}

async function readWith(dataDir: string, keys: { current: Buffer | null; old: Buffer[] }) {
  const store = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor(keys) });
  try {
    return { accounts: await store.list(), report: store.encryption() };
  } finally {
    await store.close();
  }
}

test('encrypt, encrypt --rotate --new-key and decrypt round trip a data directory, each account once', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const tokens = await plainStore(dataDir, 5);
  const env = { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_ENCRYPTION_KEY: KEY.toString('base64') };

  const first = await runMain(['encrypt'], env);
  assert.equal(first.code, 0, first.err);
  assert.equal(first.out, `encrypted 5 accounts with key id ${keyId(KEY)} in ${dataDir} (0 already encrypted)\n`);
  const text = await allText(dataDir);
  for (const { refresh, access } of tokens.values()) assert.ok(!text.includes(refresh) && !text.includes(access), 'no token left in plain text');
  for (const f of await accountFiles(dataDir)) assert.match(f.token.refresh_token, new RegExp(`^enc:v1:${keyId(KEY)}:`));
  const read = await readWith(dataDir, { current: KEY, old: [] });
  for (const a of read.accounts) assert.equal(a.token.refresh_token, tokens.get(a.id)!.refresh);
  const before = await allText(dataDir);
  const again = await runMain(['encrypt'], env);
  assert.equal(again.out, `encrypted 0 accounts with key id ${keyId(KEY)} in ${dataDir} (5 already encrypted)\n`);
  assert.equal(await allText(dataDir), before, 'a second run changes nothing');

  // Rotation: the new key from a file (0600), the old key still configured for reading.
  const keyFile = join(dataDir, 'new.key');
  await writeFile(keyFile, `${NEW.toString('base64')}\n`, { mode: 0o600 });
  const rotated = await runMain(['encrypt', '--rotate', '--new-key', `@${keyFile}`], env);
  assert.equal(rotated.code, 0, rotated.err);
  assert.match(rotated.out, new RegExp(`^re-encrypted 5 accounts with key id ${keyId(NEW)} .*\\(0 already under key id ${keyId(NEW)}\\)\\nnext: make key id ${keyId(NEW)} the gateway's key`));
  for (const f of await accountFiles(dataDir)) {
    assert.match(f.token.refresh_token, new RegExp(`^enc:v1:${keyId(NEW)}:`));
    assert.match(f.token.access_token, new RegExp(`^enc:v1:${keyId(NEW)}:`));
  }
  const old = await readWith(dataDir, { current: KEY, old: [] });
  assert.equal(old.report.locked.length, 5, 'the old key alone no longer reads them');
  // The new key as the current one, from encryption_key_file; the old one for reading from GRANTPOOL_ENCRYPTION_OLD_KEYS.
  await writeFile(join(dataDir, 'config.json'), JSON.stringify({ encryption_key_file: 'new.key' }), { mode: 0o600 });
  const newEnv = { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_ENCRYPTION_OLD_KEYS: KEY.toString('base64') };
  const doctor = await runMain(['doctor'], newEnv);
  assert.match(doctor.out, new RegExp(`ok   token encryption: key id ${keyId(NEW)}: 5 account\\(s\\) encrypted, 0 plain`));

  const decrypted = await runMain(['decrypt'], newEnv);
  assert.equal(decrypted.code, 0, decrypted.err);
  assert.match(decrypted.out, /^decrypted 5 accounts in .* \(0 already plain\)\nnext: remove the key/);
  for (const f of await accountFiles(dataDir)) {
    assert.equal(f.token.refresh_token, tokens.get(f.id)!.refresh);
    assert.equal(f.token.access_token, tokens.get(f.id)!.access);
  }
});

test('the commands say what is missing: no key, a bad key, --new-key without --rotate, an account no key opens; a readable key file is warned about', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  await plainStore(dataDir, 2);
  const noKey = await runMain(['encrypt'], { GRANTPOOL_DATA_DIR: dataDir });
  assert.equal(noKey.code, 1);
  assert.match(noKey.err, /no encryption key is configured, so there is nothing to encrypt with\n  fix: set GRANTPOOL_ENCRYPTION_KEY/);
  const bad = await runMain(['encrypt'], { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_ENCRYPTION_KEY: 'c2hvcnQ=' });
  assert.equal(bad.code, 1);
  assert.match(bad.err, /GRANTPOOL_ENCRYPTION_KEY holds 5 bytes; an encryption key is 32 bytes/);
  const flags = await runMain(['encrypt', '--new-key', 'x'], { GRANTPOOL_DATA_DIR: dataDir });
  assert.match(flags.err, /--new-key goes with --rotate/);

  const loose = join(dataDir, 'loose.key');
  await writeFile(loose, KEY.toString('base64'));
  await chmod(loose, 0o644);
  const env = { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_ENCRYPTION_KEY_FILE: loose };
  const warned = await runMain(['encrypt'], env);
  assert.equal(warned.code, 0, warned.err);
  assert.match(warned.err, /warning: the encryption key file .*loose\.key has mode 644: others on this machine may read the key \(chmod 600 /);
  const doctor = await runMain(['doctor'], env);
  assert.match(doctor.out, /warn encryption key file: .*mode 644/);

  // Another key: decrypt cannot open them, says so, and leaves them as they are.
  const files = await accountFiles(dataDir);
  const other = await runMain(['decrypt'], { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_ENCRYPTION_KEY: NEW.toString('base64') });
  assert.equal(other.code, 1);
  assert.match(other.err, new RegExp(`cannot convert u0@example.com \\(acc0\\): encrypted with a key this gateway does not have \\(key id ${keyId(KEY)}\\)`));
  assert.match(other.err, /2 accounts could not be converted and were left as they were/);
  assert.deepEqual(await accountFiles(dataDir), files);
  const doctorOther = await runMain(['doctor'], { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_ENCRYPTION_KEY: NEW.toString('base64') });
  assert.match(doctorOther.out, new RegExp(`FAIL token encryption: 2 account\\(s\\) have tokens this configuration cannot decrypt \\(key id ${keyId(KEY)}; the configured key is ${keyId(NEW)}\\)`));
});

test('a SIGKILL during `grantpool encrypt` leaves every account readable (each file plain or encrypted); a second run finishes', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const N = 150;
  const tokens = await plainStore(dataDir, N);
  const env = { PATH: process.env.PATH!, HOME: process.env.HOME!, GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_ENCRYPTION_KEY: KEY.toString('base64') };
  const kills: number[] = [];
  for (let round = 0; round < 3; round++) {
    // Kill it once it has written a few more accounts: each atomic write ends with a rename onto
    // <id>.json, which fs.watch reports at once (reading the files to find out would be slower than the writer).
    const target = 10 + round * 15;
    const written = new Set<string>();
    const child = spawn(process.execPath, [BIN, 'encrypt'], { env, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    const watcher = watch(join(dataDir, 'accounts'), (_event, name) => {
      if (name && /^acc\d+\.json$/.test(name)) written.add(name);
      if (written.size >= target) child.kill('SIGKILL');
    });
    await exited;
    watcher.close();
    const files = await accountFiles(dataDir);
    assert.equal(files.length, N, 'no account lost');
    let encrypted = 0;
    for (const f of files) {
      const both = [f.token.refresh_token, f.token.access_token].map((v: string) => v.startsWith('enc:v1:'));
      assert.equal(both[0], both[1], `${f.id}: both tokens in one state`);
      if (both[0]) encrypted++;
    }
    kills.push(encrypted);
    const read = await readWith(dataDir, { current: KEY, old: [] });
    assert.equal(read.accounts.length, N);
    assert.equal(read.report.locked.length, 0);
    for (const a of read.accounts) assert.equal(a.token.refresh_token, tokens.get(a.id)!.refresh);
  }
  assert.ok(kills.some((n) => n > 0 && n < N), `killed in the middle at least once (${kills.join(', ')} of ${N} encrypted)`);
  const finish = await runMain(['encrypt'], { GRANTPOOL_DATA_DIR: dataDir, GRANTPOOL_ENCRYPTION_KEY: KEY.toString('base64') });
  assert.equal(finish.code, 0, finish.err);
  assert.match(finish.out, new RegExp(`encrypted ${N - kills.at(-1)!} accounts? .*\\(${kills.at(-1)} already encrypted\\)`));
  assert.equal((await readWith(dataDir, { current: KEY, old: [] })).report.encrypted, N);
});
