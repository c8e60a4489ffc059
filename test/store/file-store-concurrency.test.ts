// The file store across processes: no lost update, one refresh per account at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFileStore } from '../../src/store/file-store.ts';
import type { AccountChange } from '../../src/store/store.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { makeAccount, runChild, tempDataDir } from '../support/store-fixtures.ts';
import { eventually } from '../support/eventually.ts';

test('two processes each doing 500 read-modify-write increments end at 1000', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a', { counter: 0 }));
  const events: AccountChange[] = [];
  store.watch((c) => events.push(c));

  await Promise.all([runChild(['increment', dataDir, 'a', '500']), runChild(['increment', dataDir, 'a', '500'])]);

  assert.equal((await store.get('a'))?.counter, 1000);
  // The running store (a gateway) saw the end state too.
  await eventually('the final value through watch()', () => events.find((e) => e.account?.counter === 1000));
  const names = await readdir(join(dataDir, 'accounts'));
  assert.deepEqual(names, ['a.json'], 'a lock or temp file was left behind');
});

test('withRefreshLock admits one process at a time per account', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());

  // Inside the lock each holder creates a marker file exclusively, waits, and deletes it:
  // two holders at once would find the marker present.
  const marker = join(dataDir, 'inside-refresh');
  const outputs = await Promise.all([
    runChild(['refresh-lock', dataDir, 'a', marker, '15', '10']),
    runChild(['refresh-lock', dataDir, 'a', marker, '15', '10']),
    // And a caller in this process.
    store.withRefreshLock('a', async () => {
      const fh = await open(marker, 'wx').catch(() => null);
      if (!fh) return 'violations 1';
      await fh.close();
      await sleep(20);
      await rm(marker);
      return 'violations 0';
    }),
  ]);
  for (const out of outputs) assert.equal(out.trim(), 'violations 0');
});
