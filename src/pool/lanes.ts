// Lanes: the quota an account draws on. Google meters the Gemini API per
// consumer project, not per user: an account with project_id P draws on lane
// `gemini_api:P` (it sends x-goog-user-project: P), every account without one
// on the project that owns its OAuth client (one shared lane per
// oauth_client_id). Quota belongs to the lane, credentials to the account: a
// 429 cools the lane for that model, quota protection counts per lane, and
// selection spreads over lanes before accounts. The pool knows lanes only as
// keys; which project an account uses is decided elsewhere.
import type { Account } from '../store/account.ts';
import { ModelCooldowns } from './cooldowns.ts';
import { clientKey } from './client-health.ts';
import type { DayUsage } from './quota.ts';

export type LaneService = 'gemini_api';

/** What a lane is, as the API shows it. */
export interface LaneInfo {
  /** `gemini_api:<project>`, or `gemini_api:client:<oauth client id>` for the OAuth client's project. */
  key: string;
  service: LaneService;
  /** The consumer project; null: the project that owns the OAuth client. */
  project_id: string | null;
  /** Set for the OAuth client's lane. */
  oauth_client_id: string | null;
}

/** The lane key of an account (pure: from its project_id and oauth_client_id). */
export function laneKeyOf(account: Pick<Account, 'project_id' | 'oauth_client_id'>): string {
  return account.project_id ? `gemini_api:${account.project_id}` : `gemini_api:client:${clientKey(account.oauth_client_id)}`;
}

export function laneInfoOf(account: Pick<Account, 'project_id' | 'oauth_client_id'>): LaneInfo {
  return {
    key: laneKeyOf(account),
    service: 'gemini_api',
    project_id: account.project_id || null,
    oauth_client_id: account.project_id ? null : clientKey(account.oauth_client_id),
  };
}

/** The warning shown when several accounts draw on one lane, or null when it has one. */
export function sharedLaneWarning(info: LaneInfo, accounts: number): string | null {
  if (accounts < 2) return null;
  const whose = info.project_id ? `project ${info.project_id}` : "the OAuth client's project";
  return `${accounts} accounts share the quota of ${whose}: give each its own project`;
}

/** The lane one account draws on, and how many accounts share it. */
export interface AccountLane extends LaneInfo {
  /** Accounts drawing on this lane (this one included). */
  accounts: number;
  /** Set when several accounts share the lane: what to do about it. */
  warning: string | null;
}

/** A lane that several accounts share. */
export interface SharedLane extends LaneInfo {
  accounts: number;
  account_ids: string[];
  warning: string;
}

/** Lanes with more than one account, the most crowded first (then by key). */
export function byCrowding<T extends { key: string; accounts: number }>(a: T, b: T): number {
  return b.accounts - a.accounts || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/**
 * Each account's lane and the shared lanes, worked out from a list of
 * accounts (pure: for the CLI without a gateway, and /api/status).
 */
export function describeLanes(accounts: readonly Pick<Account, 'id' | 'project_id' | 'oauth_client_id'>[]): {
  byAccount: Map<string, AccountLane>;
  shared: SharedLane[];
  lanes: number;
} {
  const groups = new Map<string, { info: LaneInfo; ids: string[] }>();
  const laneOfId = new Map<string, string>();
  for (const a of accounts) {
    const info = laneInfoOf(a);
    let g = groups.get(info.key);
    if (!g) groups.set(info.key, (g = { info, ids: [] }));
    g.ids.push(a.id);
    laneOfId.set(a.id, info.key);
  }
  const byAccount = new Map<string, AccountLane>();
  for (const [id, key] of laneOfId) {
    const g = groups.get(key)!;
    byAccount.set(id, { ...g.info, accounts: g.ids.length, warning: sharedLaneWarning(g.info, g.ids.length) });
  }
  const shared = [...groups.values()]
    .filter((g) => g.ids.length > 1)
    .map((g) => ({ ...g.info, accounts: g.ids.length, account_ids: g.ids, warning: sharedLaneWarning(g.info, g.ids.length)! }))
    .sort(byCrowding);
  return { byAccount, shared, lanes: groups.size };
}

export class Lane<M extends { readonly id: string } = { readonly id: string }> {
  readonly key: string;
  readonly info: LaneInfo;
  /** Every account drawing on this lane (in rotation or not). */
  readonly members = new Set<M>();
  /** Per model, after an upstream 429: the whole lane waits. */
  readonly cooldowns = new ModelCooldowns();
  /** Today's usage summed over the members, per model (built on demand; dropped when members change). */
  usageDay = '';
  usage: Map<string, DayUsage> | null = null;
  /** The usage store's revision the sums were built at (counts from other gateways make them stale). */
  usageRevision = 0;

  constructor(info: LaneInfo) {
    this.key = info.key;
    this.info = info;
  }

  /** The members changed: sums over them are stale. */
  invalidate(): void {
    this.usage = null;
  }
}

/** The lanes in use, by key. A lane lives while an account draws on it. */
export class Lanes<M extends { readonly id: string; lane: Lane<M> }> {
  private readonly byKey = new Map<string, Lane<M>>();

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): Lane<M> | undefined {
    return this.byKey.get(key);
  }

  values(): IterableIterator<Lane<M>> {
    return this.byKey.values();
  }

  /** Puts the member on the lane of this account (moving it when its lane changed). Returns true when it moved. */
  place(member: M, account: Pick<Account, 'project_id' | 'oauth_client_id'>): boolean {
    const key = laneKeyOf(account);
    if ((member.lane as Lane<M> | null)?.key === key && member.lane.members.has(member)) return false;
    this.leave(member);
    let lane = this.byKey.get(key);
    if (!lane) {
      lane = new Lane<M>(laneInfoOf(account));
      this.byKey.set(key, lane);
    }
    lane.members.add(member);
    lane.invalidate();
    member.lane = lane;
    return true;
  }

  /** Takes the member off its lane. It keeps a reference to it (detached), so a stale holder still reads a lane. */
  leave(member: M): void {
    const lane = member.lane as Lane<M> | null;
    if (!lane || !lane.members.delete(member)) return;
    lane.invalidate();
    if (lane.members.size === 0 && this.byKey.get(lane.key) === lane) this.byKey.delete(lane.key);
  }

  /** Lanes with more than one account, the most crowded first. */
  shared(): Lane<M>[] {
    return [...this.byKey.values()]
      .filter((l) => l.members.size > 1)
      .sort((a, b) => byCrowding({ key: a.key, accounts: a.members.size }, { key: b.key, accounts: b.members.size }));
  }
}
