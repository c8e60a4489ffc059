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
// are kept once (and so is the empty list of missing scopes, below). Bounded, so that odd files
// cannot grow it without limit.
const shared = new Map<string, string>();
const MAX_SHARED = 1000;

function share(s: string): string {
  const known = shared.get(s);
  if (known !== undefined) return known;
  if (shared.size < MAX_SHARED) shared.set(s, s);
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

/**
 * An account as the store keeps and hands it out: read-only (frozen, so the
 * store, the pool and every reader share one object and a stray write throws
 * instead of changing what others see), with common strings shared. Takes a
 * freshly parsed account that nobody else holds yet.
 */
export function readOnlyAccount(a: Account): Account {
  if (a.missing_scopes.length === 0) a.missing_scopes = NO_SCOPES;
  if (a.security_events.length === 0) a.security_events = NO_EVENTS;
  a.token.scope = share(a.token.scope);
  a.token.token_type = share(a.token.token_type);
  if (a.oauth_client_id) a.oauth_client_id = share(a.oauth_client_id);
  deepFreeze(a);
  return a;
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
  return {
    id: a.id,
    email: a.email,
    sub: a.sub,
    name: a.name,
    oauth_client_id: a.oauth_client_id,
    project_id: a.project_id,
    project: a.project,
    project_error: a.project_error,
    disabled: a.disabled,
    disabled_at: a.disabled_at,
    disabled_reason: a.disabled_reason,
    proxy_disabled: a.proxy_disabled,
    proxy_disabled_at: a.proxy_disabled_at,
    proxy_disabled_reason: a.proxy_disabled_reason,
    missing_scopes: a.missing_scopes,
    security_events: a.security_events,
    created_at: a.created_at,
    refresh_token_at: a.refresh_token_at,
    last_used: a.last_used,
    token: {
      expiry_timestamp: a.token.expiry_timestamp,
      token_type: a.token.token_type,
      scope: a.token.scope,
      refresh_token_fingerprint: fingerprint(a.token.refresh_token),
    },
  };
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
