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
  readonly account: Account;
  /** Hash of the file text: equal text needs no parsing. */
  readonly rawHash: number;
  /** inode/size/mtime/ctime of the file when read (folder-scan.ts: sigOf); null when unknown (after our own write). */
  readonly sig: number | null;
  /** Set when the file's tokens do not decrypt: the store never writes such an account. */
  readonly lock: Lock | null;
  /** The account as stored (its tokens encrypted); `account` itself when they are plain. */
  readonly stored: Account;
}

/** Slots the typed arrays have at first (they double when full). */
const FIRST_CAPACITY = 256;
/** A sig slot without a signature (a signature is a 53-bit number, never negative). */
const NO_SIG = -1;

/**
 * The entries of every known file, kept without an object per account: the
 * id maps to a slot (a small integer, held in the map itself), the account
 * is in an array at that slot and the file's hash and signature in two
 * Float64Arrays (exact: 48 and 53 bits), 24 bytes a file instead of a
 * 64-byte object. Only an account with encrypted tokens has its stored form
 * and lock, in a map of its own. get() builds the Entry when asked (a
 * short-lived object); iteration is in the order ids were first set, like a
 * Map's.
 */
export class EntryTable {
  private readonly slots = new Map<string, number>();
  private readonly accountAt: (Account | null)[] = [];
  private hashAt = new Float64Array(FIRST_CAPACITY);
  private sigAt = new Float64Array(FIRST_CAPACITY);
  private readonly sealedAt = new Map<number, { lock: Lock | null; stored: Account }>();
  /** Slots of removed entries, used again first. */
  private readonly free: number[] = [];

  get size(): number {
    return this.slots.size;
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  get(id: string): Entry | undefined {
    const slot = this.slots.get(id);
    if (slot === undefined) return undefined;
    const account = this.accountAt[slot]!;
    const sealed = this.sealedAt.get(slot);
    const sig = this.sigAt[slot]!;
    return { account, rawHash: this.hashAt[slot]!, sig: sig === NO_SIG ? null : sig, lock: sealed ? sealed.lock : null, stored: sealed ? sealed.stored : account };
  }

  account(id: string): Account | undefined {
    const slot = this.slots.get(id);
    return slot === undefined ? undefined : this.accountAt[slot]!;
  }

  /** The signature of what was last read of the file (null: unknown), undefined for an unknown id. */
  sig(id: string): number | null | undefined {
    const slot = this.slots.get(id);
    if (slot === undefined) return undefined;
    const sig = this.sigAt[slot]!;
    return sig === NO_SIG ? null : sig;
  }

  /** The file was read again with the same text: only its signature is new. */
  setSig(id: string, sig: number): void {
    const slot = this.slots.get(id);
    if (slot !== undefined) this.sigAt[slot] = sig;
  }

  /** Sets the entry of `id`; a new id keeps this very string as its key. */
  set(id: string, entry: Entry): void {
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.grow();
      this.slots.set(id, slot);
    }
    this.accountAt[slot] = entry.account;
    this.hashAt[slot] = entry.rawHash;
    this.sigAt[slot] = entry.sig ?? NO_SIG;
    if (entry.lock === null && entry.stored === entry.account) this.sealedAt.delete(slot);
    else this.sealedAt.set(slot, { lock: entry.lock, stored: entry.stored });
  }

  delete(id: string): void {
    const slot = this.slots.get(id);
    if (slot === undefined) return;
    this.slots.delete(id);
    this.accountAt[slot] = null;
    this.sealedAt.delete(slot);
    this.free.push(slot);
  }

  ids(): IterableIterator<string> {
    return this.slots.keys();
  }

  accounts(): Account[] {
    const out: Account[] = [];
    for (const slot of this.slots.values()) out.push(this.accountAt[slot]!);
    return out;
  }

  /** A slot never used so far (the arrays doubled when full). */
  private grow(): number {
    const slot = this.accountAt.length;
    if (slot === this.hashAt.length) {
      const hashAt = new Float64Array(slot * 2);
      hashAt.set(this.hashAt);
      this.hashAt = hashAt;
      const sigAt = new Float64Array(slot * 2);
      sigAt.set(this.sigAt);
      this.sigAt = sigAt;
    }
    this.accountAt.push(null);
    return slot;
  }
}

export type ReadOutcome =
  | { kind: 'ok'; entry: Entry }
  | { kind: 'absent' }
  | { kind: 'missing' }
  | { kind: 'bad'; rawHash: number; reason: string };
