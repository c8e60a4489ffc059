// Tokens encrypted at rest (SPEC section 11, docs/security.md): the access and
// refresh token of an account are stored as
//
//   enc:v1:<key id>:<nonce>:<ciphertext+tag>
//
// AES-256-GCM, a fresh 12-byte nonce per write, base64url parts. The associated
// data binds a value to its account and field (`<account id>/<field>`), so a
// value copied into another account's file, or from one field to the other,
// does not decrypt. The key id is the first 8 hex digits of the key's SHA-256:
// it names the key without revealing it.
//
// The stores call open() on every account they read and seal() on every account
// they write, so everything above the store sees plaintext in memory only. An
// account whose tokens cannot be decrypted (no key with its id, or a GCM tag
// failure: a wrong key or a changed file) is handed out *locked*: disabled in
// memory with the reason, never served, and the stores refuse to write it.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { GatewayError } from '../util/errors.ts';
import { readOnlyAccount, type Account } from './account.ts';

export const SEALED_PREFIX = 'enc:v1:';
const TOKEN_FIELDS = ['access_token', 'refresh_token'] as const;
type TokenField = (typeof TOKEN_FIELDS)[number];
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface Keyring {
  /** The key new writes are encrypted with; null: tokens are written as they are (plain). */
  current: { id: string; key: Buffer } | null;
  /** Every key accepted for reading (the current one and old ones during a rotation), by key id. */
  readable: ReadonlyMap<string, Buffer>;
}

/** The key id: first 8 hex digits of the key's SHA-256. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** The key ring of a configuration: the current key (may be null) and the old ones still accepted for reading. */
export function createKeyring(current: Buffer | null, old: readonly Buffer[] = []): Keyring {
  const readable = new Map<string, Buffer>();
  for (const key of [...(current ? [current] : []), ...old]) {
    if (key.length !== 32) throw new Error(`an encryption key must be 32 bytes, not ${key.length}`);
    readable.set(keyId(key), key);
  }
  return { current: current ? { id: keyId(current), key: current } : null, readable };
}

export const NO_KEYS: Keyring = createKeyring(null);

export function isSealed(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

function aad(accountId: string, field: TokenField): Buffer {
  return Buffer.from(`${accountId}/${field}`, 'utf8');
}

/** Encrypts one token value for one account and field. */
export function sealValue(key: { id: string; key: Buffer }, accountId: string, field: TokenField, plain: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(accountId, field));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${SEALED_PREFIX}${key.id}:${nonce.toString('base64url')}:${body.toString('base64url')}`;
}

export type OpenFailure = {
  /** `unknown_key`: no key with this id; `bad_tag`: a key with this id that does not decrypt it (wrong key, changed value, another account's value); `malformed`: not an enc:v1 value. */
  why: 'unknown_key' | 'bad_tag' | 'malformed';
  keyId: string;
};

/** Decrypts one stored value (a plain value is returned as it is). */
export function openValue(keyring: Keyring, accountId: string, field: TokenField, stored: string): { ok: true; plain: string } | { ok: false; failure: OpenFailure } {
  if (!isSealed(stored)) return { ok: true, plain: stored };
  const parts = stored.slice(SEALED_PREFIX.length).split(':');
  const [id, nonceText, bodyText] = parts;
  if (parts.length !== 3 || !id || !/^[0-9a-f]{8}$/.test(id)) return { ok: false, failure: { why: 'malformed', keyId: id && /^[0-9a-f]{1,16}$/.test(id) ? id : '?' } };
  const key = keyring.readable.get(id);
  if (!key) return { ok: false, failure: { why: 'unknown_key', keyId: id } };
  const nonce = Buffer.from(nonceText ?? '', 'base64url');
  const body = Buffer.from(bodyText ?? '', 'base64url');
  if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) return { ok: false, failure: { why: 'malformed', keyId: id } };
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(accountId, field));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    return { ok: true, plain: plain.toString('utf8') };
  } catch {
    return { ok: false, failure: { why: 'bad_tag', keyId: id } };
  }
}

/** How an account's tokens are stored. */
export type Sealing = 'plain' | 'encrypted' | 'locked';

export interface Lock {
  keyId: string;
  why: OpenFailure['why'];
  /** For people: the account's state reason (dashboard, API, logs). */
  reason: string;
}

export interface Opened {
  /** The account with plaintext tokens; a locked account as stored, disabled in memory with the reason. */
  account: Account;
  /** The account as stored. */
  stored: Account;
  sealing: Sealing;
  /** The key id of encrypted tokens (null for plain ones). */
  keyId: string | null;
  lock: Lock | null;
}

function lockReason(f: OpenFailure): string {
  if (f.why === 'unknown_key') return `encrypted with a key this gateway does not have (key id ${f.keyId})`;
  if (f.why === 'bad_tag') return `encrypted tokens do not decrypt with key id ${f.keyId} (a wrong key with that id, or a changed or moved value)`;
  return `encrypted tokens are malformed (key id ${f.keyId})`;
}

/** How a store treats the tokens it reads and writes. */
export interface TokenSealer {
  readonly keyring: Keyring;
  /** Decrypts the tokens of an account as read from storage (a read-only account in, a read-only account out). */
  open(stored: Account): Opened;
  /**
   * Encrypts the tokens of an account about to be written (plaintext in; what to store out).
   * With `previous` (the account as stored and as opened), a token that did not change keeps
   * its stored ciphertext: only changed tokens use up a nonce.
   */
  seal(account: Account, previous?: { stored: Account; plain: Account } | null): Account;
}

/** The sealer of a key ring: decrypts on read, encrypts with the current key (if any) on write. */
export function keyringSealer(keyring: Keyring): TokenSealer {
  return {
    keyring,
    open(stored) {
      const plain: Partial<Record<TokenField, string>> = {};
      let kid: string | null = null;
      for (const field of TOKEN_FIELDS) {
        const value = stored.token[field];
        if (!isSealed(value)) continue;
        const r = openValue(keyring, stored.id, field, value);
        if (!r.ok) {
          const reason = lockReason(r.failure);
          return { account: lockedAccount(stored, reason), stored, sealing: 'locked', keyId: r.failure.keyId, lock: { keyId: r.failure.keyId, why: r.failure.why, reason } };
        }
        plain[field] = r.plain;
        kid = value.slice(SEALED_PREFIX.length, SEALED_PREFIX.length + 8);
      }
      if (kid === null) return { account: stored, stored, sealing: 'plain', keyId: null, lock: null };
      return { account: withTokens(stored, plain), stored, sealing: 'encrypted', keyId: kid, lock: null };
    },
    seal(account, previous) {
      const key = keyring.current;
      if (!key) return account;
      const sealed: Partial<Record<TokenField, string>> = {};
      const same = previous && previous.stored.id === account.id ? previous : null;
      for (const field of TOKEN_FIELDS) {
        const value = account.token[field];
        // An empty access token (not yet refreshed) stays empty: there is nothing to hide.
        if (value === '' || isSealed(value)) continue;
        const before = same?.stored.token[field];
        if (before && same!.plain.token[field] === value && before.startsWith(`${SEALED_PREFIX}${key.id}:`)) sealed[field] = before;
        else sealed[field] = sealValue(key, account.id, field, value);
      }
      return Object.keys(sealed).length ? withTokens(account, sealed) : account;
    },
  };
}

/**
 * The sealer of `store copy`, `grantpool encrypt` and `decrypt`: tokens pass
 * as stored (encrypted or not), never decrypted; open() only says how they are stored.
 */
export const RAW_SEALER: TokenSealer = {
  keyring: NO_KEYS,
  open(stored) {
    const kid = TOKEN_FIELDS.map((f) => stored.token[f]).find(isSealed)?.slice(SEALED_PREFIX.length, SEALED_PREFIX.length + 8) ?? null;
    return { account: stored, stored, sealing: kid ? 'encrypted' : 'plain', keyId: kid, lock: null };
  },
  seal: (account) => account,
};

function withTokens(a: Account, tokens: Partial<Record<TokenField, string>>): Account {
  const missing = a.missing_scopes;
  return readOnlyAccount({ ...a, missing_scopes: missing.length ? [...missing] : [], token: { ...a.token, ...tokens } });
}

/** A locked account: as stored (its tokens still encrypted), disabled in memory with the reason. */
function lockedAccount(stored: Account, reason: string): Account {
  const missing = stored.missing_scopes;
  return readOnlyAccount({ ...stored, missing_scopes: missing.length ? [...missing] : [], token: { ...stored.token }, disabled: true, disabled_reason: reason });
}

/** A store refuses to write an account whose tokens it cannot decrypt: that would destroy them. */
export class AccountEncryptedError extends GatewayError {
  constructor(account: { id: string; email: string }, lock: Lock) {
    super('account_encrypted', `account ${account.email} (${account.id}) is ${lock.reason}; it is left unchanged`, {
      status: 409,
      fix: `start Grantpool with the key of id ${lock.keyId} (GRANTPOOL_ENCRYPTION_KEY or encryption_key_file; docs/security.md), or remove the account and add it again`,
    });
  }
}

/** How the accounts of a store are stored, for /api/status and `grantpool doctor`. */
export interface EncryptionReport {
  /** The key new writes use (null: none, tokens are written plain). */
  key_id: string | null;
  /** Other keys accepted for reading. */
  old_key_ids: string[];
  plain: number;
  encrypted: number;
  /** Encrypted under an old key (rewritten under the current one at the next write, or by `grantpool encrypt --rotate`). */
  encrypted_with_old_key: number;
  locked: { id: string; email: string; key_id: string; reason: string }[];
}

/** What a store knows of the sealing of each account (kept beside its accounts). */
export class SealingCensus {
  // Plain accounts are not kept here (most stores have only those): they are the rest of the store's count.
  /** Accounts with encrypted tokens, and the key id of each (shared strings). */
  private readonly encrypted = new Map<string, string>();
  /** Accounts whose tokens do not decrypt here. */
  private readonly locked = new Map<string, { email: string; lock: Lock }>();

  note(id: string, opened: Opened | null): void {
    this.encrypted.delete(id);
    this.locked.delete(id);
    if (!opened || opened.sealing === 'plain') return;
    if (opened.lock) this.locked.set(id, { email: opened.account.email, lock: opened.lock });
    else this.encrypted.set(id, opened.keyId ?? '');
  }

  lockOf(id: string): Lock | null {
    return this.locked.get(id)?.lock ?? null;
  }

  /** `total`: the accounts the store holds (plain ones are the rest). */
  report(keyring: Keyring, total: number): EncryptionReport {
    const key_id = keyring.current?.id ?? null;
    let withOld = 0;
    for (const kid of this.encrypted.values()) if (kid !== key_id) withOld++;
    const locked = [...this.locked].map(([id, s]) => ({ id, email: s.email, key_id: s.lock.keyId, reason: s.lock.reason }));
    locked.sort((a, b) => (a.id < b.id ? -1 : 1));
    return {
      key_id,
      old_key_ids: [...keyring.readable.keys()].filter((k) => k !== key_id),
      plain: Math.max(0, total - this.encrypted.size - this.locked.size),
      encrypted: this.encrypted.size,
      encrypted_with_old_key: withOld,
      locked,
    };
  }

  /** The store's problem line while some accounts are locked (null when none is). */
  problem(): string | null {
    if (this.locked.size === 0) return null;
    const locked = [...this.locked.values()];
    const ids = [...new Set(locked.map((s) => s.lock.keyId))].join(', ');
    const unknown = locked.some((s) => s.lock.why === 'unknown_key');
    return `${locked.length} account(s) have tokens ${unknown ? 'encrypted with a key this gateway does not have' : 'that do not decrypt'} (key id ${ids}): they serve nothing and are left unchanged until the gateway starts with that key (GRANTPOOL_ENCRYPTION_KEY or encryption_key_file)`;
  }
}

/**
 * What `grantpool encrypt`, `encrypt --rotate` and `decrypt` do to one account as stored:
 * - `encrypt`: plain tokens are encrypted with `target`; encrypted ones are left as they are;
 * - `rotate`: every token ends encrypted with `target` (others are decrypted with `readable` first);
 * - `decrypt`: every token ends plain (decrypted with `readable`).
 * Returns the account to store, null when it is already so, or why it cannot be converted.
 */
export function convertTokens(
  stored: Account,
  mode: 'encrypt' | 'rotate' | 'decrypt',
  readable: Keyring,
  target: { id: string; key: Buffer } | null,
): { account: Account | null } | { failed: string } {
  const next: Partial<Record<TokenField, string>> = {};
  for (const field of TOKEN_FIELDS) {
    const value = stored.token[field];
    if (value === '') continue;
    if (mode === 'encrypt') {
      if (!isSealed(value)) next[field] = sealValue(target!, stored.id, field, value);
      continue;
    }
    if (mode === 'rotate' && isSealed(value) && value.startsWith(`${SEALED_PREFIX}${target!.id}:`)) continue;
    const r = openValue(readable, stored.id, field, value);
    if (!r.ok) return { failed: lockReason(r.failure) };
    if (mode === 'decrypt') {
      if (isSealed(value)) next[field] = r.plain;
    } else next[field] = sealValue(target!, stored.id, field, r.plain);
  }
  if (Object.keys(next).length === 0) return { account: null };
  return { account: { ...stored, token: { ...stored.token, ...next } } };
}

/** Re-encrypts a sealed value for another account id (store copy onto an account of another id). */
export function rebindValue(keyring: Keyring, fromId: string, toId: string, field: TokenField, stored: string): string {
  if (!isSealed(stored) || fromId === toId) return stored;
  const r = openValue(keyring, fromId, field, stored);
  if (!r.ok) throw new Error(lockReason(r.failure));
  const kid = stored.slice(SEALED_PREFIX.length, SEALED_PREFIX.length + 8);
  return sealValue({ id: kid, key: keyring.readable.get(kid)! }, toId, field, r.plain);
}

export { TOKEN_FIELDS, type TokenField };
