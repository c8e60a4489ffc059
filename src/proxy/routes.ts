// Every proxy route of docs/api.md on the Router: health, model lists, the
// OpenAI (https://platform.openai.com/docs/api-reference/chat,
// https://platform.openai.com/docs/api-reference/responses), Anthropic
// (https://docs.anthropic.com/en/api/messages) and Gemini
// (https://ai.google.dev/api/generate-content) doors, and the Google API
// pass-through. Each route checks the proxy API key per the auth mode and
// answers every error, bad input included, in its own protocol's shape
// (never a bare 500): routes/context.ts guarded().
//
// This file is the route table; each family's handlers are in routes/
// (models, gemini, translated, claude, google, fallbacks), the shared checks in
// route-checks.ts and the work in exchange/.
import type { Router, RequestContext } from '../http/router.ts';
import { sendJsonBody, type Protocol } from './engine.ts';
import { aliasesFor } from './models.ts';
import { isGoogleClient } from './route-checks.ts';
import { createRouteContext, type Handler, type ProxyRouteDeps } from './routes/context.ts';
import { modelRoutes } from './routes/models.ts';
import { geminiGenerate } from './routes/gemini.ts';
import { translated } from './routes/translated.ts';
import { anthropicMessages } from './routes/claude.ts';
import { googlePassthrough } from './routes/google.ts';
import { preflightOnly, unknownRoute } from './routes/fallbacks.ts';

export type { ProxyConfig, ProxyRouteDeps } from './routes/context.ts';

/** The health check a load balancer polls. */
export const HEALTH_PATH = '/healthz';

export interface ProxyRoutes {
  /** Closes the upstream client if it was created here. */
  close(): Promise<void>;
  /** Every model alias, its target as configured and the model it resolves to now (for the dashboard). */
  aliases(): { alias: string; target: string; model: string }[];
}

export function registerProxyRoutes(router: Router, deps: ProxyRouteDeps): ProxyRoutes {
  const rc = createRouteContext(deps);
  const { guarded } = rc;
  const models = modelRoutes(rc);

  // Every proxy path also answers CORS preflights (in guarded()), for browser apps that hold a key.
  const preflight = preflightOnly(rc);
  const withPreflight = new Set<string>();
  const on = (method: string, path: string, handler: Handler) => {
    router.on(method, path, handler);
    if (method !== 'ANY' && !withPreflight.has(path)) {
      withPreflight.add(path);
      router.on('OPTIONS', path, preflight);
    }
  };
  const health = ({ res }: RequestContext) => sendJsonBody(res, 200, { status: 'ok', ...(deps.health?.() ?? {}) });
  const v1Protocol = (ctx: RequestContext): Protocol => (isGoogleClient(ctx.req, ctx.url) ? 'gemini' : 'openai');
  const v1UnknownProtocol = (ctx: RequestContext): Protocol =>
    ctx.req.headers['anthropic-version'] !== undefined || ctx.req.headers['x-api-key'] !== undefined ? 'anthropic' : v1Protocol(ctx);

  on('GET', HEALTH_PATH, guarded('gemini', health, { health: true }));
  on('GET', '/v1/models', guarded(v1Protocol, (ctx) => (isGoogleClient(ctx.req, ctx.url) ? models.listGemini(ctx) : models.listOpenAI(ctx))));
  on('GET', '/v1beta/models', guarded('gemini', models.listGemini));
  on('GET', '/v1beta/models/:model', guarded('gemini', (ctx) => models.getModel(ctx, 'v1beta', true)));
  on('GET', '/v1/models/:model', guarded(v1Protocol, (ctx) => models.getModel(ctx, 'v1', isGoogleClient(ctx.req, ctx.url))));
  on('POST', '/v1beta/models/:modelAction', guarded('gemini', geminiGenerate(rc, 'v1beta')));
  on('POST', '/v1/models/:modelAction', guarded('gemini', geminiGenerate(rc, 'v1')));
  on('POST', '/v1/chat/completions', guarded('openai', translated(rc, 'openai', '/v1/chat/completions', 'generate')));
  on('POST', '/v1/responses', guarded('openai', translated(rc, 'openai', '/v1/responses', 'generate', 'responses')));
  on('POST', '/v1/messages', guarded('anthropic', anthropicMessages(rc, '/v1/messages', 'generate')));
  on('POST', '/v1/messages/count_tokens', guarded('anthropic', anthropicMessages(rc, '/v1/messages/count_tokens', 'count')));
  on('ANY', '/google/*path', guarded('google', googlePassthrough(rc)));
  router.fallback('/v1/*rest', unknownRoute(rc, v1UnknownProtocol));
  router.fallback('/v1beta/*rest', unknownRoute(rc, 'gemini'));

  return {
    aliases: () => aliasesFor(deps.config().model_aliases).entries(rc.families.pick),
    close: () => rc.close(),
  };
}
