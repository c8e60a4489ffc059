// Lanes: the quota an account draws on. A lane is one consumer project on one
// service. Google meters the Gemini API per consumer project, not per user: an
// account with project_id P draws on lane `gemini_api:P` (it sends
// x-goog-user-project: P), every account without one on the project that owns
// its OAuth client (one shared lane per oauth_client_id). An account whose
// project has Vertex AI enabled (project.vertex_ai === 'enabled') also draws on
// lane `vertex:P` (Vertex AI needs the project in the URL: no project, no
// Vertex lane). Quota belongs to the lane, credentials to the account: a 429
// cools the lane for that model, quota protection counts per lane, and
// selection spreads over lanes before accounts (per service). The pool knows
// lanes only as keys; URLs and projects are decided elsewhere.
import type { Account } from '../store/account.ts';
import { NO_COOLDOWNS, type ModelCooldowns } from './cooldowns.ts';
import type { Ring } from './selection.ts';
import { clientKey } from './client-health.ts';
import type { DayUsage } from './quota.ts';

/** The upstream services an account may draw on: the Gemini API and Vertex AI. */
export type LaneService = 'gemini_api' | 'vertex';
/** What a request may use when it does not say (the Gemini API only). */
export const DEFAULT_SERVICES: readonly LaneService[] = ['gemini_api'];

/** How a person reads a service's name. */
export function serviceName(s: LaneService): string {
  return s === 'vertex' ? 'Vertex AI' : 'the Gemini API';
}

type LaneAccount = Pick<Account, 'project_id' | 'oauth_client_id'> & { project?: Account['project'] };

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

/** The Gemini API lane key of an account (pure: from its project_id and oauth_client_id). */
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

/** Whether the account can draw on Vertex AI: a project with the Vertex AI API enabled. */
export function hasVertexLane(account: LaneAccount): boolean {
  return !!account.project_id && account.project?.vertex_ai === 'enabled';
}

/** The account's Vertex AI lane (`vertex:<project>`), or null when it has none. */
export function vertexLaneInfoOf(account: LaneAccount): LaneInfo | null {
  if (!hasVertexLane(account)) return null;
  return { key: `vertex:${account.project_id}`, service: 'vertex', project_id: account.project_id, oauth_client_id: null };
}

/** Every lane of an account: its Gemini API lane, then its Vertex AI lane when it has one. */
export function laneInfosOf(account: LaneAccount): LaneInfo[] {
  const v = vertexLaneInfoOf(account);
  return v ? [laneInfoOf(account), v] : [laneInfoOf(account)];
}

/**
 * The usage store's model key for usage on a lane of this service: the model
 * for the Gemini API, `vertex:<model>` for Vertex AI (so quota protection
 * counts each service's quota on its own, and the usage rows can say which).
 */
export function usageModelKey(service: LaneService, model: string): string {
  return service === 'gemini_api' ? model : `${service}:${model}`;
}

/** The service and model of a usage model key (usageModelKey's inverse). */
export function splitUsageModel(key: string): { service: LaneService; model: string } {
  return key.startsWith('vertex:') ? { service: 'vertex', model: key.slice(7) } : { service: 'gemini_api', model: key };
}

/** The warning shown when several accounts draw on one lane, or null when it has one. */
export function sharedLaneWarning(info: LaneInfo, accounts: number): string | null {
  if (accounts < 2) return null;
  const whose = info.project_id ? `project ${info.project_id}${info.service === 'vertex' ? ' on Vertex AI' : ''}` : "the OAuth client's project";
  return `${accounts} accounts share the quota of ${whose}: give each its own project`;
}

/** The lane one account draws on, and how many accounts share it. */
export interface AccountLane extends LaneInfo {
  /** Accounts drawing on this lane (this one included). */
  accounts: number;
  /** Set when several accounts share the lane: what to do about it. */
  warning: string | null;
}

/** What one lane of an account can do now (the account's own state, disabled or taken out, is its `state`). */
export type LaneState =
  | { state: 'active' }
  | { state: 'cooling_down'; until: number; reason: string; model: string }
  | { state: 'quota_protected'; model: string; until: number }
  /** Vertex AI refused the account in its project (not yet written to the store). */
  | { state: 'off'; reason: string };

/** One of an account's lanes with its state: what `lanes` in the API shows. */
export interface AccountLaneState extends AccountLane {
  state: LaneState;
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
 * Each account's lanes and the shared lanes, worked out from a list of
 * accounts (pure: for the CLI without a gateway, and /api/status).
 * `byAccount` is the Gemini API lane, `allByAccount` every lane of the
 * account; `shared` lists Gemini API lanes only (a Vertex lane is shared
 * exactly when the Gemini API lane of the same project is); `lanes` counts
 * every lane (distinct quotas).
 */
export function describeLanes(accounts: readonly (Pick<Account, 'id' | 'project_id' | 'oauth_client_id'> & { project?: Account['project'] })[]): {
  byAccount: Map<string, AccountLane>;
  allByAccount: Map<string, AccountLane[]>;
  shared: SharedLane[];
  lanes: number;
} {
  const groups = new Map<string, { info: LaneInfo; ids: string[] }>();
  const lanesOfId = new Map<string, string[]>();
  for (const a of accounts) {
    const keys: string[] = [];
    for (const info of laneInfosOf(a)) {
      let g = groups.get(info.key);
      if (!g) groups.set(info.key, (g = { info, ids: [] }));
      g.ids.push(a.id);
      keys.push(info.key);
    }
    lanesOfId.set(a.id, keys);
  }
  const view = (key: string): AccountLane => {
    const g = groups.get(key)!;
    return { ...g.info, accounts: g.ids.length, warning: sharedLaneWarning(g.info, g.ids.length) };
  };
  const byAccount = new Map<string, AccountLane>();
  const allByAccount = new Map<string, AccountLane[]>();
  for (const [id, keys] of lanesOfId) {
    byAccount.set(id, view(keys[0]!));
    allByAccount.set(id, keys.map(view));
  }
  const shared = [...groups.values()]
    .filter((g) => g.ids.length > 1 && g.info.service === 'gemini_api')
    .map((g) => ({ ...g.info, accounts: g.ids.length, account_ids: g.ids, warning: sharedLaneWarning(g.info, g.ids.length)! }))
    .sort(byCrowding);
  return { byAccount, allByAccount, shared, lanes: groups.size };
}

/**
 * One lane in use. It is also its accounts' ring in the selector of its
 * service (selection.ts): a lane is of one service, so in one selector.
 */
export class Lane<M extends { readonly id: string } = { readonly id: string }> implements Ring<M> {
  readonly key: string;
  readonly info: LaneInfo;
  /** Every account drawing on this lane (in rotation or not). */
  readonly members = new Set<M>();
  /** Per model, after an upstream 429: the whole lane waits (set with cool()). */
  cooldowns: ModelCooldowns = NO_COOLDOWNS;
  /** The members in rotation, the selector's cursor among them and the lane's place in the selector's ring of lanes (Ring). */
  items: M[] = [];
  cursor = 0;
  at = -1;
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

/** A lane holder: its Gemini API lane (always) and its Vertex AI lane (when its project has Vertex AI). */
export interface LaneMember<M> {
  readonly id: string;
  lane: Lane<M & LaneMember<M>>;
  vertexLane: Lane<M & LaneMember<M>> | null;
}

/** A member's lane of one service (null: it has none). */
export function laneOfService<M extends LaneMember<M>>(member: M, service: LaneService): Lane<M> | null {
  return (service === 'gemini_api' ? member.lane : member.vertexLane) as Lane<M> | null;
}

/** The lanes in use, by key. A lane lives while an account draws on it. */
export class Lanes<M extends LaneMember<M>> {
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

  /**
   * Puts the member on the lanes of this account (moving it when its project
   * changed, taking it off Vertex AI when its project no longer has it).
   * Returns true when it moved.
   */
  place(member: M, account: LaneAccount): boolean {
    const g = this.put(member, 'lane', laneInfoOf(account));
    const v = this.put(member, 'vertexLane', vertexLaneInfoOf(account));
    return g || v;
  }

  /** Whether place() would move the member to another lane (or on or off Vertex AI). */
  moves(member: M, account: LaneAccount): boolean {
    return !this.stays(member, 'lane', laneInfoOf(account)) || !this.stays(member, 'vertexLane', vertexLaneInfoOf(account));
  }

  private stays(member: M, slot: 'lane' | 'vertexLane', info: LaneInfo | null): boolean {
    const cur = member[slot] as Lane<M> | null;
    return info === null ? cur === null : cur?.key === info.key && cur.members.has(member);
  }

  private put(member: M, slot: 'lane' | 'vertexLane', info: LaneInfo | null): boolean {
    if (this.stays(member, slot, info)) return false;
    const cur = member[slot] as Lane<M> | null;
    this.leaveLane(member, cur);
    if (info === null) {
      member.vertexLane = null;
      return true;
    }
    let lane = this.byKey.get(info.key);
    if (!lane) {
      lane = new Lane<M>(info);
      this.byKey.set(info.key, lane);
    }
    lane.members.add(member);
    lane.invalidate();
    (member as LaneMember<M>)[slot] = lane as never;
    return true;
  }

  /** Takes the member off its lanes. It keeps a reference to them (detached), so a stale holder still reads a lane. */
  leave(member: M): void {
    this.leaveLane(member, member.lane as Lane<M> | null);
    this.leaveLane(member, member.vertexLane as Lane<M> | null);
  }

  private leaveLane(member: M, lane: Lane<M> | null): void {
    if (!lane || !lane.members.delete(member)) return;
    lane.invalidate();
    if (lane.members.size === 0 && this.byKey.get(lane.key) === lane) this.byKey.delete(lane.key);
  }

  /** Gemini API lanes with more than one account, the most crowded first (the Vertex lane of a project is shared exactly when its Gemini API lane is). */
  shared(): Lane<M>[] {
    return [...this.byKey.values()]
      .filter((l) => l.members.size > 1 && l.info.service === 'gemini_api')
      .sort((a, b) => byCrowding({ key: a.key, accounts: a.members.size }, { key: b.key, accounts: b.members.size }));
  }
}
