// Adding an account: the upsert path shared by the OAuth callback, a pasted
// redirect URL and a refresh-token import (docs/accounts.md, "Adding and
// re-adding"). After the code
// exchange (or the validating refresh of an imported token) the identity is
// read from userinfo, the granted scopes are compared with the requested ones
// (granular consent: still added, missing scopes recorded), and the account
// is upserted by identity.
import { randomUUID } from 'node:crypto';
import type { AccountStore } from '../store/store.ts';
import { AccountSchema, publicAccount, unixNow, type Account, type Token } from '../store/account.ts';
import { RefreshError } from './refresh-error.ts';
import type { Logger } from '../log/logger.ts';
import type { Clock } from '../util/clock.ts';
import { systemClock } from '../util/clock.ts';
import type { ConsentFlows } from './flows.ts';
import type { OAuthClient, TokenAnswer, UserInfo } from './oauth-client.ts';
import { OAuthFlowError, cleanDescription } from './errors.ts';

export interface AddAccountDeps {
  oauth: OAuthClient;
  store: AccountStore;
  /** Needed by completeConsent only. */
  flows?: ConsentFlows;
  clock?: Clock;
  logger?: Logger;
  /**
   * Called after every add with the account as stored (the gateway starts
   * project discovery here). Not awaited; whatever it does never fails the add.
   */
  afterAdd?: (account: Account) => void;
}

export interface AddAccountResult {
  account: ReturnType<typeof publicAccount>;
  created: boolean;
  /** The stored account was `disabled` and the new credentials cleared it. */
  reenabled: boolean;
  /** Requested scopes the user did not grant (granular consent). */
  missing_scopes: string[];
}

/**
 * Finishes a consent from the URL Google redirected the browser to (the
 * callback request, or a URL the user pasted): state check, error
 * parameters, code exchange with the PKCE verifier, then the upsert.
 * Throws OAuthFlowError (code + plain words + fix); nothing is added then.
 */
export async function completeConsent(deps: AddAccountDeps, callbackUrl: string | URL): Promise<AddAccountResult> {
  if (!deps.flows) throw new Error('completeConsent needs the pending consents (deps.flows)');
  const url = parseCallbackUrl(callbackUrl, deps.oauth.redirectUri);
  const params = url.searchParams;
  const ctx = { redirectUri: deps.oauth.redirectUri, clientId: deps.oauth.primaryClientId };

  const state = params.get('state');
  if (!state) {
    // An error without state (e.g. redirect_uri_mismatch shown by Google itself) is still worth explaining.
    const error = params.get('error');
    if (error) throw new OAuthFlowError(error, { ...ctx, description: cleanDescription(params.get('error_description')) });
    throw new OAuthFlowError('state_missing', ctx);
  }
  const taken = await deps.flows.take(state);
  if (!taken.ok) throw new OAuthFlowError(`state_${taken.reason}`, ctx);

  const error = params.get('error');
  if (error) {
    deps.logger?.info({ error }, `Consent ended with ${error}`);
    throw new OAuthFlowError(error, { ...ctx, description: cleanDescription(params.get('error_description')) });
  }
  if (!params.get('code')) throw new OAuthFlowError('missing_code', ctx);

  const answer = await deps.oauth.exchangeCode(url, { state, codeVerifier: taken.flow.codeVerifier });
  const identity = await readIdentity(deps, answer);
  if (!answer.refresh_token) {
    throw new OAuthFlowError('no_refresh_token', { ...ctx, email: identity.email ?? undefined });
  }
  return upsertAccount(deps, answer, identity, answer.refresh_token, 'consent');
}

/**
 * Adds (or re-adds) an account from a refresh token: validated by refreshing
 * it, then the identity is read and the account upserted.
 * Throws OAuthFlowError; nothing is added then.
 */
export async function importRefreshToken(deps: AddAccountDeps, refreshToken: string): Promise<AddAccountResult> {
  const token = refreshToken.trim();
  const ctx = { redirectUri: deps.oauth.redirectUri, clientId: deps.oauth.primaryClientId };
  if (!token) throw new OAuthFlowError('invalid_request', { ...ctx, description: 'the refresh token is empty' });
  let answer: TokenAnswer;
  try {
    answer = await deps.oauth.refreshToken(token);
  } catch (e) {
    if (e instanceof RefreshError) {
      const description = cleanDescription(e.description, [token]);
      const said = `${e.error}${description ? `: ${description}` : ''}`;
      // The issuer answered, but not about the account or the client (a 4xx such as
      // invalid_request for a token it cannot parse): say what it said, not that it is unreachable.
      if (e.kind === 'transient' && answeredRefusal(e)) {
        const size = token.length > 512 ? ` (the token given is ${token.length} characters long)` : '';
        throw new OAuthFlowError('refresh_token_refused', { ...ctx, description: `HTTP ${e.status} ${said}${size}` }, { cause: e });
      }
      if (e.kind === 'transient') throw new OAuthFlowError('issuer_unreachable', { ...ctx, description: said }, { cause: e });
      throw new OAuthFlowError(e.error === 'invalid_rapt' ? 'invalid_grant' : e.error, { ...ctx, description }, { cause: e });
    }
    throw e;
  }
  const identity = await readIdentity(deps, answer);
  return upsertAccount(deps, answer, identity, answer.refresh_token ?? token, 'import');
}

/** Requested scopes missing from the granted ones; Google names email/profile by their long URLs. */
export function missingScopes(requested: readonly string[], granted: string | null): string[] {
  if (granted === null) return [];
  const have = new Set(granted.split(/\s+/).filter(Boolean));
  return requested.filter((s) => !have.has(s) && !(SCOPE_ALIASES[s] && have.has(SCOPE_ALIASES[s])));
}

const SCOPE_ALIASES: Record<string, string> = {
  email: 'https://www.googleapis.com/auth/userinfo.email',
  profile: 'https://www.googleapis.com/auth/userinfo.profile',
  'https://www.googleapis.com/auth/userinfo.email': 'email',
  'https://www.googleapis.com/auth/userinfo.profile': 'profile',
};

async function readIdentity(deps: AddAccountDeps, answer: TokenAnswer): Promise<UserInfo & { email: string }> {
  const info = await deps.oauth.userinfo(answer.access_token, answer.sub);
  if (!info.email) throw new OAuthFlowError('no_email', { redirectUri: deps.oauth.redirectUri });
  return { ...info, email: info.email };
}

async function upsertAccount(
  deps: AddAccountDeps,
  answer: TokenAnswer,
  identity: UserInfo & { email: string },
  refreshToken: string,
  via: 'consent' | 'import',
): Promise<AddAccountResult> {
  const clock = deps.clock ?? systemClock;
  const token: Token = deps.oauth.toToken({ ...answer, refresh_token: refreshToken }, { refresh_token: refreshToken });
  const missing = missingScopes(deps.oauth.scopes, answer.scope);
  let reenabled = false;

  const { account, created } = await deps.store.upsertByIdentity({ sub: identity.sub, email: identity.email }, (existing) => {
    const now = unixNow(clock.now());
    reenabled = false;
    if (!existing) {
      return AccountSchema.parse({
        id: randomUUID().replace(/-/g, ''),
        email: identity.email,
        sub: identity.sub,
        name: identity.name,
        token,
        oauth_client_id: answer.client_id,
        missing_scopes: missing,
        created_at: now,
        refresh_token_at: via === 'consent' ? now : null,
      });
    }
    const next: Account = {
      ...existing,
      email: identity.email,
      sub: identity.sub,
      name: identity.name ?? existing.name,
      token,
      oauth_client_id: answer.client_id,
      missing_scopes: missing,
    };
    // Testing-mode refresh tokens expire 7 days after the consent that issued them (oauth/testing-mode.ts).
    if (existing.token.refresh_token !== token.refresh_token) next.refresh_token_at = via === 'consent' ? now : null;
    const credentialsChanged =
      existing.token.refresh_token !== token.refresh_token || existing.token.access_token !== token.access_token;
    // New credentials answer what Google said about the old ones (security events, docs/security.md).
    if (credentialsChanged) next.security_events = [];
    if (existing.disabled && credentialsChanged) {
      reenabled = true;
      next.disabled = false;
      next.disabled_at = null;
      next.disabled_reason = null;
    }
    return next;
  });

  deps.logger?.info(
    {
      account_id: account.id,
      email: account.email,
      via,
      created,
      reenabled,
      missing_scopes: missing,
      refresh_token_fingerprint: publicAccount(account).token.refresh_token_fingerprint,
    },
    `${created ? 'Account added' : reenabled ? 'Account re-added and re-enabled' : 'Account updated'} (${account.email})`,
  );
  if (deps.afterAdd) {
    try {
      deps.afterAdd(account);
    } catch (e) {
      deps.logger?.warn({ account_id: account.id, email: account.email, err: { message: (e as Error).message } }, 'The after-add hook failed');
    }
  }
  return { account: publicAccount(account), created, reenabled, missing_scopes: missing };
}

function parseCallbackUrl(input: string | URL, redirectUri: string): URL {
  if (input instanceof URL) return input;
  const text = input.trim();
  try {
    return new URL(text);
  } catch {
    // A bare query string ("?code=...&state=...") also works.
    if (/^\??[^\s?#]*(code|state|error)=/.test(text)) {
      const url = new URL(redirectUri);
      url.search = text.startsWith('?') ? text : `?${text}`;
      return url;
    }
    throw new OAuthFlowError('invalid_callback_url', { redirectUri });
  }
}

/** A refresh the token endpoint answered with a 4xx of its own (not 429: too many requests is transient). */
function answeredRefusal(e: RefreshError): boolean {
  return e.status >= 400 && e.status < 500 && e.status !== 429;
}
