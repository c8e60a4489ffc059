// One account in the pool: the store's account and what the hot path needs
// precomputed, its lanes and its place in the selectors, and the marks that
// live in memory only. Kept small (a pool of 100,000 accounts is usual): what
// most accounts never have (cooldowns, a refresh backoff, a rejected token,
// the pending flags) lives in one Marks object that an entry gets at its
// first mark; until then it shares the empty one. Reading a mark is a plain
// property read through a getter (one shape for every entry).
import type { Account } from '../store/account.ts';
import { NO_COOLDOWNS, type ModelCooldowns, type RefreshBackoff } from './cooldowns.ts';
import { clientKey } from './client-health.ts';
import type { Lane } from './lanes.ts';

class Marks {
  cooldowns: ModelCooldowns = NO_COOLDOWNS;
  vertexCooldowns: ModelCooldowns = NO_COOLDOWNS;
  vertexOff: string | null = null;
  backoff: RefreshBackoff | null = null;
  rejectedToken: string | null = null;
  pendingDisable: string | null = null;
  pendingProxyDisable: string | null = null;
}

/** The marks of every entry that has none (read-only: setting one gives the entry its own). */
const NO_MARKS: Marks = Object.freeze(new Marks());

const NO_SCOPES: ReadonlySet<string> = new Set();

/** An entry's Vertex AI lane and its index in the lane's items. */
interface VertexSeat {
  lane: Lane<Entry>;
  at: number;
}

export class Entry {
  account: Account;
  /** Granted scopes (shared by every account with the same scope string: read-only). */
  scopes: ReadonlySet<string> = NO_SCOPES;
  /** The Gemini API quota this account draws on (lanes.ts); follows its project_id live. */
  lane: Lane<Entry>;
  /**
   * How long the current access token lived when this pool obtained it (ms),
   * or null when unknown (a token from the file). Short-lived tokens get
   * margins in proportion (eligibility.ts: marginFor).
   */
  tokenLifetimeMs: number | null = null;
  /** The last last_used written or seen in the store (unix s: a small integer, kept in the entry itself). */
  lastUsedWritten = 0;
  /** Its index in its Gemini API lane's items (-1: not on it; lanes.ts: Seated; in the selector when below the lane's size). */
  ringAt = -1;
  private marks: Marks = NO_MARKS;
  /** Its Vertex AI lane and its index there, or null for the many accounts without one. */
  private vertex: VertexSeat | null = null;

  constructor(account: Account, lane: Lane<Entry>) {
    this.account = account;
    this.lane = lane;
  }

  /** Its Vertex AI lane (`vertex:<project>`) when its project has Vertex AI enabled, else null. */
  get vertexLane(): Lane<Entry> | null {
    return this.vertex === null ? null : this.vertex.lane;
  }
  set vertexLane(lane: Lane<Entry> | null) {
    if (lane === null) this.vertex = null;
    else if (this.vertex === null) this.vertex = { lane, at: -1 };
    else this.vertex.lane = lane;
  }

  /** Its index in its Vertex AI lane's items (-1: not on it). */
  get vertexRingAt(): number {
    return this.vertex === null ? -1 : this.vertex.at;
  }
  set vertexRingAt(at: number) {
    if (this.vertex !== null) this.vertex.at = at;
    else if (at >= 0) throw new Error(`entry ${this.id} seated on a Vertex AI lane it does not have`);
  }

  get id(): string {
    return this.account.id;
  }

  /** The OAuth client it is refreshed with (client-health.ts). */
  get clientKey(): string {
    return clientKey(this.account.oauth_client_id);
  }

  /** Epoch ms when the access token expires. */
  get expiresAtMs(): number {
    return this.account.token.expiry_timestamp * 1000;
  }

  private own(): Marks {
    return this.marks === NO_MARKS ? (this.marks = new Marks()) : this.marks;
  }

  /** Per model, after an upstream 5xx on the Gemini API (a 429 cools the whole lane instead); set with cool(). */
  get cooldowns(): ModelCooldowns {
    return this.marks.cooldowns;
  }
  set cooldowns(c: ModelCooldowns) {
    if (c !== this.marks.cooldowns) this.own().cooldowns = c;
  }

  /** The same on Vertex AI. */
  get vertexCooldowns(): ModelCooldowns {
    return this.marks.vertexCooldowns;
  }
  set vertexCooldowns(c: ModelCooldowns) {
    if (c !== this.marks.vertexCooldowns) this.own().vertexCooldowns = c;
  }

  /** Vertex AI refused this account in its project (a 403), until the store shows the project changed: its Vertex lane is not used. */
  get vertexOff(): string | null {
    return this.marks.vertexOff;
  }
  set vertexOff(v: string | null) {
    if (v !== this.marks.vertexOff) this.own().vertexOff = v;
  }

  get backoff(): RefreshBackoff | null {
    return this.marks.backoff;
  }
  set backoff(v: RefreshBackoff | null) {
    if (v !== this.marks.backoff) this.own().backoff = v;
  }

  /** An access token an upstream answered 401 to: not handed out again. */
  get rejectedToken(): string | null {
    return this.marks.rejectedToken;
  }
  set rejectedToken(v: string | null) {
    if (v !== this.marks.rejectedToken) this.own().rejectedToken = v;
  }

  /** Refresh token that got invalid_grant, until the store shows the account disabled. */
  get pendingDisable(): string | null {
    return this.marks.pendingDisable;
  }
  set pendingDisable(v: string | null) {
    if (v !== this.marks.pendingDisable) this.own().pendingDisable = v;
  }

  /** proxy_disabled reason decided here, until the store shows it. */
  get pendingProxyDisable(): string | null {
    return this.marks.pendingProxyDisable;
  }
  set pendingProxyDisable(v: string | null) {
    if (v !== this.marks.pendingProxyDisable) this.own().pendingProxyDisable = v;
  }
}
