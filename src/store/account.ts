// The account file (docs/accounts.md, "The account file"): one per account, snake_case, unix seconds.
import { z } from 'zod';

export const TokenSchema = z.looseObject({
  access_token: z.string(),
  refresh_token: z.string().min(1),
  expiry_timestamp: z.number().int(),
  token_type: z.string().default('Bearer'),
  scope: z.string().default(''),
});

/** The state of one API (Gemini API, Vertex AI) in the account's project, as Service Usage said it. */
export const ApiStateSchema = z.enum(['enabled', 'disabled', 'denied', 'unknown']);

/** How the account's quota project was chosen (docs/projects.md#choosing-and-enabling-never-unasked). */
export const ProjectInfoSchema = z.looseObject({
  source: z.enum(['discovered', 'manual']),
  checked_at: z.number().int(),
  gemini_api: ApiStateSchema.default('unknown'),
  vertex_ai: ApiStateSchema.default('unknown'),
  /** Why Vertex AI was found unusable while serving (a 403 from Vertex AI in this project); cleared when the project is checked again. */
  vertex_ai_reason: z.string().nullable().optional(),
});

/**
 * A security event Google sent about the account through Cross-Account
 * Protection (RISC, docs/security.md): the event's short name
 * (`sessions-revoked`, `account-disabled`, ...), when it arrived, and the
 * reason Google gave. Newest first, a few kept; cleared by a re-add.
 */
export const SecurityEventSchema = z.looseObject({
  event: z.string(),
  received_at: z.number().int(),
  reason: z.string().nullable().default(null),
});

/** Security events kept on an account. */
export const MAX_SECURITY_EVENTS = 10;

export const AccountSchema = z.looseObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only'),
  email: z.string(),
  sub: z.string().nullable().default(null),
  name: z.string().nullable().default(null),
  token: TokenSchema,
  oauth_client_id: z.string().nullable().default(null),
  project_id: z.string().nullable().default(null),
  project: ProjectInfoSchema.nullable().default(null),
  /** Why no project could be discovered or checked (shown on the account until a project is set). */
  project_error: z.string().nullable().default(null),
  disabled: z.boolean().default(false),
  disabled_at: z.number().int().nullable().default(null),
  disabled_reason: z.string().nullable().default(null),
  proxy_disabled: z.boolean().default(false),
  proxy_disabled_at: z.number().int().nullable().default(null),
  proxy_disabled_reason: z.string().nullable().default(null),
  /** Scopes requested at consent but not granted (granular consent). */
  missing_scopes: z.array(z.string()).default([]),
  security_events: z.array(SecurityEventSchema).default([]),
  created_at: z.number().int(),
  /** When the current refresh token was obtained by consent (null: unknown, e.g. imported; created_at then). */
  refresh_token_at: z.number().int().nullable().default(null),
  last_used: z.number().int().nullable().default(null),
});

export type Token = z.infer<typeof TokenSchema>;
export type ApiState = z.infer<typeof ApiStateSchema>;
export type ProjectInfo = z.infer<typeof ProjectInfoSchema>;
export type Account = z.infer<typeof AccountSchema>;
export type SecurityEvent = z.infer<typeof SecurityEventSchema>;

/** Google identity used to upsert: `sub`, else email. */
export interface Identity {
  sub: string | null;
  email: string;
}

export function sameIdentity(a: Identity, b: Identity): boolean {
  if (a.sub && b.sub) return a.sub === b.sub;
  return a.email.toLowerCase() === b.email.toLowerCase();
}

/** Oldest first, then by email, then by id: the order of every account list. */
export function byCreation(a: Account, b: Account): number {
  // Code-unit order (not localeCompare): the same order everywhere, and no ICU collation data in memory.
  return a.created_at - b.created_at || compareText(a.email, b.email) || compareText(a.id, b.id);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// Strings that thousands of accounts share (the granted scopes, the OAuth client, the token type)
// are kept once (and so are the empty lists of missing scopes and events, below). Bounded, so
// that odd files cannot grow it without limit.
const shared = new Map<string, string>();
const MAX_SHARED = 1000;

function share(s: string): string {
  const known = shared.get(s);
  if (known !== undefined) return known;
  if (shared.size < MAX_SHARED) shared.set(s, s);
  return s;
}

/**
 * The one copy V8 keeps of this text (its string table, which holds strings
 * weakly): for values many accounts may share without a known bound, such as
 * project ids (a project several accounts draw on). A string used as a
 * property key is internalized; the key read back is the shared copy. Costs
 * nothing to keep for a text only one account has, unlike a map of them.
 */
function internText(s: string): string {
  for (const k in { [s]: 0 }) return k;
  return s;
}

/** The `missing_scopes` of every account that got all it asked for. */
const NO_SCOPES: string[] = Object.freeze([]) as unknown as string[];
/** The `security_events` of every account Google has said nothing about. */
const NO_EVENTS: SecurityEvent[] = Object.freeze([]) as unknown as SecurityEvent[];

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}

const ACCOUNT_ORDER = Object.keys(AccountSchema.shape);
const TOKEN_ORDER = Object.keys(TokenSchema.shape);
const ACCOUNT_KEYS: ReadonlySet<string> = new Set(ACCOUNT_ORDER);
const TOKEN_KEYS: ReadonlySet<string> = new Set(TOKEN_ORDER);

/** The object has exactly these keys, in this order (as Grantpool writes an account file). */
function hasExactly(o: object, order: readonly string[]): boolean {
  let i = 0;
  for (const k in o) if (k !== order[i++]) return false;
  return i === order.length;
}

/** Fields a file may carry beyond the schema's (kept as they are, after the known ones, as zod orders them). */
function copyUnknown(from: Record<string, unknown>, to: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const k in from) {
    if (known.has(k) || !Object.hasOwn(from, k)) continue;
    const v = from[k];
    to[k] = v !== null && typeof v === 'object' ? structuredClone(v) : v; // frozen below: never the caller's object
  }
}

/**
 * The known fields of an account in the schema's order, `token` in its place
 * (the one list of them: the store's compact account and the API's view).
 * One object literal, so every account built here has one shape.
 */
function withFields<T>(a: Account, token: T, o: Pick<Account, 'oauth_client_id' | 'project_id' | 'missing_scopes' | 'security_events'> = a) {
  return {
    id: a.id,
    email: a.email,
    sub: a.sub,
    name: a.name,
    token,
    oauth_client_id: o.oauth_client_id,
    project_id: o.project_id,
    project: a.project,
    project_error: a.project_error,
    disabled: a.disabled,
    disabled_at: a.disabled_at,
    disabled_reason: a.disabled_reason,
    proxy_disabled: a.proxy_disabled,
    proxy_disabled_at: a.proxy_disabled_at,
    proxy_disabled_reason: a.proxy_disabled_reason,
    missing_scopes: o.missing_scopes,
    security_events: o.security_events,
    created_at: a.created_at,
    refresh_token_at: a.refresh_token_at,
    last_used: a.last_used,
  };
}

/**
 * A valid account rebuilt as one object literal in the schema's order: every
 * field lives in the object itself (about 100 bytes less per account than
 * zod's output, whose fields are added one by one), common strings shared.
 */
function compact(a: Account, extra: Record<string, unknown> = a): Account {
  const t = a.token;
  const token = {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    expiry_timestamp: t.expiry_timestamp,
    token_type: share(t.token_type),
    scope: share(t.scope),
  };
  copyUnknown((extra.token ?? t) as Record<string, unknown>, token, TOKEN_KEYS);
  Object.freeze(token);
  const out: Account = withFields(a, token, {
    oauth_client_id: a.oauth_client_id === null ? null : share(a.oauth_client_id),
    project_id: a.project_id === null ? null : internText(a.project_id),
    missing_scopes: a.missing_scopes.length === 0 ? NO_SCOPES : a.missing_scopes,
    security_events: a.security_events.length === 0 ? NO_EVENTS : a.security_events,
  });
  copyUnknown(extra, out, ACCOUNT_KEYS);
  for (const k in out) deepFreeze(out[k]);
  return Object.freeze(out);
}

/**
 * An account as the store keeps and hands it out: read-only (frozen, so the
 * store, the pool and every reader share one object and a stray write throws
 * instead of changing what others see), compact, with common strings shared.
 * Takes a valid account (the schema's output); returns a new object.
 */
export function readOnlyAccount(a: Account): Account {
  return compact(a);
}

const isText = (v: unknown): v is string => typeof v === 'string';
const textOrNull = (v: unknown) => v === undefined || v === null || typeof v === 'string';
const intOrNull = (v: unknown) => v === undefined || v === null || Number.isSafeInteger(v);
const flag = (v: unknown) => v === undefined || typeof v === 'boolean';
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * AccountSchema.parse + readOnlyAccount for the usual account (what Grantpool
 * writes): checked field by field and built at once, several times faster than
 * zod when thousands of accounts are read at start. Returns null for anything
 * else (a project, security events, a type zod would coerce or refuse): the
 * caller then asks zod, which gives the same result or the reasons. `fresh`:
 * `data` was just parsed and nobody else holds it, so it may be made the
 * account itself (no copy) when it has every field in order.
 */
export function usualAccount(data: unknown, fresh = false): Account | null {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return null;
  const d = data as Record<string, unknown>;
  const t = d.token as Record<string, unknown> | null | undefined;
  if (t === null || typeof t !== 'object' || Array.isArray(t)) return null;
  if (!isText(t.access_token) || !isText(t.refresh_token) || t.refresh_token.length === 0 || !Number.isSafeInteger(t.expiry_timestamp)) return null;
  if ((t.token_type !== undefined && !isText(t.token_type)) || (t.scope !== undefined && !isText(t.scope))) return null;
  if (!isText(d.id) || !ID_RE.test(d.id) || !isText(d.email) || !Number.isSafeInteger(d.created_at)) return null;
  if (!textOrNull(d.sub) || !textOrNull(d.name) || !textOrNull(d.oauth_client_id) || !textOrNull(d.project_id) || !textOrNull(d.project_error)) return null;
  if (!textOrNull(d.disabled_reason) || !textOrNull(d.proxy_disabled_reason) || !flag(d.disabled) || !flag(d.proxy_disabled)) return null;
  if (!intOrNull(d.disabled_at) || !intOrNull(d.proxy_disabled_at) || !intOrNull(d.refresh_token_at) || !intOrNull(d.last_used)) return null;
  if (d.project !== undefined && d.project !== null) return null;
  const scopes = d.missing_scopes;
  if (scopes !== undefined && !(Array.isArray(scopes) && scopes.every(isText))) return null;
  const events = d.security_events;
  if (events !== undefined && !(Array.isArray(events) && events.length === 0)) return null;
  if (fresh && hasExactly(d, ACCOUNT_ORDER) && hasExactly(t, TOKEN_ORDER) && (scopes as unknown[]).length === 0) {
    // Every field present, in order, nothing to fill in (a file Grantpool wrote): the parsed object
    // itself is already compact (JSON.parse lays its fields out in the object). Made read-only in place.
    t.token_type = share(t.token_type as string);
    t.scope = share(t.scope as string);
    if (d.oauth_client_id !== null) d.oauth_client_id = share(d.oauth_client_id as string);
    if (d.project_id !== null) d.project_id = internText(d.project_id as string);
    d.missing_scopes = NO_SCOPES;
    d.security_events = NO_EVENTS;
    Object.freeze(t);
    return Object.freeze(d) as Account;
  }
  return compact({
    id: d.id,
    email: d.email,
    sub: (d.sub as string | undefined) ?? null,
    name: (d.name as string | undefined) ?? null,
    token: { access_token: t.access_token, refresh_token: t.refresh_token, expiry_timestamp: t.expiry_timestamp as number, token_type: (t.token_type as string | undefined) ?? 'Bearer', scope: (t.scope as string | undefined) ?? '' },
    oauth_client_id: (d.oauth_client_id as string | undefined) ?? null,
    project_id: (d.project_id as string | undefined) ?? null,
    project: null,
    project_error: (d.project_error as string | undefined) ?? null,
    disabled: (d.disabled as boolean | undefined) ?? false,
    disabled_at: (d.disabled_at as number | undefined) ?? null,
    disabled_reason: (d.disabled_reason as string | undefined) ?? null,
    proxy_disabled: (d.proxy_disabled as boolean | undefined) ?? false,
    proxy_disabled_at: (d.proxy_disabled_at as number | undefined) ?? null,
    proxy_disabled_reason: (d.proxy_disabled_reason as string | undefined) ?? null,
    missing_scopes: scopes === undefined ? NO_SCOPES : (scopes as string[]).slice(),
    security_events: NO_EVENTS,
    created_at: d.created_at as number,
    refresh_token_at: (d.refresh_token_at as number | undefined) ?? null,
    last_used: (d.last_used as number | undefined) ?? null,
  }, d);
}

/** A copy that may be changed (for update() and upsertByIdentity() callbacks). */
export function draftAccount(a: Account): Account {
  return structuredClone(a);
}

/** Unix seconds. */
export function unixNow(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000);
}

/**
 * An account as an API answer or CLI output: known fields only (a file may
 * carry anything a person or an older tool put in it), no token value.
 */
export function publicAccount(a: Account) {
  return withFields(a, {
    expiry_timestamp: a.token.expiry_timestamp,
    token_type: a.token.token_type,
    scope: a.token.scope,
    refresh_token_fingerprint: fingerprint(a.token.refresh_token),
  });
}

/** A short, non-reversible label for a secret, safe to show and log. */
export function fingerprint(secret: string): string {
  if (!secret) return '';
  let h = 0x811c9dc5;
  for (let i = 0; i < secret.length; i++) {
    h ^= secret.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `…${h.toString(16).padStart(8, '0').slice(0, 6)}`;
}
