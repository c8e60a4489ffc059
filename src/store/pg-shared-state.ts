// Shared state in PostgreSQL (see shared-state.ts): the key-value map is one
// table (read-modify-write under a row lock; expired rows read as absent and
// are swept now and then), events are NOTIFY grantpool_events with a small
// JSON payload, delivered to every gateway that LISTENs, the sender included.
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import type { Logger } from '../log/logger.ts';
import { RenewableListen, type ListenDriver } from './pg-listen.ts';
import type { SharedEvents, SharedKv, SharedState } from './shared-state.ts';
import { unguarded, type Guard } from './pg-answer.ts';

const CHANNEL = 'grantpool_events';
/** NOTIFY payloads are limited to 8000 bytes; events are a few hundred. */
const MAX_EVENT_BYTES = 7900;
/** A gateway sends itself an event this often to time NOTIFY's delivery (for /metrics). */
const LAG_PROBE_MS = 15_000;
const LAG_TOPIC = '__notify_lag';

export class PgSharedState implements SharedState {
  readonly distributed = true;
  private readonly sql: Sql;
  private readonly logger: Logger;
  private readonly listeners = new Map<string, Set<(payload: unknown) => void>>();
  private readonly listening: RenewableListen;
  private readonly sweeper: NodeJS.Timeout;
  private lagProbe: NodeJS.Timeout | null = null;
  private readonly me = randomUUID();
  private lagMs: number | null = null;
  private readonly guard: Guard;

  /** `guard`: how the queries a caller waits for run (PgStore's: refused while the database is down, bounded in time). */
  constructor(sql: Sql, logger: Logger, listenDriver: ListenDriver, opts: { sweepIntervalMs?: number; guard?: Guard } = {}) {
    this.sql = sql;
    this.logger = logger;
    this.guard = opts.guard ?? unguarded;
    this.listening = new RenewableListen(listenDriver, CHANNEL, {
      onNotify: (text) => this.deliver(text),
      onError: (e) => this.logger.warn({ err: { message: e.message } }, 'could not LISTEN for shared events'),
    });
    this.sweeper = setInterval(() => {
      sql`DELETE FROM grantpool_kv WHERE expires_at <= ${Date.now()}`.catch(() => {});
    }, opts.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  readonly kv: SharedKv = {
    get: async <T>(ns: string, key: string) => {
      const [r] = await this.guard(() => this.sql<{ value: T }[]>`SELECT value FROM grantpool_kv WHERE ns = ${ns} AND key = ${key} AND expires_at > ${Date.now()}`);
      return r ? r.value : null;
    },
    set: async (ns, key, value, expiresAtMs) => {
      await this.guard(() => this.sql`
        INSERT INTO grantpool_kv (ns, key, value, expires_at) VALUES (${ns}, ${key}, ${this.sql.json(value as never)}, ${Math.ceil(expiresAtMs)})
        ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`);
    },
    update: async <T, R>(ns: string, key: string, change: (current: T | null) => { value: T; expiresAtMs: number; result: R } | { result: R }) =>
      this.guard(() => this.sql.begin(async (tx) => {
        // Lock the key even when it has no row yet, so two first writers are serialised too.
        await tx`SELECT pg_advisory_xact_lock(hashtext(${ns}), hashtext(${key}))`;
        const [r] = await tx<{ value: T }[]>`SELECT value FROM grantpool_kv WHERE ns = ${ns} AND key = ${key} AND expires_at > ${Date.now()}`;
        const next = change(r ? r.value : null);
        if ('value' in next) {
          await tx`
            INSERT INTO grantpool_kv (ns, key, value, expires_at) VALUES (${ns}, ${key}, ${tx.json(next.value as never)}, ${Math.ceil(next.expiresAtMs)})
            ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`;
        }
        return next.result;
      }) as Promise<R>),
    delete: async (ns, key) => {
      await this.guard(() => this.sql`DELETE FROM grantpool_kv WHERE ns = ${ns} AND key = ${key}`);
    },
  };

  readonly events: SharedEvents = {
    publish: async (topic, payload) => {
      const text = JSON.stringify({ topic, payload });
      if (Buffer.byteLength(text) > MAX_EVENT_BYTES) throw new Error(`event on ${topic} is too large to share (${Buffer.byteLength(text)} bytes)`);
      await this.guard(() => this.sql`SELECT pg_notify(${CHANNEL}, ${text})`);
    },
    subscribe: (topic, listener) => {
      let set = this.listeners.get(topic);
      if (!set) this.listeners.set(topic, (set = new Set()));
      set.add(listener);
      if (!this.lagProbe) {
        const probe = () => void this.events.publish(LAG_TOPIC, { from: this.me, at: Date.now() }).catch(() => {});
        void this.listening.start().then(probe);
        this.lagProbe = setInterval(probe, LAG_PROBE_MS);
        this.lagProbe.unref();
      }
      return () => void set.delete(listener);
    },
    ready: () => this.listening.ready(),
  };

  /** After an outage (PgStore's health check): LISTEN again on a fresh connection. */
  renewListen(): Promise<void> {
    return this.listening.renew();
  }

  /** How long this gateway's last probe event took to come back through NOTIFY (ms), or null before the first. */
  notifyLagMs(): number | null {
    return this.lagMs;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    if (this.lagProbe) clearInterval(this.lagProbe);
    this.listeners.clear();
    await this.listening.stop();
  }

  private deliver(text: string): void {
    let event: { topic?: unknown; payload?: unknown };
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof event.topic !== 'string') return;
    if (event.topic === LAG_TOPIC) {
      const p = event.payload as { from?: unknown; at?: unknown } | null;
      if (p?.from === this.me && typeof p.at === 'number') this.lagMs = Math.max(0, Date.now() - p.at);
      return;
    }
    for (const l of [...(this.listeners.get(event.topic) ?? [])]) {
      try {
        l(event.payload);
      } catch {
        // a listener's failure is its own business
      }
    }
  }
}
