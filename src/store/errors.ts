// The account store's own errors (a bad account is InvalidAccountError in
// account-file.ts, an unknown one AccountNotFoundError in account-ops.ts).
import { GatewayError } from '../util/errors.ts';

/** The store cannot serve now: closed, the database unreachable, a lock held too long by another gateway. */
export class StoreUnavailableError extends GatewayError {
  constructor(message: string, opts: { fix?: string; cause?: unknown } = {}) {
    super('store_unavailable', message, { status: 503, ...opts });
  }
}

/** An account with this id already exists (and is another identity). */
export class AccountExistsError extends GatewayError {
  constructor(id: string) {
    super('account_exists', `an account with id ${id} already exists`, { status: 409 });
  }
}
