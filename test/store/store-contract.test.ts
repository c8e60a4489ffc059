// Every AccountStore backend passes the same contract (test/store/contract.ts).
import { accountStoreContract } from './contract.ts';
import { createFileStore } from '../../src/store/file-store.ts';
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { tempDataDir } from '../support/store-fixtures.ts';

accountStoreContract('file store', async () => {
  const { dataDir, cleanup } = await tempDataDir();
  const open = () => createFileStore({ dataDir, logger: silentLogger() });
  return { store: await open(), reopen: open, cleanup };
});

accountStoreContract('memory store', async () => ({ store: new MemoryAccountStore(), cleanup: async () => {} }));
