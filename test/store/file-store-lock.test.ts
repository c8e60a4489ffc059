// The store lock after a crash: a lock left by a dead process is taken over at
// once, a lock of a live process is respected, a lock without owner goes stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createFileStore } from '../../src/store/file-store.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { makeAccount, tempDataDir, waitForExit } from '../support/store-fixtures.ts';

async function storeWithAccount(t: import('node:test').TestContext, lockWaitMs: number) {
  const { dataDir, cleanup } = await tempDataDir();
  t.after(cleanup);
  const store = await createFileStore({ dataDir, logger: silentLogger(), lockWaitMs, refreshLockWaitMs: lockWaitMs });
  t.after(() => store.close());
  await store.upsertByIdentity({ sub: 'sub-a', email: 'a@example.com' }, () => makeAccount('a'));
  return { dir: join(dataDir, 'accounts'), store };
}

/** A lock folder as another process leaves it: the folder with its owner record. */
async function leaveLock(dir: string, name: string, pid: number) {
  await mkdir(join(dir, name));
  await writeFile(join(dir, name, 'owner'), `${pid} ${hostname()} 0123456789ab\n`);
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await waitForExit(child);
  return child.pid!;
}

test('a lock left by a process that died is taken over at once', async (t) => {
  // Waiting is limited to 1 s, far below the 10 s stale time: only the owner check can let the write through.
  const { dir, store } = await storeWithAccount(t, 1000);
  const pid = await deadPid();
  await leaveLock(dir, '.store.lock', pid);
  await leaveLock(dir, '.refresh-a.lock', pid);

  const updated = await store.update('a', (a) => ({ ...a, name: 'after crash' }));
  assert.equal(updated?.name, 'after crash');
  assert.equal(await store.withRefreshLock('a', async () => 'refreshed'), 'refreshed');
  assert.deepEqual(await readdir(dir), ['a.json']);
});

test('a lock held by a live process is respected until the wait limit, with a clear error', async (t) => {
  const { dir, store } = await storeWithAccount(t, 300);
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
  t.after(() => {
    sleeper.kill();
  });
  await leaveLock(dir, '.store.lock', sleeper.pid!);

  await assert.rejects(
    store.update('a', (a) => ({ ...a, name: 'blocked' })),
    (e: Error) => e.name === 'LockTimeoutError' && /another Grantpool process holds it/.test(e.message),
  );
  assert.equal((await store.get('a'))?.name, 'User a');

  // Once that process is gone, the next write gets through.
  sleeper.kill('SIGKILL');
  await waitForExit(sleeper);
  assert.equal((await store.update('a', (a) => ({ ...a, name: 'unblocked' })))?.name, 'unblocked');
});

test('a lock without owner record is taken over once it is stale', async (t) => {
  const { dir, store } = await storeWithAccount(t, 2000);
  await mkdir(join(dir, '.store.lock'));
  const longAgo = new Date(Date.now() - 60_000);
  await utimes(join(dir, '.store.lock'), longAgo, longAgo);
  assert.equal((await store.update('a', (a) => ({ ...a, name: 'stale lock' })))?.name, 'stale lock');
});
