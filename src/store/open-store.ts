// Opens the account store a configuration names: PostgreSQL when a database
// URL is set (several gateways on one pool), else the data directory.
import type { Logger } from '../log/logger.ts';
import { createFileStore } from './file-store.ts';
import type { PgStore } from './pg-store.ts';
import { MemorySharedState, type SharedKv, type SharedState } from './shared-state.ts';
import { FileKv } from './file-kv.ts';
import type { AccountStore } from './store.ts';
import type { UsageCounters } from './usage-counters.ts';
import { createKeyring, keyringSealer, RAW_SEALER, type TokenSealer } from './token-cipher.ts';

// The PostgreSQL store (and the postgres driver under it) is loaded only when a
// configuration names a database: a gateway on a data directory never needs
// it, and not loading it keeps its code out of memory (docs/performance-log.md).
let pg: typeof import('./pg-store.ts') | null = null;

function isPg(store: AccountStore): store is PgStore {
  return pg !== null && store instanceof pg.PgStore;
}

/** The keys that encrypt tokens at rest (config/encryption-keys.ts): the current one (null: none) and old ones for reading. */
export interface StoreKeys {
  current: Buffer | null;
  old: Buffer[];
}

/** How a store with these keys treats tokens; `raw`: as stored, never decrypted (store copy, encrypt, decrypt). */
export function sealerFor(keys: StoreKeys | 'raw' | undefined): TokenSealer {
  if (keys === 'raw') return RAW_SEALER;
  return keyringSealer(createKeyring(keys?.current ?? null, keys?.old ?? []));
}

/** A store location as the CLI takes it: a postgres:// URL, else a data directory. */
export function isDatabaseUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * Opens a store. `backgroundLoad` (the gateway): return once the first
 * accounts are read and read the rest in the background (AccountStore.loading()).
 */
export async function openAccountStore(
  location: { dataDir: string; databaseUrl?: string | null },
  logger: Logger,
  keys?: StoreKeys | 'raw',
  opts: { backgroundLoad?: boolean } = {},
): Promise<AccountStore> {
  const sealer = sealerFor(keys);
  if (location.databaseUrl) return (pg ??= await import('./pg-store.ts')).createPgStore({ url: location.databaseUrl, logger, sealer, backgroundLoad: opts.backgroundLoad });
  return createFileStore({ dataDir: location.dataDir, logger, sealer, backgroundLoad: opts.backgroundLoad });
}

/** A store at a CLI location (`--from`, `--to`): a postgres:// URL or a data directory. */
export function openStoreAt(location: string, logger: Logger, keys?: StoreKeys | 'raw'): Promise<AccountStore> {
  return isDatabaseUrl(location) ? openAccountStore({ dataDir: '', databaseUrl: location }, logger, keys) : openAccountStore({ dataDir: location }, logger, keys);
}

/** A database URL with its password hidden, for logs and messages. */
export function describeLocation(location: string): string {
  if (!isDatabaseUrl(location)) return location;
  try {
    const u = new URL(location);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return 'postgres://…';
  }
}

/** The state the gateways on this store share: the database's for PostgreSQL, this process's otherwise. */
export function sharedStateFor(store: AccountStore, now: () => number = Date.now): SharedState {
  return isPg(store) ? store.sharedState() : new MemorySharedState({ now });
}

/** The usage totals the gateways on this store share (the database's), or null when usage is this gateway's own (the data directory). */
export function usageCountersFor(store: AccountStore): UsageCounters | null {
  return isPg(store) ? store.usageCounters() : null;
}

/**
 * A key-value map that outlives a restart: the database's shared state for
 * PostgreSQL (the same as sharedStateFor's), `<data dir>/state.json` otherwise.
 */
export function persistentKvFor(store: AccountStore, dataDir: string, now: () => number = Date.now): SharedKv {
  return isPg(store) ? store.sharedState().kv : new FileKv(dataDir, { now });
}

/** The database behind this store, or null for the data directory. */
export function databaseOf(store: AccountStore): PgStore | null {
  return isPg(store) ? store : null;
}
