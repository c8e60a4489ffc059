// How an OAuth request failed, read from openid-client's errors: the one
// classification of refresh failures (the pool acts on its `kind`), and the
// fields the consent flow explains. Decided from the OAuth `error` code and the
// HTTP status, never from the description text; every text is scrubbed.
import * as oidc from 'openid-client';
import { RefreshError } from './refresh-error.ts';
import { cleanDescription } from './errors.ts';
import { redactSecrets } from '../util/redact.ts';

/** Max length of a RefreshError description (disabled_reason is "invalid_grant: <description>", at most 800). */
export const MAX_DESCRIPTION = 760;

export interface ErrorFields {
  error?: string;
  description?: string;
  subtype?: string;
  status?: number;
  contentType?: string;
}

/** The OAuth error code, description and HTTP status inside an openid-client error, when there are any. */
export function errorFields(e: unknown): ErrorFields {
  if (e instanceof oidc.ResponseBodyError) {
    const body = (e.cause ?? {}) as Record<string, unknown>;
    return {
      error: e.error,
      description: e.error_description,
      subtype: typeof body.error_subtype === 'string' ? body.error_subtype : undefined,
      status: e.status,
    };
  }
  if (e instanceof oidc.WWWAuthenticateChallengeError) {
    const params = e.cause?.[0]?.parameters ?? {};
    return { error: params.error ?? (e.status === 401 ? 'invalid_client' : undefined), description: params.error_description, status: e.status };
  }
  if (e instanceof oidc.AuthorizationResponseError) {
    return { error: e.error, description: e.error_description };
  }
  if (e instanceof oidc.ClientError && e.cause instanceof Response) {
    return { status: e.cause.status, contentType: e.cause.headers.get('content-type') ?? '' };
  }
  return {};
}

/**
 * Classifies a failed refresh by the OAuth `error` code only: invalid_grant
 * (also invalid_rapt) → 'invalid_grant'; invalid_client / unauthorized_client
 * → 'client'; network errors, timeouts, 5xx, 429, non-JSON answers and
 * anything else → 'transient' (tagged `unexpected` when it is not a
 * transport failure either, e.g. a store write that failed). The one
 * classification: the OAuth client throws what it returns, and the pool calls
 * it for anything a refresher (or the store around it) throws. `secrets`
 * (the refresh token, the account's tokens, client secrets) never appear in
 * the result; the original error is kept as `cause` unless it held one.
 */
export function classifyRefreshError(e: unknown, secrets: readonly (string | null | undefined)[] = []): RefreshError {
  if (e instanceof RefreshError) return scrubbed(e, secrets);
  const f = errorFields(e);
  const description = cleanDescription(
    [f.description, f.subtype ? `(${f.subtype})` : ''].filter(Boolean).join(' '),
    secrets,
    MAX_DESCRIPTION,
  );
  if (f.status !== undefined && (f.status >= 500 || f.status === 429)) {
    return new RefreshError('transient', f.error ? `http_${f.status}_${f.error}`.slice(0, 64) : `http_${f.status}`, description || `the token endpoint answered HTTP ${f.status}`, f.status, { cause: e });
  }
  if (f.error) {
    if (f.error === 'invalid_grant' || f.error === 'invalid_rapt') return new RefreshError('invalid_grant', f.error, description, f.status, { cause: e });
    if (f.error === 'invalid_client' || f.error === 'unauthorized_client') return new RefreshError('client', f.error, description, f.status, { cause: e });
    return new RefreshError('transient', f.error.slice(0, 64), description, f.status, { cause: e });
  }
  if (f.status !== undefined) {
    const json = /json/i.test(f.contentType ?? '');
    return new RefreshError(
      'transient',
      json ? `http_${f.status}` : 'non_json',
      json
        ? `the token endpoint answered HTTP ${f.status} without an OAuth error code`
        : `the token endpoint answered HTTP ${f.status} with ${f.contentType || 'no content type'} instead of JSON${f.status === 413 ? ' (the request was too large for it)' : ' (Google does this under too many requests)'}`,
      f.status,
      { cause: e },
    );
  }
  const reason = describeTransport(e);
  const tag = !isTransport(e) ? 'unexpected' : /timed? ?out|timeout/i.test(reason) ? 'timeout' : 'network';
  return new RefreshError('transient', tag, cleanDescription(reason, secrets, MAX_DESCRIPTION), undefined, { cause: e });
}

/** A RefreshError whose texts hold none of `secrets` (the same one when they hold none). */
function scrubbed(e: RefreshError, secrets: readonly (string | null | undefined)[]): RefreshError {
  const error = redactSecrets(e.error, secrets);
  const description = redactSecrets(e.description, secrets);
  if (error === e.error && description === e.description) return e;
  return new RefreshError(e.kind, error, description, e.status);
}

/** A network error or a timeout somewhere in the cause chain (fetch's "fetch failed", a socket error code). */
function isTransport(e: unknown): boolean {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur instanceof Error; i++) {
    const code = (cur as { code?: unknown }).code;
    if (cur.name === 'TimeoutError' || cur.name === 'AbortError' || cur.message === 'fetch failed') return true;
    if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code)) return true;
    cur = cur.cause;
  }
  return false;
}

/** A short reason for a transport-level failure (no URL query, no token). */
export function describeTransport(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const chain: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur instanceof Error; i++) {
    const raw = (cur as { code?: unknown }).code;
    const code = typeof raw === 'string' ? raw : '';
    const name = cur.name === 'TimeoutError' || cur.name === 'AbortError' ? 'timed out' : '';
    chain.push([name, code && !code.startsWith('OAUTH_') ? code : '', cur.message].filter(Boolean).join(' '));
    cur = (cur as Error & { cause?: unknown }).cause;
  }
  return chain.join(': ').slice(0, 300);
}

