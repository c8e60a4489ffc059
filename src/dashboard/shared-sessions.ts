// The shared half of the dashboard sessions (session.ts): with gateways on
// one store, each session is also kept in the shared key-value map under the
// hash of its id (the map never holds a usable cookie), so a session opened on
// one gateway works on every other; a logout and every wrong admin token are
// told to all gateways at once (the throttle per address counts across them).
// What a gateway knows stands while the shared store cannot be reached.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../util/clock.ts';
import { sha256 } from '../util/digest.ts';
import type { DashboardSessionOptions, Session } from './session.ts';

const SESSION_NS = 'dashboard_session';
const SESSION_END = 'dashboard_session_end';
const TOKEN_FAILURE = 'admin_token_failure';
/** A session known here is read from the shared map again when it was last read this long ago. */
const RECHECK_MS = 30_000;
/** Sessions held in memory at most (those opened here are bounded by maxSessions). */
const MAX_KNOWN = 1000;
/** Its last use is written to the shared map at most this often. */
const SEEN_WRITE_MS = 60_000;

const SharedSession = z.object({
  csrf: z.string().min(1).max(200),
  createdAt: z.number().finite(),
  lastSeenAt: z.number().finite(),
  adminTokenHash: z.string().max(200),
});
const EndEvent = z.object({ key: z.string().max(200) });
const FailureEvent = z.object({ from: z.string().max(100), address: z.string().max(200) });

/** The key of a session in the shared map: the hash of its id (the map never holds a usable cookie). */
function sharedKey(id: string): string {
  return sha256(id).toString('hex');
}

export interface Sharing {
  prepare(id: string): Promise<void>;
  opened(s: Session, expiresAtMs: number): void;
  seen(s: Session, expiresAtMs: number): void;
  ended(id: string): void;
  failed(address: string): void;
  flush(): Promise<void>;
  close(): void;
}

export interface SharingDeps {
  shared: DashboardSessionOptions['shared'];
  clock: Clock;
  /** This gateway's sessions, by id. */
  sessions: Map<string, Session>;
  throttle: { fail(address: string): void };
  /** When a session ends if nothing else happens (max age or idle). */
  expiryOf: (s: Session) => number;
}

/** The shared half of the sessions (null without shared state). */
export function createSharing(deps: SharingDeps): Sharing | null {
  const { sessions, throttle, clock } = deps;
  const cfg = deps.shared;
  if (!cfg) return null;
  const { kv, events } = cfg;
  const me = randomUUID();
  const report = (what: string) => (e: Error) => cfg.onError?.(e, what);
  /** Per session id: when it was last read from (or written to) the shared map, last use written, and whether it is there yet. */
  const meta = new Map<string, { checkedAt: number; seenWrittenAt: number; saved: boolean }>();
  const writes = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>): void => {
    writes.add(p);
    void p.finally(() => writes.delete(p));
  };
  const record = (s: Session) => ({ csrf: s.csrf, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, adminTokenHash: s.adminTokenHash });
  const save = (s: Session, expiresAtMs: number): Promise<void> => {
    const m = meta.get(s.id);
    return kv.set(SESSION_NS, sharedKey(s.id), record(s), expiresAtMs).then(
      () => {
        if (m) m.saved = true;
      },
      report('could not share a dashboard session with the other gateways'),
    );
  };
  const byKey = (key: string): string | undefined => [...sessions.keys()].find((id) => sharedKey(id) === key);

  const stopEnds = events.subscribe(SESSION_END, (payload) => {
    const e = EndEvent.safeParse(payload);
    if (!e.success) return;
    const id = byKey(e.data.key);
    if (id) {
      sessions.delete(id);
      meta.delete(id);
    }
  });
  const stopFailures = events.subscribe(TOKEN_FAILURE, (payload) => {
    const e = FailureEvent.safeParse(payload);
    if (e.success && e.data.from !== me) throttle.fail(e.data.address);
  });
  const forget = (id: string) => {
    sessions.delete(id);
    meta.delete(id);
  };

  return {
    async prepare(id) {
      const now = clock.now();
      const local = sessions.get(id);
      const m = meta.get(id);
      if (local && m && now - m.checkedAt < RECHECK_MS) return;
      let found: unknown;
      try {
        found = await kv.get(SESSION_NS, sharedKey(id));
      } catch (e) {
        // The shared map cannot be read: what this gateway knows stands.
        report('could not read a dashboard session from the shared store')(e as Error);
        return;
      }
      const rec = SharedSession.safeParse(found);
      if (!rec.success) {
        // Not there: ended (or expired) elsewhere, unless this gateway opened it and could not save it yet.
        if (local && m && !m.saved) return void track(save(local, deps.expiryOf(local)));
        if (local) forget(id);
        return;
      }
      const r = rec.data;
      const lastSeenAt = Math.max(r.lastSeenAt, local?.lastSeenAt ?? 0);
      if (local) Object.assign(local, { csrf: r.csrf, createdAt: r.createdAt, adminTokenHash: r.adminTokenHash, lastSeenAt });
      else {
        // Sessions opened elsewhere are kept here too, boundedly (the oldest read goes first; it is read again when used).
        while (sessions.size >= MAX_KNOWN) forget(sessions.keys().next().value!);
        sessions.set(id, { id, csrf: r.csrf, createdAt: r.createdAt, lastSeenAt, adminTokenHash: r.adminTokenHash });
      }
      meta.set(id, { checkedAt: now, seenWrittenAt: m?.seenWrittenAt ?? now, saved: true });
      if (meta.size > 2 * sessions.size + 100) for (const k of meta.keys()) if (!sessions.has(k)) meta.delete(k);
    },
    opened(s, expiresAtMs) {
      const now = clock.now();
      meta.set(s.id, { checkedAt: now, seenWrittenAt: now, saved: false });
      track(save(s, expiresAtMs));
    },
    seen(s, expiresAtMs) {
      const m = meta.get(s.id);
      if (!m || s.lastSeenAt - m.seenWrittenAt < SEEN_WRITE_MS) return;
      m.seenWrittenAt = s.lastSeenAt;
      track(save(s, expiresAtMs));
    },
    ended(id) {
      meta.delete(id);
      const key = sharedKey(id);
      track(kv.delete(SESSION_NS, key).catch(report('could not end a dashboard session on the other gateways')));
      track(events.publish(SESSION_END, { key }).catch(report('could not tell the other gateways of a logout')));
    },
    failed(address) {
      events.publish(TOKEN_FAILURE, { from: me, address }).catch(report('could not tell the other gateways of a wrong admin token'));
    },
    async flush() {
      await Promise.allSettled([...writes]);
    },
    close() {
      stopEnds();
      stopFailures();
    },
  };
}
