// When and how the pool refreshes access tokens: one refresh per account at a
// time (single-flight, under the store lock), a background queue that renews
// tokens before they expire (most urgent first, a bounded number at once),
// and what a failed refresh leads to: the refresh backoff, a failing OAuth
// client, or the disable written to the store for invalid_grant. The write
// for an upstream 403 (proxy_disabled) lives here too: both are the pool's
// decisions written through the store.
import type { Account } from '../store/account.ts';
import { unixNow } from '../store/account.ts';
import type { AccountStore } from '../store/store.ts';
import type { TokenRefresher } from '../oauth/refresh-error.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../log/logger.ts';
import { backoffMs } from './cooldowns.ts';
import { clientKey, type ClientHealth } from './client-health.ts';
import { boundedReason, clientFixText, invalidGrantReason, type RefreshFailure } from './error-policy.ts';
import { SingleFlight, refreshUnderLock, type RefreshAttempt } from './refresh.ts';
import { staticallyOut, type Entry, type Mirror } from './mirror.ts';
import { marginFor, refreshBeforeFor } from './eligibility.ts';

export interface SchedulerOptions {
  store: AccountStore;
  refresher: TokenRefresher;
  clock: Clock;
  logger: Logger;
  mirror: Mirror;
  clients: ClientHealth;
  /** A token is refreshed in the background when less than this is left. */
  refreshBeforeMs: number;
  /** A token with less than this left is not handed out. */
  marginMs: number;
  backoffMinSeconds: number;
  backoffMaxSeconds: number;
  random: () => number;
  /** Background refreshes running at once. */
  concurrency: number;
  /** An account's live state may have changed. */
  changed: (id: string) => void;
}

export class RefreshScheduler {
  private readonly o: SchedulerOptions;
  private readonly flights = new SingleFlight<RefreshAttempt>();
  private running = 0;
  private queue: string[] = [];
  private stopped = false;

  constructor(opts: SchedulerOptions) {
    this.o = opts;
  }

  /** A refresh is in flight for this account. */
  has(id: string): boolean {
    return this.flights.has(id);
  }

  /** Refreshes in flight. */
  get size(): number {
    return this.flights.size;
  }

  /** Refreshes this account (or joins the one in flight) and applies the result to the pool. */
  refresh(e: Entry, force: boolean, staleAccessToken: string): Promise<RefreshAttempt> {
    const { store, refresher, clock, clients, changed } = this.o;
    const marginMs = marginFor(e, this.o.marginMs);
    const refreshBeforeMs = refreshBeforeFor(e, this.o.refreshBeforeMs);
    return this.flights.run(e.id, async () => {
      // while its client is failing, this refresh is the client's probe: the next waits an interval
      clients.claimAttempt(e.clientKey, clock.now());
      changed(e.id); // refreshing
      const attempt = await refreshUnderLock({ store, refresher, clock }, e.id, { held: e.account, staleAccessToken, force, marginMs, refreshBeforeMs });
      await this.settle(e.id, attempt);
      changed(e.id);
      return attempt;
    });
  }

  /** The account is due for a background refresh and nothing stands in its way. */
  wants(e: Entry, now: number): boolean {
    if (staticallyOut(e) || this.flights.has(e.id)) return false;
    if (e.expiresAtMs - now >= refreshBeforeFor(e, this.o.refreshBeforeMs) && e.rejectedToken !== e.account.token.access_token) return false;
    if (e.backoff && now < e.backoff.until) return false;
    if (this.o.clients.blocked(e.clientKey, now)) return false;
    return true;
  }

  /** Starts a background refresh when there is room. */
  startBackground(e: Entry): boolean {
    if (this.running >= this.o.concurrency || this.stopped) return false;
    this.running++;
    void this.refresh(e, e.rejectedToken === e.account.token.access_token, e.account.token.access_token)
      .catch((err) => this.o.logger.error({ account_id: e.id, err }, 'Background refresh crashed'))
      .finally(() => {
        this.running--;
        this.pump();
      });
    return true;
  }

  /** One background pass: queues every account due (when the last pass is worked off) and starts what fits. */
  tick(now: number): void {
    const { mirror } = this.o;
    if (this.queue.length === 0) {
      // one pass over every account; the queue is worked off as refreshes finish
      for (const e of mirror.values()) if (this.wants(e, now)) this.queue.push(e.id);
      // the most urgent first
      this.queue.sort((x, y) => (mirror.get(x)?.expiresAtMs ?? 0) - (mirror.get(y)?.expiresAtMs ?? 0));
    }
    this.pump();
  }

  resume(): void {
    this.stopped = false;
  }

  /** No new background refreshes; waits (up to 5 s) for refreshes in flight, so their tokens are written. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue = [];
    const inflight = this.flights.pending();
    if (inflight.length === 0) return;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(inflight),
      new Promise<void>((r) => {
        t = setTimeout(r, 5000);
        t.unref();
      }),
    ]);
    clearTimeout(t);
  }

  /** Takes the account out of the proxy at once and writes proxy_disabled (an upstream 403). */
  async disableForProxy(e: Entry, reason: string): Promise<void> {
    const { store, clock, logger, mirror } = this.o;
    const bounded = boundedReason(reason, e.account);
    mirror.markProxyDisabled(e, bounded);
    logger.warn(
      { account_id: e.id, email: e.account.email, reason: bounded },
      `Taking account out of the proxy (${e.account.email}): ${bounded}`,
    );
    try {
      const written = await store.update(e.id, (cur) => ({
        ...cur,
        proxy_disabled: true,
        proxy_disabled_at: unixNow(clock.now()),
        proxy_disabled_reason: bounded,
      }));
      if (written && mirror.get(e.id)) mirror.apply(written);
    } catch (err) {
      logger.error(
        { account_id: e.id, email: e.account.email, error: (err as Error).message },
        `Could not write proxy_disabled for ${e.account.email}; it stays out of the proxy until the gateway restarts`,
      );
    }
  }

  /** Starts queued background refreshes while there is room (each finished one makes room for the next). */
  private pump(): void {
    const now = this.o.clock.now();
    while (this.queue.length > 0 && this.running < this.o.concurrency && !this.stopped) {
      const e = this.o.mirror.get(this.queue.shift()!);
      if (e && this.wants(e, now)) this.startBackground(e);
    }
  }

  /** Applies a refresh result to the live pool (and the store, for invalid_grant). */
  private async settle(id: string, attempt: RefreshAttempt): Promise<void> {
    const { mirror, clients, logger, clock } = this.o;
    const e = mirror.get(id);
    if (attempt.ok) {
      if (!e) return; // removed meanwhile: do not bring it back
      e.backoff = null;
      if (attempt.called && clients.markOk(e.clientKey)) {
        logger.info({ oauth_client_id: e.clientKey }, `OAuth client ${e.clientKey} works again`);
      }
      const live = mirror.apply(attempt.account);
      if (attempt.called) {
        // a token just issued: how long it lives sets its margins
        const life = live.expiresAtMs - clock.now();
        live.tokenLifetimeMs = life > 0 ? life : null;
      }
      return;
    }
    if (attempt.reason !== 'failed') {
      if (attempt.reason === 'gone' && e) mirror.remove(id);
      if (attempt.reason === 'disabled' && e && attempt.account) mirror.apply(attempt.account);
      return;
    }
    const f = attempt.failure;
    const account = attempt.account;
    const email = account.email;
    logger.warn(
      { account_id: id, email, error: f.error, error_description: f.description, kind: f.kind },
      `Token refresh failed (${email}): ${f.message}, trying next account`,
    );
    if (f.kind === 'invalid_grant') await this.disableForInvalidGrant(id, account, f);
    else if (f.kind === 'client') {
      const fix = clientFixText(f.error);
      const key = clientKey(account.oauth_client_id);
      const failure = clients.markFailing(key, f.error, f.description, fix, clock.now());
      if (e && e.account.token.refresh_token === account.token.refresh_token) {
        // this account retries slowly on its own too (a token issued to another client fails even when the client works)
        e.backoff = {
          attempts: (e.backoff?.attempts ?? 0) + 1,
          until: failure.nextRetryAt,
          reason: `OAuth client ${key} is misconfigured (${f.error}): ${fix}`,
          kind: 'client',
        };
      }
      logger.error(
        { oauth_client_id: key, account_id: id, email, error: f.error, error_description: f.description, fix, next_retry_at: new Date(failure.nextRetryAt).toISOString() },
        `OAuth client ${key} was rejected by the token endpoint (${f.message}); no account is disabled for this. Fix: ${fix}`,
      );
    } else if (e && e.account.token.refresh_token === account.token.refresh_token) {
      const attempts = (e.backoff?.attempts ?? 0) + 1;
      const wait = backoffMs(attempts, this.o.backoffMinSeconds, this.o.backoffMaxSeconds, this.o.random);
      e.backoff = { attempts, until: clock.now() + wait, reason: `token refresh failed: ${f.message}`, kind: 'transient' };
      logger.warn(
        { account_id: id, email, error: f.error, attempt: attempts, retry_in_ms: wait },
        `Token refresh for ${email} will be retried in ${Math.ceil(wait / 1000)} s (transient error, the account is not disabled)`,
      );
    }
  }

  private async disableForInvalidGrant(id: string, used: Account, f: RefreshFailure): Promise<void> {
    this.o.logger.error(
      { account_id: id, email: used.email, error: f.error, error_description: f.description },
      `Disabling account due to invalid_grant (${used.email}): refresh_token likely revoked/expired`,
    );
    await this.disable(id, used, invalidGrantReason(f)).catch(() => {}); // logged by disable(); the account stays out until a restart
  }

  /**
   * Disables the account (disabled, disabled_at, disabled_reason) for the
   * credentials of `used`: out of the live pool at once, then written through
   * the store, unless the account was re-added with new credentials meanwhile.
   * The disable of a refresh that got invalid_grant, and of Google's security
   * events (RISC). Returns the stored account, or null when nothing was written.
   */
  async disable(id: string, used: Account, reason: string): Promise<Account | null> {
    const { store, clock, logger, mirror } = this.o;
    const email = used.email;
    const e = mirror.get(id);
    // out of the live pool at once, before the write lands
    if (e && e.account.token.refresh_token === used.token.refresh_token) mirror.markDisabled(e, used.token.refresh_token);
    try {
      const written = await store.update(id, (cur) =>
        cur.token.refresh_token !== used.token.refresh_token
          ? null // re-added with new credentials meanwhile
          : { ...cur, disabled: true, disabled_at: unixNow(clock.now()), disabled_reason: reason },
      );
      const now = mirror.get(id);
      if (written && now) mirror.apply(written);
      else if (!written) mirror.remove(id);
      return written && written.disabled && written.disabled_reason === reason ? written : null;
    } catch (err) {
      logger.error(
        { account_id: id, email, error: (err as Error).message },
        `Could not write the disabled state of ${email}; it stays out of the pool until the gateway restarts`,
      );
      throw err;
    }
  }
}
