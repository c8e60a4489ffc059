// Every AccountStore backend passes the same contract (test/store/contract.ts):
// the file store, the memory store, and PostgreSQL (a real server; skipped
// with the reason when its binaries are not installed).
import { after, before, describe } from 'node:test';
import { accountStoreContract } from './contract.ts';
import { createFileStore } from '../../src/store/file-store.ts';
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import { createPgStore } from '../../src/store/pg-store.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { sealerFor } from '../../src/store/open-store.ts';
import { randomBytes } from 'node:crypto';
import { tempDataDir } from '../support/store-fixtures.ts';
import { findPostgres, startPostgres, type TestPostgres } from '../support/postgres.ts';

accountStoreContract('file store', async () => {
  const { dataDir, cleanup } = await tempDataDir();
  const open = () => createFileStore({ dataDir, logger: silentLogger() });
  return { store: await open(), reopen: open, cleanup };
});

// The same with tokens encrypted at rest: the stores hand out and take plaintext, whatever they write.
const KEY = randomBytes(32);
accountStoreContract('file store with an encryption key', async () => {
  const { dataDir, cleanup } = await tempDataDir();
  const open = () => createFileStore({ dataDir, logger: silentLogger(), sealer: sealerFor({ current: KEY, old: [] }) });
  return { store: await open(), reopen: open, cleanup };
});

accountStoreContract('memory store', async () => ({ store: new MemoryAccountStore(), cleanup: async () => {} }));

const found = findPostgres();
describe('PostgreSQL store', { skip: typeof found === 'string' ? found : false }, () => {
  let pg: TestPostgres;
  let n = 0;
  before(async () => {
    pg = await startPostgres(found as Exclude<typeof found, string>);
  });
  after(() => pg?.destroy());
  accountStoreContract('PostgreSQL store', async () => {
    const url = await pg.createDatabase(`contract${++n}`);
    const open = () => createPgStore({ url, logger: silentLogger(), catchUpIntervalMs: 0 });
    return { store: await open(), reopen: open, cleanup: async () => {} };
  });
  accountStoreContract('PostgreSQL store with an encryption key', async () => {
    const url = await pg.createDatabase(`contractkey${++n}`);
    const open = () => createPgStore({ url, logger: silentLogger(), catchUpIntervalMs: 0, sealer: sealerFor({ current: KEY, old: [] }) });
    return { store: await open(), reopen: open, cleanup: async () => {} };
  });
});
