// Which account serves next. A ring of the accounts that may serve at all (not
// disabled, not proxy_disabled); per-request conditions (cooldowns, quota,
// scopes, already tried) are checked lazily by the caller's predicate while
// walking the ring from the cursor, so a pick is O(1) while accounts are healthy.
// Session affinity sits on top of either strategy.

export type Strategy = 'round_robin' | 'fill_first';

export interface SelectorOptions {
  strategy: Strategy;
  sessionAffinity: boolean;
  /** Most session bindings kept (least recently used dropped first). */
  maxSessions?: number;
}

export class Selector<T extends { readonly id: string }> {
  private ring: T[] = [];
  private index = new Map<string, number>();
  private cursor = 0;
  /** fill_first: the account in use until it cannot serve. */
  private current: string | null = null;
  private sessions = new Map<string, string>();
  private readonly strategy: Strategy;
  private readonly affinity: boolean;
  private readonly maxSessions: number;

  constructor(opts: SelectorOptions) {
    this.strategy = opts.strategy;
    this.affinity = opts.sessionAffinity;
    this.maxSessions = opts.maxSessions ?? 10_000;
  }

  get size(): number {
    return this.ring.length;
  }

  has(id: string): boolean {
    return this.index.has(id);
  }

  /** Adds an item (or replaces the item with the same id, keeping its place). */
  add(item: T): void {
    const at = this.index.get(item.id);
    if (at !== undefined) {
      this.ring[at] = item;
      return;
    }
    this.index.set(item.id, this.ring.length);
    this.ring.push(item);
  }

  remove(id: string): void {
    const at = this.index.get(id);
    if (at === undefined) return;
    const lastIdx = this.ring.length - 1;
    const last = this.ring[lastIdx]!;
    this.ring[at] = last;
    this.index.set(last.id, at);
    this.ring.pop();
    this.index.delete(id);
    if (this.current === id) this.current = null;
    if (this.cursor > this.ring.length) this.cursor = 0;
  }

  /** The account bound to a session key, if any (whether or not it can serve now). */
  boundTo(sessionKey: string): string | null {
    return this.sessions.get(sessionKey) ?? null;
  }

  /**
   * The next item for which `canServe` holds, or null. With a session key
   * (and affinity on) the bound item is kept while it can serve, else a new
   * one is chosen and bound.
   */
  pick(canServe: (item: T) => boolean, sessionKey?: string): T | null {
    const n = this.ring.length;
    if (n === 0) return null;
    const useSession = this.affinity && !!sessionKey;
    if (useSession) {
      const bound = this.sessions.get(sessionKey!);
      if (bound !== undefined) {
        const at = this.index.get(bound);
        if (at !== undefined && canServe(this.ring[at]!)) {
          // refresh its LRU position
          this.sessions.delete(sessionKey!);
          this.sessions.set(sessionKey!, bound);
          return this.ring[at]!;
        }
      }
    }
    let start: number;
    if (this.strategy === 'fill_first') {
      const at = this.current === null ? undefined : this.index.get(this.current);
      start = at ?? 0;
    } else {
      start = this.cursor < n ? this.cursor : 0;
    }
    for (let i = 0; i < n; i++) {
      let k = start + i;
      if (k >= n) k -= n;
      const item = this.ring[k]!;
      if (!canServe(item)) continue;
      if (this.strategy === 'fill_first') this.current = item.id;
      else this.cursor = k + 1 >= n ? 0 : k + 1;
      if (useSession) this.bind(sessionKey!, item.id);
      return item;
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
