// The management API (docs/api.md, "Management API"): JSON under /api, admin token or
// dashboard session. Never answers with a token value.
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Logger } from '../log/logger.ts';
import type { Router, RequestContext } from '../http/router.ts';
import { BadRequest, HttpError, readJson, sendJson } from '../http/http-util.ts';
import { byCreation, publicAccount, type Account } from '../store/account.ts';
import { findAccount, removeAccount, setProxyDisabled } from '../store/account-ops.ts';
import type { AccountState } from '../pool/types.ts';
import { describeLanes, laneInfoOf, laneInfosOf, type AccountLane, type AccountLaneState } from '../pool/lanes.ts';
import { testingModeSuspicion } from '../oauth/testing-mode.ts';
import type { ApiDeps } from './deps.ts';
import type { LoadProgress } from '../store/store.ts';
import { describeForLog, INTERNAL_MESSAGE, isGatewayError } from '../util/errors.ts';
import { registerProjectRoutes } from './project-routes.ts';
import { describeStorageError } from '../fsx/storage-errors.ts';

const API_BODY_LIMIT = 1024 * 1024;
/** Bytes queued for one /api/events client before it is dropped (it reconnects and gets a fresh state). */
const EVENTS_BUFFER_LIMIT = 4 * 1024 * 1024;

const RefreshTokenBody = z.object({ refresh_token: z.string().trim().min(1, 'refresh_token must not be empty') });
const StartBody = z.object({ login_hint: z.string().trim().min(1).optional() }).optional();
const CompleteBody = z.object({ callback_url: z.string().trim().min(1, 'callback_url must not be empty') });
const PatchBody = z.object({ proxy_disabled: z.boolean() });
const KeyBody = z.object({ label: z.string().trim().min(1).max(100).default('key') });

/** The dashboard's live event stream (server-sent events, open as long as a tab is). */
export const EVENTS_PATH = '/api/events';

export type ApiAccount = ReturnType<typeof publicAccount> & {
  state: AccountState;
  usage_today: { requests: number; tokens: number };
  /** The Gemini API quota the account draws on, and whether other accounts share it. */
  lane: AccountLane;
  /** Every lane of the account (its Gemini API lane, then its Vertex AI lane when its project has Vertex AI), each with its state. */
  lanes: AccountLaneState[];
};

export function apiAccount(deps: ApiDeps, account: Account): ApiAccount {
  const lane = deps.accountLane?.(account) ?? { ...laneInfoOf(account), accounts: 1, warning: null };
  const lanes = deps.accountLanes?.(account) ?? laneInfosOf(account).map((info) => ({ ...info, accounts: 1, warning: null, state: { state: 'active' as const } }));
  return { ...publicAccount(account), state: deps.accountState(account), usage_today: deps.usageToday(account.id), lane, lanes };
}

export function statusBody(deps: ApiDeps, accounts: Account[]) {
  const config = deps.config();
  const byState = { active: 0, refreshing: 0, cooling_down: 0, quota_protected: 0, proxy_disabled: 0, disabled: 0 };
  for (const a of accounts) byState[deps.accountState(a).state]++;
  const lanes = describeLanes(accounts);
  return {
    version: deps.version,
    listen_url: deps.listenUrl(),
    public_url: config.public_base_url,
    redirect_uri: config.redirect_uri,
    auth_mode: config.effective_auth_mode,
    auth_mode_reason: config.auth_mode_reason,
    oauth: {
      ...deps.oauthStatus(),
      client_secret_file: config.client_secret_path,
      issuer: config.oauth_issuer,
      scopes: config.scopes,
      /** Accounts that died with invalid_grant about 7 days after their consent: the app is probably in Testing mode. */
      testing_mode: testingModeSuspicion(accounts),
    },
    /** What keeps the gateway from being fully healthy (a full disk, an unreachable database); [] when nothing. */
    problems: deps.problems?.() ?? [],
    /** How tokens are stored at rest (docs/security.md): key ids, counts, and the accounts no key here decrypts. */
    encryption: deps.store.encryption?.() ?? null,
    pool: { total: accounts.length, by_state: byState, lanes: lanes.lanes, shared_lanes: lanes.shared },
    requests_last_hour: deps.requestsSince(Date.now() - 3600_000),
  };
}

async function body<T>(ctx: RequestContext, schema: z.ZodType<T>): Promise<T> {
  const raw = ctx.req.headers['content-length'] === '0' ? undefined : await readJson(ctx.req, API_BODY_LIMIT).catch((e) => {
    if (e instanceof HttpError && e.code === 'invalid_json' && /empty/.test(e.message)) return undefined;
    throw e;
  });
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
    throw new BadRequest(`${where}${issue.message}`);
  }
  return parsed.data;
}

function sendError(res: ServerResponse, status: number, code: string, message: string, fix?: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message, ...(fix ? { fix } : {}) } }, headers);
}

/**
 * The management API's one mapping from an error to an answer: a GatewayError
 * as `{"error":{"code","message","fix"?}}` with its status (and Retry-After);
 * anything else (a library's error, a bug) is logged once with its stack,
 * scrubbed, and answered with a generic 500 that never quotes it.
 */
export function handleApiError(logger: Logger, ctx: RequestContext, e: unknown): void {
  if (isGatewayError(e)) {
    if (ctx.res.headersSent) return void ctx.res.destroy();
    const headers: Record<string, string> = e.retryAfterSeconds !== undefined ? { 'retry-after': String(e.retryAfterSeconds) } : {};
    return sendError(ctx.res, e.status, e.code, e.message, e.fix, headers);
  }
  const storage = describeStorageError(e, 'to the data directory');
  if (storage) {
    logger.error({ err: describeForLog(e), route: ctx.url.pathname }, 'management API: the data directory cannot be written');
    if (ctx.res.headersSent) return void ctx.res.destroy();
    return sendError(ctx.res, 507, 'storage_full', `the change was not saved: the gateway ${storage}`);
  }
  logger.error({ err: describeForLog(e), route: ctx.url.pathname }, 'management API error');
  if (ctx.res.headersSent) return void ctx.res.destroy();
  sendError(ctx.res, 500, 'internal_error', INTERNAL_MESSAGE);
}

export function registerApiRoutes(router: Router, deps: ApiDeps, logger: Logger): void {
  const guarded = (fn: (ctx: RequestContext) => Promise<void>) => async (ctx: RequestContext) => {
    const auth = await deps.authenticate(ctx.req);
    if (!auth.ok) {
      ctx.req.resume();
      if (auth.retryAfterSeconds !== undefined) {
        return sendJson(ctx.res, 429, { error: { code: 'too_many_attempts', message: auth.message } }, { 'retry-after': String(auth.retryAfterSeconds) });
      }
      return sendError(ctx.res, auth.status, auth.status === 401 ? 'unauthenticated' : 'forbidden', auth.message);
    }
    try {
      await fn(ctx);
    } catch (e) {
      handleApiError(logger, ctx, e);
    }
  };
  const on = (method: string, path: string, fn: (ctx: RequestContext) => Promise<void>) => router.on(method, path, guarded(fn));

  // Prometheus scrapes: the admin token, or none with metrics_public.
  router.on('GET', '/metrics', async (ctx) => {
    if (!deps.metrics) return sendError(ctx.res, 404, 'not_found', 'metrics are not available');
    const scrape = async () => {
      const m = await deps.metrics!();
      ctx.res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' }).end(m.text);
    };
    return deps.config().metrics_public ? scrape().catch((e) => handleApiError(logger, ctx, e)) : guarded(scrape)(ctx);
  });

  // Every account, oldest first. While the store still reads its accounts (a large pool just started): what it read so far, and how far it is.
  const current = async (): Promise<{ accounts: Account[]; loading: LoadProgress | null }> => {
    const loading = deps.store.loading?.() ?? null;
    const accounts = loading && deps.store.loadedSoFar ? deps.store.loadedSoFar() : deps.accounts ? deps.accounts() : await deps.store.list();
    return { accounts: accounts.sort(byCreation), loading };
  };

  on('GET', '/api/status', async ({ res }) => {
    const { accounts, loading } = await current();
    sendJson(res, 200, { ...statusBody(deps, accounts), ...(loading ? { loading } : {}) });
  });

  on('GET', '/api/accounts', async ({ res }) => {
    const { accounts, loading } = await current();
    sendJson(res, 200, { accounts: accounts.map((a) => apiAccount(deps, a)), ...(loading ? { loading } : {}) });
  });

  on('GET', '/api/accounts/:id', async ({ res, params }) => {
    const account = await findAccount(deps.store, params.id!);
    sendJson(res, 200, { account: apiAccount(deps, account) });
  });

  on('POST', '/api/accounts', async (ctx) => {
    const { refresh_token } = await body(ctx, RefreshTokenBody);
    const result = await deps.importRefreshToken(refresh_token);
    sendJson(ctx.res, result.created ? 201 : 200, result);
  });

  on('PATCH', '/api/accounts/:id', async (ctx) => {
    const { proxy_disabled } = await body(ctx, PatchBody);
    const account = await findAccount(deps.store, ctx.params.id!);
    const updated = await setProxyDisabled(deps.store, account.id, proxy_disabled, 'manual');
    sendJson(ctx.res, 200, { account: apiAccount(deps, updated) });
  });

  on('DELETE', '/api/accounts/:id', async (ctx) => {
    const account = await findAccount(deps.store, ctx.params.id!);
    const skip = ctx.url.searchParams.get('revoke') === 'false';
    const result = await removeAccount(deps.store, account, skip ? null : deps.revoke);
    logger.info({ account_id: account.id, email: account.email, revocation: result.revocation }, `Account removed (${account.email})`);
    sendJson(ctx.res, 200, { removed: true, revocation: result.revocation, ...(result.revocationError ? { revocation_error: result.revocationError } : {}) });
  });

  on('POST', '/api/oauth/start', async (ctx) => {
    const b = await body(ctx, StartBody);
    sendJson(ctx.res, 200, await deps.startConsent(b?.login_hint));
  });

  on('POST', '/api/oauth/complete', async (ctx) => {
    const { callback_url } = await body(ctx, CompleteBody);
    const result = await deps.completeConsent(callback_url);
    sendJson(ctx.res, result.created ? 201 : 200, result);
  });

  if (deps.projects) registerProjectRoutes(on, { store: deps.store, projects: deps.projects, show: (a) => apiAccount(deps, a) }, body);

  on('GET', '/api/requests', async ({ res, url }) => {
    const q = url.searchParams;
    const limit = Number(q.get('limit') ?? 200);
    sendJson(res, 200, {
      requests: deps.requests({
        account: q.get('account') ?? undefined,
        model: q.get('model') ?? undefined,
        status: q.get('status') ?? undefined,
        protocol: q.get('protocol') ?? undefined,
        limit: Number.isFinite(limit) ? Math.min(Math.max(1, limit), 1000) : 200,
      }),
    });
  });

  on('GET', '/api/risc', async ({ res }) => {
    if (!deps.risc) return sendError(res, 404, 'not_found', 'the security event receiver is not available');
    sendJson(res, 200, await deps.risc());
  });

  on('GET', '/api/usage', async ({ res, url }) => {
    const days = Number(url.searchParams.get('days') ?? 14);
    sendJson(res, 200, { days: await deps.usageDays(Number.isFinite(days) ? Math.min(Math.max(1, days), 90) : 14) });
  });

  on('GET', '/api/keys', async ({ res }) => {
    sendJson(res, 200, { keys: deps.keys.list() });
  });

  on('POST', '/api/keys', async (ctx) => {
    const { label } = await body(ctx, KeyBody.optional().transform((v) => v ?? { label: 'key' }));
    sendJson(ctx.res, 201, await deps.keys.create(label));
  });

  on('DELETE', '/api/keys/:id', async ({ res, params }) => {
    if (!(await deps.keys.revoke(params.id!))) throw new HttpError(404, 'key_not_found', `no API key with id "${params.id}"`);
    sendJson(res, 200, { revoked: true });
  });

  on('GET', '/api/proxy', async ({ res }) => {
    const c = deps.config();
    const base = deps.listenUrl();
    sendJson(res, 200, {
      base_url: base,
      auth_mode: c.effective_auth_mode,
      model_aliases: c.model_aliases,
      model_aliases_resolved: deps.modelAliases?.() ?? Object.entries(c.model_aliases).map(([alias, target]) => ({ alias, target, model: target })),
      endpoints: { openai: `${base}/v1`, anthropic: base, gemini: base, google: `${base}/google` },
    });
  });

  on('POST', '/api/client-secret', async (ctx) => {
    const raw = await readJson(ctx.req, API_BODY_LIMIT);
    sendJson(ctx.res, 200, { ok: true, ...(await deps.saveClientSecret(JSON.stringify(raw))) });
  });

  on('GET', EVENTS_PATH, async ({ req, res }) => {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': connected\n\n');
    const unsubscribe = deps.subscribe((event) => {
      // A client that stopped reading (a laptop asleep) is dropped, not buffered for.
      if (res.writableLength > EVENTS_BUFFER_LIMIT) {
        res.destroy();
        return;
      }
      res.write(`event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
    });
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    ping.unref();
    req.on('close', () => {
      clearInterval(ping);
      unsubscribe();
    });
  });
}
