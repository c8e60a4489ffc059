// How a refresh failed, and the port the pool refreshes through: the OAuth
// client implements it (src/oauth/oauth-client.ts), the pool calls it.
import type { Account, Token } from '../store/account.ts';
import { GatewayError } from '../util/errors.ts';

/** What the token endpoint said, classified from its `error` code (never from the description). */
export type RefreshFailureKind =
  /** Refresh token revoked or expired (also invalid_rapt): the account is dead until re-added. */
  | 'invalid_grant'
  /** invalid_client / unauthorized_client: the OAuth client setup is wrong, not the account. */
  | 'client'
  /** Network error, timeout, 5xx, 429, non-JSON answer: try again later. */
  | 'transient';

/**
 * A failed refresh (code `refresh_failed`). `status` is the token endpoint's
 * HTTP status (502 when it gave none: network error, timeout); `cause` is the
 * openid-client or network error it was classified from.
 */
export class RefreshError extends GatewayError {
  readonly kind: RefreshFailureKind;
  /** The OAuth `error` code, or a short tag such as `network`, `http_503`, `non_json`. */
  readonly error: string;
  /** The OAuth `error_description` (never contains secrets), may be empty. */
  readonly description: string;
  constructor(kind: RefreshFailureKind, error: string, description = '', status?: number, opts: { cause?: unknown } = {}) {
    super('refresh_failed', description ? `${error}: ${description}` : error, { status: status ?? 502, cause: opts.cause });
    this.kind = kind;
    this.error = error;
    this.description = description;
  }
}

/** Refreshes one account's access token with the OAuth client that issued it. */
export interface TokenRefresher {
  /**
   * Returns the new token (refresh_token kept from `account` when the answer
   * has none). Throws RefreshError for every failure.
   */
  refresh(account: Account): Promise<Token>;
}
