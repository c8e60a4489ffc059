// One error model for the whole gateway. Every error written for a person
// (a client, the admin, the CLI user) is a GatewayError: an HTTP `status`, a
// machine `code` from the union below, a message in plain words, an optional
// `fix` (what to do about it), an optional `retryAfterSeconds`, and the
// standard `cause` (the error it wraps, kept for the log, never shown).
// Anything thrown that is not a GatewayError is unexpected: the boundaries
// (proxy routes, management API, OAuth callback page, CLI) log it once with
// its stack (see describeForLog) and answer with a generic message.
import { redactSecrets } from './redact.ts';

/** Codes the gateway answers with; the folder that throws each is noted. */
export type ErrorCode =
  // The request itself is wrong (http/, proxy/ doors, api/).
  | 'invalid_request'
  | 'invalid_json'
  | 'invalid_utf8'
  | 'invalid_schema'
  | 'remote_images_disabled'
  | 'body_too_large'
  | 'body_read_error'
  | 'request_timeout'
  | 'not_found'
  | 'model_not_found'
  | 'key_not_found'
  | 'method_not_allowed'
  | 'unauthenticated'
  | 'forbidden'
  | 'keys_from_env'
  | 'oauth_client_not_configured'
  // Accounts and their store (store/).
  | 'account_not_found'
  | 'invalid_account'
  | 'account_exists'
  | 'store_unavailable'
  | 'account_encrypted'
  // No account can serve a request now (pool/).
  | NoAccountCode
  // The proxy's own answers when the upstream failed (proxy/).
  | 'rate_limited'
  | 'upstream_error'
  | 'upstream_unavailable'
  | 'bad_upstream_answer'
  // A token refresh failed (oauth/refresh-error.ts; its `kind` says how).
  | 'refresh_failed'
  // The add-account flow (oauth/errors.ts): Grantpool's own checks and Google's codes.
  | OAuthFlowCode
  // client_secret.json (oauth/client-secret.ts).
  | 'missing'
  | 'invalid'
  // Account projects (projects/).
  | ProjectErrorCode
  // Google's security events (risc/).
  | RiscErrorCode
  // Configuration, files and locks (config/, fsx/).
  | 'config_invalid'
  | 'lock_timeout'
  | 'lock_reentry'
  // The command line (cli/).
  | 'cli_error'
  // The generic answer to an unexpected error.
  | 'internal_error';

/** Choosing, checking and enabling an account's project (projects/). */
export type ProjectErrorCode =
  | 'invalid_project_id'
  | 'project_not_ready'
  | 'project_api_disabled'
  | 'project_scope'
  | 'project_permission'
  | 'project_billing'
  | 'project_not_found'
  | 'project_rate_limited'
  | 'project_timeout'
  | 'project_unavailable'
  | 'project_error'
  | 'account_disabled'
  | 'account_unusable'
  | 'token_refresh_failed';

/** Cross-Account Protection (risc/): the receiver's answers and the RISC management API. */
export type RiscErrorCode =
  | 'invalid_security_event'
  | 'risc_keys_unavailable'
  | 'risc_apply_failed'
  | 'risc_service_account'
  | 'risc_api_error'
  | 'risc_public_url';

/** Why no account can serve a request (pool/types.ts NoAccountError). */
export type NoAccountCode =
  | 'no_accounts'
  | 'loading'
  | 'all_disabled'
  | 'all_cooling_down'
  | 'no_scope'
  | 'no_service'
  | 'client_misconfigured'
  | 'pinned_unknown'
  | 'pinned_unusable'
  | 'exhausted';

/** The codes of the add-account flow that Grantpool explains (oauth/errors.ts). */
export type OAuthFlowCode =
  | 'access_denied'
  | 'admin_policy_enforced'
  | 'disallowed_useragent'
  | 'org_internal'
  | 'invalid_client'
  | 'unauthorized_client'
  | 'invalid_grant'
  | 'redirect_uri_mismatch'
  | 'invalid_scope'
  | 'temporarily_unavailable'
  | 'server_error'
  | 'state_missing'
  | 'state_unknown'
  | 'state_used'
  | 'state_expired'
  | 'missing_code'
  | 'invalid_callback_url'
  | 'no_refresh_token'
  | 'no_email'
  | 'issuer_unreachable'
  | 'refresh_token_refused'
  | 'client_not_configured'
  | GoogleErrorCode;

/**
 * Any other OAuth `error` code Google sends (an open set), cleaned to safe
 * characters by oauth/errors.ts `safeCode`; the brand keeps the rest of the
 * union checkable.
 */
export type GoogleErrorCode = string & { readonly __googleErrorCode: true };

export interface GatewayErrorOptions {
  /** HTTP status of an answer about it (500 when not given). */
  status?: number;
  /** What the user can do about it, in plain words. */
  fix?: string;
  /** Seconds until a retry may work (Retry-After). */
  retryAfterSeconds?: number;
  /** The error this one wraps (logged, never shown). */
  cause?: unknown;
}

/** An error that speaks to the user: its message and fix may be shown as they are. */
export class GatewayError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly fix?: string;
  readonly retryAfterSeconds?: number;
  constructor(code: ErrorCode, message: string, opts: GatewayErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = opts.status ?? 500;
    if (opts.fix) this.fix = opts.fix;
    if (opts.retryAfterSeconds !== undefined) this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}

/** The generic message a client gets for an unexpected error (never its own text). */
export const INTERNAL_MESSAGE = 'The gateway could not complete this request; see its log.';

export interface LoggedError {
  name: string;
  message: string;
  stack?: string;
  /** A Node error code such as ECONNRESET (not `code`: the logger censors that key, an OAuth code's name). */
  error_code?: string;
  cause?: LoggedError;
}

/**
 * A thrown value as a log field: name, message, stack and the chain of
 * causes (at most 4 deep), with secrets removed (the given values, and
 * anything shaped like a Google token or client secret).
 */
export function describeForLog(e: unknown, secrets: readonly (string | null | undefined)[] = [], depth = 0): LoggedError {
  const scrub = (s: string) => redactSecrets(s, secrets);
  if (!(e instanceof Error)) return { name: typeof e, message: scrub(String(e)) };
  const out: LoggedError = { name: e.name, message: scrub(e.message) };
  if (e.stack) out.stack = scrub(e.stack);
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') out.error_code = scrub(code);
  if (e.cause !== undefined && depth < 3) out.cause = describeForLog(e.cause, secrets, depth + 1);
  return out;
}
