// The embedded file store: files on disk, identity upserts, quarantine, temp files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, utimes, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createFileStore } from '../../src/store/file-store.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { captureLogger, makeAccount, tempDataDir } from '../support/store-fixtures.ts';

test('creates the accounts folder with mode 0700 and account files with mode 0600, pretty JSON', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());

  assert.equal((await stat(join(dataDir, 'accounts'))).mode & 0o777, 0o700);
  const { account, created } = await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () =>
    makeAccount('a'),
  );
  assert.equal(created, true);
  assert.equal(account.id, 'a');

  const file = join(dataDir, 'accounts', 'a.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const text = await readFile(file, 'utf8');
  assert.equal(text, `${JSON.stringify(JSON.parse(text), null, 2)}\n`);
  assert.equal(JSON.parse(text).token.refresh_token, '1//refresh-a');

  assert.deepEqual(await store.get('a'), account);
  assert.deepEqual(
    (await store.list()).map((a) => a.id),
    ['a'],
  );
  // The folder holds only the account file (no temp files, no lock left behind).
  assert.deepEqual(await readdir(join(dataDir, 'accounts')), ['a.json']);
});

test('upsertByIdentity cannot change the id of the matched account, nor take another account\'s id (matching itself: the store contract)', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());
  await store.upsertByIdentity({ sub: 'S1', email: 'one@example.com' }, () => makeAccount('one', { sub: 'S1', email: 'one@example.com' }));

  await assert.rejects(
    store.upsertByIdentity({ sub: 'S1', email: 'x@example.com' }, (e) => ({ ...e!, id: 'elsewhere' })),
    /id/,
  );
  await assert.rejects(
    store.upsertByIdentity({ sub: 'S9', email: 'nine@example.com' }, () => makeAccount('one', { sub: 'S9' })),
    /already used/,
  );
  assert.equal((await store.get('one'))?.sub, 'S1');
});

test('update is read-modify-write; invalid results are refused; unknown fields survive', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  await mkdir(join(dataDir, 'accounts'), { recursive: true });
  // A file written by a newer version (or a person) with fields this version does not know.
  const handWritten = {
    ...makeAccount('a'),
    future_field: { nested: [1, 2, 3] },
    token: { ...makeAccount('a').token, id_token_hint: 'kept' },
  };
  await writeFile(join(dataDir, 'accounts', 'a.json'), JSON.stringify(handWritten), { mode: 0o600 });
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());

  const updated = await store.update('a', (a) => ({ ...a, last_used: 1_700_000_500 }));
  assert.equal(updated?.last_used, 1_700_000_500);
  const onDisk = JSON.parse(await readFile(join(dataDir, 'accounts', 'a.json'), 'utf8'));
  assert.deepEqual(onDisk.future_field, { nested: [1, 2, 3] });
  assert.equal(onDisk.token.id_token_hint, 'kept');
  assert.equal(onDisk.last_used, 1_700_000_500);

  // The callback may mutate its argument without touching what the store holds.
  const same = await store.update('a', (a) => {
    a.email = 'mutated@example.com';
    return null;
  });
  assert.equal(same?.email, 'a@example.com');
  assert.equal((await store.get('a'))?.email, 'a@example.com');

  // What the store hands out is shared and read-only, nested fields included: a stray write throws.
  const read = (await store.get('a'))!;
  assert.throws(() => {
    read.token.access_token = 'changed';
  }, TypeError);
  assert.throws(() => {
    (read.future_field as { nested: number[] }).nested.push(4);
  }, TypeError);
  assert.equal((await store.list())[0]?.token.access_token, read.token.access_token);

  assert.equal(await store.update('missing', (a) => a), null);
  assert.equal(await store.update('../etc/passwd', (a) => a), null);

  await assert.rejects(
    store.update('a', (a) => ({ ...a, token: { ...a.token, refresh_token: '' } })),
    (e: Error) => e.name === 'InvalidAccountError' && /token\.refresh_token/.test(e.message),
  );
  await assert.rejects(store.update('a', (a) => ({ ...a, id: 'b' })), /cannot change the id/);
  assert.equal((await store.get('a'))?.token.refresh_token, '1//refresh-a');
});

test('remove deletes the file and reports whether it existed', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));

  assert.equal(await store.remove('a'), true);
  assert.equal(await store.get('a'), null);
  assert.deepEqual(await store.list(), []);
  assert.deepEqual(await readdir(join(dataDir, 'accounts')), []);
  assert.equal(await store.remove('a'), false);
});

test('a corrupt or invalid file is moved aside and logged without its content; the others load', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const dir = join(dataDir, 'accounts');
  await mkdir(dir, { recursive: true });
  const secret = 'ya29.SECRET-TOKEN-VALUE';
  await writeFile(join(dir, 'good.json'), JSON.stringify(makeAccount('good')));
  // Broken JSON whose text contains a token (V8's parse errors quote the text).
  await writeFile(join(dir, 'broken.json'), `{"id": "broken", "token": {"access_token": "${secret}", `);
  // Valid JSON that fails the schema: no refresh token.
  const invalid = makeAccount('invalid') as Record<string, unknown>;
  invalid.token = { access_token: secret, expiry_timestamp: 1 };
  await writeFile(join(dir, 'invalid.json'), JSON.stringify(invalid));

  const { logger, lines, text } = captureLogger();
  const store = await createFileStore({ dataDir, logger });
  t.after(() => store.close());

  assert.deepEqual(
    (await store.list()).map((a) => a.id),
    ['good'],
  );
  const names = await readdir(dir);
  assert.ok(names.some((n) => /^broken\.json\.corrupt-\d{10}$/.test(n)), names.join(' '));
  assert.ok(names.some((n) => /^invalid\.json\.corrupt-\d{10}$/.test(n)), names.join(' '));
  assert.ok(!names.includes('broken.json') && !names.includes('invalid.json'));

  const warnings = lines().filter((l) => l.level === 40);
  const broken = warnings.find((l) => l.id === 'broken');
  const bad = warnings.find((l) => l.id === 'invalid');
  assert.ok(broken, text());
  assert.ok(bad, text());
  assert.match(String(broken.reason), /not valid JSON/);
  assert.match(String(bad.reason), /token\.refresh_token/);
  assert.ok(!text().includes(secret), 'a token value reached the log');
});

test('temp files of killed writers are ignored, and removed once older than a minute', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const dir = join(dataDir, 'accounts');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'a.json'), JSON.stringify(makeAccount('a')));
  const oldTemp = join(dir, '.a.json.tmp-999-0badf00d');
  const freshTemp = join(dir, '.a.json.tmp-998-0badcafe');
  await writeFile(oldTemp, '{"half": ');
  await writeFile(freshTemp, '{"half": ');
  const twoMinutesAgo = new Date(Date.now() - 120_000);
  await utimes(oldTemp, twoMinutesAgo, twoMinutesAgo);

  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());
  assert.deepEqual(
    (await store.list()).map((a) => a.id),
    ['a'],
  );
  const names = await readdir(dir);
  assert.ok(!names.includes('.a.json.tmp-999-0badf00d'), 'old temp file still there');
  assert.ok(names.includes('.a.json.tmp-998-0badcafe'), 'a fresh temp file (maybe a live writer) was removed');
});

test('withRefreshLock runs one caller at a time per account, and releases on errors', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());

  let inside = 0;
  let most = 0;
  const order: string[] = [];
  const body = (name: string) => async () => {
    inside++;
    most = Math.max(most, inside);
    order.push(`${name}:in`);
    await new Promise((r) => setTimeout(r, 30));
    order.push(`${name}:out`);
    inside--;
    return name;
  };
  const results = await Promise.all([
    store.withRefreshLock('a', body('first')),
    store.withRefreshLock('a', body('second')),
    store.withRefreshLock('a', body('third')),
  ]);
  assert.deepEqual(results, ['first', 'second', 'third']);
  assert.equal(most, 1);
  assert.deepEqual(order, ['first:in', 'first:out', 'second:in', 'second:out', 'third:in', 'third:out']);

  // Different accounts do not wait for each other.
  inside = 0;
  most = 0;
  await Promise.all([store.withRefreshLock('a', body('x')), store.withRefreshLock('b', body('y'))]);
  assert.equal(most, 2);

  // A failing refresh releases the lock.
  await assert.rejects(
    store.withRefreshLock('a', async () => {
      throw new Error('refresh failed');
    }),
    /refresh failed/,
  );
  assert.equal(await store.withRefreshLock('a', async () => 'next'), 'next');
  await assert.rejects(store.withRefreshLock('../x', async () => 1), /letters, digits/);
});

test('the store can be used from inside a refresh and from a listener; a nested refresh of the same account is refused', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));

  // A refresh stores its new token while holding the refresh lock.
  const stored = await store.withRefreshLock('a', () =>
    store.update('a', (a) => ({ ...a, token: { ...a.token, access_token: 'ya29.new' } })),
  );
  assert.equal(stored?.token.access_token, 'ya29.new');

  // Waiting for the same refresh lock from inside it would wait forever: it is an error instead.
  await assert.rejects(
    store.withRefreshLock('a', () => store.withRefreshLock('a', async () => 1)),
    (e: Error) => e.name === 'LockReentryError',
  );

  // A listener that writes in reaction to a change (started during the first write) gets through.
  const seen: Array<string | null> = [];
  const followUps: Array<Promise<unknown>> = [];
  store.watch((change) => {
    seen.push(change.account?.name ?? null);
    if (change.account?.name === 'first') {
      followUps.push(store.update('a', (a) => ({ ...a, name: 'second' })));
    }
  });
  await store.update('a', (a) => ({ ...a, name: 'first' }));
  await Promise.all(followUps);
  assert.equal(followUps.length, 1);
  assert.equal((await store.get('a'))?.name, 'second');
  assert.deepEqual(seen, ['first', 'second']);
});
