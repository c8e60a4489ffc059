// OAuth clients that the token endpoint rejected (invalid_client /
// unauthorized_client). No account is disabled for this: the client is marked
// failing, shown with a fix, and retried slowly (one probe per retry interval).

export const DEFAULT_CLIENT_RETRY_MS = 5 * 60 * 1000;

/** Key for accounts without an oauth_client_id (refreshed with the default client). */
export const DEFAULT_CLIENT_KEY = '(default)';

export interface ClientFailure {
  client_id: string;
  error: string;
  description: string;
  fix: string;
  /** Epoch ms of the first failure in this run of failures. */
  since: number;
  /** Epoch ms when the next probe refresh may run. */
  nextRetryAt: number;
}

export function clientKey(oauthClientId: string | null): string {
  return oauthClientId || DEFAULT_CLIENT_KEY;
}

export class ClientHealth {
  private failures = new Map<string, ClientFailure>();
  private readonly retryMs: number;

  constructor(retryMs: number = DEFAULT_CLIENT_RETRY_MS) {
    this.retryMs = retryMs;
  }

  markFailing(clientId: string, error: string, description: string, fix: string, now: number): ClientFailure {
    const prev = this.failures.get(clientId);
    const f: ClientFailure = {
      client_id: clientId,
      error,
      description,
      fix,
      since: prev ? prev.since : now,
      nextRetryAt: now + this.retryMs,
    };
    this.failures.set(clientId, f);
    return f;
  }

  /** A successful refresh with this client: it works again. Returns true when it was failing. */
  markOk(clientId: string): boolean {
    return this.failures.delete(clientId);
  }

  /** Forget failures (all, or one client), e.g. after client_secret.json was replaced. */
  reset(clientId?: string): void {
    if (clientId === undefined) this.failures.clear();
    else this.failures.delete(clientId);
  }

  /** True while refreshes with this client should not be attempted. */
  blocked(clientId: string, now: number): boolean {
    const f = this.failures.get(clientId);
    return !!f && now < f.nextRetryAt;
  }

  failure(clientId: string): ClientFailure | null {
    return this.failures.get(clientId) ?? null;
  }

  /**
   * Called when a refresh with this client is about to run. When the client is
   * failing, the attempt is its probe: the next one waits another interval.
   */
  claimAttempt(clientId: string, now: number): void {
    const f = this.failures.get(clientId);
    if (f) f.nextRetryAt = now + this.retryMs;
  }

  list(): ClientFailure[] {
    return [...this.failures.values()].map((f) => ({ ...f }));
  }
}
