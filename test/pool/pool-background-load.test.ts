// A gateway with many accounts serves before every account file is read: the
// store reads the rest in the background, the pool serves with what it has,
// says "not yet" (503 + Retry-After) where an unread account may be the
// answer, and in the end holds every account, with the changes made while it
// read them (docs/design.md, "Starting with many accounts").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fakeAccount, T0, captureLog, defaultPoolConfig } from '../support/fake-accounts.ts';
import { tempDataDir } from '../support/store-fixtures.ts';
import { FakeRefresher } from '../support/fake-refresher.ts';
import { NoAccountError } from '../../src/pool/types.ts';
import { createPool } from '../../src/pool/pool.ts';
import { createFileStore } from '../../src/store/file-store.ts';
import { formatAccount } from '../../src/store/account-file.ts';
import { FakeClock } from '../../src/util/clock.ts';

const N = 4000;
const idOf = (i: number) => `acc-${String(i).padStart(4, '0')}`;

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a store loading in the background: the pool serves with the accounts read so far and ends with all of them, changes made meanwhile included', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const dir = join(dataDir, 'accounts');
  await mkdir(dir, { recursive: true });
  const file = (id: string) => join(dir, `${id}.json`);
  /** Replaces a file the way an editor or another process does (write aside, rename). */
  const writeAside = async (id: string, name: string) => {
    await writeFile(`${file(id)}.edit`, formatAccount(fakeAccount(id, { name })));
    await rename(`${file(id)}.edit`, file(id));
  };
  for (let i = 0; i < N; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => writeFile(file(idOf(i + j)), formatAccount(fakeAccount(idOf(i + j))))));
  }

  const log = captureLog();
  // The smallest slices: 16 files, then the event loop (where the test's changes happen).
  const store = await createFileStore({ dataDir, logger: log.logger, backgroundLoad: { firstMs: 0, sliceMs: 0 } });
  t.after(() => store.close());
  const clock = new FakeClock(T0);
  const pool = createPool({ store, refresher: new FakeRefresher(clock), clock, logger: log.logger, config: defaultPoolConfig, backgroundIntervalMs: 0 });
  await pool.start();
  t.after(() => pool.stop());

  const first = store.loading();
  assert.ok(first && first.total === N && first.loaded < N, `still loading after open: ${JSON.stringify(first)}`);
  assert.deepEqual(pool.loading(), store.loading());
  const readIds = new Set(store.loadedSoFar().map((a) => a.id));
  assert.ok(pool.size > 0 && pool.size < N);
  // It serves with what it has...
  const lease = await pool.acquire({ model: 'm' });
  assert.ok(readIds.has(lease.accountId));
  // ...and for an account it has not read yet, it says "not yet", not "unknown".
  const unread = Array.from({ length: N }, (_, i) => idOf(i)).filter((id) => !readIds.has(id)).reverse();
  const [editedUnread, removedUnread, updatedUnread] = unread;
  await assert.rejects(pool.acquire({ model: 'm', pinned: editedUnread! }), (e: NoAccountError) => {
    assert.equal(e.code, 'loading');
    assert.equal(e.status, 503);
    assert.equal(e.retryAfterSeconds, 1);
    return true;
  });

  // Changes while it loads: files edited (one read already, one not), removed, added; a write through the store.
  const editedRead = [...readIds][0]!;
  await writeAside(editedRead, 'edited while loading (read)');
  await writeAside(editedUnread!, 'edited while loading (unread)');
  await rm(file(removedUnread!));
  await writeAside('added-while-loading', 'new');
  assert.ok(store.loading(), 'the files changed while the store was still loading');
  const updating = store.update(updatedUnread!, (cur) => ({ ...cur, proxy_disabled: true, proxy_disabled_reason: 'manual' }));
  assert.ok(store.loading(), 'the update started while the store was still loading');
  await updating;

  await store.whenLoaded();
  assert.equal(store.loading(), null);
  assert.equal(pool.loading(), null);
  const name = (id: string) => pool.accounts().find((a) => a.id === id)?.name;
  await until('every change reached the pool', () => name(editedRead) === 'edited while loading (read)' && name(editedUnread!) === 'edited while loading (unread)' && name('added-while-loading') === 'new' && name(removedUnread!) === undefined);
  assert.equal(pool.size, N); // N - 1 removed + 1 added
  assert.deepEqual(pool.stateOf(updatedUnread!), { state: 'proxy_disabled', reason: 'manual' });
  const listed = await store.list();
  assert.deepEqual(new Set(listed.map((a) => a.id)), new Set(pool.accounts().map((a) => a.id)));
  // The accounts read by the load are not announced one by one as new.
  assert.ok(log.lines().filter((l) => /added to the pool/.test(String(l.msg))).length <= 2);
  await assert.rejects(pool.acquire({ model: 'm', pinned: removedUnread! }), (e: NoAccountError) => e.code === 'pinned_unknown');
});

test('a store with few accounts reads them all before it opens, background load or not', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  await mkdir(join(dataDir, 'accounts'), { recursive: true });
  for (const id of ['a', 'b', 'c']) await writeFile(join(dataDir, 'accounts', `${id}.json`), formatAccount(fakeAccount(id)));
  const store = await createFileStore({ dataDir, logger: captureLog().logger, backgroundLoad: true });
  t.after(() => store.close());
  assert.equal(store.loading(), null);
  assert.deepEqual(store.loadedSoFar().map((a) => a.id).sort(), ['a', 'b', 'c']);
});
