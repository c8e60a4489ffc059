// Browser sessions for the dashboard: log in with the admin token, get an
// HttpOnly session cookie plus a per-session CSRF token. `authenticate` is the
// one gate for /api/*: a bearer admin token, or a session cookie whose
// mutating requests carry the CSRF header and come from this origin.
//
// With shared state (gateways on one database), sessions are also kept in the
// shared key-value map (by the hash of their id), so a session opened on one
// gateway works on every other: `prepare` reads a session this gateway has not
// seen (or not checked for 30 s) before the synchronous checks run. A logout
// is told to every gateway at once, and so is every wrong admin token (the
// throttle per address counts across gateways).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Clock } from '../util/clock.ts';
import { sha256 } from '../util/digest.ts';
import type { SharedEvents, SharedKv } from '../store/shared-state.ts';
import { clientAddress, createFailureThrottle } from './throttle.ts';
import { createSharing } from './shared-sessions.ts';

export const SESSION_COOKIE = 'gp_session';
export const CSRF_HEADER = 'x-grantpool-csrf';

export interface Session {
  id: string;
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  /** Hash of the admin token the session was opened with; a changed token ends the session. */
  adminTokenHash: string;
}

export type AuthResult =
  | { ok: true; via: 'bearer' | 'session'; session?: Session }
  | { ok: false; status: 401 | 403; message: string }
  | { ok: false; status: 429; message: string; retryAfterSeconds: number };

export type LoginResult =
  | { ok: true; session: Session; setCookie: string }
  | { ok: false; status: 401; message: string }
  | { ok: false; status: 429; message: string; retryAfterSeconds: number };

export interface DashboardSessionOptions {
  /** The current admin token (read on every check, so a changed token takes effect at once). */
  adminToken: () => string;
  clock: Clock;
  /** The gateway's public URL; the cookie gets `Secure` when it is https, and its origin counts as same-origin. */
  publicUrl?: () => string | null | undefined;
  /** A session ends this long after login, whatever happens (default 12 h). */
  maxAgeMs?: number;
  /** A session ends after this long without a request (default 2 h). */
  idleMs?: number;
  /** At most this many live sessions; the oldest goes first (default 100). */
  maxSessions?: number;
  /** Wrong admin tokens (login or bearer) allowed per minute from one client address before it gets 429 (default 10). */
  maxFailuresPerMinute?: number;
  /** Shared with the other gateways on one store: sessions, logouts and wrong tokens. */
  shared?: { kv: SharedKv; events: SharedEvents; onError?: (e: Error, what: string) => void };
}

export interface DashboardSessions {
  /** Checks a submitted admin token and opens a session. */
  login(token: string, req?: IncomingMessage): LoginResult;
  /** Ends the session named by the request's cookie; returns the Set-Cookie that clears it. */
  logout(req: IncomingMessage): string;
  /** The live session named by the request's cookie, or null (touches its idle timer). */
  sessionFor(req: IncomingMessage): Session | null;
  /** Gate for /api/*: bearer admin token, or session cookie (+ CSRF and same origin for mutations). */
  authenticate(req: IncomingMessage): AuthResult;
  /** True when the request's Origin/Sec-Fetch-Site say it comes from another site. */
  isCrossSite(req: IncomingMessage): boolean;
  /** True when `candidate` equals the admin token (constant time). */
  checkAdminToken(candidate: string): boolean;
  /** Number of live sessions (for tests and status). */
  size(): number;
  /**
   * Before the checks above: makes a session opened on another gateway known
   * here (and drops one ended elsewhere). No-op without shared state.
   */
  prepare(req: IncomingMessage): Promise<void>;
  /** Waits for the shared writes of logins and logouts so far (answer the browser after it). */
  flush(): Promise<void>;
  /** Stops listening to the other gateways. */
  close(): void;
}


const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Constant-time string equality (hashing first makes the lengths equal). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name && !(name in out)) out[name] = value;
  }
  return out;
}

function originOf(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

export function createDashboardSessions(opts: DashboardSessionOptions): DashboardSessions {
  const maxAgeMs = opts.maxAgeMs ?? 12 * 3600_000;
  const idleMs = opts.idleMs ?? 2 * 3600_000;
  const maxSessions = opts.maxSessions ?? 100;
  const sessions = new Map<string, Session>();
  // One throttle for both doors of the admin token, per client address.
  const throttle = createFailureThrottle({ max: opts.maxFailuresPerMinute ?? 10, windowMs: 60_000, now: () => opts.clock.now() });
  const shared = createSharing({ shared: opts.shared, clock: opts.clock, sessions, throttle, expiryOf: (s) => expiryOf(s) });
  const tooMany = (retryAfterSeconds: number, what: string) => ({
    ok: false as const,
    status: 429 as const,
    retryAfterSeconds,
    message: `Too many wrong admin tokens from your address in the last minute. ${what} again in ${retryAfterSeconds} s.`,
  });

  const secure = (): boolean => {
    const pub = opts.publicUrl?.();
    return typeof pub === 'string' && pub.toLowerCase().startsWith('https:');
  };

  const cookie = (value: string, maxAgeSeconds: number): string =>
    `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}${secure() ? '; Secure' : ''}`;

  const currentTokenHash = (): string => {
    const token = opts.adminToken();
    return token ? sha256(token).toString('hex') : '';
  };

  const expiryOf = (s: Session): number => Math.min(s.createdAt + maxAgeMs, s.lastSeenAt + idleMs);

  const expired = (s: Session, now: number): boolean =>
    now - s.createdAt >= maxAgeMs || now - s.lastSeenAt >= idleMs || s.adminTokenHash !== currentTokenHash();

  const sweep = (now: number): void => {
    for (const [id, s] of sessions) if (expired(s, now)) sessions.delete(id);
  };

  const checkAdminToken = (candidate: string): boolean => {
    const token = opts.adminToken();
    if (!token || !candidate) return false;
    return safeEqual(candidate, token);
  };

  const sessionFor = (req: IncomingMessage): Session | null => {
    const id = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (!id) return null;
    const s = sessions.get(id);
    if (!s) return null;
    const now = opts.clock.now();
    if (expired(s, now)) {
      sessions.delete(id);
      return null;
    }
    s.lastSeenAt = now;
    shared?.seen(s, expiryOf(s));
    return s;
  };

  const sameOriginSet = (req: IncomingMessage): Set<string> => {
    const set = new Set<string>();
    const host = req.headers.host;
    if (host) {
      set.add(`http://${host}`.toLowerCase());
      set.add(`https://${host}`.toLowerCase());
    }
    const pub = originOf(opts.publicUrl?.());
    if (pub) set.add(pub.toLowerCase());
    return set;
  };

  const isCrossSite = (req: IncomingMessage): boolean => {
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') return true;
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    if (origin === 'null') return true;
    return !sameOriginSet(req).has(origin.toLowerCase());
  };

  return {
    checkAdminToken,
    sessionFor,
    isCrossSite,
    size: () => {
      sweep(opts.clock.now());
      return sessions.size;
    },
    prepare: async (req) => {
      const id = parseCookies(req.headers.cookie)[SESSION_COOKIE];
      if (id && shared) await shared.prepare(id);
    },
    flush: async () => shared?.flush(),
    close: () => shared?.close(),

    login(token, req) {
      const now = opts.clock.now();
      const address = clientAddress(req);
      const wait = throttle.retryAfter(address);
      if (wait > 0) return tooMany(wait, 'Try');
      if (req && isCrossSite(req)) {
        return { ok: false, status: 401, message: 'Log in from the Grantpool page itself, not from another site.' };
      }
      if (!checkAdminToken(token.trim())) {
        throttle.fail(address);
        shared?.failed(address);
        return { ok: false, status: 401, message: 'That admin token is not right.' };
      }
      sweep(now);
      while (sessions.size >= maxSessions) {
        const oldest = sessions.keys().next().value;
        if (oldest === undefined) break;
        sessions.delete(oldest);
      }
      const session: Session = {
        id: randomBytes(32).toString('base64url'),
        csrf: randomBytes(32).toString('base64url'),
        createdAt: now,
        lastSeenAt: now,
        adminTokenHash: currentTokenHash(),
      };
      sessions.set(session.id, session);
      shared?.opened(session, expiryOf(session));
      return { ok: true, session, setCookie: cookie(session.id, Math.floor(maxAgeMs / 1000)) };
    },

    logout(req) {
      const id = parseCookies(req.headers.cookie)[SESSION_COOKIE];
      if (id) {
        sessions.delete(id);
        shared?.ended(id);
      }
      return cookie('', 0);
    },

    authenticate(req) {
      const auth = req.headers.authorization;
      if (auth !== undefined) {
        const address = clientAddress(req);
        const wait = throttle.retryAfter(address);
        if (wait > 0) return tooMany(wait, 'Send the admin token');
        const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
        if (m && checkAdminToken(m[1]!.trim())) return { ok: true, via: 'bearer' };
        throttle.fail(address);
        shared?.failed(address);
        return {
          ok: false,
          status: 401,
          message: 'The Authorization header does not carry the admin token. Send "Authorization: Bearer <admin token>" or log in to the dashboard.',
        };
      }
      const session = sessionFor(req);
      if (!session) {
        const had = parseCookies(req.headers.cookie)[SESSION_COOKIE];
        return {
          ok: false,
          status: 401,
          message: had
            ? 'Your dashboard session has ended. Log in again with the admin token.'
            : 'Not logged in. Send "Authorization: Bearer <admin token>" or log in to the dashboard.',
        };
      }
      if (MUTATING.has((req.method ?? 'GET').toUpperCase())) {
        if (isCrossSite(req)) {
          return { ok: false, status: 403, message: 'Cross-site request refused: changes can only be made from the Grantpool dashboard itself.' };
        }
        const header = req.headers[CSRF_HEADER];
        const sent = Array.isArray(header) ? header[0] : header;
        if (!sent || !safeEqual(sent, session.csrf)) {
          return { ok: false, status: 403, message: 'Missing or wrong X-Grantpool-CSRF header; reload the dashboard and try again.' };
        }
      }
      return { ok: true, via: 'session', session };
    },
  };
}

