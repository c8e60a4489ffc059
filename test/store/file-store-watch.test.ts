// Change notification of the file store: changes by this process, another
// process and a person with an editor reach the listener once; no-ops do not.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFileStore, type FileStoreOptions } from '../../src/store/file-store.ts';
import type { AccountChange } from '../../src/store/store.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { captureLogger, makeAccount, runChild, tempDataDir } from '../support/store-fixtures.ts';
import { eventually } from '../support/eventually.ts';

/** Longer than the debounce and the re-read grace of the store: time enough for a spurious event to show. */
const QUIET_MS = 400;

async function watchedStore(t: TestContext, opts: Partial<FileStoreOptions> = {}) {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger(), ...opts });
  t.after(() => store.close());
  const events: AccountChange[] = [];
  const stop = store.watch((change) => events.push(change));
  const file = (id: string) => join(dataDir, 'accounts', `${id}.json`);
  return { dataDir, store, events, stop, file };
}

test('own writes are reported once; a rewrite without change and a touch report nothing', async (t) => {
  const { store, events, file } = await watchedStore(t);

  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));
  await store.update('a', (a) => ({ ...a, last_used: 1_700_000_100 }));
  await store.update('a', (a) => a); // same content: no write, no event
  await sleep(QUIET_MS);
  assert.deepEqual(
    events.map((e) => [e.id, e.account?.last_used]),
    [
      ['a', null],
      ['a', 1_700_000_100],
    ],
  );

  // An editor saving the file unchanged, then with other formatting, then a touch.
  const text = await readFile(file('a'), 'utf8');
  await writeFile(file('a'), text);
  await sleep(QUIET_MS);
  await writeFile(file('a'), JSON.stringify(JSON.parse(text)));
  await sleep(QUIET_MS);
  const later = new Date(Date.now() + 5000);
  await utimes(file('a'), later, later);
  await sleep(QUIET_MS);
  assert.equal(events.length, 2, JSON.stringify(events));
});

test('an editor writing in place, writing by rename, creating and removing files is reported', async (t) => {
  const { dataDir, store, events, file } = await watchedStore(t);
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));
  events.length = 0;

  // In place.
  const a = JSON.parse(await readFile(file('a'), 'utf8'));
  await writeFile(file('a'), JSON.stringify({ ...a, proxy_disabled: true, proxy_disabled_reason: 'manual' }, null, 2));
  const inPlace = await eventually('in-place edit', () => events.find((e) => e.account?.proxy_disabled === true));
  assert.equal(inPlace.id, 'a');
  assert.equal(inPlace.account?.proxy_disabled_reason, 'manual');

  // Write a copy, rename it over the original (vim, VS Code, most "safe save" editors).
  const aside = join(dataDir, 'accounts', 'a.json.editing');
  await writeFile(aside, JSON.stringify({ ...a, name: 'Renamed by editor' }, null, 2));
  await rename(aside, file('a'));
  await eventually('edit by rename', () => events.find((e) => e.account?.name === 'Renamed by editor'));

  // A new file.
  await writeFile(file('b'), JSON.stringify(makeAccount('b')));
  await eventually('new file', () => events.find((e) => e.id === 'b' && e.account?.email === 'b@example.com'));

  // Removed.
  await rm(file('a'));
  await eventually('removal', () => events.find((e) => e.id === 'a' && e.account === null));
  assert.deepEqual(
    (await store.list()).map((x) => x.id),
    ['b'],
  );

  // Each change was reported once.
  await sleep(QUIET_MS);
  assert.deepEqual(
    events.map((e) => e.id),
    ['a', 'a', 'b', 'a'],
  );
});

test('a change by another process reaches the listener', async (t) => {
  const { dataDir, store, events } = await watchedStore(t);
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));
  events.length = 0;

  await runChild(['set', dataDir, 'a', 'name', '"Set by the CLI"']);
  const change = await eventually('change by child', () => events.find((e) => e.account?.name === 'Set by the CLI'));
  assert.equal(change.id, 'a');
  await sleep(QUIET_MS);
  assert.equal(events.length, 1, JSON.stringify(events.map((e) => e.account?.name)));
});

test('a corrupt file saved by an editor is moved aside, logged, and reported as removed', async (t) => {
  const { logger, lines } = captureLogger();
  const { dataDir, store, events, file } = await watchedStore(t, { logger });
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));
  await store.upsertByIdentity({ sub: 'sub-b', email: 'b@example.com' }, () => makeAccount('b'));
  events.length = 0;

  await writeFile(file('b'), '{ "id": "b", "email": "b@example.com", oops');
  await eventually('quarantine of b', () => events.find((e) => e.id === 'b' && e.account === null));
  const names = await readdir(join(dataDir, 'accounts'));
  assert.ok(names.some((n) => /^b\.json\.corrupt-\d+$/.test(n)), names.join(' '));
  assert.ok(lines().some((l) => l.level === 40 && l.id === 'b' && /not valid JSON/.test(String(l.reason))));
  assert.deepEqual(
    (await store.list()).map((x) => x.id),
    ['a'],
  );
});

test('the periodic rescan finds changes that the folder events did not deliver', async (t) => {
  // Folder events are held back far longer than the test: only the rescan can see the change.
  const { store, events, file } = await watchedStore(t, { debounceMs: 600_000, pollIntervalMs: 100 });
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));
  events.length = 0;

  const a = JSON.parse(await readFile(file('a'), 'utf8'));
  await writeFile(file('a'), JSON.stringify({ ...a, project_id: 'found-by-rescan' }));
  await eventually('rescan', () => events.find((e) => e.account?.project_id === 'found-by-rescan'));
  await writeFile(file('c'), JSON.stringify(makeAccount('c')));
  await eventually('new file by rescan', () => events.find((e) => e.id === 'c'));
  await rm(file('a'));
  await eventually('removal by rescan', () => events.find((e) => e.id === 'a' && e.account === null));
});

test('after unsubscribing, the listener hears nothing', async (t) => {
  const { store, events, stop, file } = await watchedStore(t);
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));
  stop();
  events.length = 0;
  await store.update('a', (a) => ({ ...a, name: 'changed' }));
  await writeFile(file('b'), JSON.stringify(makeAccount('b')));
  await sleep(QUIET_MS);
  assert.deepEqual(events, []);
});
