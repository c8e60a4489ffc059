// A real OpenID Connect issuer (oidc-provider) on 127.0.0.1, configured like
// accounts.google.com for a confidential "Web application" client:
// - discovery, authorization code flow with PKCE (S256), client_secret_post;
// - `access_type=offline` yields a refresh token without the offline_access
//   scope; `login_hint` is accepted; `include_granted_scopes=true` is
//   Google's incremental authorization: the consent page lists only the
//   scopes the user has not yet granted this client (the rest are named as
//   already granted), and the new tokens carry the union of the earlier
//   grants and this one (of the scopes requested);
// - no refresh-token rotation (a refresh answer carries no refresh_token);
// - token answers carry `scope`; custom scopes (cloud-platform, generative-language.retriever);
// - userinfo with sub / email / name;
// - RFC 7009 revocation, answering an unknown or revoked token the way Google
//   does (400 invalid_token);
// - a revoked or expired refresh token gets invalid_grant with Google's
//   description "Token has been expired or revoked.".
//
// Consent happens on this issuer's own interaction page (/interaction/<uid>):
// a small HTML form (email prefilled from login_hint, one checkbox per scope,
// "Allow" and "Deny"), which a browser can click through and `consent()`
// drives headlessly over HTTP. Test hooks: revokeUser, failTokenEndpoint, counters.
//
// Cross-Account Protection (RISC) like Google's: /.well-known/risc-configuration
// (issuer with a trailing slash, as Google's is; jwks_uri = the certs the ID
// tokens use), and security event tokens signed with a key in that set
// (`securityEvent`), a key that can be rotated, and one that is never published.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
export const RETRIEVER = 'https://www.googleapis.com/auth/generative-language.retriever';
export const GOOGLE_LIKE_SCOPES = ['openid', 'email', 'profile', CLOUD_PLATFORM, RETRIEVER];

const EXPIRED_OR_REVOKED = 'Token has been expired or revoked.';

export interface IssuerUser {
  sub: string;
  email: string;
  name: string;
}

export interface ConsentOptions {
  email: string;
  /** Scopes the user grants (granular consent); default: every requested scope. */
  grantScopes?: string[];
  /** The user clicks "Deny": the redirect carries error=access_denied. */
  deny?: boolean;
  /** The token answer for this consent carries no refresh_token. */
  omitRefreshToken?: boolean;
}

export type TokenEndpointFailure = null | '500' | 'html403' | 'invalid_client';

export interface StandInIssuer {
  /** The issuer URL (http://127.0.0.1:<port>), for GRANTPOOL_OAUTH_ISSUER. */
  url: string;
  client: { client_id: string; client_secret: string };
  /** Registers another OAuth client (as if a second one were created in the Cloud console). */
  addClient(): { client_id: string; client_secret: string };
  /** Writes a Google-style client file ({"web": {...}}) of `which` (default: `client`) and allows `redirectUri`. */
  writeClientSecret(path: string, redirectUri: string, which?: { client_id: string; client_secret: string }): Promise<void>;
  /** Allows another redirect URI for the client (writeClientSecret does this too). */
  allowRedirectUri(redirectUri: string): void;
  addUser(user: { email: string; name?: string }): IssuerUser;
  /**
   * Follows a consent URL as a user would (login as `email`, allow or deny) and
   * returns the final redirect URL to the client (with code&state, or
   * error=access_denied) WITHOUT fetching it.
   */
  consent(authUrl: string | URL, opts: ConsentOptions): Promise<string>;
  /** Revokes every grant of this user: their refresh tokens then get invalid_grant. */
  revokeUser(email: string): void;
  /** Makes the token endpoint fail in a Google-like way until set back to null. */
  failTokenEndpoint(mode: TokenEndpointFailure): void;
  /**
   * Holds every token request that arrives from now on (as a slow Google
   * would) until `release()`: `arrived` resolves when the first one is held.
   */
  holdTokenRequests(): { arrived: Promise<void>; release(): void };
  /** Whether the refresh token is still valid at the issuer. */
  refreshTokenIsActive(refreshToken: string): Promise<boolean>;
  /** Who a live access token belongs to and the scopes it carries (null: unknown, expired or revoked). */
  tokenInfo(accessToken: string): Promise<{ sub: string; email: string; scopes: string[] } | null>;
  counters: { tokenRequests: number; refreshRequests: number; revocations: number; riscConfigRequests: number; jwksRequests: number };
  /** GRANTPOOL_RISC_CONFIG_URL for this issuer. */
  riscConfigUrl: string;
  /** The `issuer` of the RISC configuration (the issuer URL with a trailing slash, as Google's "https://accounts.google.com/"). */
  riscIssuer: string;
  /**
   * A signed security event token as Google sends it: `events` (event type URI
   * to its body), `aud` the client id, a fresh `jti`, `iat` now, no `exp`.
   * `key`: 'current' (published), 'unpublished' (a kid nobody knows);
   * `claims` overrides any claim (iss, aud, jti).
   */
  securityEvent(events: Record<string, unknown>, opts?: { key?: 'current' | 'unpublished'; claims?: Record<string, unknown> }): Promise<string>;
  /** Publishes a new RISC signing key and signs with it from now on (the old one stays published). */
  rotateRiscKey(): Promise<void>;
  /** Makes the RISC configuration document and the key set answer 503 (true) or normally (false). */
  failRisc(down: boolean): void;
  close(): Promise<void>;
}

interface Stored {
  payload: Record<string, unknown>;
  expiresAt: number | null;
}

/** Minimal oidc-provider adapter over one Map per issuer, so tests can reach in (revokeUser). */
function adapterFactory(storage: Map<string, Stored>, clientPayload: (id: string) => Record<string, unknown> | undefined) {
  return (model: string) => {
    const key = (id: string) => `${model}:${id}`;
    const live = (k: string): Stored | undefined => {
      const entry = storage.get(k);
      if (!entry) return undefined;
      if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
        storage.delete(k);
        return undefined;
      }
      return entry;
    };
    return {
      async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
        storage.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null });
      },
      async find(id: string) {
        if (model === 'Client') return clientPayload(id);
        return live(key(id))?.payload;
      },
      async findByUid(uid: string) {
        for (const [k, v] of storage) if (k.startsWith(`${model}:`) && v.payload.uid === uid && live(k)) return v.payload;
        return undefined;
      },
      async findByUserCode(userCode: string) {
        for (const [k, v] of storage) if (k.startsWith(`${model}:`) && v.payload.userCode === userCode && live(k)) return v.payload;
        return undefined;
      },
      async consume(id: string) {
        const entry = live(key(id));
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id: string) {
        storage.delete(key(id));
      },
      async revokeByGrantId(grantId: string) {
        for (const [k, v] of storage) if (k.startsWith(`${model}:`) && v.payload.grantId === grantId) storage.delete(k);
      },
    };
  };
}

export async function startIssuer(opts: { accessTokenTtlSeconds?: number } = {}): Promise<StandInIssuer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuerUrl = `http://127.0.0.1:${port}`;

  const client = {
    client_id: `${randomBytes(6).toString('hex')}-standin.apps.googleusercontent.com`,
    client_secret: `GOCSPX-${randomBytes(18).toString('base64url')}`,
  };
  const redirectUris = new Set<string>();
  const users = new Map<string, IssuerUser>(); // by lower-case email
  const grantMeta = new Map<string, { offline: boolean; omitRefreshToken: boolean }>();
  const storage = new Map<string, Stored>();
  const counters = { tokenRequests: 0, refreshRequests: 0, revocations: 0, riscConfigRequests: 0, jwksRequests: 0 };
  let failure: TokenEndpointFailure = null;
  let hold: { gate: Promise<void>; arrived: () => void } | null = null;
  /** Set by consent() for the next interaction submit of that uid. */
  const pendingOmit = new Set<string>();

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: randomUUID() };

  const publicJwk = (k: JWK): JWK => {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = k;
    return pub;
  };
  interface SigningKey {
    kid: string;
    privateKey: CryptoKey;
    jwk: JWK;
  }
  const newSigningKey = async (): Promise<SigningKey> => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const kid = randomBytes(20).toString('hex');
    return { kid, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), alg: 'RS256', use: 'sig', kid } };
  };
  const riscKeys: SigningKey[] = [await newSigningKey()];
  const unpublishedKey = await newSigningKey();
  const riscIssuer = `${issuerUrl}/`;
  let riscDown = false;

  const newClient = () => ({
    client_id: `${randomBytes(6).toString('hex')}-standin.apps.googleusercontent.com`,
    client_secret: `GOCSPX-${randomBytes(18).toString('base64url')}`,
  });
  const clients = new Map([[client.client_id, client]]);
  const clientPayload = (id: string) =>
    clients.has(id)
      ? {
          client_id: id,
          client_secret: clients.get(id)!.client_secret,
          redirect_uris: [...redirectUris].sort(),
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_post',
          application_type: 'web',
        }
      : undefined;

  const userBySub = (sub: string) => [...users.values()].find((u) => u.sub === sub);

  function addUser(u: { email: string; name?: string }): IssuerUser {
    const existing = users.get(u.email.toLowerCase());
    if (existing) {
      if (u.name) existing.name = u.name;
      return existing;
    }
    const user: IssuerUser = {
      // Google subjects are long decimal strings.
      sub: String(100000000000000000000n + BigInt(`0x${randomBytes(8).toString('hex')}`)),
      email: u.email,
      name: u.name ?? u.email.split('@')[0]!,
    };
    users.set(u.email.toLowerCase(), user);
    return user;
  }

  const provider = new Provider(issuerUrl, {
    adapter: adapterFactory(storage, clientPayload),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    routes: {
      authorization: '/o/oauth2/v2/auth',
      token: '/token',
      revocation: '/revoke',
      userinfo: '/v1/userinfo',
      jwks: '/oauth2/v3/certs',
    },
    scopes: GOOGLE_LIKE_SCOPES,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    extraParams: ['access_type', 'include_granted_scopes'],
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true, allowedPolicy: async () => true },
      userinfo: { enabled: true },
    },
    pkce: { required: () => false },
    clientBasedCORS: () => false,
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx: unknown, sub: string) {
      const user = userBySub(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, email: user.email, email_verified: true, name: user.name };
        },
      };
    },
    // Google: access_type=offline (plus consent) gives a refresh token; offline_access is not a Google scope.
    async issueRefreshToken(_ctx: unknown, c: { grantTypeAllowed(t: string): boolean }, source: { grantId?: string; kind?: string }) {
      if (!c.grantTypeAllowed('refresh_token')) return false;
      if (source.kind === 'RefreshToken') return false;
      const meta = source.grantId ? grantMeta.get(source.grantId) : undefined;
      return Boolean(meta?.offline && !meta.omitRefreshToken);
    },
    rotateRefreshToken: false,
    expiresWithSession: async () => false,
    ttl: {
      AccessToken: opts.accessTokenTtlSeconds ?? 3599,
      AuthorizationCode: 600,
      IdToken: 3600,
      Interaction: 3600,
      Grant: 365 * 24 * 3600,
      RefreshToken: 365 * 24 * 3600,
      Session: 24 * 3600,
    },
    async renderError(ctx: { type: string; body: string }, out: Record<string, string>) {
      ctx.type = 'html';
      ctx.body = page('Error', `<main data-outcome="error"><h1>${esc(out.error ?? 'error')}</h1><p>${esc(out.error_description ?? '')}</p></main>`);
    },
  });

  // Token endpoint: counters, injected failures, Google's invalid_grant wording.
  // Revocation endpoint: Google answers an unknown/revoked token with 400 invalid_token.
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/token') {
      if (hold) {
        hold.arrived();
        await hold.gate;
      }
      counters.tokenRequests++;
      if (failure) {
        const raw = await readRaw(ctx.req);
        if (new URLSearchParams(raw).get('grant_type') === 'refresh_token') counters.refreshRequests++;
        failTokenRequest(ctx, failure);
        return;
      }
      await next();
      const oidc = (ctx as unknown as { oidc?: { params?: { grant_type?: string } } }).oidc;
      const grantType = oidc?.params?.grant_type;
      if (grantType === 'refresh_token') {
        counters.refreshRequests++;
        const body = ctx.body as { error?: string; refresh_token?: string } | undefined;
        if (body && typeof body === 'object' && body.error === 'invalid_grant') {
          ctx.body = { error: 'invalid_grant', error_description: EXPIRED_OR_REVOKED };
        } else if (body && typeof body === 'object' && ctx.status === 200) {
          // Google does not rotate refresh tokens: the refresh answer has none.
          delete body.refresh_token;
        }
      }
      return;
    }
    if (ctx.method === 'POST' && ctx.path === '/revoke') {
      await next();
      const entities = (ctx as unknown as { oidc?: { entities?: Record<string, unknown> } }).oidc?.entities ?? {};
      if (ctx.status === 200) {
        if (entities.RefreshToken || entities.AccessToken) counters.revocations++;
        else {
          ctx.status = 400;
          ctx.body = { error: 'invalid_token', error_description: 'Token expired or revoked' };
        }
      }
      return;
    }
    await next();
  });

  function failTokenRequest(ctx: { status: number; type: string; body: unknown }, mode: Exclude<TokenEndpointFailure, null>) {
    if (mode === '500') {
      ctx.status = 500;
      ctx.type = 'json';
      ctx.body = { error: 'internal_failure', error_description: 'Backend Error' };
    } else if (mode === 'html403') {
      ctx.status = 403;
      ctx.type = 'html';
      ctx.body = '<html><head><title>Sorry...</title></head><body><h1>We\'re sorry...</h1><p>... but your computer or network may be sending automated queries.</p></body></html>';
    } else {
      ctx.status = 401;
      ctx.type = 'json';
      ctx.body = { error: 'invalid_client', error_description: 'The OAuth client was not found.' };
    }
  }

  const providerHandler = provider.callback();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', issuerUrl).pathname;
    // Google serves the RISC configuration, and one key set for ID tokens and security events.
    if (req.method === 'GET' && (path === '/.well-known/risc-configuration' || path === '/oauth2/v3/certs')) {
      const isConfig = path === '/.well-known/risc-configuration';
      if (isConfig) counters.riscConfigRequests++;
      else counters.jwksRequests++;
      if (riscDown) {
        res.writeHead(503, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<html><body>Service Unavailable</body></html>');
        return;
      }
      const body = isConfig
        ? {
            issuer: riscIssuer,
            jwks_uri: `${issuerUrl}/oauth2/v3/certs`,
            delivery_methods_supported: ['https://schemas.openid.net/secevent/risc/delivery-method/push'],
            add_subject_endpoint: 'https://risc.googleapis.com/v1beta/subjects:add',
            remove_subject_endpoint: 'https://risc.googleapis.com/v1beta/subjects:remove',
          }
        : { keys: [publicJwk(jwk as JWK), ...riscKeys.map((k) => k.jwk)] };
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'cache-control': 'public, max-age=3600' });
      res.end(JSON.stringify(body));
      return;
    }
    const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(path);
    if (m) {
      handleInteraction(req, res, m[1]!).catch((e: Error) => {
        if (!res.headersSent) {
          res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
          res.end(page('Error', `<main data-outcome="error"><h1>Sign-in failed</h1><p>${esc(e.message)}</p></main>`));
        } else res.end();
      });
      return;
    }
    providerHandler(req, res);
  });

  interface Details {
    uid: string;
    prompt: { name: string };
    params: Record<string, string | undefined>;
  }

  async function handleInteraction(req: IncomingMessage, res: ServerResponse, uid: string) {
    const details = (await provider.interactionDetails(req, res)) as unknown as Details;
    if (details.uid !== uid) throw new Error('interaction mismatch');
    const requested = (details.params.scope ?? '').split(' ').filter(Boolean);
    const incremental = details.params.include_granted_scopes === 'true';

    if (req.method === 'GET') {
      const hinted = details.params.login_hint ? users.get(details.params.login_hint.toLowerCase()) : undefined;
      const already = incremental && hinted ? grantedBefore(hinted.sub, details.params.client_id!) : new Set<string>();
      const boxes = requested
        .filter((s) => !already.has(s))
        .map((s) => `<label><input type="checkbox" name="scope" value="${esc(s)}" checked> ${esc(s)}</label><br>`)
        .join('\n');
      const kept = requested.filter((s) => already.has(s));
      const keptHtml = kept.length ? `<p data-granted-before>Already granted: ${kept.map(esc).join(' ')}</p>` : '';
      const html = page(
        'Sign in - Stand-in Google',
        `<main data-outcome="consent">
<h1>Sign in to continue to ${esc(details.params.client_id ?? '')}</h1>
<form method="post" action="/interaction/${esc(uid)}">
<p><label>Email <input type="email" name="email" required value="${esc(details.params.login_hint ?? '')}"></label></p>
${keptHtml}
<fieldset><legend>Allow access to</legend>
${boxes}
</fieldset>
<p><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button></p>
</form>
</main>`,
      );
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'GET, POST' });
      res.end();
      return;
    }

    const form = new URLSearchParams(await readRaw(req));
    if (form.get('decision') === 'deny') {
      await provider.interactionFinished(req, res, { error: 'access_denied' }, { mergeWithLastSubmission: false });
      return;
    }
    const email = (form.get('email') ?? '').trim();
    if (!email.includes('@')) throw new Error('enter an email address');
    const user = addUser({ email });
    const granted = form.getAll('scope').filter((s) => requested.includes(s));
    if (!granted.includes('openid') && requested.includes('openid')) granted.unshift('openid');
    if (incremental) for (const s of grantedBefore(user.sub, details.params.client_id!)) if (requested.includes(s) && !granted.includes(s)) granted.push(s);
    const rejected = requested.filter((s) => !granted.includes(s));

    const grant = new provider.Grant({ accountId: user.sub, clientId: details.params.client_id! });
    grant.addOIDCScope(granted.join(' '));
    if (rejected.length) grant.rejectOIDCScope(rejected.join(' '));
    const grantId = await grant.save();
    grantMeta.set(grantId, {
      offline: details.params.access_type === 'offline',
      omitRefreshToken: pendingOmit.delete(uid),
    });
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  async function consent(authUrl: string | URL, o: ConsentOptions): Promise<string> {
    const jar = new Map<string, string>();
    const send = async (url: string, init: RequestInit = {}) => {
      const headers = new Headers(init.headers);
      if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
      const r = await fetch(url, { ...init, headers, redirect: 'manual' });
      for (const c of r.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') jar.delete(name);
        else jar.set(name, value);
      }
      return r;
    };
    const location = async (r: Response, from: string) => {
      const loc = r.headers.get('location');
      if (r.status < 300 || r.status >= 400 || !loc) {
        throw new Error(`stand-in issuer: expected a redirect from ${from}, got ${r.status}: ${(await r.text()).slice(0, 300)}`);
      }
      return new URL(loc, issuerUrl).href;
    };

    const start = String(authUrl);
    const toInteraction = await location(await send(start), 'the authorization endpoint');
    if (!toInteraction.startsWith(`${issuerUrl}/interaction/`)) return toInteraction; // error redirect straight to the client
    const uid = new URL(toInteraction).pathname.split('/').pop()!;
    const form = await send(toInteraction);
    const html = await form.text();
    if (form.status !== 200) throw new Error(`stand-in issuer: interaction page answered ${form.status}: ${html.slice(0, 300)}`);
    const requested = [...html.matchAll(/name="scope" value="([^"]*)"/g)].map((m) => unesc(m[1]!));

    const body = new URLSearchParams({ email: o.email, decision: o.deny ? 'deny' : 'allow' });
    for (const s of o.grantScopes ?? requested) body.append('scope', s);
    if (o.omitRefreshToken) pendingOmit.add(uid);
    const toResume = await location(
      await send(toInteraction, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      'the interaction page',
    );
    let next = toResume;
    // The resume endpoint may hop within the issuer before redirecting to the client.
    for (let hops = 0; hops < 5 && next.startsWith(issuerUrl); hops++) {
      next = await location(await send(next), next);
    }
    return next;
  }

  /** The scopes `sub` granted `clientId` in grants still live (what incremental authorization adds to). */
  function grantedBefore(sub: string, clientId: string): Set<string> {
    const out = new Set<string>();
    for (const [k, v] of storage) {
      if (!k.startsWith('Grant:') || v.payload.accountId !== sub || v.payload.clientId !== clientId) continue;
      if (v.expiresAt !== null && v.expiresAt <= Date.now()) continue;
      const scope = (v.payload.openid as { scope?: string } | undefined)?.scope ?? '';
      for (const s of scope.split(' ').filter(Boolean)) out.add(s);
    }
    return out;
  }

  function revokeUser(email: string) {
    const user = users.get(email.toLowerCase());
    if (!user) return;
    for (const [k, v] of storage) {
      const model = k.slice(0, k.indexOf(':'));
      if (['Grant', 'RefreshToken', 'AccessToken', 'AuthorizationCode', 'Session'].includes(model) && v.payload.accountId === user.sub) {
        storage.delete(k);
      }
    }
  }

  async function refreshTokenIsActive(refreshToken: string): Promise<boolean> {
    const rt = await provider.RefreshToken.find(refreshToken);
    if (!rt || rt.isExpired) return false;
    return Boolean(await provider.Grant.find(rt.grantId as string));
  }

  return {
    url: issuerUrl,
    client,
    addClient() {
      const c = newClient();
      clients.set(c.client_id, c);
      return c;
    },
    async writeClientSecret(path, redirectUri, which = client) {
      redirectUris.add(redirectUri);
      const file = {
        web: {
          client_id: which.client_id,
          project_id: 'grantpool-standin',
          auth_uri: `${issuerUrl}/o/oauth2/v2/auth`,
          token_uri: `${issuerUrl}/token`,
          client_secret: which.client_secret,
          redirect_uris: [...redirectUris],
        },
      };
      await writeFile(path, JSON.stringify(file, null, 2), { mode: 0o600 });
    },
    allowRedirectUri(uri) {
      redirectUris.add(uri);
    },
    addUser,
    consent,
    revokeUser,
    failTokenEndpoint(mode) {
      failure = mode;
    },
    holdTokenRequests() {
      let arrived!: () => void;
      let release!: () => void;
      const onArrival = new Promise<void>((r) => (arrived = r));
      const gate = new Promise<void>((r) => (release = r));
      const mine = { gate, arrived };
      hold = mine;
      return {
        arrived: onArrival,
        release: () => {
          if (hold === mine) hold = null;
          release();
        },
      };
    },
    refreshTokenIsActive,
    async tokenInfo(accessToken) {
      const at = await provider.AccessToken.find(accessToken);
      if (!at || at.isExpired) return null;
      if (at.grantId && !(await provider.Grant.find(at.grantId as string))) return null;
      const user = userBySub(String(at.accountId));
      if (!user) return null;
      return { sub: user.sub, email: user.email, scopes: String(at.scope ?? '').split(' ').filter(Boolean) };
    },
    counters,
    riscConfigUrl: `${issuerUrl}/.well-known/risc-configuration`,
    riscIssuer,
    async securityEvent(events, o = {}) {
      const key = o.key === 'unpublished' ? unpublishedKey : riscKeys.at(-1)!;
      const claims = { iss: riscIssuer, aud: client.client_id, iat: Math.floor(Date.now() / 1000), jti: randomBytes(16).toString('hex'), events, ...o.claims };
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'secevent+jwt' }).sign(key.privateKey);
    },
    async rotateRiscKey() {
      riscKeys.push(await newSigningKey());
    },
    failRisc(down) {
      riscDown = down;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readRaw(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function unesc(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}button{margin-right:.5rem}</style>
</head><body>${body}</body></html>`;
}
