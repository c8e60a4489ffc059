// Which account serves next. The accounts that may serve at all (not
// disabled, not proxy_disabled) sit in rings, one per lane (the quota they
// draw on), and the lanes sit in a ring of their own: round robin takes the
// next lane, then the next account of that lane, so requests spread over
// quotas before they spread over accounts. Per-request conditions (cooldowns,
// quota, scopes, already tried) are checked lazily by the caller's predicate
// while walking from the cursors, so a pick is O(1) while accounts are
// healthy, and a lane the caller rules out is skipped whole. Without a lane
// function every item is on one lane. Session affinity sits on top of either
// strategy.

export type Strategy = 'round_robin' | 'fill_first';

export interface SelectorOptions<T> {
  strategy: Strategy;
  sessionAffinity: boolean;
  /** Most session bindings kept (least recently used dropped first). */
  maxSessions?: number;
  /** The lane an item draws on; items of one lane share a ring. Default: one lane for all. */
  laneOf?: (item: T) => string;
}

interface Ring<T> {
  readonly key: string;
  items: T[];
  /** Next item to try (round robin). */
  cursor: number;
  /** Place in the ring of lanes. */
  at: number;
}

export class Selector<T extends { readonly id: string }> {
  private lanes: Ring<T>[] = [];
  private laneByKey = new Map<string, Ring<T>>();
  /** id -> its lane ring and its place in it. */
  private where = new Map<string, { ring: Ring<T>; at: number }>();
  private laneCursor = 0;
  private count = 0;
  /** fill_first: the account in use until it cannot serve. */
  private current: string | null = null;
  private sessions = new Map<string, string>();
  private readonly strategy: Strategy;
  private readonly affinity: boolean;
  private readonly maxSessions: number;
  private readonly laneOf: (item: T) => string;

  constructor(opts: SelectorOptions<T>) {
    this.strategy = opts.strategy;
    this.affinity = opts.sessionAffinity;
    this.maxSessions = opts.maxSessions ?? 10_000;
    this.laneOf = opts.laneOf ?? (() => '');
  }

  get size(): number {
    return this.count;
  }

  /** Lanes with at least one item. */
  get laneCount(): number {
    return this.lanes.length;
  }

  has(id: string): boolean {
    return this.where.has(id);
  }

  /** Adds an item (or replaces the item with the same id, keeping its place unless its lane changed). */
  add(item: T): void {
    const key = this.laneOf(item);
    const w = this.where.get(item.id);
    if (w !== undefined) {
      if (w.ring.key === key) {
        w.ring.items[w.at] = item;
        return;
      }
      this.remove(item.id);
    }
    let ring = this.laneByKey.get(key);
    if (!ring) {
      ring = { key, items: [], cursor: 0, at: this.lanes.length };
      this.laneByKey.set(key, ring);
      this.lanes.push(ring);
    }
    this.where.set(item.id, { ring, at: ring.items.length });
    ring.items.push(item);
    this.count++;
  }

  remove(id: string): void {
    const w = this.where.get(id);
    if (w === undefined) return;
    const { ring, at } = w;
    const items = ring.items;
    const last = items[items.length - 1]!;
    items[at] = last;
    this.where.get(last.id)!.at = at;
    items.pop();
    this.where.delete(id);
    this.count--;
    if (this.current === id) this.current = null;
    if (ring.cursor > items.length) ring.cursor = 0;
    if (items.length === 0) {
      const lastLane = this.lanes[this.lanes.length - 1]!;
      this.lanes[ring.at] = lastLane;
      lastLane.at = ring.at;
      this.lanes.pop();
      this.laneByKey.delete(ring.key);
      if (this.laneCursor > this.lanes.length) this.laneCursor = 0;
    }
  }

  /** The account bound to a session key, if any (whether or not it can serve now). */
  boundTo(sessionKey: string): string | null {
    return this.sessions.get(sessionKey) ?? null;
  }

  /**
   * The next item for which `canServe` holds, or null. With a session key
   * (and affinity on) the bound item is kept while it can serve, else a new
   * one is chosen and bound. `laneOk`, given any item of a lane, may rule the
   * whole lane out at once (its items are then not offered to `canServe`).
   */
  pick(canServe: (item: T) => boolean, sessionKey?: string, laneOk?: (sample: T) => boolean): T | null {
    const nLanes = this.lanes.length;
    if (nLanes === 0) return null;
    const useSession = this.affinity && !!sessionKey;
    if (useSession) {
      const bound = this.sessions.get(sessionKey!);
      if (bound !== undefined) {
        const w = this.where.get(bound);
        if (w !== undefined && canServe(w.ring.items[w.at]!)) {
          // refresh its LRU position
          this.sessions.delete(sessionKey!);
          this.sessions.set(sessionKey!, bound);
          return w.ring.items[w.at]!;
        }
      }
    }
    const fill = this.strategy === 'fill_first';
    let startLane: number;
    let startItem = -1;
    if (fill) {
      const w = this.current === null ? undefined : this.where.get(this.current);
      startLane = w ? w.ring.at : 0;
      if (w) startItem = w.at;
    } else {
      startLane = this.laneCursor < nLanes ? this.laneCursor : 0;
    }
    for (let li = 0; li < nLanes; li++) {
      let k = startLane + li;
      if (k >= nLanes) k -= nLanes;
      const ring = this.lanes[k]!;
      const items = ring.items;
      if (laneOk !== undefined && !laneOk(items[0]!)) continue;
      const n = items.length;
      // fill_first: from the current item in its lane, from the first in the others
      const from = fill ? (li === 0 && startItem >= 0 ? startItem : 0) : ring.cursor < n ? ring.cursor : 0;
      for (let i = 0; i < n; i++) {
        let j = from + i;
        if (j >= n) j -= n;
        const item = items[j]!;
        if (!canServe(item)) continue;
        if (fill) this.current = item.id;
        else {
          ring.cursor = j + 1 >= n ? 0 : j + 1;
          this.laneCursor = k + 1 >= nLanes ? 0 : k + 1;
        }
        if (useSession) this.bind(sessionKey!, item.id);
        return item;
      }
    }
    return null;
  }

  private bind(sessionKey: string, id: string): void {
    this.sessions.delete(sessionKey);
    this.sessions.set(sessionKey, id);
    if (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
  }
}
