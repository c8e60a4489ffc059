// What every proxy route shares: the dependencies, the exchange engine, the
// translation doors (rebuilt when allow_remote_images changes), the model
// list cache with the `family:` resolver, and guarded(), which checks the
// proxy API key and answers every failure in the route's protocol shape.
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../log/logger.ts';
import type { TokenPool } from '../../pool/types.ts';
import type { RequestContext } from '../../http/router.ts';
import { systemClock, type Clock } from '../../util/clock.ts';
import type { Door } from '../door.ts';
import { checkProxyAuth, corsHeaders, preflightHeaders, presentedKeys, type EffectiveAuthMode } from '../auth.ts';
import { fetchModelList, sendJsonBody, type EngineDeps, type Protocol } from '../engine.ts';
import { googleErrorBody } from '../gemini-door.ts';
import { ModelListCache } from '../models.ts';
import { FamilyResolver } from '../model-families.ts';
import type { RequestLog } from '../request-log.ts';
import { createUpstreamClient, type UpstreamClient } from '../upstream-client.ts';
import { createThoughtSignatureCache, type ThoughtSignatureCache } from '../thought-signatures.ts';
import { createOpenAIDoor } from '../openai/door.ts';
import { createAnthropicDoor } from '../anthropic/door.ts';
import { createResponsesDoor } from '../openai/responses-door.ts';
import { proxyErrorAnswer } from '../error-answer.ts';
import { authErrorBody, setHeaders, type Shaper } from '../route-checks.ts';

export type ProxyConfig = Config & { effective_auth_mode?: EffectiveAuthMode };

export interface ProxyRouteDeps {
  config: () => ProxyConfig;
  pool: TokenPool;
  logger: Logger;
  requestLog?: RequestLog;
  clock?: Clock;
  /** Shared upstream HTTP client (created here when absent; closed by the returned close()). */
  client?: UpstreamClient;
  /** Overrides for the translation doors (tests); default: the OpenAI and Anthropic doors. */
  doors?: { openai?: Door; anthropic?: Door; responses?: Door };
  /** Thought signatures carried across turns by the OpenAI and Anthropic doors. */
  signatures?: ThoughtSignatureCache;
  /** A presented key matched none: the key list may have changed on another gateway; read it again (then the key is checked once more). */
  recheckKeys?: (presented: readonly string[]) => Promise<void>;
  /** Extra fields for GET /healthz. */
  health?: () => Record<string, unknown>;
  /** How long the upstream model list is cached (default 60 s). */
  modelListTtlMs?: number;
  /** Re-read the upstream model list when a `family:` alias is resolved and the list is older than this (ms), so families follow new and retired models; unset: only when a client lists models. */
  modelRefreshMs?: number;
}

export interface Doors {
  openai: Door;
  anthropic: Door;
  responses: Door;
}

export type Handler = (ctx: RequestContext) => Promise<void>;
/** The protocol of a route, fixed or chosen per request (e.g. /v1/models for Google clients). */
export type ProtocolOf = Protocol | ((ctx: RequestContext) => Protocol);

export interface RouteContext {
  deps: ProxyRouteDeps;
  clock: Clock;
  engine: EngineDeps;
  /** The translation doors for the current configuration. */
  doors(): Doors;
  modelCache: ModelListCache;
  /** Resolves a `family:` alias target against the last model list read. */
  families: { pick(family: string): string };
  /** Auth check, then the handler; every failure is answered in the protocol's shape. */
  guarded(which: ProtocolOf, handler: (ctx: RequestContext) => Promise<void> | void, opts?: { health?: boolean }): Handler;
  /** Closes the upstream client if it was created here. */
  close(): Promise<void>;
}

export function createRouteContext(deps: ProxyRouteDeps): RouteContext {
  const clock = deps.clock ?? systemClock;
  const ownClient = !deps.client;
  const client = deps.client ?? createUpstreamClient({ connectTimeoutMs: deps.config().upstream.connect_timeout_ms });
  const engine: EngineDeps = { config: deps.config, pool: deps.pool, logger: deps.logger, clock, client, requestLog: deps.requestLog };
  const signatures = deps.signatures ?? createThoughtSignatureCache();

  // Doors follow config.allow_remote_images (rebuilt only when it changes).
  let doorsFor: boolean | null = null;
  let doors: Doors | null = null;
  function getDoors(): Doors {
    const allow = deps.config().allow_remote_images;
    if (!doors || doorsFor !== allow) {
      doorsFor = allow;
      doors = {
        openai: deps.doors?.openai ?? createOpenAIDoor({ signatures, allowRemoteImages: allow }),
        anthropic: deps.doors?.anthropic ?? createAnthropicDoor({ signatures, allowRemoteImages: allow }),
        responses: deps.doors?.responses ?? createResponsesDoor({ signatures, allowRemoteImages: allow }),
      };
    }
    return doors;
  }

  function shaper(protocol: Protocol): Shaper {
    if (protocol === 'openai') return (s, m, t) => getDoors().openai.errorBody(s, m, t);
    if (protocol === 'anthropic') return (s, m, t) => getDoors().anthropic.errorBody(s, m, t);
    return (s, m) => googleErrorBody(s, m);
  }

  function guarded(which: ProtocolOf, handler: (ctx: RequestContext) => Promise<void> | void, opts: { health?: boolean } = {}): Handler {
    return async (ctx: RequestContext): Promise<void> => {
      const protocol = typeof which === 'function' ? which(ctx) : which;
      const shape = shaper(protocol);
      try {
        const preflight = preflightHeaders(ctx.req);
        if (preflight) {
          ctx.req.resume();
          ctx.res.writeHead(204, preflight).end();
          return;
        }
        let auth = checkProxyAuth(ctx.req, ctx.url, deps.config(), opts.health);
        const presented = !auth.ok && auth.status === 401 && deps.recheckKeys ? presentedKeys(ctx.req, ctx.url) : [];
        if (presented.length > 0) {
          await deps.recheckKeys!(presented);
          auth = checkProxyAuth(ctx.req, ctx.url, deps.config(), opts.health);
        }
        const origin = ctx.req.headers.origin;
        if (!auth.ok) {
          ctx.req.resume();
          if (auth.status === 401 && origin) setHeaders(ctx.res, corsHeaders(origin));
          const body = auth.status === 401 ? authErrorBody(protocol, auth.message) : shape(403, auth.message, 'cross_origin_forbidden');
          sendJsonBody(ctx.res, auth.status, body, undefined);
          return;
        }
        if (auth.keyed && origin) setHeaders(ctx.res, corsHeaders(origin));
        await handler(ctx);
      } catch (e) {
        if (!ctx.req.complete) ctx.req.resume();
        const answer = proxyErrorAnswer(e, shape, deps.logger, ctx.url.pathname);
        sendJsonBody(ctx.res, answer.status, answer.body, answer.retryAfterSeconds);
      }
    };
  }

  const modelCache = new ModelListCache(() => fetchModelList(engine), deps.modelListTtlMs ?? 60_000, () => clock.now());
  // `family:` alias targets resolve against the last list read, never waiting for one on a
  // request; with modelRefreshMs, resolving a family re-reads a list older than that in the background.
  const resolver = new FamilyResolver(() => modelCache.peek());
  const families = {
    pick(family: string): string {
      const every = deps.modelRefreshMs;
      if (every && modelCache.due(every)) {
        modelCache.get().catch((e: unknown) => deps.logger.debug({ err: { message: (e as Error)?.message } }, 'Model list refresh failed; model families keep the last list'));
      }
      return resolver.pick(family);
    },
  };

  return {
    deps,
    clock,
    engine,
    doors: getDoors,
    modelCache,
    families,
    guarded,
    async close() {
      if (ownClient) await client.close();
    },
  };
}
