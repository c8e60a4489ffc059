// Tokens encrypted at rest on PostgreSQL (SPEC sections 10 and 11): a gateway
// with a key leaves no token in the database (pg_dump of everything), one
// without the key changes no row and serves nothing; `grantpool encrypt`,
// `--rotate` and `decrypt` convert the database; `store copy` carries the
// encrypted form both ways, and re-encrypts for another id when it must.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import postgres from 'postgres';
import { runMain } from '../support/cli-main.ts';
import { createPgStore } from '../../src/store/pg-store.ts';
import { createFileStore } from '../../src/store/file-store.ts';
import { sealerFor } from '../../src/store/open-store.ts';
import { keyId } from '../../src/store/token-cipher.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { makeAccount } from '../support/store-fixtures.ts';

const found = findPostgres();
const skip = typeof found === 'string' ? found : false;
const KEY = randomBytes(32);
const NEW = randomBytes(32);

describe('tokens encrypted at rest in PostgreSQL', { skip }, () => {
  let pg: TestPostgres;
  let url: string;
  let stack: Stack;
  const secrets = new Set<string>();

  /** Everything in the database, as pg_dump writes it. */
  const dump = (db = url) =>
    execFileSync(join((found as Exclude<typeof found, string>).bin, 'pg_dump'), ['--data-only', db], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const rows = async (db = url) => {
    const sql = postgres(db, { onnotice: () => {} });
    try {
      return (await sql<{ id: string; data: string; version: string }[]>`SELECT id, data::text AS data, version::text AS version FROM grantpool_accounts ORDER BY id`).map((r) => ({ ...r }));
    } finally {
      await sql.end();
    }
  };

  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
    url = await pg.createDatabase('encrypted');
    stack = await startStack({ env: { GRANTPOOL_DATABASE_URL: url, GRANTPOOL_ENCRYPTION_KEY: KEY.toString('base64') } });
    for (const email of ['d1@example.com', 'd2@example.com']) {
      stack.issuer.addUser({ email, name: email });
      assert.equal((await stack.addAccount(email)).status, 200);
    }
  });
  after(async () => {
    await stack?.close();
    pg?.destroy();
  });

  const chat = (text: string) =>
    new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 }).chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: text }] });

  test('with a key, no token is anywhere in the database after adding and refreshing accounts', async () => {
    for (let i = 0; i < 3; i++) await chat(`hi ${i}`);
    stack.clock.advance(2 * 3600_000);
    const refreshes = stack.issuer.counters.refreshRequests;
    for (let i = 0; i < 3; i++) await chat(`after refresh ${i}`);
    assert.ok(stack.issuer.counters.refreshRequests >= refreshes + 2);
    for (const a of await stack.gateway.store.list()) {
      secrets.add(a.token.refresh_token);
      secrets.add(a.token.access_token);
    }
    for (const r of stack.upstream.requests) if (r.token) secrets.add(r.token);
    assert.ok(secrets.size >= 6);
    await stack.gateway.close();
    const all = dump();
    assert.match(all, /enc:v1:/);
    for (const s of secrets) assert.ok(!all.includes(s), 'no token in pg_dump');
    for (const r of await rows()) assert.match(JSON.parse(r.data).token.refresh_token, new RegExp(`^enc:v1:${keyId(KEY)}:`));
  });

  test('a gateway without the key changes no row, serves nothing with those accounts, and says why', async () => {
    const before = await rows();
    delete stack.env.GRANTPOOL_ENCRYPTION_KEY;
    await stack.restartGateway();
    try {
      stack.clock.advance(2 * 3600_000);
      const res = await fetch(`${stack.gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'x' }] }),
      });
      assert.equal(res.status, 503);
      await res.arrayBuffer();
      const status = (await stack.api('GET', '/api/status')).body;
      assert.ok(status.problems.some((p: string) => p.includes(`2 account(s) have tokens encrypted with a key this gateway does not have (key id ${keyId(KEY)})`)), JSON.stringify(status.problems));
      assert.equal(status.encryption.locked.length, 2);
      const { body } = await stack.api('GET', '/api/accounts');
      const patch = await stack.api('PATCH', `/api/accounts/${body.accounts[0].id}`, { proxy_disabled: true }, { allowError: true });
      assert.equal(patch.status, 409);
    } finally {
      await stack.gateway.close();
    }
    assert.deepEqual(await rows(), before, 'no row changed, not even its version');
  });

  test('decrypt, encrypt and encrypt --rotate convert the database in place', async () => {
    const env = { GRANTPOOL_DATA_DIR: stack.dataDir, GRANTPOOL_DATABASE_URL: url, GRANTPOOL_ENCRYPTION_KEY: KEY.toString('base64') };
    const dec = await runMain(['decrypt'], env);
    assert.equal(dec.code, 0, dec.err);
    assert.match(dec.out, /^decrypted 2 accounts in postgres:\/\/.* \(0 already plain\)/);
    const plainDump = dump();
    assert.ok([...secrets].some((s) => plainDump.includes(s)), 'the tokens are plain now');
    const enc = await runMain(['encrypt'], env);
    assert.equal(enc.code, 0, enc.err);
    assert.match(enc.out, new RegExp(`^encrypted 2 accounts with key id ${keyId(KEY)} in postgres://`));
    for (const s of secrets) assert.ok(!dump().includes(s));
    // The = form: a base64url key may start with '-', which the parser would take as an option.
    const rot = await runMain(['encrypt', '--rotate', `--new-key=${NEW.toString('base64url')}`], env);
    assert.equal(rot.code, 0, rot.err);
    for (const r of await rows()) {
      const t = JSON.parse(r.data).token;
      assert.match(t.refresh_token, new RegExp(`^enc:v1:${keyId(NEW)}:`));
      assert.match(t.access_token, new RegExp(`^enc:v1:${keyId(NEW)}:`));
    }
    const store = await createPgStore({ url, logger: silentLogger(), catchUpIntervalMs: 0, sealer: sealerFor({ current: NEW, old: [] }) });
    try {
      const accounts = await store.list();
      assert.equal(accounts.length, 2);
      for (const a of accounts) assert.ok(secrets.has(a.token.refresh_token), 'the new key reads the same tokens');
    } finally {
      await store.close();
    }
  });

  test('store copy carries the encrypted form both ways without a key, and re-encrypts for another id with one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'grantpool-enc-copy-'));
    const other = await mkdtemp(join(tmpdir(), 'grantpool-enc-copy2-'));
    try {
      const noKey = { GRANTPOOL_DATA_DIR: dir };
      const toFiles = await runMain(['store', 'copy', '--from', url, '--to', dir], noKey);
      assert.equal(toFiles.code, 0, toFiles.err);
      const inDb = new Map((await rows()).map((r) => [r.id, JSON.parse(r.data).token]));
      const names = (await readdir(join(dir, 'accounts'))).filter((n) => n.endsWith('.json'));
      assert.equal(names.length, 2);
      for (const n of names) {
        const f = JSON.parse(await readFile(join(dir, 'accounts', n), 'utf8'));
        assert.equal(f.token.refresh_token, inDb.get(f.id).refresh_token, 'the same encrypted value');
        assert.equal(f.token.access_token, inDb.get(f.id).access_token);
      }
      const url2 = await pg.createDatabase('copyback');
      const back = await runMain(['store', 'copy', '--from', dir, '--to', url2], noKey);
      assert.equal(back.code, 0, back.err);
      for (const r of await rows(url2)) assert.equal(JSON.parse(r.data).token.refresh_token, inDb.get(r.id).refresh_token);
      for (const s of secrets) assert.ok(!dump(url2).includes(s));

      // The target knows d1 under another id: its tokens must be re-encrypted for that id, which needs the key.
      const files = await createFileStore({ dataDir: other, logger: silentLogger() });
      const d1 = [...inDb.keys()][0]!;
      const src = (await rows()).find((r) => r.id === d1)!;
      const srcAccount = JSON.parse(src.data);
      await files.upsertByIdentity({ sub: srcAccount.sub, email: srcAccount.email }, () => makeAccount('renamed', { sub: srcAccount.sub, email: srcAccount.email }));
      await files.close();
      const refused = await runMain(['store', 'copy', '--from', url, '--to', other], { GRANTPOOL_DATA_DIR: other });
      assert.equal(refused.code, 1);
      assert.match(refused.err, new RegExp(`is ${d1} here and renamed in the target, and its tokens are encrypted with a key this gateway does not have \\(key id ${keyId(NEW)}\\)`));
      const copied = await runMain(['store', 'copy', '--from', url, '--to', other], { GRANTPOOL_DATA_DIR: other, GRANTPOOL_ENCRYPTION_KEY: NEW.toString('base64') });
      assert.equal(copied.code, 0, copied.err);
      const reader = await createFileStore({ dataDir: other, logger: silentLogger(), sealer: sealerFor({ current: NEW, old: [] }) });
      try {
        const renamed = (await reader.get('renamed'))!;
        assert.equal(renamed.disabled, false, 'it decrypts under its new id');
        assert.ok(secrets.has(renamed.token.refresh_token));
        assert.equal(reader.encryption().locked.length, 0);
      } finally {
        await reader.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(other, { recursive: true, force: true });
    }
  });
});
