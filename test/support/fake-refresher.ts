// A programmable TokenRefresher for pool tests: answers per account from a
// script (tokens, RefreshErrors), can hold calls open until released, and
// records every call and how many ran at once per account.
import type { Account, Token } from '../../src/store/account.ts';
import type { Clock } from '../../src/util/clock.ts';
import { RefreshError, type TokenRefresher } from '../../src/oauth/refresh-error.ts';

export type RefreshStep =
  | { ok: true; refreshToken?: string; lifetimeSeconds?: number; scope?: string }
  | { ok: false; error: RefreshError };

export const refreshErrors = {
  invalidGrant: (description = 'Token has been expired or revoked.') => new RefreshError('invalid_grant', 'invalid_grant', description, 400),
  invalidRapt: () => new RefreshError('invalid_grant', 'invalid_grant', 'reauth related error (invalid_rapt)', 400),
  invalidClient: (description = 'The OAuth client was not found.') => new RefreshError('client', 'invalid_client', description, 401),
  unauthorizedClient: (description = 'Unauthorized') => new RefreshError('client', 'unauthorized_client', description, 400),
  http500: () => new RefreshError('transient', 'http_500', 'Internal Server Error', 500),
  nonJson: () => new RefreshError('transient', 'non_json', 'the token endpoint answered 403 with text/html', 403),
  network: () => new RefreshError('transient', 'network', 'connect ECONNREFUSED 127.0.0.1:1'),
};

export class FakeRefresher implements TokenRefresher {
  readonly clock: Clock;
  /** Every call, in order: account id and the refresh token it was called with. */
  readonly calls: { id: string; refreshToken: string }[] = [];
  /** Largest number of calls for one account that were running at the same time. */
  maxConcurrentPerAccount = 0;
  /** Largest number of calls (any accounts) running at the same time. */
  maxConcurrentTotal = 0;
  private total = 0;
  private running = new Map<string, number>();
  private scripts = new Map<string, RefreshStep[]>();
  /** Answer when an account has no script left. */
  defaultStep: RefreshStep = { ok: true };
  /** Decides the answer per call when set (before scripts and defaultStep). */
  decide: ((account: Account) => RefreshStep) | null = null;
  /** Extra waiting inside each call (lets calls for different accounts interleave). */
  delay: (() => Promise<void>) | null = null;
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  private serial = 0;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Queue answers for one account (used in order; then defaultStep). */
  script(id: string, ...steps: RefreshStep[]): this {
    this.scripts.set(id, [...(this.scripts.get(id) ?? []), ...steps]);
    return this;
  }

  /** Make every call wait until release() is called. */
  hold(): void {
    if (!this.gate) this.gate = new Promise((r) => (this.openGate = r));
  }

  release(): void {
    this.openGate?.();
    this.gate = null;
    this.openGate = null;
  }

  callsFor(id: string): number {
    return this.calls.filter((c) => c.id === id).length;
  }

  inFlight(id: string): number {
    return this.running.get(id) ?? 0;
  }

  async refresh(account: Account): Promise<Token> {
    this.calls.push({ id: account.id, refreshToken: account.token.refresh_token });
    const n = (this.running.get(account.id) ?? 0) + 1;
    this.running.set(account.id, n);
    this.maxConcurrentPerAccount = Math.max(this.maxConcurrentPerAccount, n);
    this.total++;
    this.maxConcurrentTotal = Math.max(this.maxConcurrentTotal, this.total);
    try {
      await Promise.resolve();
      if (this.gate) await this.gate;
      if (this.delay) await this.delay();
      const queue = this.scripts.get(account.id);
      const step = this.decide ? this.decide(account) : queue && queue.length > 0 ? queue.shift()! : this.defaultStep;
      if (!step.ok) throw step.error;
      this.serial++;
      return {
        access_token: `ya29.fresh-${account.id}-${this.serial}`,
        // like Google: usually no new refresh token in a refresh answer
        refresh_token: step.refreshToken ?? account.token.refresh_token,
        expiry_timestamp: Math.floor(this.clock.now() / 1000) + (step.lifetimeSeconds ?? 3600),
        token_type: 'Bearer',
        scope: step.scope ?? account.token.scope,
      };
    } finally {
      this.total--;
      this.running.set(account.id, (this.running.get(account.id) ?? 1) - 1);
    }
  }
}
