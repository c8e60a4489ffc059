// A small stand-in for the gateway's management API (/tmp/helpers/API.md) with
// canned data, plus the real dashboard routes and sessions, for developing and
// testing the dashboard without the whole gateway. Its accounts hold token
// values (like the real store) so that tests can check none reaches a page.
import type { RequestLogEntry } from '../../src/proxy/request-log.ts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Router, type RequestContext } from '../../src/http/router.ts';
import { HttpError, readBody, readJson, sendHtml, sendJson } from '../../src/http/http-util.ts';
import type { ErrorCode } from '../../src/util/errors.ts';
import { AccountSchema, publicAccount, type Account } from '../../src/store/account.ts';
import type { AccountState } from '../../src/pool/types.ts';
import { createDashboardSessions, type DashboardSessions } from '../../src/dashboard/session.ts';
import { registerDashboardRoutes } from '../../src/dashboard/routes.ts';
import { systemClock, type Clock } from '../../src/util/clock.ts';

export interface FakeAccount {
  account: Account;
  state: AccountState;
  usage_today: { requests: number; tokens: number };
}

/** A request log entry, exactly as the real API serves it. */
export type FakeRequest = RequestLogEntry;

export interface FakeGatewayOptions {
  adminToken?: string;
  /** Whether an OAuth client is configured (default true). */
  configured?: boolean;
  /** Start with the canned accounts (default true). */
  seed?: boolean;
  clock?: Clock;
  /** Disable /api/events (to exercise the polling fallback). */
  noEvents?: boolean;
}

export interface FakeGateway {
  url: string;
  adminToken: string;
  sessions: DashboardSessions;
  accounts: Map<string, FakeAccount>;
  requests: FakeRequest[];
  /** Every token value the fake holds (accounts' tokens, client secret, admin token): none may reach a page. */
  secrets(): string[];
  /** Calls the API received, as "METHOD /path" (for asserting what the dashboard did). */
  calls: string[];
  setState(id: string, state: AccountState): void;
  /** Simulates Google revoking the refresh token: the account turns disabled with invalid_grant. */
  revoke(id: string): void;
  /** Google's security event about the account, as the gateway's receiver applies it (recorded; disabled with `disable`). */
  securityEvent(id: string, event: string, opts?: { reason?: string; disable?: boolean }): void;
  setClientFailing(failing: boolean): void;
  addRequest(entry: Partial<FakeRequest>): void;
  close(): Promise<void>;
}

const SCOPES = [
  'openid',
  'email',
  'profile',
  'https://www.googleapis.com/auth/cloud-platform',
  'https://www.googleapis.com/auth/generative-language.retriever',
];
const CLIENT_ID = '1234567890-fakeclient.apps.googleusercontent.com';
const MODELS = ['gemini-2.5-flash', 'gemini-2.5-pro', 'gemini-2.5-flash-lite'];

function secret(prefix: string): string {
  return `${prefix}${randomBytes(18).toString('base64url')}`;
}

export async function startFakeGateway(opts: FakeGatewayOptions = {}): Promise<FakeGateway> {
  const clock = opts.clock ?? systemClock;
  const adminToken = opts.adminToken ?? secret('admin-');
  const nowS = () => Math.floor(clock.now() / 1000);
  let configured = opts.configured ?? true;
  let clientFailing = false;
  const clientSecret = secret('GOCSPX-');
  const accounts = new Map<string, FakeAccount>();
  const requests: FakeRequest[] = [];
  const keys: { id: string; label: string; key: string; created_at: number }[] = [
    { id: 'k1', label: 'default', key: secret('gp-'), created_at: nowS() - 86400 * 3 },
  ];
  const calls: string[] = [];
  const listeners = new Set<ServerResponse>();
  const pendingConsents = new Map<string, { loginHint: string | null; code: string | null }>();
  let counter = 0;

  // Defaults (not disabled, no project, ...) come from the account schema, as for a file on disk.
  const makeAccount = (email: string, name: string, extra: Partial<Account> = {}): Account =>
    AccountSchema.parse({
      id: `acc_${(++counter).toString().padStart(3, '0')}`,
      email,
      sub: `sub-${counter}`,
      name,
      token: {
        access_token: secret('ya29.fake-'),
        refresh_token: secret('1//fake-'),
        expiry_timestamp: nowS() + 3000,
        token_type: 'Bearer',
        scope: SCOPES.join(' '),
      },
      oauth_client_id: CLIENT_ID,
      created_at: nowS() - 86400 * 5,
      ...extra,
    });

  const put = (account: Account, state: AccountState, usage = { requests: 0, tokens: 0 }): FakeAccount => {
    const fa = { account, state, usage_today: usage };
    accounts.set(account.id, fa);
    return fa;
  };

  const stateOf = (fa: FakeAccount): AccountState => {
    if (fa.account.disabled) return { state: 'disabled', reason: fa.account.disabled_reason ?? 'disabled' };
    if (fa.account.proxy_disabled) return { state: 'proxy_disabled', reason: fa.account.proxy_disabled_reason ?? 'taken out of the proxy' };
    return fa.state.state === 'disabled' || fa.state.state === 'proxy_disabled' ? { state: 'active' } : fa.state;
  };

  const view = (fa: FakeAccount) => ({ ...publicAccount(fa.account), state: stateOf(fa), usage_today: fa.usage_today });

  if (opts.seed ?? true) {
    const now = nowS();
    put(makeAccount('alice@example.com', 'Alice Martin', { last_used: now - 40 }), { state: 'active' }, { requests: 148, tokens: 412_330 });
    put(makeAccount('bob@example.com', 'Bob Chen', { last_used: now - 300 }), {
      state: 'cooling_down', until: now + 420, reason: '429 RESOURCE_EXHAUSTED: per-minute request limit', model: 'gemini-2.5-pro',
    }, { requests: 96, tokens: 287_004 });
    put(makeAccount('carol@example.com', 'Carol Díaz', { last_used: now - 1800 }), {
      state: 'quota_protected', model: 'gemini-2.5-pro', until: now + 3600 * 5,
    }, { requests: 210, tokens: 1_204_551 });
    put(makeAccount('dave@example.com', 'Dave Okafor', {
      last_used: now - 86400, proxy_disabled: true, proxy_disabled_at: now - 7200,
      proxy_disabled_reason: 'upstream 403 PERMISSION_DENIED: Generative Language API has not been used in project 1234 or it is disabled',
    }), { state: 'active' }, { requests: 0, tokens: 0 });
    put(makeAccount('erin@example.com', 'Erin Walsh', {
      last_used: now - 86400 * 2, disabled: true, disabled_at: now - 3600 * 9,
      disabled_reason: 'invalid_grant: Token has been expired or revoked.',
    }), { state: 'active' }, { requests: 0, tokens: 0 });
    put(makeAccount('frank@example.org', 'Frank Ito', {
      last_used: now - 90, missing_scopes: ['https://www.googleapis.com/auth/generative-language.retriever'],
    }), { state: 'refreshing' }, { requests: 31, tokens: 88_120 });

    const list = [...accounts.values()];
    const protocols: [string, string][] = [
      ['openai', '/v1/chat/completions'], ['anthropic', '/v1/messages'], ['gemini', '/v1beta/models/gemini-2.5-flash:generateContent'], ['google', '/google/v1/projects'],
    ];
    for (let i = 0; i < 40; i++) {
      const fa = list[i % 4]!;
      const [protocol, route] = protocols[i % protocols.length]!;
      const status = i % 11 === 3 ? 429 : i % 13 === 5 ? 503 : i % 17 === 7 ? 401 : 200;
      requests.push({
        time: clock.now() - i * 47_000,
        route,
        protocol,
        model_requested: protocol === 'anthropic' ? 'claude-sonnet-4-5' : protocol === 'openai' ? 'gpt-4o' : MODELS[i % 3]!,
        model_used: MODELS[i % 3]!,
        account_id: fa.account.id,
        email: fa.account.email,
        status,
        latency_ms: 380 + ((i * 137) % 2400),
        first_byte_ms: 120 + ((i * 53) % 600),
        tokens_in: status === 200 ? 900 + ((i * 311) % 4000) : 0,
        tokens_out: status === 200 ? 120 + ((i * 97) % 1500) : 0,
        retries: status === 200 && i % 5 === 0 ? 1 : 0,
        error: status === 429 ? 'all accounts cooling down for gemini-2.5-pro; retry in 42 s' : status === 503 ? 'upstream 503 UNAVAILABLE' : status === 401 ? 'missing API key' : null,
      });
    }
  }

  const usageDays = (days: number) => {
    const out: { date: string; account_id: string; email: string; model: string; requests: number; tokens_in: number; tokens_out: number }[] = [];
    const list = [...accounts.values()].filter((fa) => !fa.account.disabled).slice(0, 4);
    for (let d = 0; d < days; d++) {
      const date = new Date(clock.now() - d * 86400_000);
      const iso = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
      list.forEach((fa, ai) => {
        MODELS.forEach((model, mi) => {
          const n = Math.max(0, Math.round(40 + 30 * Math.sin((d + ai * 3 + mi) / 2) - ai * 6 - mi * 12));
          if (!n) return;
          out.push({ date: iso, account_id: fa.account.id, email: fa.account.email, model, requests: n, tokens_in: n * 1800, tokens_out: n * 420 });
        });
      });
    }
    return out;
  };

  const broadcast = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of listeners) res.write(frame);
  };
  /** Like the gateway: only what changed, {changed: [account...], removed: [id...]}. */
  const emitAccounts = (id: string): void => {
    const fa = accounts.get(id);
    broadcast('accounts', fa ? { changed: [view(fa)], removed: [] } : { changed: [], removed: [id] });
  };

  const sessions = createDashboardSessions({ adminToken: () => adminToken, clock });
  const router = new Router();
  registerDashboardRoutes(router, { sessions });

  const apiError = (status: number, code: string, message: string, fix?: string) => {
    // The stand-in has codes of its own (the real API's are ErrorCode).
    const e = new HttpError(status, code as ErrorCode, message) as HttpError & { fix?: string };
    if (fix) e.fix = fix;
    return e;
  };

  const find = (id: string): FakeAccount => {
    const fa = accounts.get(id);
    if (!fa) throw apiError(404, 'not_found', `No account with id ${id}.`);
    return fa;
  };

  const addOrReenable = (email: string, name: string) => {
    const existing = [...accounts.values()].find((fa) => fa.account.email === email);
    if (existing) {
      const wasDisabled = existing.account.disabled;
      existing.account.token.refresh_token = secret('1//fake-');
      existing.account.token.access_token = secret('ya29.fake-');
      existing.account.disabled = false;
      existing.account.disabled_at = null;
      existing.account.disabled_reason = null;
      existing.state = { state: 'active' };
      emitAccounts(existing.account.id);
      return { account: view(existing), created: false, reenabled: wasDisabled, missing_scopes: [] as string[] };
    }
    const fa = put(makeAccount(email, name, { created_at: nowS() }), { state: 'active' });
    emitAccounts(fa.account.id);
    return { account: view(fa), created: true, reenabled: false, missing_scopes: [] as string[] };
  };

  const api = (method: string, path: string, handler: (ctx: RequestContext) => Promise<void> | void) => {
    router.on(method, path, async (ctx) => {
      calls.push(`${method} ${ctx.url.pathname}`);
      const auth = sessions.authenticate(ctx.req);
      if (!auth.ok) {
        ctx.req.resume();
        return sendJson(ctx.res, auth.status, { error: { code: auth.status === 401 ? 'unauthenticated' : 'forbidden', message: auth.message } });
      }
      try {
        await handler(ctx);
      } catch (e) {
        const err = e as HttpError & { fix?: string };
        const status = err instanceof HttpError ? err.status : 500;
        sendJson(ctx.res, status, { error: { code: err.code ?? 'internal', message: err.message, ...(err.fix ? { fix: err.fix } : {}) } });
      }
    });
  };

  let baseUrl = '';

  api('GET', '/api/status', ({ res }) => {
    const byState = { active: 0, refreshing: 0, cooling_down: 0, quota_protected: 0, proxy_disabled: 0, disabled: 0 };
    for (const fa of accounts.values()) byState[stateOf(fa).state] += 1;
    sendJson(res, 200, {
      version: '0.1.0',
      listen_url: baseUrl,
      public_url: baseUrl,
      redirect_uri: `${baseUrl}/oauth2callback`,
      auth_mode: 'auto',
      oauth: {
        configured,
        problem: null,
        fix: null,
        client_secret_file: '/home/op/.grantpool/client_secret.json',
        issuer: 'https://accounts.google.com',
        scopes: SCOPES,
        clients: configured
          ? [{
            client_id: CLIENT_ID,
            failing: clientFailing,
            error: clientFailing ? 'invalid_client: The OAuth client was deleted.' : null,
            fix: clientFailing ? 'Create a new OAuth client (Web application) in the Google Cloud console and upload its client_secret.json on the Setup page.' : null,
            since: clientFailing ? nowS() - 600 : null,
          }]
          : [],
      },
      pool: { total: accounts.size, by_state: byState },
      requests_last_hour: requests.filter((r) => r.time > clock.now() - 3600_000).length,
    });
  });

  api('GET', '/api/accounts', ({ res }) => sendJson(res, 200, { accounts: [...accounts.values()].map(view) }));
  api('GET', '/api/accounts/:id', ({ res, params }) => sendJson(res, 200, { account: view(find(params.id!)) }));

  api('POST', '/api/accounts', async ({ req, res }) => {
    const body = (await readJson(req, 64 * 1024)) as { refresh_token?: unknown };
    const rt = typeof body?.refresh_token === 'string' ? body.refresh_token : '';
    if (!rt.startsWith('1//')) {
      throw apiError(400, 'invalid_grant', 'Google refused this refresh token (invalid_grant: Bad Request).',
        'Use a refresh token issued to this gateway\'s OAuth client; it usually starts with 1//.');
    }
    const r = addOrReenable(`imported${++counter}@example.com`, 'Imported Account');
    sendJson(res, r.created ? 201 : 200, r);
  });

  api('POST', '/api/oauth/start', async ({ req, res }) => {
    if (!configured) throw apiError(409, 'oauth_not_configured', 'No OAuth client is configured.', 'Upload client_secret.json on the Setup page.');
    const body = (await readJson(req, 64 * 1024).catch(() => ({}))) as { login_hint?: unknown };
    const state = randomBytes(12).toString('base64url');
    const loginHint = typeof body?.login_hint === 'string' ? body.login_hint : null;
    pendingConsents.set(state, { loginHint, code: null });
    const u = new URL(`${baseUrl}/fake-google/consent`);
    u.searchParams.set('state', state);
    if (loginHint) u.searchParams.set('login_hint', loginHint);
    sendJson(res, 200, { auth_url: u.toString() });
  });

  api('POST', '/api/oauth/complete', async ({ req, res }) => {
    const body = (await readJson(req, 64 * 1024)) as { callback_url?: unknown };
    let u: URL;
    try {
      u = new URL(String(body?.callback_url ?? ''));
    } catch {
      throw apiError(400, 'invalid_callback_url', 'That is not a URL.', 'Paste the whole address from the browser\'s address bar.');
    }
    const pending = pendingConsents.get(u.searchParams.get('state') ?? '');
    if (!pending || !pending.code || pending.code !== u.searchParams.get('code')) {
      throw apiError(400, 'unknown_state', 'This redirect URL does not belong to a consent started here, or it was already used.',
        'Start again with Add with Google.');
    }
    pendingConsents.delete(u.searchParams.get('state')!);
    sendJson(res, 200, addOrReenable(pending.loginHint ?? `new${++counter}@example.com`, 'New Account'));
  });

  api('PATCH', '/api/accounts/:id', async ({ req, res, params }) => {
    const fa = find(params.id!);
    const body = (await readJson(req, 64 * 1024)) as { proxy_disabled?: unknown };
    if (typeof body?.proxy_disabled !== 'boolean') throw apiError(400, 'invalid_body', 'Send {"proxy_disabled": true|false}.');
    fa.account.proxy_disabled = body.proxy_disabled;
    fa.account.proxy_disabled_at = body.proxy_disabled ? nowS() : null;
    fa.account.proxy_disabled_reason = body.proxy_disabled ? 'taken out of the proxy from the dashboard' : null;
    emitAccounts(fa.account.id);
    sendJson(res, 200, { account: view(fa) });
  });

  api('DELETE', '/api/accounts/:id', ({ res, params, url }) => {
    const fa = find(params.id!);
    accounts.delete(fa.account.id);
    emitAccounts(fa.account.id);
    sendJson(res, 200, { removed: true, revocation: url.searchParams.get('revoke') === 'false' ? 'skipped' : fa.account.disabled ? 'already_revoked' : 'revoked' });
  });

  api('GET', '/api/requests', ({ res, url }) => {
    const q = url.searchParams;
    const limit = Math.min(500, Number(q.get('limit') ?? 100) || 100);
    const status = q.get('status');
    const out = requests.filter((r) => {
      if (q.get('account') && r.account_id !== q.get('account')) return false;
      if (q.get('protocol') && r.protocol !== q.get('protocol')) return false;
      if (q.get('model') && !`${r.model_requested} ${r.model_used}`.includes(q.get('model')!)) return false;
      if (status) {
        if (/^\dxx$/.test(status)) return Math.floor(r.status / 100) === Number(status[0]);
        return r.status === Number(status);
      }
      return true;
    });
    sendJson(res, 200, { requests: out.slice(0, limit) });
  });

  api('GET', '/api/usage', ({ res, url }) => sendJson(res, 200, { days: usageDays(Math.min(90, Number(url.searchParams.get('days') ?? 14) || 14)) }));

  api('GET', '/api/keys', ({ res }) =>
    sendJson(res, 200, { keys: keys.map((k) => ({ id: k.id, label: k.label, prefix: k.key.slice(0, 6), created_at: k.created_at })) }));
  api('POST', '/api/keys', async ({ req, res }) => {
    const body = (await readJson(req, 64 * 1024)) as { label?: unknown };
    const label = typeof body?.label === 'string' && body.label.trim() ? body.label.trim() : 'default';
    const k = { id: `k${keys.length + 1}${randomBytes(3).toString('hex')}`, label, key: secret('gp-'), created_at: nowS() };
    keys.push(k);
    sendJson(res, 201, { id: k.id, label: k.label, key: k.key });
  });
  api('DELETE', '/api/keys/:id', ({ res, params }) => {
    const i = keys.findIndex((k) => k.id === params.id);
    if (i < 0) throw apiError(404, 'not_found', 'No such key.');
    keys.splice(i, 1);
    sendJson(res, 200, { revoked: true });
  });

  api('GET', '/api/proxy', ({ res }) => sendJson(res, 200, {
    base_url: baseUrl,
    auth_mode: 'auto',
    model_aliases: { 'claude-opus-*': 'gemini-2.5-pro', 'claude-sonnet-*': 'gemini-2.5-flash', 'claude-*': 'gemini-2.5-flash', 'gpt-*': 'gemini-2.5-flash' },
    endpoints: { openai: `${baseUrl}/v1`, anthropic: `${baseUrl}/v1/messages`, gemini: `${baseUrl}/v1beta`, google: `${baseUrl}/google` },
  }));

  api('POST', '/api/client-secret', async ({ req, res }) => {
    const text = (await readBody(req, 64 * 1024)).toString('utf8');
    let obj: { web?: { client_id?: string; client_secret?: string }; installed?: { client_id?: string; client_secret?: string } };
    try {
      obj = JSON.parse(text);
    } catch {
      throw apiError(400, 'invalid_client_secret', 'The file is not JSON.');
    }
    const inner = obj.web ?? obj.installed;
    if (!inner?.client_id || !inner.client_secret) throw apiError(400, 'invalid_client_secret', 'The file has no web or installed client.');
    configured = true;
    sendJson(res, 200, { ok: true, client_id: inner.client_id });
  });

  api('GET', '/api/events', ({ req, res }) => {
    if (opts.noEvents) return sendJson(res, 503, { error: { code: 'unavailable', message: 'events are off in this fake' } });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': connected\n\n');
    listeners.add(res);
    req.on('close', () => listeners.delete(res));
  });

  // The fake "Google consent page" and callback that auth_url leads to.
  router.on('GET', '/fake-google/consent', ({ res, url }) => {
    const state = url.searchParams.get('state') ?? '';
    const hint = url.searchParams.get('login_hint') ?? '';
    sendHtml(res, 200, `<!doctype html><title>Fake consent</title><h1>Fake Google consent</h1><p>${hint ? 'Account: ' + hint.replace(/[<>&"]/g, '') : 'New account'}</p>
<form method="post" action="/fake-google/allow"><input type="hidden" name="state" value="${state.replace(/[^A-Za-z0-9_-]/g, '')}"><button type="submit">Allow</button></form>`);
  });
  router.on('POST', '/fake-google/allow', async ({ req, res }) => {
    const form = new URLSearchParams((await readBody(req, 4096)).toString('utf8'));
    const state = form.get('state') ?? '';
    const pending = pendingConsents.get(state);
    if (!pending) return sendHtml(res, 400, '<p>unknown state</p>');
    pending.code = randomBytes(8).toString('hex');
    res.writeHead(303, { location: `/oauth2callback?state=${state}&code=${pending.code}` });
    res.end();
  });
  router.on('GET', '/oauth2callback', ({ res, url }) => {
    const pending = pendingConsents.get(url.searchParams.get('state') ?? '');
    if (!pending || pending.code !== url.searchParams.get('code')) return sendHtml(res, 400, '<p>This consent link is unknown or used.</p>');
    pendingConsents.delete(url.searchParams.get('state')!);
    const r = addOrReenable(pending.loginHint ?? `new${++counter}@example.com`, 'New Account');
    sendHtml(res, 200, `<!doctype html><title>Done</title><p>${r.account.email.replace(/[<>&]/g, '')} added. You can close this tab.</p>`);
  });

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = router.match(req.method ?? 'GET', url.pathname);
    if (!m) return sendJson(res, 404, { error: { code: 'not_found', message: 'no such route' } });
    if (!('handler' in m)) return sendJson(res, 405, { error: { code: 'method_not_allowed', message: `allowed: ${m.allowed.join(', ')}` } });
    Promise.resolve(m.handler({ req, res, url, params: m.params })).catch((e) => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal', message: (e as Error).message } });
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    adminToken,
    sessions,
    accounts,
    requests,
    calls,
    secrets: () => [
      adminToken,
      clientSecret,
      ...[...accounts.values()].flatMap((fa) => [fa.account.token.access_token, fa.account.token.refresh_token]),
    ],
    setState(id, state) {
      find(id).state = state;
      emitAccounts(id);
    },
    revoke(id) {
      const fa = find(id);
      fa.account.disabled = true;
      fa.account.disabled_at = nowS();
      fa.account.disabled_reason = 'invalid_grant: Token has been expired or revoked.';
      emitAccounts(id);
    },
    securityEvent(id, event, o = {}) {
      const fa = find(id);
      fa.account.security_events = [{ event, received_at: nowS(), reason: o.reason ?? null }, ...fa.account.security_events];
      if (o.disable) {
        fa.account.disabled = true;
        fa.account.disabled_at = nowS();
        fa.account.disabled_reason = `risc: ${event}${o.reason ? ` (${o.reason})` : ''}`;
      }
      emitAccounts(id);
    },
    setClientFailing(failing) {
      clientFailing = failing;
    },
    addRequest(entry) {
      const r: FakeRequest = {
        time: clock.now(), route: '/v1/chat/completions', protocol: 'openai', model_requested: 'gpt-4o', model_used: 'gemini-2.5-flash',
        account_id: null, email: null, status: 200, latency_ms: 500, first_byte_ms: 200, tokens_in: 10, tokens_out: 20, retries: 0, error: null,
        ...entry,
      };
      requests.unshift(r);
      broadcast('request', r);
    },
    async close() {
      for (const res of listeners) res.end();
      listeners.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
