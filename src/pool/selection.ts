// Which account serves next. The accounts that may serve at all (not
// disabled, not proxy_disabled) sit in rings, one per lane (the quota they
// draw on), and the lanes sit in a ring of their own: round robin takes the
// next lane, then the next account of that lane, so requests spread over
// quotas before they spread over accounts. Per-request conditions (cooldowns,
// quota, scopes, already tried) are checked lazily by the caller's predicate
// while walking from the cursors, so a pick is O(1) while accounts are
// healthy, and a lane the caller rules out is skipped whole. Session
// affinity sits on top of either strategy. The selector keeps no map of its own per item: an item's place
// is kept in the item (Seating), a lane's ring in the lane.

export type Strategy = 'round_robin' | 'fill_first';

/**
 * One lane's ring: its members, those in rotation first, and its place in the
 * ring of lanes. Members out of rotation (disabled, taken out) stay in the
 * same array after the first `size`, so a lane needs no second collection.
 */
export interface Ring<T> {
  readonly key: string;
  /** Every member: items[0, size) are in rotation, the rest are not. */
  items: T[];
  /** How many members are in rotation. */
  size: number;
  /** Next item to try (round robin). */
  cursor: number;
  /** Place in the ring of lanes; -1 while it has no item in rotation. */
  at: number;
}

/**
 * An item's ring (its lane) and its place in it, kept in the item itself:
 * with 100,000 accounts a map from id to place cost ~75 bytes an account.
 * An item's ring must not change while it is in the selector (remove it
 * first, add it again after).
 */
export interface Seating<T> {
  ringOf(item: T): Ring<T>;
  /** Its index in its ring's items (in rotation when below the ring's size); -1 when it is not a member. */
  atOf(item: T): number;
  setAt(item: T, at: number): void;
}

/** Rings up to this many members are grown one at a time (exact size). */
const SMALL_RING = 8;

/** Makes the item a member of its ring, out of rotation (an item already a member stays where it is). */
export function joinRing<T extends { readonly id: string }>(item: T, seats: Seating<T>): void {
  if (seats.atOf(item) >= 0) return;
  const ring = seats.ringOf(item);
  const items = ring.items;
  seats.setAt(item, items.length);
  // small rings grow by one (a push would reserve room for 16 more: most lanes have a handful of accounts)
  if (items.length < SMALL_RING) ring.items = items.concat([item]);
  else items.push(item);
}

/** Takes a member out of its ring; it must be out of rotation (out of the selector) first. */
export function leaveRing<T extends { readonly id: string }>(item: T, seats: Seating<T>): void {
  const at = seats.atOf(item);
  if (at < 0) return;
  const ring = seats.ringOf(item);
  if (at < ring.size) throw new Error(`item ${item.id} left ring ${ring.key} while in rotation`);
  const items = ring.items;
  const last = items.pop()!;
  if (last !== item) {
    items[at] = last;
    seats.setAt(last, at);
  }
  seats.setAt(item, -1);
}

/** Swaps two members of a ring (their seats follow). */
function swap<T>(items: T[], i: number, j: number, seats: Seating<T>): void {
  if (i === j) return;
  const a = items[i]!;
  const b = items[j]!;
  items[i] = b;
  items[j] = a;
  seats.setAt(b, i);
  seats.setAt(a, j);
}

export interface SelectorOptions<T> {
  strategy: Strategy;
  sessionAffinity: boolean;
  /** Most session bindings kept (least recently used dropped first). */
  maxSessions?: number;
  /** Where an item is: items of one lane share a ring, and a ring is in one selector only. */
  seating: Seating<T>;
}

export class Selector<T extends { readonly id: string }> {
  private lanes: Ring<T>[] = [];
  private laneCursor = 0;
  private count = 0;
  /** fill_first: the item in use until it cannot serve. */
  private current: T | null = null;
  private sessions = new Map<string, T>();
  private readonly strategy: Strategy;
  private readonly affinity: boolean;
  private readonly maxSessions: number;
  private readonly seats: Seating<T>;

  constructor(opts: SelectorOptions<T>) {
    this.strategy = opts.strategy;
    this.affinity = opts.sessionAffinity;
    this.maxSessions = opts.maxSessions ?? 10_000;
    this.seats = opts.seating;
  }

  get size(): number {
    return this.count;
  }

  /** Lanes with at least one item. */
  get laneCount(): number {
    return this.lanes.length;
  }

  has(item: T): boolean {
    const at = this.seats.atOf(item);
    return at >= 0 && at < this.seats.ringOf(item).size;
  }

  /** Adds an item to the rotation (an item already in keeps its place; one not yet a member of its ring joins it). */
  add(item: T): void {
    const seats = this.seats;
    joinRing(item, seats);
    const ring = seats.ringOf(item);
    const at = seats.atOf(item);
    if (at < ring.size) return;
    if (ring.size === 0) {
      ring.cursor = 0;
      ring.at = this.lanes.length;
      this.lanes.push(ring);
    }
    // the first member out of rotation trades places with it: the rotation grows at its end, as a push would
    swap(ring.items, at, ring.size, seats);
    ring.size++;
    this.count++;
  }

  /** Takes an item out of the rotation; it stays a member of its ring. */
  remove(item: T): void {
    const seats = this.seats;
    const at = seats.atOf(item);
    if (at < 0) return;
    const ring = seats.ringOf(item);
    if (at >= ring.size) return;
    // the last item in rotation takes its place
    const size = --ring.size;
    swap(ring.items, at, size, seats);
    this.count--;
    if (this.current === item) this.current = null;
    if (ring.cursor > size) ring.cursor = 0;
    if (size === 0) {
      const lastLane = this.lanes.pop()!;
      if (lastLane !== ring) {
        this.lanes[ring.at] = lastLane;
        lastLane.at = ring.at;
      }
      ring.at = -1;
      if (this.laneCursor > this.lanes.length) this.laneCursor = 0;
    }
  }

  /** The id of the item bound to a session key, if any (whether or not it can serve now). */
  boundTo(sessionKey: string): string | null {
    return this.sessions.get(sessionKey)?.id ?? null;
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
      if (bound !== undefined && this.has(bound) && canServe(bound)) {
        // refresh its LRU position
        this.sessions.delete(sessionKey!);
        this.sessions.set(sessionKey!, bound);
        return bound;
      }
    }
    const fill = this.strategy === 'fill_first';
    let startLane: number;
    let startItem = -1;
    if (fill) {
      const cur = this.current;
      if (cur !== null) {
        startLane = this.seats.ringOf(cur).at;
        startItem = this.seats.atOf(cur);
      } else startLane = 0;
    } else {
      startLane = this.laneCursor < nLanes ? this.laneCursor : 0;
    }
    for (let li = 0; li < nLanes; li++) {
      let k = startLane + li;
      if (k >= nLanes) k -= nLanes;
      const ring = this.lanes[k]!;
      const items = ring.items;
      if (laneOk !== undefined && !laneOk(items[0]!)) continue;
      const n = ring.size;
      // fill_first: from the current item in its lane, from the first in the others
      const from = fill ? (li === 0 && startItem >= 0 ? startItem : 0) : ring.cursor < n ? ring.cursor : 0;
      for (let i = 0; i < n; i++) {
        let j = from + i;
        if (j >= n) j -= n;
        const item = items[j]!;
        if (!canServe(item)) continue;
        if (fill) this.current = item;
        else {
          ring.cursor = j + 1 >= n ? 0 : j + 1;
          this.laneCursor = k + 1 >= nLanes ? 0 : k + 1;
        }
        if (useSession) this.bind(sessionKey!, item);
        return item;
      }
    }
    return null;
  }

  private bind(sessionKey: string, item: T): void {
    this.sessions.delete(sessionKey);
    this.sessions.set(sessionKey, item);
    if (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
  }
}
