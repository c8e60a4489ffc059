// The account file (SPEC section 3): one per account, snake_case, unix seconds.
import { z } from 'zod';

export const TokenSchema = z.looseObject({
  access_token: z.string(),
  refresh_token: z.string().min(1),
  expiry_timestamp: z.number().int(),
  token_type: z.string().default('Bearer'),
  scope: z.string().default(''),
});

export const AccountSchema = z.looseObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only'),
  email: z.string(),
  sub: z.string().nullable().default(null),
  name: z.string().nullable().default(null),
  token: TokenSchema,
  oauth_client_id: z.string().nullable().default(null),
  project_id: z.string().nullable().default(null),
  disabled: z.boolean().default(false),
  disabled_at: z.number().int().nullable().default(null),
  disabled_reason: z.string().nullable().default(null),
  proxy_disabled: z.boolean().default(false),
  proxy_disabled_at: z.number().int().nullable().default(null),
  proxy_disabled_reason: z.string().nullable().default(null),
  /** Scopes requested at consent but not granted (granular consent). */
  missing_scopes: z.array(z.string()).default([]),
  created_at: z.number().int(),
  last_used: z.number().int().nullable().default(null),
});

export type Token = z.infer<typeof TokenSchema>;
export type Account = z.infer<typeof AccountSchema>;

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
  return a.created_at - b.created_at || a.email.localeCompare(b.email) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
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
    disabled: a.disabled,
    disabled_at: a.disabled_at,
    disabled_reason: a.disabled_reason,
    proxy_disabled: a.proxy_disabled,
    proxy_disabled_at: a.proxy_disabled_at,
    proxy_disabled_reason: a.proxy_disabled_reason,
    missing_scopes: a.missing_scopes,
    created_at: a.created_at,
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
