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
import { joinRing, leaveRing, type Ring, type Seating } from './selection.ts';
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

/** A lane member's seats: its index in its Gemini API lane's items and in its Vertex AI lane's (-1: not a member). */
export interface Seated {
  readonly id: string;
  ringAt: number;
  vertexRingAt: number;
}

/**
 * One lane in use. It is also its accounts' ring in the selector of its
 * service (selection.ts): a lane is of one service, so in one selector. Its
 * members are the ring's items (those in rotation first): one array, no set.
 * Kept small (20,000 lanes are usual): what it is (LaneInfo) is worked out
 * from its key and project when asked.
 */
export class Lane<M extends Seated = Seated> implements Ring<M> {
  readonly key: string;
  /** The consumer project; null: the project that owns the OAuth client (whose id ends the key). */
  readonly project_id: string | null;
  /** Per model, after an upstream 429: the whole lane waits (set with cool()). */
  cooldowns: ModelCooldowns = NO_COOLDOWNS;
  /** Every account drawing on this lane, those in rotation first (Ring), the selector's cursor among them and the lane's place in the selector's ring of lanes. */
  items: M[] = [];
  size = 0;
  cursor = 0;
  at = -1;
  /** Today's usage summed over the members, per model (built on demand when several share the lane; dropped when members change). */
  sums: LaneSums | null = null;

  constructor(info: LaneInfo) {
    this.key = info.key;
    this.project_id = info.project_id;
  }

  get service(): LaneService {
    return this.key.startsWith('vertex:') ? 'vertex' : 'gemini_api';
  }

  /** What the lane is, as the API shows it (a new object each time). */
  get info(): LaneInfo {
    const project_id = this.project_id;
    return { key: this.key, service: this.service, project_id, oauth_client_id: project_id === null ? this.key.slice(CLIENT_LANE.length) : null };
  }

  /** Accounts drawing on this lane (in rotation or not). */
  get memberCount(): number {
    return this.items.length;
  }

  /** Whether the account draws on this lane (it sits at one of its seats). */
  has(m: M): boolean {
    const items = this.items;
    return items[m.ringAt] === m || items[m.vertexRingAt] === m;
  }

  /** The members changed: sums over them are stale. */
  invalidate(): void {
    this.sums = null;
  }
}

/** How the key of an OAuth client's lane starts (the client id follows). */
const CLIENT_LANE = 'gemini_api:client:';

/** A lane's usage sums for one day, at one revision of the usage store (counts from other gateways make them stale). */
export interface LaneSums {
  day: string;
  revision: number;
  byModel: Map<string, DayUsage>;
}

/** A lane holder: its Gemini API lane (always) and its Vertex AI lane (when its project has Vertex AI). */
export interface LaneMember<M extends Seated> extends Seated {
  lane: Lane<M>;
  vertexLane: Lane<M> | null;
}

/**
 * Where the selectors keep a member's place (selection.ts), per service: in
 * its lane of that service, at its ringAt / vertexRingAt.
 */
export function laneSeating<M extends LaneMember<M>>(service: LaneService): Seating<M> {
  return (service === 'gemini_api' ? GEMINI_SEATING : VERTEX_SEATING) as unknown as Seating<M>;
}

type AnyMember = LaneMember<Seated> & Seated;

const GEMINI_SEATING: Seating<AnyMember> = {
  ringOf: (e) => e.lane as unknown as Ring<AnyMember>,
  atOf: (e) => e.ringAt,
  setAt: (e, at) => {
    e.ringAt = at;
  },
};

const VERTEX_SEATING: Seating<AnyMember> = {
  ringOf: (e) => e.vertexLane! as unknown as Ring<AnyMember>,
  atOf: (e) => e.vertexRingAt,
  setAt: (e, at) => {
    e.vertexRingAt = at;
  },
};

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
    return info === null ? cur === null : cur?.key === info.key && cur.has(member);
  }

  private put(member: M, slot: 'lane' | 'vertexLane', info: LaneInfo | null): boolean {
    if (this.stays(member, slot, info)) return false;
    const cur = member[slot] as Lane<M> | null;
    this.leaveLane(member, slot, cur);
    if (info === null) {
      member.vertexLane = null;
      return true;
    }
    let lane = this.byKey.get(info.key);
    if (!lane) {
      lane = new Lane<M>(info);
      this.byKey.set(info.key, lane);
    }
    (member as LaneMember<M>)[slot] = lane;
    joinRing(member, laneSeating<M>(lane.service));
    lane.invalidate();
    return true;
  }

  /**
   * Takes the member off its lanes (it must be out of the selectors first). It
   * keeps a reference to them (detached), so a stale holder still reads a lane.
   */
  leave(member: M): void {
    this.leaveLane(member, 'lane', member.lane);
    this.leaveLane(member, 'vertexLane', member.vertexLane);
  }

  private leaveLane(member: M, slot: 'lane' | 'vertexLane', lane: Lane<M> | null): void {
    if (!lane || !lane.has(member)) return;
    leaveRing(member, laneSeating<M>(slot === 'lane' ? 'gemini_api' : 'vertex'));
    lane.invalidate();
    if (lane.items.length === 0 && this.byKey.get(lane.key) === lane) this.byKey.delete(lane.key);
  }

  /** Gemini API lanes with more than one account, the most crowded first (the Vertex lane of a project is shared exactly when its Gemini API lane is). */
  shared(): Lane<M>[] {
    return [...this.byKey.values()]
      .filter((l) => l.items.length > 1 && l.service === 'gemini_api')
      .sort((a, b) => byCrowding({ key: a.key, accounts: a.items.length }, { key: b.key, accounts: b.items.length }));
  }
}
