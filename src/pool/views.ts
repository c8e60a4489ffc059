// The pool as the management API, CLI and dashboard see it: each account's
// live state, the summary for /api/status, and usage rows for the charts.
// Read-only projections of the mirror and the eligibility rules.
import type { Account } from '../store/account.ts';
import type { Clock } from '../util/clock.ts';
import { tokenUnusable, type Eligibility } from './eligibility.ts';
import { describeBlock } from './explain.ts';
import type { Entry, Mirror } from './mirror.ts';
import { laneInfoOf, laneInfosOf, laneOfService, sharedLaneWarning, splitUsageModel, type AccountLane, type AccountLaneState, type Lane, type LaneService, type LaneState, type SharedLane } from './lanes.ts';
import { ownCooldowns } from './eligibility.ts';

export type { AccountLane, AccountLaneState, LaneState, SharedLane } from './lanes.ts';
import { quotaDayKeyBefore } from './quota.ts';
import type { UsageStore } from './usage.ts';
import type { AccountState } from './types.ts';

export interface PoolSummary {
  total: number;
  by_state: Record<AccountState['state'], number>;
  refreshing: number;
  /** Lanes (distinct quotas) the accounts draw on. */
  lanes: number;
  /** Lanes with more than one account, the most crowded first. */
  shared_lanes: SharedLane[];
  failing_clients: { client_id: string; error: string; description: string; fix: string; since: number; next_retry_at: number }[];
}

export interface UsageRow {
  date: string;
  account_id: string;
  email: string;
  model: string;
  /** Set for usage on Vertex AI (absent: the Gemini API). */
  service?: LaneService;
  requests: number;
  tokens_in: number;
  tokens_out: number;
}

/** One account's state, in the documented order: disabled, quota protection, proxy_disabled, refreshing, cooling down. */
export function stateOfEntry(e: Entry, now: number, el: Eligibility, refreshing: boolean): AccountState {
  const a = e.account;
  if (a.disabled || e.pendingDisable !== null) return { state: 'disabled', reason: describeBlock(e, 'disabled', '', now, el) };
  const q = el.quota.protectedModel(e, now, 'gemini_api');
  if (q) return { state: 'quota_protected', model: q.model, until: q.until };
  if (a.proxy_disabled || e.pendingProxyDisable !== null) return { state: 'proxy_disabled', reason: describeBlock(e, 'proxy_disabled', '', now, el) };
  if (refreshing) return { state: 'refreshing' };
  if (tokenUnusable(e, now, el.marginMs)) {
    if (e.backoff && now < e.backoff.until) {
      return { state: 'cooling_down', until: Math.ceil(e.backoff.until / 1000), reason: e.backoff.reason };
    }
    const f = el.clients.blocked(e.clientKey, now) ? el.clients.failure(e.clientKey) : null;
    if (f) {
      return { state: 'cooling_down', until: Math.ceil(f.nextRetryAt / 1000), reason: `OAuth client ${f.client_id} is misconfigured (${f.error}): ${f.fix}` };
    }
  }
  const own = e.cooldowns.longest(now);
  const lane = e.lane.cooldowns.longest(now);
  const c = own && lane ? (lane.until > own.until ? lane : own) : (own ?? lane);
  if (c) return { state: 'cooling_down', until: Math.ceil(c.until / 1000), reason: c.reason, model: c.model };
  return { state: 'active' };
}

export interface ViewsOptions {
  mirror: Mirror;
  el: Eligibility;
  usage: UsageStore;
  clock: Clock;
  /** A refresh is in flight for this account. */
  refreshing: (id: string) => boolean;
  /** Refreshes in flight. */
  refreshCount: () => number;
}

export class Views {
  private readonly o: ViewsOptions;

  constructor(opts: ViewsOptions) {
    this.o = opts;
  }

  private of(e: Entry, now: number): AccountState {
    return stateOfEntry(e, now, this.o.el, this.o.refreshing(e.id));
  }

  stateOf(id: string): AccountState | null {
    const e = this.o.mirror.get(id);
    return e ? this.of(e, this.o.clock.now()) : null;
  }

  /** The live state of an account from the store (its file flags when the pool has not seen it yet). */
  accountState(account: Account): AccountState {
    const e = this.o.mirror.get(account.id);
    if (e) return this.of(e, this.o.clock.now());
    if (account.disabled) return { state: 'disabled', reason: account.disabled_reason ?? 'disabled' };
    if (account.proxy_disabled) return { state: 'proxy_disabled', reason: account.proxy_disabled_reason ?? 'taken out of the proxy' };
    return { state: 'active' };
  }

  /** The lane of an account (from its file when the pool has not seen it yet). */
  accountLane(account: Account): AccountLane {
    const e = this.o.mirror.get(account.id);
    if (e && e.lane.has(e)) return laneView(e.lane);
    const info = laneInfoOf(account);
    const lane = this.o.mirror.lanes.get(info.key);
    const accounts = (lane?.memberCount ?? 0) + 1;
    return { ...info, accounts, warning: sharedLaneWarning(info, accounts) };
  }

  /** Every lane of an account (Gemini API, then Vertex AI) with its state now; from its file when the pool has not seen it yet. */
  accountLanes(account: Account): AccountLaneState[] {
    const e = this.o.mirror.get(account.id);
    const now = this.o.clock.now();
    if (!e || !e.lane.has(e)) {
      return laneInfosOf(account).map((info) => {
        const lane = this.o.mirror.lanes.get(info.key);
        const accounts = (lane?.memberCount ?? 0) + 1;
        return { ...info, accounts, warning: sharedLaneWarning(info, accounts), state: { state: 'active' } };
      });
    }
    const out: AccountLaneState[] = [{ ...laneView(e.lane), state: this.laneState(e, 'gemini_api', now) }];
    if (e.vertexLane) out.push({ ...laneView(e.vertexLane), state: this.laneState(e, 'vertex', now) });
    return out;
  }

  private laneState(e: Entry, service: LaneService, now: number): LaneState {
    if (service === 'vertex' && e.vertexOff !== null) return { state: 'off', reason: e.vertexOff };
    const q = this.o.el.quota.protectedModel(e, now, service);
    if (q) return { state: 'quota_protected', model: q.model, until: q.until };
    const own = ownCooldowns(e, service).longest(now);
    const lane = laneOfService(e, service)?.cooldowns.longest(now) ?? null;
    const c = own && lane ? (lane.until > own.until ? lane : own) : (own ?? lane);
    if (c) return { state: 'cooling_down', until: Math.ceil(c.until / 1000), reason: c.reason, model: c.model };
    return { state: 'active' };
  }

  sharedLanes(): SharedLane[] {
    return this.o.mirror.lanes.shared().map((l) => {
      const info = l.info;
      // by id: the members' order in the lane changes as they go in and out of rotation
      return { ...info, accounts: l.memberCount, account_ids: l.items.map((m) => m.id).sort(), warning: sharedLaneWarning(info, l.memberCount)! };
    });
  }

  states(): { id: string; email: string; state: AccountState }[] {
    const now = this.o.clock.now();
    return [...this.o.mirror.values()].map((e) => ({ id: e.id, email: e.account.email, state: this.of(e, now) }));
  }

  /** How many accounts are in each state now (one pass, nothing else: /healthz). */
  countByState(): PoolSummary['by_state'] {
    const now = this.o.clock.now();
    const by_state: PoolSummary['by_state'] = {
      active: 0, refreshing: 0, cooling_down: 0, quota_protected: 0, proxy_disabled: 0, disabled: 0,
    };
    for (const e of this.o.mirror.values()) by_state[this.of(e, now).state]++;
    return by_state;
  }

  summary(): PoolSummary {
    return {
      total: this.o.mirror.size,
      by_state: this.countByState(),
      refreshing: this.o.refreshCount(),
      lanes: this.o.mirror.lanes.size,
      shared_lanes: this.sharedLanes(),
      failing_clients: this.o.el.clients.list().map((f) => ({
        client_id: f.client_id,
        error: f.error,
        description: f.description,
        fix: f.fix,
        since: Math.floor(f.since / 1000),
        next_retry_at: Math.ceil(f.nextRetryAt / 1000),
      })),
    };
  }

  /** Usage rows of the last `days` quota days (today included), optionally for one account; retired days are read from storage. */
  async usage(o: { days?: number; accountId?: string } = {}): Promise<UsageRow[]> {
    const now = this.o.clock.now();
    const days = Math.max(1, Math.floor(o.days ?? 30));
    const from = quotaDayKeyBefore(now, days - 1);
    return (await this.o.usage.history(from, o.accountId)).map((r) => {
      const { service, model } = splitUsageModel(r.model);
      const row: UsageRow = {
        date: r.date,
        account_id: r.account_id,
        email: this.o.mirror.get(r.account_id)?.account.email ?? '',
        model,
        requests: r.requests,
        tokens_in: r.tokens_in,
        tokens_out: r.tokens_out,
      };
      if (service !== 'gemini_api') row.service = service;
      return row;
    });
  }

  /** Today's usage of one account, summed over models. */
  usageToday(accountId: string): { requests: number; tokens: number } {
    const key = this.o.el.quota.day(this.o.clock.now()).key;
    let requests = 0;
    let tokens = 0;
    for (const r of this.o.usage.records(key, accountId)) {
      if (r.date !== key) continue;
      requests += r.requests;
      tokens += r.tokens_in + r.tokens_out;
    }
    return { requests, tokens };
  }
}

function laneView(lane: Lane<Entry>): AccountLane {
  const n = lane.memberCount;
  const info = lane.info;
  return { ...info, accounts: n, warning: sharedLaneWarning(info, n) };
}
