// The SharedState contract on every backend.
import { after, before, describe } from 'node:test';
import { MemorySharedState } from '../../src/store/shared-state.ts';
import { createPgStore } from '../../src/store/pg-store.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';
import { captureLogger } from '../support/store-fixtures.ts';
import { sharedStateContract } from './shared-state-contract.ts';

sharedStateContract('in-process', async () => {
  const s = new MemorySharedState();
  return { a: s, b: s, close: () => s.close() };
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
