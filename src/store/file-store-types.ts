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

const TWO_24 = 2 ** 24;
const TWO_31 = 2 ** 31;

/**
 * What the store last saw or wrote of one file. Kept small (one per account):
 * the file's hash (48 bits) and signature (53 bits) are held as four small
 * integers, not two numbers (a number above 2^31 in a field is an object of
 * its own, 16 bytes). Build one with entryOf: only an account with encrypted
 * tokens (a SealedEntry) has a slot for its stored form and lock.
 */
export class Entry {
  account: Account;
  private hashHi: number;
  private hashLo: number;
  /** -1: no signature. */
  private sigHi = -1;
  private sigLo = 0;

  constructor(account: Account, rawHash: number, sig: number | null) {
    this.account = account;
    // `| 0`: each part fits 31 bits; kept as integers, else the field would hold a number object
    this.hashHi = Math.floor(rawHash / TWO_24) | 0;
    this.hashLo = (rawHash - this.hashHi * TWO_24) | 0;
    this.sig = sig;
  }

  /** Hash of the file text: equal text needs no parsing. */
  get rawHash(): number {
    return this.hashHi * TWO_24 + this.hashLo;
  }

  /** inode/size/mtime/ctime of the file when read (folder-scan.ts: sigOf); null when unknown (after our own write). */
  get sig(): number | null {
    return this.sigHi < 0 ? null : this.sigHi * TWO_31 + this.sigLo;
  }
  set sig(v: number | null) {
    if (v === null) {
      this.sigHi = -1;
      this.sigLo = 0;
    } else {
      this.sigHi = Math.floor(v / TWO_31) | 0;
      this.sigLo = (v - this.sigHi * TWO_31) | 0;
    }
  }

  /** Set when the file's tokens do not decrypt: the store never writes such an account. */
  get lock(): Lock | null {
    return null;
  }

  /** The account as stored (its tokens encrypted); `account` itself when they are plain. */
  get stored(): Account {
    return this.account;
  }
}

/** An entry whose tokens are stored encrypted (or do not decrypt): the rare one, with two slots more. */
class SealedEntry extends Entry {
  private readonly sealedLock: Lock | null;
  private readonly sealedStored: Account;

  constructor(account: Account, rawHash: number, sig: number | null, lock: Lock | null, stored: Account) {
    super(account, rawHash, sig);
    this.sealedLock = lock;
    this.sealedStored = stored;
  }

  override get lock(): Lock | null {
    return this.sealedLock;
  }

  override get stored(): Account {
    return this.sealedStored;
  }
}

/** The entry of what was read or written: `stored` is the account as in the file, `lock` set when its tokens do not decrypt. */
export function entryOf(account: Account, rawHash: number, sig: number | null, lock: Lock | null, stored: Account): Entry {
  return lock === null && stored === account ? new Entry(account, rawHash, sig) : new SealedEntry(account, rawHash, sig, lock, stored);
}

export type ReadOutcome =
  | { kind: 'ok'; entry: Entry }
  | { kind: 'absent' }
  | { kind: 'missing' }
  | { kind: 'bad'; rawHash: number; reason: string };
