// Plain-words explanations (what happened, what to do) for every error Google
// can send to the callback or the token endpoint, and for Grantpool's own
// checks in the consent flow. Used by the callback page, the management API
// and the CLI alike.
import { redactSecrets } from '../util/redact.ts';
import { GatewayError, type GoogleErrorCode, type OAuthFlowCode } from '../util/errors.ts';
import { truncate } from '../util/text.ts';

export interface ErrorContext {
  /** The redirect URI this gateway uses (`<public url>/oauth2callback`). */
  redirectUri?: string;
  /** The OAuth client's id (never the secret). */
  clientId?: string;
  /** Google's `error_description`, already free of secrets. */
  description?: string;
  /** The account the flow was about, when known. */
  email?: string;
}

export interface Explanation {
  /** One short line. */
  title: string;
  /** What happened, in plain words. */
  explanation: string;
  /** What to do about it. */
  fix: string;
  /** HTTP status for a page or API answer about it. */
  status: number;
}

const PERMISSIONS_PAGE = 'https://myaccount.google.com/permissions';
const CREDENTIALS_PAGE = 'Google Cloud console > "APIs & Services" > "Credentials"';

type Explainer = (c: ErrorContext) => Omit<Explanation, 'status'> & { status?: number };

const EXPLAIN: Record<string, Explainer> = {
  access_denied: () => ({
    title: 'Access was not granted',
    explanation: 'The Google account holder clicked "Cancel" or "Deny" on the consent screen (or closed it), so Google sent no authorization.',
    fix: 'Start "add account" again and click "Allow" on Google\'s consent screen. If your OAuth consent screen is in "Testing", the account must also be listed under "Test users".',
  }),
  admin_policy_enforced: () => ({
    title: 'Blocked by the Google Workspace administrator',
    explanation: "The account's Google Workspace administrator does not allow this OAuth client to use one or more of the requested scopes.",
    fix: 'Ask the Workspace administrator to trust this OAuth client (Admin console > Security > API controls > App access control), or use a different Google account.',
  }),
  disallowed_useragent: () => ({
    title: 'This browser is not allowed by Google',
    explanation: 'Google refuses to show its sign-in page inside an embedded browser (a web view inside another app).',
    fix: 'Copy the consent link and open it in a regular browser (Chrome, Firefox, Safari, Edge).',
  }),
  org_internal: () => ({
    title: 'The OAuth client is limited to one organisation',
    explanation: 'The OAuth consent screen of this client has the user type "Internal", so only accounts of its own Google Cloud organisation may sign in.',
    fix: 'Sign in with an account of that organisation, or change the user type to "External" in Google Cloud console > "APIs & Services" > "OAuth consent screen" (and add the account as a test user while the app is in "Testing").',
  }),
  invalid_client: (c) => ({
    title: 'Google does not accept the OAuth client',
    explanation: `Google says the OAuth client${c.clientId ? ` ${c.clientId}` : ''} does not exist or its client secret is wrong (for example the client was deleted or its secret was reset).`,
    fix: `Download the client JSON again from ${CREDENTIALS_PAGE} and replace client_secret.json (or upload it in the dashboard), then add the account again.`,
    status: 502,
  }),
  unauthorized_client: (c) => ({
    title: 'The OAuth client may not do this',
    explanation: `Google says the OAuth client${c.clientId ? ` ${c.clientId}` : ''} is not allowed to use this grant (for example the token belongs to a different client, or the client type is wrong).`,
    fix: `Use an OAuth client of type "Web application" from ${CREDENTIALS_PAGE}, and make sure refresh tokens are imported with the client that issued them.`,
    status: 502,
  }),
  invalid_grant: () => ({
    title: 'The authorization is no longer valid',
    explanation: 'Google refused the authorization code or refresh token: it has expired, was already used, was revoked, or was issued to a different OAuth client.',
    fix: 'Add the account again (start a new consent; an authorization code works only once and only for a few minutes).',
  }),
  redirect_uri_mismatch: (c) => ({
    title: 'The redirect URI is not registered for this OAuth client',
    explanation: `Google only redirects to URIs listed for the OAuth client. This gateway uses ${c.redirectUri ? `the redirect URI ${c.redirectUri}` : 'the redirect URI <public url>/oauth2callback'}, and it is not in the client's "Authorized redirect URIs".`,
    fix: `In ${CREDENTIALS_PAGE}, open the OAuth client${c.clientId ? ` ${c.clientId}` : ''} (type "Web application"), add ${c.redirectUri ?? 'the redirect URI'} exactly (scheme, host, port and path) under "Authorized redirect URIs", save, wait a few minutes and try again. If the gateway is reached under another address, set GRANTPOOL_PUBLIC_URL.`,
  }),
  invalid_request: () => ({
    title: 'Google refused the request as malformed',
    explanation: 'The request to Google was missing a parameter, had a malformed one, or used a method Google does not support for this client.',
    fix: 'Check that client_secret.json is the JSON of a "Web application" client, and that GRANTPOOL_OAUTH_ISSUER points at https://accounts.google.com; then start again.',
  }),
  invalid_scope: () => ({
    title: 'Google does not accept the requested scopes',
    explanation: 'One of the configured scopes is unknown to Google or not allowed for this OAuth client.',
    fix: 'Check the "scopes" list in config.json against the scopes of the OAuth consent screen in the Google Cloud console.',
  }),
  temporarily_unavailable: () => ({
    title: 'Google is temporarily unavailable',
    explanation: 'Google could not handle the request right now.',
    fix: 'Wait a minute and add the account again.',
    status: 503,
  }),
  server_error: () => ({
    title: 'Google had an internal error',
    explanation: 'Google could not handle the request because of an error on its side.',
    fix: 'Wait a minute and add the account again.',
    status: 502,
  }),

  // Grantpool's own checks.
  state_missing: () => ({
    title: 'This is not a complete sign-in answer',
    explanation: 'The address has no "state" parameter, so it cannot be matched to a sign-in started by this gateway. Nothing was added.',
    fix: 'Copy the whole address from the browser\'s address bar after Google redirected you (it starts with the redirect URI and contains code= and state=), or start "add account" again.',
  }),
  state_unknown: () => ({
    title: 'This sign-in was not started here',
    explanation: 'The "state" in the address does not belong to any sign-in started by this gateway (or the gateway was restarted since). Nothing was added.',
    fix: 'Start "add account" again from this gateway (dashboard, `grantpool accounts add` or POST /api/oauth/start) and finish it within 10 minutes.',
  }),
  state_used: () => ({
    title: 'This sign-in was already finished',
    explanation: 'The answer for this sign-in has already been used once (for example the page was reloaded). Nothing new was added.',
    fix: 'Check the account list; to add the account again, start a new "add account".',
  }),
  state_expired: () => ({
    title: 'This sign-in took too long',
    explanation: 'A sign-in must be finished within 10 minutes of starting it. Nothing was added.',
    fix: 'Start "add account" again and finish it within 10 minutes.',
  }),
  missing_code: () => ({
    title: 'Google sent no authorization code',
    explanation: 'The address has neither a "code" nor an "error" parameter. Nothing was added.',
    fix: 'Copy the whole address from the browser\'s address bar after Google redirected you, or start "add account" again.',
  }),
  invalid_callback_url: () => ({
    title: 'This is not a redirect URL',
    explanation: 'The text given is not the URL Google redirected the browser to.',
    fix: 'Copy the whole address from the browser\'s address bar after Google redirected you; it starts with the redirect URI and contains code= and state=.',
  }),
  no_refresh_token: (c) => ({
    title: 'Google sent no refresh token',
    explanation: `Google granted access${c.email ? ` for ${c.email}` : ''} but did not send a refresh token, so the gateway could not keep the account signed in. Nothing was added. Google does this when the app already has access to the account.`,
    fix: `Remove this app's access at ${PERMISSIONS_PAGE} (signed in as that account), then add the account again.`,
  }),
  no_email: () => ({
    title: 'Google did not share the email address',
    explanation: 'The account was signed in, but its email address was not shared, and the gateway identifies accounts by it. Nothing was added.',
    fix: 'Add the account again and allow "See your primary Google Account email address" (the "email" scope must be in the configured scopes).',
  }),
  refresh_token_refused: () => ({
    title: 'Google refused this refresh token',
    explanation: 'Google answered the refresh with an error, so the token cannot be used. Nothing was added.',
    fix: 'Check that the whole refresh token was given and nothing else (a Google refresh token is about 100 characters and starts with "1//"), or add the account with a consent instead.',
  }),
  issuer_unreachable: () => ({
    title: 'Google could not be reached',
    explanation: 'The gateway could not talk to Google\'s OAuth endpoints (network error, timeout, or an answer that was not the expected JSON).',
    fix: 'Check the network connection (and any HTTPS proxy) of the machine running the gateway, then try again.',
    status: 502,
  }),
  client_not_configured: () => ({
    title: 'No OAuth client is configured',
    explanation: 'The gateway has no client_secret.json, so it cannot start a Google sign-in.',
    fix: `Create an OAuth client of type "Web application" in ${CREDENTIALS_PAGE}, download its JSON and save it as client_secret.json in the data directory (or upload it in the dashboard).`,
    status: 503,
  }),
};

/** The explanation for an OAuth `error` code (or one of Grantpool's own codes); unknown codes get a generic one. */
export function explainOAuthError(code: string, ctx: ErrorContext = {}): Explanation {
  const explainer = Object.hasOwn(EXPLAIN, code) ? EXPLAIN[code]! : null;
  if (explainer) {
    const e = explainer(ctx);
    return { status: 400, ...e };
  }
  const described = ctx.description ? ` (${ctx.description})` : '';
  return {
    title: 'Google reported an error',
    explanation: `Google answered with the error "${safeCode(code)}"${described}. Nothing was added.`,
    fix: 'Start "add account" again. If it keeps happening, check the OAuth client in the Google Cloud console and the gateway log.',
    status: 400,
  };
}

/** An error in the add-account path, with a code and plain words; never contains a token. */
export class OAuthFlowError extends GatewayError {
  declare readonly code: OAuthFlowCode;
  readonly title: string;
  readonly explanation: string;
  declare readonly fix: string;
  /** Google's error_description, when there was one. */
  readonly description: string;
  constructor(code: string, ctx: ErrorContext = {}, opts: { cause?: unknown } = {}) {
    const e = explainOAuthError(code, ctx);
    super(
      safeCode(code) as GoogleErrorCode,
      `${e.title}: ${e.explanation}${ctx.description && !e.explanation.includes(ctx.description) ? ` Google said: "${ctx.description}".` : ''}`,
      { status: e.status, fix: e.fix, cause: opts.cause },
    );
    this.title = e.title;
    this.explanation = e.explanation;
    this.description = ctx.description ?? '';
  }

  /** The JSON body for the management API. */
  toJSON() {
    return { error: this.code, title: this.title, message: this.explanation, fix: this.fix, ...(this.description ? { description: this.description } : {}) };
  }
}

/** An error code as it may be shown: short and of safe characters only. */
export function safeCode(code: string): string {
  const cleaned = code.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 64);
  return cleaned || 'unknown';
}

/**
 * Makes an issuer's description safe to show and store: removes the given
 * secrets, control characters, and cuts it to `max` characters.
 */
export function cleanDescription(text: string | undefined | null, secrets: readonly (string | undefined | null)[] = [], max = 300): string {
  if (!text) return '';
  let t = redactSecrets(String(text), secrets);
  t = t.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return truncate(t, max);
}
