// How an upstream attempt ended, taken in: usage counts and the last_used
// write for a success, cooldowns for 429 and 5xx, the rejected token for 401,
// and taking the account out of the proxy for 403.
import { unixNow } from '../store/account.ts';
import type { AccountStore } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../log/logger.ts';
import { boundedReason } from './error-policy.ts';
import type { Mirror } from './mirror.ts';
import { cool } from './cooldowns.ts';
import { laneOfService, serviceName } from './lanes.ts';
import type { QuotaGuard } from './quota-guard.ts';
import type { RefreshScheduler } from './scheduler.ts';
import type { LaneCooldown, Lease, UpstreamOutcome } from './types.ts';
import type { Entry } from './mirror.ts';

export interface FeedbackOptions {
  store: AccountStore;
  clock: Clock;
  logger: Logger;
  mirror: Mirror;
  quota: QuotaGuard;
  scheduler: RefreshScheduler;
  serverErrorCooldownMs: number;
  /** last_used is written at most this often per account. */
  lastUsedPersistMs: number;
  /** Two last_used writes (of any accounts) start at least this far apart. */
  lastUsedWriteGapMs: number;
  changed: (id: string) => void;
  /** Told of every lane cooldown this gateway learns from an upstream 429. */
  laneCooled: (c: LaneCooldown) => void;
}

export class Feedback {
  private readonly o: FeedbackOptions;
  /** A last_used write is in flight, and when the next may start (see ok()). */
  private lastUsedWriting = false;
  private lastUsedNextAt = 0;

  constructor(opts: FeedbackOptions) {
    this.o = opts;
  }

  /** A lane cooldown another gateway learned: applied here too (a longer one already known is kept). */
  coolLane(c: LaneCooldown): void {
    const lane = this.o.mirror.lanes.get(c.lane);
    if (!lane || c.untilMs <= this.o.clock.now()) return;
    lane.cooldowns = cool(lane.cooldowns, c.model, c.untilMs, c.reason);
    for (const m of lane.items) this.o.changed(m.id);
  }

  report(lease: Lease, model: string, outcome: UpstreamOutcome): void {
    const { mirror, clock, logger, changed } = this.o;
    const e = mirror.get(lease.accountId);
    if (!e) return;
    const now = clock.now();
    const service = lease.service ?? 'gemini_api';
    switch (outcome.kind) {
      case 'ok': {
        this.o.quota.add(e, service, model, now, {
          requests: outcome.counts === false ? 0 : 1,
          tokens_in: outcome.tokensIn ?? 0,
          tokens_out: outcome.tokensOut ?? 0,
        });
        this.touch(e.id, now, e);
        return;
      }
      case 'unauthorized':
        if (e.account.token.access_token === lease.accessToken) e.rejectedToken = lease.accessToken;
        return;
      case 'rate_limited': {
        // quota belongs to the lane: every account drawing on it waits
        const reason = boundedReason(outcome.reason || 'rate limited (429)', e.account);
        // the lane the lease drew on (the account's current lane of that service, when it moved meanwhile)
        const lane = laneOfService(e, service) ?? mirror.lanes.get(lease.lane);
        if (!lane) return;
        lane.cooldowns = cool(lane.cooldowns, model, outcome.untilMs, reason);
        for (const m of lane.items) changed(m.id);
        if (!lane.has(e)) changed(e.id);
        this.o.laneCooled({ lane: lane.key, model, untilMs: outcome.untilMs, reason });
        const others = lane.memberCount - 1;
        logger.info(
          { account_id: e.id, email: e.account.email, lane: lane.key, lane_accounts: lane.memberCount, model, until: new Date(outcome.untilMs).toISOString(), reason },
          `Account ${e.account.email} cooling down for ${model || 'the Google API'}${service === 'gemini_api' ? '' : ` on ${serviceName(service)}`} until ${new Date(outcome.untilMs).toISOString()}: ${reason}` +
            (others > 0 ? ` (and the ${others} other account(s) on lane ${lane.key}, which share its quota)` : ''),
        );
        return;
      }
      case 'server_error': {
        const until = now + this.o.serverErrorCooldownMs;
        const reason = boundedReason(`upstream error: ${outcome.reason}`, e.account);
        if (service === 'gemini_api') e.cooldowns = cool(e.cooldowns, model, until, reason);
        else e.vertexCooldowns = cool(e.vertexCooldowns, model, until, reason);
        changed(e.id);
        return;
      }
      case 'forbidden':
        if (service === 'vertex') {
          void this.vertexOff(e, lease, outcome.reason || 'Vertex AI answered 403 PERMISSION_DENIED', outcome.vertexState ?? 'denied');
          return;
        }
        void this.o.scheduler.disableForProxy(e, outcome.reason || 'upstream answered 403 PERMISSION_DENIED');
        return;
      case 'client_error':
        return;
    }
  }

  /**
   * Vertex AI refused the account in its project: its Vertex lane is taken
   * away (at once here, and in the store: `project.vertex_ai` becomes
   * `state`, with the reason), its Gemini API lane keeps serving. Checking or
   * enabling the project again (`grantpool accounts project`) brings it back.
   */
  private async vertexOff(e: Entry, lease: Lease, reason: string, state: 'disabled' | 'denied'): Promise<void> {
    const { store, logger, mirror } = this.o;
    const bounded = boundedReason(reason, e.account);
    mirror.markVertexOff(e, bounded);
    logger.warn(
      { account_id: e.id, email: e.account.email, lane: lease.lane, project_id: lease.projectId, vertex_ai: state, reason: bounded },
      `Not using Vertex AI for ${e.account.email} in project ${lease.projectId}: ${bounded}`,
    );
    try {
      const written = await store.update(e.id, (cur) =>
        cur.project_id === lease.projectId && cur.project && cur.project.vertex_ai === 'enabled'
          ? { ...cur, project: { ...cur.project, vertex_ai: state, vertex_ai_reason: bounded } }
          : null,
      );
      if (written && mirror.get(e.id)) mirror.apply(written);
    } catch (err) {
      logger.error({ account_id: e.id, email: e.account.email, error: (err as Error).message }, `Could not record that Vertex AI refused ${e.account.email}`);
    }
  }

  /**
   * Writes last_used when it is due. The writes are rate-bounded for the whole
   * pool: one in flight, and at most one per lastUsedWriteGapMs. A file write
   * costs several ms of CPU (lock, fsync, the watcher reading it back); with
   * thousands of accounts in rotation, one write per account per minute would
   * take a large share of a core. An account skipped here stays due and is
   * written at a later use.
   */
  private touch(id: string, now: number, e: { lastUsedWritten: number }): void {
    if (now - e.lastUsedWritten * 1000 < this.o.lastUsedPersistMs || this.lastUsedWriting || now < this.lastUsedNextAt) return;
    const at = unixNow(now);
    e.lastUsedWritten = at;
    this.lastUsedWriting = true;
    this.lastUsedNextAt = now + this.o.lastUsedWriteGapMs;
    this.o.store
      .update(id, (cur) => (cur.last_used !== null && cur.last_used >= at ? null : { ...cur, last_used: at }))
      .catch((err) => this.o.logger.warn({ account_id: id, error: (err as Error).message }, 'Could not write last_used'))
      .finally(() => {
        this.lastUsedWriting = false;
      });
  }
}
