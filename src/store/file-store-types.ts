// The file store's options, and what it keeps of each account file.
import type { Logger } from '../log/logger.ts';
import type { Account } from './account.ts';
import type { Lock, TokenSealer } from './token-cipher.ts';

export interface FileStoreOptions {
  dataDir: string;
  logger: Logger;
  /** Safety rescan period while someone watches (inotify can miss events). Default 5000. */
  pollIntervalMs?: number;
  /** Per-file debounce of folder events. Default 25. */
  debounceMs?: number;
  /** A lock whose holder stopped refreshing it for this long is taken over. Default 10000. */
  lockStaleMs?: number;
  /** How long a write waits for the store lock before failing. Default 30000. */
  lockWaitMs?: number;
  /** How long withRefreshLock waits for another refresh of the same account. Default 120000. */
  refreshLockWaitMs?: number;
  /** How tokens are stored (token-cipher.ts). Default: written plain, encrypted ones readable by no key (locked). */
  sealer?: TokenSealer;
  /**
   * Read the accounts in the background: open() returns after `firstMs` of
   * reading (default 50; all of them when there are few) and the rest follow
   * (loading(), loadedSoFar(), whenLoaded()) in slices of `sliceMs` (default 8)
   * with other work in between. Default false: open() reads every file first.
   */
  backgroundLoad?: boolean | { firstMs?: number; sliceMs?: number };
}

/** What the store last saw or wrote of one file. */
export interface Entry {
  account: Account;
  /** Hash of the file text: equal text needs no parsing. */
  rawHash: number;
  /** inode/size/mtime/ctime of the file when read (folder-scan.ts: sigOf); null when unknown (after our own write). */
  sig: number | null;
  /** Set when the file's tokens do not decrypt: the store never writes such an account. */
  lock: Lock | null;
  /** The account as stored (its tokens encrypted); `account` itself when they are plain. */
  stored: Account;
}

export type ReadOutcome =
  | { kind: 'ok'; entry: Entry }
  | { kind: 'absent' }
  | { kind: 'missing' }
  | { kind: 'bad'; rawHash: number; reason: string };
