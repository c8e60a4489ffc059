// What a failed refresh means for an account (RefreshError.kind, classified by
// the OAuth client from the token endpoint's `error` code): the texts that go
// into account files and logs for it, bounded, and never a token.
import { redactSecrets } from '../util/redact.ts';
import { truncate } from '../util/text.ts';
import type { Account } from '../store/account.ts';
import type { RefreshError } from '../oauth/refresh-error.ts';

export const MAX_REASON_CHARS = 800;

/**
 * A classified refresh failure: the OAuth client's RefreshError (its kind,
 * error code, description and `error: description` message, free of secrets).
 * The classification itself is the OAuth client's (classifyRefreshError).
 */
export type RefreshFailure = RefreshError;

/** `invalid_grant: <description>`, at most 800 characters, no secrets. */
export function invalidGrantReason(f: RefreshFailure): string {
  const detail = f.description || 'the refresh token was revoked or has expired';
  return truncate(`invalid_grant: ${detail}`, MAX_REASON_CHARS);
}

/** A proxy_disabled / cooldown reason: bounded, no secrets. */
export function boundedReason(text: string, account?: Account): string {
  return truncate(scrubSecrets(text, account), MAX_REASON_CHARS);
}

/** How to fix an OAuth client failure, for the log, /api/status and the dashboard. */
export function clientFixText(error: string): string {
  if (error === 'unauthorized_client') {
    return 'The refresh token was issued to a different OAuth client than the one Grantpool used for it (the account\'s oauth_client_id), or this client may not use the refresh_token grant. Configure the client that issued the token (its client_secret.json), or re-add the account with the current client.';
  }
  return 'Google rejected the OAuth client (invalid_client): the client secret is wrong, or the client was deleted or disabled in Google Cloud Console (APIs & Services > Credentials). Download a fresh client_secret.json for this client and save it in Grantpool; no account was disabled for this.';
}

/** Removes anything that looks like a Google token, and the account's own token values. */
export function scrubSecrets(s: string, account?: Account): string {
  return redactSecrets(s, account ? [account.token.access_token, account.token.refresh_token] : []);
}
