// Everything Grantpool says to the OAuth issuer (Google, or a stand-in in
// tests), through openid-client: discovery, consent URL, code exchange,
// refresh, userinfo, revocation. Errors from the token endpoint are classified
// from the OAuth `error` code only (never from the description).
import { isLoopbackHost } from '../util/net.ts';
import * as oidc from 'openid-client';
import type { Account, Token } from '../store/account.ts';
import { unixNow } from '../store/account.ts';
import { RefreshError, type TokenRefresher } from './refresh-error.ts';
import type { Logger } from '../log/logger.ts';
import type { Clock } from '../util/clock.ts';
import { systemClock } from '../util/clock.ts';
import type { ClientSecret } from './client-secret.ts';
import { cleanDescription, OAuthFlowError } from './errors.ts';
import { classifyRefreshError, describeTransport, errorFields, MAX_DESCRIPTION } from './refresh-classify.ts';

export { classifyRefreshError };

export interface OAuthClientOptions {
  /** Issuer URL; endpoints come from its discovery document. */
  issuer: string;
  scopes: readonly string[];
  /** This gateway's redirect URI (`<public url>/oauth2callback`). */
  redirectUri: string;
  /** The first one is used for new consents; accounts are refreshed with the client that issued their token. */
  clients: readonly ClientSecret[];
  logger?: Logger;
  /** Timeout of every request to the issuer. */
  timeoutMs?: number;
  clock?: Clock;
  /** The fetch implementation (global fetch by default). */
  fetch?: typeof fetch;
}

/** A successful token endpoint answer, reduced to what Grantpool keeps. */
export interface TokenAnswer {
  access_token: string;
  /** Null when the answer had none. */
  refresh_token: string | null;
  /** Seconds; null when the answer had none. */
  expires_in: number | null;
  /** Granted scopes; null when the answer had no `scope` (then it equals the requested scopes). */
  scope: string | null;
  token_type: string;
  /** `sub` of the ID token, when there was one. */
  sub: string | null;
  /** The OAuth client that obtained this answer. */
  client_id: string;
}

export interface UserInfo {
  sub: string;
  email: string | null;
  name: string | null;
}

export class OAuthClient implements TokenRefresher {
  readonly issuer: string;
  readonly scopes: readonly string[];
  readonly redirectUri: string;
  private readonly clients: readonly ClientSecret[];
  private readonly logger: Logger | undefined;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly fetchImpl: typeof fetch;
  private readonly insecure: boolean;
  private configs: Promise<Map<string, oidc.Configuration>> | null = null;

  constructor(opts: OAuthClientOptions) {
    if (opts.clients.length === 0) throw new Error('OAuthClient needs at least one OAuth client (client_secret.json)');
    const issuerUrl = new URL(opts.issuer);
    this.insecure = issuerUrl.protocol === 'http:';
    if (this.insecure && !isLoopbackHost(issuerUrl.hostname)) {
      throw new Error(`OAuth issuer ${opts.issuer} must use https (http is accepted only on a loopback address, for local testing)`);
    }
    if (issuerUrl.protocol !== 'http:' && issuerUrl.protocol !== 'https:') {
      throw new Error(`OAuth issuer ${opts.issuer} must be an https URL`);
    }
    this.issuer = opts.issuer;
    this.scopes = [...opts.scopes];
    this.redirectUri = opts.redirectUri;
    this.clients = [...opts.clients];
    this.logger = opts.logger;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.clock = opts.clock ?? systemClock;
    this.fetchImpl = opts.fetch ?? globalThis.fetch;
  }

  /** The client used for new consents. */
  get primaryClientId(): string {
    return this.clients[0]!.client_id;
  }

  /**
   * Discovery, once; a failed discovery is retried by the next call.
   * Throws OAuthFlowError('issuer_unreachable') when the issuer cannot be reached.
   */
  async discover(): Promise<oidc.ServerMetadata> {
    const configs = await this.configurations();
    return configs.get(this.primaryClientId)!.serverMetadata();
  }

  private configurations(): Promise<Map<string, oidc.Configuration>> {
    if (!this.configs) {
      this.configs = this.runDiscovery();
      this.configs.catch(() => {
        this.configs = null;
      });
    }
    return this.configs;
  }

  private async runDiscovery(): Promise<Map<string, oidc.Configuration>> {
    const primary = this.clients[0]!;
    let discovered: oidc.Configuration;
    try {
      discovered = await oidc.discovery(
        new URL(this.issuer),
        primary.client_id,
        { client_secret: primary.client_secret },
        oidc.ClientSecretPost(primary.client_secret),
        { execute: this.insecure ? [oidc.allowInsecureRequests] : [], [oidc.customFetch]: this.timedFetch },
      );
    } catch (e) {
      const reason = describeTransport(e);
      this.logger?.warn({ issuer: this.issuer, reason }, 'OAuth discovery failed');
      throw new OAuthFlowError('issuer_unreachable', { description: `discovery at ${this.issuer} failed: ${reason}` });
    }
    const metadata = discovered.serverMetadata();
    const map = new Map<string, oidc.Configuration>();
    for (const c of this.clients) {
      const config = new oidc.Configuration(metadata, c.client_id, { client_secret: c.client_secret }, oidc.ClientSecretPost(c.client_secret));
      if (this.insecure) oidc.allowInsecureRequests(config);
      config[oidc.customFetch] = this.timedFetch;
      map.set(c.client_id, config);
    }
    this.logger?.debug({ issuer: this.issuer, clients: map.size }, 'OAuth discovery done');
    return map;
  }

  /** fetch with this client's timeout (combined with openid-client's own signal). */
  private timedFetch: oidc.CustomFetch = (url, options) => {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    return this.fetchImpl(url, { ...options, signal } as RequestInit);
  };

  private async configFor(clientId: string | null | undefined): Promise<oidc.Configuration | null> {
    const configs = await this.configurations();
    return configs.get(clientId ?? this.primaryClientId) ?? null;
  }

  /**
   * The consent URL for a new account: response_type=code, the scopes,
   * access_type=offline, prompt=consent, include_granted_scopes=true,
   * optional login_hint, state, PKCE S256.
   */
  async authorizationUrl(p: { state: string; codeChallenge: string; loginHint?: string }): Promise<string> {
    const config = (await this.configFor(null))!;
    const params: Record<string, string> = {
      response_type: 'code',
      redirect_uri: this.redirectUri,
      scope: this.scopes.join(' '),
      access_type: 'offline',
      prompt: 'consent',
      include_granted_scopes: 'true',
      state: p.state,
      code_challenge: p.codeChallenge,
      code_challenge_method: 'S256',
    };
    if (p.loginHint) params.login_hint = p.loginHint;
    return oidc.buildAuthorizationUrl(config, params).href;
  }

  /**
   * Exchanges the code in a callback URL (its query string; the redirect URI
   * sent is always this gateway's) with the PKCE verifier, checking `state`.
   * Throws OAuthFlowError with the issuer's error code.
   */
  async exchangeCode(callback: URL, checks: { state: string; codeVerifier: string }): Promise<TokenAnswer> {
    const config = (await this.configFor(null))!;
    const current = new URL(this.redirectUri);
    current.search = callback.search;
    try {
      const answer = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
      });
      return this.toAnswer(answer, this.primaryClientId);
    } catch (e) {
      throw this.flowError(e, this.secretsWith(callback.searchParams.get('code'), checks.codeVerifier));
    }
  }

  /** TokenRefresher: a new access token for `account`, with the client that issued its refresh token. */
  async refresh(account: Account): Promise<Token> {
    const config = await this.configFor(account.oauth_client_id).catch((e: unknown) => {
      throw new RefreshError('transient', 'discovery', cleanDescription((e as Error).message, [], MAX_DESCRIPTION));
    });
    if (!config) {
      throw new RefreshError(
        'client',
        'unknown_client',
        `the account was added with OAuth client ${account.oauth_client_id}, which is not in client_secret.json; add that client back, or re-add the account`,
      );
    }
    const answer = await this.refreshWith(config, account.token.refresh_token);
    return this.toToken(answer, account.token);
  }

  /**
   * Refreshes a bare refresh token (imports). Tries the primary client, then
   * the others when the primary says the token is not its own. Throws RefreshError.
   */
  async refreshToken(refreshToken: string): Promise<TokenAnswer> {
    const configs = await this.configurations().catch((e: unknown) => {
      throw new RefreshError('transient', 'discovery', cleanDescription((e as Error).message, [], MAX_DESCRIPTION));
    });
    let first: unknown;
    for (const config of configs.values()) {
      try {
        return await this.refreshWith(config, refreshToken);
      } catch (e) {
        first ??= e;
        const kind = (e as RefreshError).kind;
        if (kind === 'transient') throw e;
      }
    }
    throw first;
  }

  /**
   * A Token (the account file's shape) from an answer. Keeps the previous
   * refresh token when the answer has none, and the previous scope (else the
   * requested scopes) when the answer names none.
   */
  toToken(answer: TokenAnswer, previous: { refresh_token: string; scope?: string }): Token {
    return {
      access_token: answer.access_token,
      refresh_token: answer.refresh_token ?? previous.refresh_token,
      expiry_timestamp: unixNow(this.clock.now()) + (answer.expires_in ?? 3600),
      token_type: answer.token_type,
      scope: answer.scope ?? (previous.scope || this.scopes.join(' ')),
    };
  }

  private async refreshWith(config: oidc.Configuration, refreshToken: string): Promise<TokenAnswer> {
    try {
      const answer = await oidc.refreshTokenGrant(config, refreshToken);
      return this.toAnswer(answer, config.clientMetadata().client_id);
    } catch (e) {
      throw classifyRefreshError(e, this.secretsWith(refreshToken));
    }
  }

  /** The identity behind an access token (userinfo endpoint). */
  async userinfo(accessToken: string, expectedSub?: string | null): Promise<UserInfo> {
    const config = (await this.configFor(null))!;
    let info: oidc.UserInfoResponse;
    try {
      info = await oidc.fetchUserInfo(config, accessToken, expectedSub ?? oidc.skipSubjectCheck);
    } catch (e) {
      throw this.flowError(e, this.secretsWith(accessToken));
    }
    return {
      sub: String(info.sub),
      email: typeof info.email === 'string' && info.email ? info.email : null,
      name: typeof info.name === 'string' && info.name ? info.name : null,
    };
  }

  /**
   * Revokes a refresh token at the issuer's revocation endpoint (RFC 7009),
   * with the client that issued it. A token the issuer no longer knows
   * counts as done ('already_revoked'). Throws an Error (no token in it) otherwise.
   */
  async revoke(refreshToken: string, clientId: string | null): Promise<'revoked' | 'already_revoked'> {
    const config = (await this.configFor(clientId)) ?? (await this.configFor(null))!;
    if (!config.serverMetadata().revocation_endpoint) {
      throw new Error(`the issuer ${this.issuer} has no revocation endpoint; revoke the access at https://myaccount.google.com/permissions`);
    }
    try {
      await oidc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
      return 'revoked';
    } catch (e) {
      const err = errorFields(e);
      if (err.error === 'invalid_token' || err.error === 'invalid_grant') return 'already_revoked';
      const what = err.error ? `${err.error}${err.description ? `: ${err.description}` : ''}` : describeTransport(e);
      throw new Error(`revocation at the issuer failed (${cleanDescription(what, this.secretsWith(refreshToken))})`);
    }
  }

  private toAnswer(answer: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, clientId: string): TokenAnswer {
    let sub: string | null = null;
    try {
      sub = answer.claims()?.sub ?? null;
    } catch {
      sub = null;
    }
    const tokenType = String(answer.token_type ?? 'Bearer');
    return {
      access_token: answer.access_token,
      refresh_token: typeof answer.refresh_token === 'string' && answer.refresh_token ? answer.refresh_token : null,
      expires_in: typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : null,
      scope: typeof answer.scope === 'string' ? answer.scope : null,
      token_type: tokenType.toLowerCase() === 'bearer' ? 'Bearer' : tokenType,
      sub,
      client_id: clientId,
    };
  }

  /** Values that must never appear in an error or a log line: the given ones and every client secret. */
  private secretsWith(...values: (string | null)[]): string[] {
    return [...values.filter((v): v is string => !!v), ...this.clients.map((c) => c.client_secret)];
  }

  /** An OAuthFlowError for a failure in the consent path (code exchange, userinfo). */
  private flowError(e: unknown, secrets: string[]): OAuthFlowError {
    if (e instanceof OAuthFlowError) return e;
    const err = errorFields(e);
    const ctx = { redirectUri: this.redirectUri, clientId: this.primaryClientId };
    if (err.error && !(err.status !== undefined && (err.status >= 500 || err.status === 429))) {
      return new OAuthFlowError(err.error, { ...ctx, description: cleanDescription(err.description, secrets) });
    }
    const reason = cleanDescription(err.status !== undefined ? `HTTP ${err.status}${err.error ? ` ${err.error}` : ''}` : describeTransport(e), secrets);
    this.logger?.warn({ reason }, 'OAuth request to the issuer failed');
    return new OAuthFlowError('issuer_unreachable', { ...ctx, description: reason });
  }
}
