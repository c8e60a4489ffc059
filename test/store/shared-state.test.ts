// The SharedState contract on every backend.
import { after, before, describe } from 'node:test';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemorySharedState } from '../../src/store/shared-state.ts';
import { FileKv } from '../../src/store/file-kv.ts';
import { createPgStore } from '../../src/store/pg-store.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { captureLogger } from '../support/store-fixtures.ts';
import { sharedStateContract } from './shared-state-contract.ts';

sharedStateContract('in-process', async () => {
  const s = new MemorySharedState();
  return { a: s, b: s, close: () => s.close() };
});

// The data directory's persistent map: two FileKv on one folder are two processes (events stay in-process).
sharedStateContract('data directory (state.json)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-kv-'));
  const events = new MemorySharedState();
  const handle = () => ({ distributed: false, kv: new FileKv(dir), events: events.events, close: async () => {} });
  return { a: handle(), b: handle(), close: () => rm(dir, { recursive: true, force: true }) };
});

test('data directory (state.json): entries outlive the object, expired ones are dropped on the next write, the size is bounded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-kv-'));
  try {
    let now = 1_000_000;
    const kv = new FileKv(dir, { now: () => now, maxEntries: 3 });
    await kv.set('risc-jti', 'a', { state: 'done' }, now + 1000);
    await kv.set('risc-jti', 'short', 1, now + 10);
    assert.deepEqual(await new FileKv(dir, { now: () => now }).get('risc-jti', 'a'), { state: 'done' }, 'a new object (a restart) reads it');
    now += 20;
    await kv.set('risc-jti', 'b', 2, now + 1000);
    const onDisk = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'));
    assert.deepEqual(onDisk.entries.map((e: { key: string }) => e.key), ['a', 'b'], 'the expired entry is gone from the file');
    await kv.set('risc-jti', 'c', 3, now + 1000);
    await kv.set('risc-jti', 'd', 4, now + 1000);
    assert.equal(await kv.get('risc-jti', 'a'), null, 'the oldest went first');
    assert.equal(await kv.get('risc-jti', 'd'), 4);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const found = findPostgres();
describe('PostgreSQL shared state', { skip: typeof found === 'string' ? found : false }, () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
  });
  after(() => pg?.destroy());
  sharedStateContract('PostgreSQL', async () => {
    const url = await pg.createDatabase('shared');
    const { logger } = captureLogger();
    const one = await createPgStore({ url, logger, catchUpIntervalMs: 0 });
    const two = await createPgStore({ url, logger, catchUpIntervalMs: 0 });
    return { a: one.sharedState(), b: two.sharedState(), close: async () => void (await Promise.all([one.close(), two.close()])) };
  });
});
