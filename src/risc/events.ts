// What Google's security events mean for the accounts (pure): the event
// types of Cross-Account Protection, the payload of a verified security event
// token, the subjects it names (a Google account id, or a refresh token by
// prefix or double SHA-512), which accounts they match and what happens to
// each: disabled (tokens revoked, account disabled), recorded on the account
// (sessions revoked, credential change required, account enabled), logged
// (verification). docs/security.md, "Cross-Account Protection".
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MAX_SECURITY_EVENTS, type Account, type SecurityEvent } from '../store/account.ts';
import { invalidToken } from './errors.ts';
import { truncate } from '../util/text.ts';

const OAUTH = 'https://schemas.openid.net/secevent/oauth/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';

export const EVENT_TYPES = {
  tokensRevoked: `${OAUTH}tokens-revoked`,
  tokenRevoked: `${OAUTH}token-revoked`,
  accountDisabled: `${RISC}account-disabled`,
  accountEnabled: `${RISC}account-enabled`,
  sessionsRevoked: `${RISC}sessions-revoked`,
  credentialChangeRequired: `${RISC}account-credential-change-required`,
  verification: `${RISC}verification`,
} as const;

/** The events `grantpool risc register` asks Google for. */
export const EVENTS_REQUESTED: string[] = Object.values(EVENT_TYPES);

/** What an event does to the accounts it names. */
export type Effect = 'disable' | 'record' | 'log' | 'ignore';

const EFFECTS: Record<string, Effect> = {
  [EVENT_TYPES.tokensRevoked]: 'disable',
  [EVENT_TYPES.tokenRevoked]: 'disable',
  [EVENT_TYPES.accountDisabled]: 'disable',
  [EVENT_TYPES.sessionsRevoked]: 'record',
  [EVENT_TYPES.credentialChangeRequired]: 'record',
  [EVENT_TYPES.accountEnabled]: 'record',
  [EVENT_TYPES.verification]: 'log',
};

/** Who an event is about. */
export type Subject =
  | { by: 'sub'; sub: string }
  | { by: 'email'; email: string }
  | { by: 'token_prefix'; prefix: string }
  | { by: 'token_hash'; hash: string };

export interface SecurityEventItem {
  /** The event type URI. */
  uri: string;
  /** Its last path segment (`tokens-revoked`). */
  name: string;
  effect: Effect;
  /** Null when the subject is missing or of a kind this gateway does not know (then nothing matches). */
  subject: Subject | null;
  /** Why the subject could not be used (for the log). */
  subjectProblem: string | null;
  /** Google's reason (account-disabled: `hijacking`, `bulk-account`), bounded and printable. */
  reason: string | null;
  /** A verification event's state. */
  state: string | null;
}

export interface SecurityEventToken {
  jti: string;
  iat: number | null;
  events: SecurityEventItem[];
}

const PayloadSchema = z.looseObject({
  jti: z.string().min(1).max(256),
  iat: z.number().optional(),
  events: z.record(z.string(), z.unknown()),
});

const SubjectSchema = z.looseObject({
  subject_type: z.string(),
  sub: z.string().min(1).optional(),
  email: z.string().min(3).optional(),
  token_type: z.string().optional(),
  token_identifier_alg: z.string().optional(),
  token: z.string().min(1).optional(),
});

/** Google's refresh token prefix is its first 16 characters; nothing shorter is accepted (it could match too much). */
const TOKEN_PREFIX_LENGTH = 16;

/** The events of a verified token's payload; a payload without `jti` or `events` is a 400 (invalid_request). */
export function parseSecurityEventToken(payload: unknown): SecurityEventToken {
  const p = PayloadSchema.safeParse(payload);
  if (!p.success) {
    const field = String(p.error.issues[0]?.path[0] ?? 'payload');
    throw invalidToken('invalid_request', `the security event token has no valid "${field}" claim`);
  }
  const entries = Object.entries(p.data.events);
  if (entries.length === 0) throw invalidToken('invalid_request', 'the security event token carries no event');
  return {
    jti: p.data.jti,
    iat: typeof p.data.iat === 'number' ? p.data.iat : null,
    events: entries.map(([uri, body]) => parseEvent(uri, body)),
  };
}

function parseEvent(uri: string, body: unknown): SecurityEventItem {
  const b = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const { subject, problem } = parseSubject(b.subject);
  return {
    uri,
    name: uri.slice(uri.lastIndexOf('/') + 1).slice(0, 80) || uri.slice(0, 80),
    effect: EFFECTS[uri] ?? 'ignore',
    subject,
    subjectProblem: problem,
    reason: printable(b.reason),
    state: printable(b.state, 200),
  };
}

function parseSubject(raw: unknown): { subject: Subject | null; problem: string | null } {
  if (raw === undefined) return { subject: null, problem: 'no subject' };
  const s = SubjectSchema.safeParse(raw);
  if (!s.success) return { subject: null, problem: 'subject is not an object with a subject_type' };
  const v = s.data;
  switch (v.subject_type) {
    case 'iss-sub':
    case 'iss_sub':
      return v.sub ? { subject: { by: 'sub', sub: v.sub }, problem: null } : { subject: null, problem: `${v.subject_type} subject without sub` };
    case 'id_token_claims':
      if (v.sub) return { subject: { by: 'sub', sub: v.sub }, problem: null };
      if (v.email) return { subject: { by: 'email', email: v.email }, problem: null };
      return { subject: null, problem: 'id_token_claims subject without sub or email' };
    case 'email':
      return v.email ? { subject: { by: 'email', email: v.email }, problem: null } : { subject: null, problem: 'email subject without email' };
    case 'oauth_token':
    case 'token': {
      if (v.token_type !== undefined && v.token_type !== 'refresh_token') return { subject: null, problem: `token subject of type ${printable(v.token_type, 40)}` };
      if (!v.token) return { subject: null, problem: 'token subject without token' };
      if (v.token_identifier_alg === 'prefix') {
        return v.token.length >= TOKEN_PREFIX_LENGTH
          ? { subject: { by: 'token_prefix', prefix: v.token }, problem: null }
          : { subject: null, problem: `token prefix shorter than ${TOKEN_PREFIX_LENGTH} characters` };
      }
      if (v.token_identifier_alg === 'hash_base64_sha512_sha512') return { subject: { by: 'token_hash', hash: normalizeBase64(v.token) }, problem: null };
      return { subject: null, problem: `token identifier algorithm ${printable(v.token_identifier_alg, 60) ?? '(none)'} is not supported` };
    }
    default:
      return { subject: null, problem: `subject_type ${printable(v.subject_type, 60)} is not supported` };
  }
}

/** base64(SHA-512(SHA-512(token))), as Google identifies a refresh token (`hash_base64_sha512_sha512`). */
export function refreshTokenHash(token: string): string {
  const once = createHash('sha512').update(token, 'utf8').digest();
  return createHash('sha512').update(once).digest('base64');
}

/** Standard base64 with padding (a base64url value compares equal). */
function normalizeBase64(s: string): string {
  const std = s.trim().replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  return std + '='.repeat((4 - (std.length % 4)) % 4);
}

/** A short printable string from a claim (control characters removed), or null. */
function printable(v: unknown, max = 100): string | null {
  if (typeof v !== 'string') return null;
  // eslint-disable-next-line no-control-regex
  const clean = v.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  if (!clean) return null;
  return truncate(clean, max);
}

/** The accounts an event's subject names. */
export function matchAccounts(accounts: readonly Account[], subject: Subject | null): Account[] {
  if (!subject) return [];
  switch (subject.by) {
    case 'sub':
      return accounts.filter((a) => a.sub === subject.sub);
    case 'email': {
      const want = subject.email.trim().toLowerCase();
      return accounts.filter((a) => a.email.toLowerCase() === want);
    }
    case 'token_prefix':
      return accounts.filter((a) => a.token.refresh_token.startsWith(subject.prefix));
    case 'token_hash':
      return accounts.filter((a) => refreshTokenHash(a.token.refresh_token) === subject.hash);
  }
}

/** `risc: tokens-revoked`, or `risc: account-disabled (hijacking)`. */
function disabledReason(e: SecurityEventItem): string {
  return `risc: ${e.name}${e.reason ? ` (${e.reason})` : ''}`;
}

/** What one event does to one account. */
export interface Decision {
  account: Account;
  /** The disabled_reason to write, or null (already disabled, or not a disabling event). */
  disable: string | null;
  /** The entry for the account's security_events. */
  record: SecurityEvent;
}

/** The decisions for one event (none for verification and unknown events, or a subject nobody matches). */
export function decide(e: SecurityEventItem, accounts: readonly Account[], nowMs: number): Decision[] {
  if (e.effect !== 'disable' && e.effect !== 'record') return [];
  return matchAccounts(accounts, e.subject).map((account) => ({
    account,
    disable: e.effect === 'disable' && !account.disabled ? disabledReason(e) : null,
    record: { event: e.name, received_at: Math.floor(nowMs / 1000), reason: e.reason },
  }));
}

/** The account's security_events with `event` added (newest first, bounded). */
export function withSecurityEvent(a: Account, event: SecurityEvent): SecurityEvent[] {
  return [event, ...a.security_events].slice(0, MAX_SECURITY_EVENTS);
}
