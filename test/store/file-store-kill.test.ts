// The file store when writers are killed with SIGKILL half way: no torn file,
// no lock held forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFileStore } from '../../src/store/file-store.ts';
import { accountIdOfFileName, parseAccountFile } from '../../src/store/account-file.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { makeAccount, runChild, startChild, tempDataDir, waitForExit, waitForLine } from '../support/store-fixtures.ts';

test('writers killed with SIGKILL at random points leave valid files and no stuck lock (100+ kills)', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger() });
  t.after(() => store.close());
  const ids = ['a', 'b', 'c'];
  for (const id of ids) {
    await store.upsertByIdentity({ sub: `sub-${id}`, email: `${id}@example.com` }, () => makeAccount(id));
  }

  // Three lanes, each: start a writer, let it write for 5-40 ms, SIGKILL it, repeat.
  const KILLS = 100;
  let kills = 0;
  const lane = async () => {
    while (kills < KILLS) {
      const child = startChild(['write-loop', dataDir, ids.join(',')]);
      await waitForLine(child, 'ready');
      await sleep(5 + Math.random() * 35);
      child.kill('SIGKILL');
      kills++;
      await waitForExit(child);
    }
  };
  await Promise.all([lane(), lane(), lane()]);
  assert.ok(kills >= 100);

  // Every account file parses and validates.
  const dir = join(dataDir, 'accounts');
  let writes = 0;
  for (const name of await readdir(dir)) {
    const id = accountIdOfFileName(name);
    if (!id) continue;
    const parsed = parseAccountFile(await readFile(join(dir, name), 'utf8'), id);
    assert.ok(parsed.ok, `${name}: ${parsed.ok ? '' : parsed.reason}`);
    writes += Number(parsed.account.counter ?? 0);
  }
  assert.ok(writes > 0, 'the writers never got to write');
  assert.deepEqual(
    (await store.list()).map((a) => a.id),
    ids,
  );

  // Whatever lock the last victim held, the next writer gets through (in another process and in this one).
  await runChild(['set', dataDir, 'b', 'after_kills', 'true']);
  assert.equal((await store.get('b'))?.after_kills, true);
  const after = await store.update('c', (c) => ({ ...c, counter: Number(c.counter ?? 0) + 1 }));
  assert.ok(after);
});
