// The safety rescan of the accounts folder (folder-scan.ts): of many files, it
// re-reads exactly those changed, added or removed since they were last read,
// wherever they stand in the folder, and leaves the event loop free meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rescanFolder, sigOf } from '../../src/store/folder-scan.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { tempDataDir } from '../support/store-fixtures.ts';

const N = 1500;
const id = (i: number) => `acct-${String(i).padStart(5, '0')}`;

test('a rescan of many files re-reads only the changed, added, removed and not yet read ones, and lets timers run while it stats', async (t) => {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const dir = join(dataDir, 'accounts');
  await mkdir(dir);
  for (let i = 0; i < N; i++) await writeFile(join(dir, `${id(i)}.json`), `{"i":${i}}\n`);
  const known = new Map<string, { sig: number | null }>();
  for (let i = 0; i < N; i++) known.set(id(i), { sig: sigOf(statSync(join(dir, `${id(i)}.json`))) });

  await writeFile(join(dir, `${id(1300)}.json`), '{"i":"changed, longer"}\n');
  await rm(join(dir, `${id(900)}.json`));
  await writeFile(join(dir, `${id(N)}.json`), '{"i":"new"}\n');
  known.set(id(10), { sig: null }); // written by this process: read again
  known.set(id(N + 1), { sig: 1 }); // known, and its file is gone

  const refreshed: string[] = [];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  await rescanFolder({ dir, logger: silentLogger(), known: { ids: () => known.keys(), sig: (i) => known.get(i)?.sig }, refresh: async (i) => void refreshed.push(i), unreadable: new Set(), cleanTemp: false });
  clearInterval(timer);
  assert.deepEqual(refreshed.sort(), [id(10), id(900), id(1300), id(N), id(N + 1)]);
  assert.ok(ticks > 0, 'a timer ran during the rescan');
});
