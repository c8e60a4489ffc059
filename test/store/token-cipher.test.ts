// Tokens encrypted at rest (src/store/token-cipher.ts) and the file store that
// uses it: what reaches the disk, what a store without the key does, a wrong
// key, a value moved to another account.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createKeyring, keyId, keyringSealer, openValue, sealValue, SEALED_PREFIX } from '../../src/store/token-cipher.ts';
import { createFileStore } from '../../src/store/file-store.ts';
import { sealerFor } from '../../src/store/open-store.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { captureLogger, makeAccount, tempDataDir } from '../support/store-fixtures.ts';
import type { Account } from '../../src/store/account.ts';

const KEY = randomBytes(32);
const OTHER = randomBytes(32);

function withTokens(id: string, email: string, refresh: string, access: string): Account {
  const a = makeAccount(id, { email, sub: `sub-${email}` });
  return { ...a, token: { ...a.token, refresh_token: refresh, access_token: access } };
}

async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(p, createHash('sha256').update(await readFile(p)).digest('hex'));
    }
  };
  await walk(dir);
  return out;
}

async function everyFileText(dir: string): Promise<string> {
  let all = '';
  for (const p of (await hashTree(dir)).keys()) all += await readFile(p, 'utf8');
  return all;
}

test('a sealed value has the documented form, a fresh nonce per write, and opens only for its account and field', () => {
  const ring = createKeyring(KEY);
  const kid = keyId(KEY);
  assert.match(kid, /^[0-9a-f]{8}$/);
  assert.equal(kid, createHash('sha256').update(KEY).digest('hex').slice(0, 8));
  const a = sealValue(ring.current!, 'acc1', 'refresh_token', '1//secret');
  const b = sealValue(ring.current!, 'acc1', 'refresh_token', '1//secret');
  assert.match(a, /^enc:v1:[0-9a-f]{8}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
  assert.ok(a.startsWith(`${SEALED_PREFIX}${kid}:`));
  assert.notEqual(a, b, 'a fresh nonce per write');
  assert.deepEqual(openValue(ring, 'acc1', 'refresh_token', a), { ok: true, plain: '1//secret' });
  assert.deepEqual(openValue(ring, 'acc2', 'refresh_token', a), { ok: false, failure: { why: 'bad_tag', keyId: kid } }, 'another account');
  assert.deepEqual(openValue(ring, 'acc1', 'access_token', a), { ok: false, failure: { why: 'bad_tag', keyId: kid } }, 'another field');
  assert.deepEqual(openValue(createKeyring(OTHER), 'acc1', 'refresh_token', a), { ok: false, failure: { why: 'unknown_key', keyId: kid } });
  // A wrong key that claims the same id (an edited file): the GCM tag says no.
  const forged = a.replace(kid, keyId(OTHER));
  assert.deepEqual(openValue(createKeyring(OTHER), 'acc1', 'refresh_token', forged), { ok: false, failure: { why: 'bad_tag', keyId: keyId(OTHER) } });
  // One flipped bit of the ciphertext.
  const parts = a.split(':');
  const body = Buffer.from(parts[4]!, 'base64url');
  body[0] ^= 1;
  assert.equal(openValue(ring, 'acc1', 'refresh_token', [...parts.slice(0, 4), body.toString('base64url')].join(':')).ok, false);
  assert.equal(openValue(ring, 'acc1', 'refresh_token', 'enc:v1:zz').ok, false);
  // Old keys are read; new writes use the current key.
  const rotated = createKeyring(OTHER, [KEY]);
  assert.deepEqual(openValue(rotated, 'acc1', 'refresh_token', a), { ok: true, plain: '1//secret' });
  assert.ok(keyringSealer(rotated).seal(withTokens('acc1', 'a@x', 'r', 'x')).token.refresh_token.startsWith(`enc:v1:${keyId(OTHER)}:`));
  assert.throws(() => createKeyring(randomBytes(16)), /32 bytes/);
});

test('with a key, the file store writes no token in plain text, and reads back plaintext', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: KEY, old: [] }) });
  t.after(() => store.close());
  const { account } = await store.upsertByIdentity({ sub: 'sub-a@example.com', email: 'a@example.com' }, () =>
    withTokens('acc1', 'a@example.com', '1//refresh-one-PLAINTEXT', 'ya29.access-one-PLAINTEXT'),
  );
  assert.equal(account.token.refresh_token, '1//refresh-one-PLAINTEXT', 'the store hands out plaintext');
  // A refresh: a new access token written through update().
  await store.update('acc1', (a) => ({ ...a, token: { ...a.token, access_token: 'ya29.access-two-PLAINTEXT' } }));
  const text = await everyFileText(dataDir);
  for (const secret of ['1//refresh-one-PLAINTEXT', 'ya29.access-one-PLAINTEXT', 'ya29.access-two-PLAINTEXT', 'PLAINTEXT']) {
    assert.ok(!text.includes(secret), `${secret} is not on disk`);
  }
  const file = JSON.parse(await readFile(join(dataDir, 'accounts', 'acc1.json'), 'utf8'));
  assert.ok(file.token.refresh_token.startsWith(`enc:v1:${keyId(KEY)}:`));
  assert.ok(file.token.access_token.startsWith(`enc:v1:${keyId(KEY)}:`));
  assert.equal(file.email, 'a@example.com', 'the rest of the file stays readable');

  const again = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: KEY, old: [] }) });
  t.after(() => again.close());
  assert.equal((await again.get('acc1'))!.token.access_token, 'ya29.access-two-PLAINTEXT');
  assert.deepEqual(again.encryption(), { key_id: keyId(KEY), old_key_ids: [], plain: 0, encrypted: 1, encrypted_with_old_key: 0, locked: [] });
  assert.equal(again.problem(), null);
});

test('without the key (or with a wrong one), encrypted accounts are locked: disabled in memory with the reason, never written, reported', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const keyed = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: KEY, old: [] }) });
  await keyed.upsertByIdentity({ sub: 'sub-a@example.com', email: 'a@example.com' }, () => withTokens('acc1', 'a@example.com', '1//r1', 'ya29.a1'));
  await keyed.close();
  await writeFile(join(dataDir, 'accounts', 'plain.json'), JSON.stringify(withTokens('plain', 'p@example.com', '1//p', 'ya29.p')), { mode: 0o600 });
  const before = await hashTree(dataDir);

  for (const keys of [undefined, { current: OTHER, old: [] }]) {
    const log = captureLogger();
    const store = await createFileStore({ dataDir, logger: log.logger, sealer: sealerFor(keys) });
    const locked = (await store.get('acc1'))!;
    assert.equal(locked.disabled, true);
    assert.equal(locked.disabled_reason, `encrypted with a key this gateway does not have (key id ${keyId(KEY)})`);
    assert.ok(locked.token.refresh_token.startsWith('enc:v1:'), 'never a made-up token');
    assert.equal((await store.get('plain'))!.token.refresh_token, '1//p', 'plain accounts still load');
    await assert.rejects(store.update('acc1', (a) => ({ ...a, last_used: 1 })), (e: Error & { code?: string }) => e.code === 'account_encrypted' && /left unchanged/.test(e.message));
    await assert.rejects(
      store.upsertByIdentity({ sub: 'sub-a@example.com', email: 'a@example.com' }, () => withTokens('acc1', 'a@example.com', '1//new', 'ya29.new')),
      (e: Error & { code?: string }) => e.code === 'account_encrypted',
    );
    assert.match(store.problem()!, /1 account\(s\) have tokens encrypted with a key this gateway does not have \(key id [0-9a-f]{8}\)/);
    assert.equal(store.encryption().locked.length, 1);
    assert.equal(store.encryption().plain, 1);
    assert.ok(log.lines().some((l) => l.level === 50 && /a key this gateway does not have/.test(String(l.msg)) && l.email === 'a@example.com'));
    await store.close();
  }
  assert.deepEqual(await hashTree(dataDir), before, 'not one byte changed');
});

test('a wrong key with the same id (GCM tag failure) is reported as such', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const keyed = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: KEY, old: [] }) });
  await keyed.upsertByIdentity({ sub: 'sub-a@example.com', email: 'a@example.com' }, () => withTokens('acc1', 'a@example.com', '1//r1', 'ya29.a1'));
  await keyed.close();
  // Someone replaced the ciphertext with one made under another key but kept the key id.
  const path = join(dataDir, 'accounts', 'acc1.json');
  const file = JSON.parse(await readFile(path, 'utf8'));
  const other = sealValue({ id: keyId(KEY), key: OTHER }, 'acc1', 'refresh_token', '1//forged');
  file.token.refresh_token = other;
  await writeFile(path, JSON.stringify(file));
  const store = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: KEY, old: [] }) });
  t.after(() => store.close());
  const a = (await store.get('acc1'))!;
  assert.equal(a.disabled, true);
  assert.match(a.disabled_reason!, /do not decrypt with key id [0-9a-f]{8}/);
  assert.match(store.problem()!, /that do not decrypt/);
});

test('an encrypted value moved into another account file does not decrypt there (associated data)', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const sealer = sealerFor({ current: KEY, old: [] });
  const store = await createFileStore({ dataDir, logger: silentLogger(), sealer });
  await store.upsertByIdentity({ sub: 'sub-a@example.com', email: 'a@example.com' }, () => withTokens('acc1', 'a@example.com', '1//victim', 'ya29.v'));
  await store.upsertByIdentity({ sub: 'sub-b@example.com', email: 'b@example.com' }, () => withTokens('acc2', 'b@example.com', '1//attacker', 'ya29.b'));
  await store.close();
  const one = JSON.parse(await readFile(join(dataDir, 'accounts', 'acc1.json'), 'utf8'));
  const two = JSON.parse(await readFile(join(dataDir, 'accounts', 'acc2.json'), 'utf8'));
  two.token.refresh_token = one.token.refresh_token;
  await writeFile(join(dataDir, 'accounts', 'acc2.json'), JSON.stringify(two));
  const again = await createFileStore({ dataDir, logger: silentLogger(), sealer });
  t.after(() => again.close());
  const moved = (await again.get('acc2'))!;
  assert.equal(moved.disabled, true, 'locked, not served as the other account');
  assert.notEqual(moved.token.refresh_token, '1//victim');
  assert.equal((await again.get('acc1'))!.token.refresh_token, '1//victim');
});

test('with a key, plain accounts load and are encrypted at their next write; an old key reads, the new one writes', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const plain = await createFileStore({ dataDir, logger: silentLogger() });
  await plain.upsertByIdentity({ sub: 'sub-a@example.com', email: 'a@example.com' }, () => withTokens('acc1', 'a@example.com', '1//r1', 'ya29.a1'));
  await plain.close();
  const first = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: KEY, old: [] }) });
  assert.equal((await first.get('acc1'))!.token.refresh_token, '1//r1');
  assert.equal(first.encryption().plain, 1);
  await first.update('acc1', (a) => ({ ...a, last_used: 5 }));
  assert.equal(first.encryption().encrypted, 1);
  await first.close();
  assert.ok(!(await everyFileText(dataDir)).includes('1//r1'));

  const rotated = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: OTHER, old: [KEY] }) });
  t.after(() => rotated.close());
  assert.equal((await rotated.get('acc1'))!.token.refresh_token, '1//r1');
  assert.deepEqual({ ...rotated.encryption(), old_key_ids: rotated.encryption().old_key_ids }, { key_id: keyId(OTHER), old_key_ids: [keyId(KEY)], plain: 0, encrypted: 1, encrypted_with_old_key: 1, locked: [] });
  await rotated.update('acc1', (a) => ({ ...a, last_used: 6 }));
  const file = JSON.parse(await readFile(join(dataDir, 'accounts', 'acc1.json'), 'utf8'));
  assert.ok(file.token.refresh_token.startsWith(`enc:v1:${keyId(OTHER)}:`));
});

test('a write that leaves a token as it was keeps its ciphertext; a changed token gets a fresh nonce (files and the sealer)', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: KEY, old: [] }) });
  t.after(() => store.close());
  await store.upsertByIdentity({ sub: 'sub-a@example.com', email: 'a@example.com' }, () => withTokens('acc1', 'a@example.com', '1//r', 'ya29.one'));
  const read = async () => JSON.parse(await readFile(join(dataDir, 'accounts', 'acc1.json'), 'utf8')).token;
  const first = await read();
  await store.update('acc1', (a) => ({ ...a, last_used: 1234 }));
  assert.deepEqual(await read(), first, 'last_used alone re-encrypts nothing');
  await store.update('acc1', (a) => ({ ...a, token: { ...a.token, access_token: 'ya29.two' } }));
  const second = await read();
  assert.equal(second.refresh_token, first.refresh_token, 'the unchanged refresh token keeps its ciphertext');
  assert.notEqual(second.access_token, first.access_token);
  assert.equal((await store.get('acc1'))!.token.access_token, 'ya29.two');
  // Under a new key every token is encrypted again, changed or not.
  const sealer = keyringSealer(createKeyring(OTHER, [KEY]));
  const stored = withTokens('acc1', 'a@example.com', first.refresh_token, first.access_token);
  const opened = sealer.open(stored);
  const resealed = sealer.seal(opened.account, { stored, plain: opened.account });
  assert.ok(resealed.token.refresh_token.startsWith(`enc:v1:${keyId(OTHER)}:`));
});
