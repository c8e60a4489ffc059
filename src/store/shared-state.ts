// State that every gateway on one store must share, behind two small
// interfaces: a key-value map with expiry (OAuth flows, dashboard sessions)
// and events (a 429 cooldown learned by one gateway). The in-process
// implementation here is the default for the data directory; PostgreSQL
// provides the same (pg-shared-state.ts) for several gateways. One contract
// suite (test/store/shared-state-contract.ts) runs against both.

export interface SharedKv {
  get<T>(ns: string, key: string): Promise<T | null>;
  /** Stores `value` until `expiresAtMs` (absolute, ms). */
  set(ns: string, key: string, value: unknown, expiresAtMs: number): Promise<void>;
  /**
   * Read-modify-write of one entry, serialised against every other writer (on
   * every gateway). `change` gets the current value (null when absent or
   * expired) and returns the new value with its expiry, or null to leave it
   * as it is. Returns what `change` returned.
   */
  update<T, R>(ns: string, key: string, change: (current: T | null) => { value: T; expiresAtMs: number; result: R } | { result: R }): Promise<R>;
  delete(ns: string, key: string): Promise<void>;
}

export interface SharedEvents {
  /** Tells every gateway (this one included) about an event on `topic`. */
  publish(topic: string, payload: unknown): Promise<void>;
  /** Returns unsubscribe. Listeners get events from every gateway, their own included. */
  subscribe(topic: string, listener: (payload: unknown) => void): () => void;
  /** Resolves once the subscriptions made so far receive events (LISTEN is set up). */
  ready(): Promise<void>;
}

export interface SharedState {
  /** True when other gateways share this state (a database); false for this process's own. */
  readonly distributed: boolean;
  kv: SharedKv;
  events: SharedEvents;
  close(): Promise<void>;
}

interface Entry {
  value: unknown;
  expiresAtMs: number;
}

/** One process's shared state: a map with expiry and a local event bus. */
export class MemorySharedState implements SharedState {
  readonly distributed = false;
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Map<string, Set<(payload: unknown) => void>>();
  private readonly now: () => number;
  /** Entries kept at most (the oldest go first), so a loop of logins or consents cannot grow memory without bound. */
  private readonly maxEntries: number;

  constructor(opts: { now?: () => number; maxEntries?: number } = {}) {
    this.now = opts.now ?? Date.now;
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  readonly kv: SharedKv = {
    get: async <T>(ns: string, key: string) => this.read<T>(ns, key),
    set: async (ns, key, value, expiresAtMs) => this.write(ns, key, value, expiresAtMs),
    update: async <T, R>(ns: string, key: string, change: (current: T | null) => { value: T; expiresAtMs: number; result: R } | { result: R }) => {
      const next = change(this.read<T>(ns, key));
      if ('value' in next) this.write(ns, key, next.value, next.expiresAtMs);
      return next.result;
    },
    delete: async (ns, key) => {
      this.entries.delete(`${ns}\u0000${key}`);
    },
  };

  readonly events: SharedEvents = {
    publish: async (topic, payload) => {
      for (const l of [...(this.listeners.get(topic) ?? [])]) {
        try {
          l(structuredClone(payload));
        } catch {
          // a listener's failure is its own business
        }
      }
    },
    subscribe: (topic, listener) => {
      let set = this.listeners.get(topic);
      if (!set) this.listeners.set(topic, (set = new Set()));
      set.add(listener);
      return () => void set.delete(listener);
    },
    ready: async () => {},
  };

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private read<T>(ns: string, key: string): T | null {
    const k = `${ns}\u0000${key}`;
    const e = this.entries.get(k);
    if (!e) return null;
    if (e.expiresAtMs <= this.now()) {
      this.entries.delete(k);
      return null;
    }
    return structuredClone(e.value) as T;
  }

  private write(ns: string, key: string, value: unknown, expiresAtMs: number): void {
    const k = `${ns}\u0000${key}`;
    this.entries.delete(k);
    this.entries.set(k, { value: structuredClone(value), expiresAtMs });
    if (this.entries.size > this.maxEntries) this.prune();
  }

  private prune(): void {
    const now = this.now();
    for (const [k, e] of this.entries) if (e.expiresAtMs <= now) this.entries.delete(k);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}
