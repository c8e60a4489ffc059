// Account operations shared by the CLI and the management API. They work on
// the store directly, so they work whether or not a gateway is running; a
// running gateway sees the change through the store's change notification.
import type { Account } from './account.ts';
import type { AccountStore } from './store.ts';
import { unixNow } from './account.ts';
import { GatewayError } from '../util/errors.ts';
import { isSealed } from './token-cipher.ts';

export class AccountNotFoundError extends GatewayError {
  constructor(ref: string) {
    super('account_not_found', `no account matches "${ref}" (give its email or id; \`grantpool accounts list\` shows them)`, { status: 404 });
  }
}

/** Finds an account by id, else by email (case-insensitive). */
export async function findAccount(store: AccountStore, ref: string): Promise<Account> {
  const byId = /^[A-Za-z0-9_-]{1,64}$/.test(ref) ? await store.get(ref) : null;
  if (byId) return byId;
  const wanted = ref.trim().toLowerCase();
  const match = (await store.list()).find((a) => a.email.toLowerCase() === wanted);
  if (!match) throw new AccountNotFoundError(ref);
  return match;
}

/** Takes an account out of the proxy (or puts it back). Leaves `disabled` alone. */
export async function setProxyDisabled(
  store: AccountStore,
  id: string,
  proxyDisabled: boolean,
  reason = 'manual',
  nowMs = Date.now(),
): Promise<Account> {
  const updated = await store.update(id, (a) =>
    proxyDisabled
      ? { ...a, proxy_disabled: true, proxy_disabled_at: unixNow(nowMs), proxy_disabled_reason: reason }
      : { ...a, proxy_disabled: false, proxy_disabled_at: null, proxy_disabled_reason: null },
  );
  if (!updated) throw new AccountNotFoundError(id);
  return updated;
}

export type RevocationResult = 'revoked' | 'already_revoked' | 'skipped' | 'failed';

/**
 * Removes an account, revoking its refresh token at the issuer first (best
 * effort: a failed revocation is reported, the account is removed anyway).
 */
export async function removeAccount(
  store: AccountStore,
  account: Account,
  revoke: ((account: Account) => Promise<'revoked' | 'already_revoked'>) | null,
): Promise<{ revocation: RevocationResult; revocationError?: string }> {
  let revocation: RevocationResult = 'skipped';
  let revocationError: string | undefined;
  if (revoke && isSealed(account.token.refresh_token)) {
    // Still encrypted: the store could not decrypt it (no key here), so there is no token to revoke.
    revocation = 'failed';
    revocationError = 'the refresh token is encrypted with a key this gateway does not have, so it was not revoked at Google (the account owner can remove the grant at https://myaccount.google.com/permissions)';
  } else if (revoke) {
    try {
      revocation = await revoke(account);
    } catch (e) {
      revocation = 'failed';
      revocationError = (e as Error).message;
    }
  }
  await store.remove(account.id);
  return { revocation, revocationError };
}
