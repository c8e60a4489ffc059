// Every proxy route of docs/api.md on the Router: health, model lists, the
// OpenAI (https://platform.openai.com/docs/api-reference/chat,
// https://platform.openai.com/docs/api-reference/responses), Anthropic
// (https://docs.anthropic.com/en/api/messages) and Gemini
// (https://ai.google.dev/api/generate-content) doors, and the Google API pass-through. Each
// route checks the proxy API key per the auth mode and answers every error,
// bad input included, in its own protocol's shape (never a bare 500).
//
// Over 400 lines on purpose: one closure over the route dependencies (config,
// pool, engine, model list, doors) holds every route's handler, a few lines
// each; the shared checks are in route-checks.ts and the work in exchange/.
import type { ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { TokenPool } from '../pool/types.ts';
import type { Router, RequestContext } from '../http/router.ts';
import { HttpError, readBody, readJsonWithRaw } from '../http/http-util.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import { nestsDeeperThan } from '../util/json.ts';
import { setCountTokensModel, type Door } from './door.ts';
import { checkProxyAuth, corsHeaders, preflightHeaders, type EffectiveAuthMode } from './auth.ts';
import {
  clientSignal,
  fetchModelList,
  forwardCountTokens,
  forwardRaw,
  forwardTranslated,
  geminiArrayHead,
  geminiJson,
  geminiSseHead,
  newTrack,
  passthroughHead,
  sendJsonBody,
  type EngineDeps,
  type Protocol,
  type Track,
} from './engine.ts';
import { checkGeminiBody, GEMINI_ACTIONS, googleErrorBody, splitModelAction, type GeminiAction } from './gemini-door.ts';
import { aliasDescription, aliasesFor, geminiModelList, ModelListCache, openAIModel, openAIModelList } from './models.ts';
import { FamilyResolver } from './model-families.ts';
import type { RequestLog } from './request-log.ts';
import { baseOf, createUpstreamClient, type UpstreamClient } from './upstream-client.ts';
import { createThoughtSignatureCache, type ThoughtSignatureCache } from './thought-signatures.ts';
import { createOpenAIDoor } from './openai/door.ts';
import { createAnthropicDoor } from './anthropic/door.ts';
import { createResponsesDoor } from './openai/responses-door.ts';
import { withReasoningEffort } from './translate-util.ts';
import { buildPassthrough } from './google-passthrough.ts';
import { sessionKeyOf } from './session-key.ts';
import { proxyErrorAnswer } from './error-answer.ts';
import { clampOutputLimits, limitsFromList } from './output-limits.ts';

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
  /** Extra fields for GET /healthz. */
  health?: () => Record<string, unknown>;
  /** How long the upstream model list is cached (default 60 s). */
  modelListTtlMs?: number;
  /** Re-read the upstream model list when a `family:` alias is resolved and the list is older than this (ms), so families follow new and retired models; unset: only when a client lists models. */
  modelRefreshMs?: number;
}

export interface ProxyRoutes {
  /** Closes the upstream client if it was created here. */
  close(): Promise<void>;
  /** Every model alias, its target as configured and the model it resolves to now (for the dashboard). */
  aliases(): { alias: string; target: string; model: string }[];
}

import {
  authErrorBody,
  checkModelName,
  FORWARDED_GEMINI_PARAMS,
  header,
  isGoogleClient,
  MAX_JSON_DEPTH,
  PIN_HEADER,
  recordBadRequest,
  SESSION_HEADER,
  setHeaders,
  tooDeep,
  translatedTooDeep,
  type Shaper,
} from './route-checks.ts';

export { PIN_HEADER, SESSION_HEADER, MAX_JSON_DEPTH };

// ---------------------------------------------------------------------------

export function registerProxyRoutes(router: Router, deps: ProxyRouteDeps): ProxyRoutes {
  const clock = deps.clock ?? systemClock;
  const ownClient = !deps.client;
  const client = deps.client ?? createUpstreamClient({ connectTimeoutMs: deps.config().upstream.connect_timeout_ms });
  const engine: EngineDeps = { config: deps.config, pool: deps.pool, logger: deps.logger, clock, client, requestLog: deps.requestLog };
  const signatures = deps.signatures ?? createThoughtSignatureCache();

  // Doors follow config.allow_remote_images (rebuilt only when it changes).
  let doorsFor: boolean | null = null;
  let doors: { openai: Door; anthropic: Door; responses: Door } | null = null;
  function getDoors(): { openai: Door; anthropic: Door; responses: Door } {
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

  /** Auth check, then the handler; every failure is answered in the protocol's shape. */
  function guarded(
    which: Protocol | ((ctx: RequestContext) => Protocol),
    handler: (ctx: RequestContext) => Promise<void> | void,
    opts: { health?: boolean } = {},
  ) {
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
        const auth = checkProxyAuth(ctx.req, ctx.url, deps.config(), opts.health);
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

  // --- model list -----------------------------------------------------------

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

  function sendJsonOk(res: ServerResponse, body: unknown): void {
    sendJsonBody(res, 200, body);
  }

  async function listGemini(ctx: RequestContext): Promise<void> {
    const models = await modelCache.get();
    sendJsonOk(ctx.res, geminiModelList(models, aliasesFor(deps.config().model_aliases), families.pick));
  }

  async function listOpenAI(ctx: RequestContext): Promise<void> {
    const models = await modelCache.get();
    sendJsonOk(ctx.res, openAIModelList(models, aliasesFor(deps.config().model_aliases), Math.floor(clock.now() / 1000), families.pick));
  }

  async function getModel(ctx: RequestContext, version: string, google: boolean): Promise<void> {
    const name = ctx.params.model!;
    if (name.includes(':')) throw new HttpError(405, 'method_not_allowed', `use POST for ${version}/models/${name}`);
    const aliases = aliasesFor(deps.config().model_aliases);
    const models = await modelCache.get();
    const bare = name.replace(/^models\//, '');
    const isAlias = Object.hasOwn(aliases.source, bare);
    const target = aliases.resolve(bare, families.pick);
    const found = models.find((m) => m.name === `models/${bare}`) ?? models.find((m) => m.name === `models/${target}`);
    const configured = aliases.target(bare);
    if (!found && !isAlias) {
      const msg = `models/${bare} is not found for API version ${version}. Call ListModels to see the list of available models.`;
      throw new HttpError(404, 'model_not_found', msg);
    }
    if (google) {
      sendJsonOk(ctx.res, found && found.name === `models/${bare}` ? found : { ...(found ?? {}), name: `models/${bare}`, description: aliasDescription(configured, target) });
    } else {
      const alias = !found || found.name !== `models/${bare}` ? { target: configured, model: target } : null;
      sendJsonOk(ctx.res, openAIModel(bare, Math.floor(clock.now() / 1000), alias));
    }
  }

  // --- Gemini native --------------------------------------------------------

  function geminiGenerate(version: 'v1' | 'v1beta') {
    return async (ctx: RequestContext): Promise<void> => {
      const split = splitModelAction(ctx.params.modelAction!);
      if (!split || !split.model || !GEMINI_ACTIONS.includes(split.action)) {
        ctx.req.resume();
        throw new HttpError(
          404,
          'not_found',
          `Unknown method ${ctx.params.modelAction}; the gateway serves models/{model}:generateContent, :streamGenerateContent, :countTokens, :embedContent and :batchEmbedContents.`,
        );
      }
      const action = split.action as GeminiAction;
      const cfg = deps.config();
      const track = newTrack(engine, `/${version}/models/{model}:${action}`, 'gemini');
      track.modelRequested = split.model.replace(/^models\//, '');
      let raw: Buffer;
      let body: Record<string, unknown>;
      try {
        const read = await readJsonWithRaw(ctx.req, cfg.max_body_bytes);
        raw = read.raw;
        body = checkGeminiBody(read.body, action);
        // countTokens bodies are re-serialised with the model set in them.
        if (action === 'countTokens' && nestsDeeperThan(body, MAX_JSON_DEPTH)) throw tooDeep('the request body');
      } catch (e) {
        throw recordBadRequest(engine, track, e);
      }
      const model = aliasesFor(cfg.model_aliases).resolve(split.model, families.pick);
      track.modelUsed = model;
      let payload: Buffer = raw;
      if (action === 'countTokens') {
        const withModel = setCountTokensModel(body, model);
        if (withModel !== body) payload = Buffer.from(JSON.stringify(withModel));
      } else if (action === 'generateContent' || action === 'streamGenerateContent') {
        const clamped = clampOutputLimits(body, model, limitsFromList(modelCache.peek(), model));
        if (clamped.notes.length) {
          payload = Buffer.from(JSON.stringify(clamped.body));
          track.note = clamped.notes.join('; ');
        }
      }
      // Only Google's system parameters that shape the answer go upstream; anything
      // else (beta flags, a client's API key) is ignored, as the real API would refuse it.
      let query = '';
      let sse = false;
      if (ctx.url.search) {
        const params = new URLSearchParams();
        for (const [k, v] of ctx.url.searchParams) if (FORWARDED_GEMINI_PARAMS.has(k)) params.append(k, v);
        query = params.toString();
        sse = params.get('alt') === 'sse' || params.get('$alt') === 'sse';
      }
      const { origin, prefix } = baseOf(cfg.gemini_base_url);
      const stream = action === 'streamGenerateContent';
      await forwardRaw(engine, ctx.res, {
        spec: {
          model,
          sessionKey: sessionKeyOf(ctx.req.headers),
          pinned: header(ctx.req, PIN_HEADER),
          consume: stream ? 'stream' : 'full',
          stream,
          sse: stream && sse,
          check: geminiJson,
          checkHead: sse ? geminiSseHead : geminiArrayHead,
          origin,
          method: 'POST',
          path: `${prefix}/${version}/models/${encodeURIComponent(model)}:${action}${query ? `?${query}` : ''}`,
          body: payload,
          headers: { 'content-type': 'application/json' },
          signal: clientSignal(ctx.res),
        },
        track,
        errorBody: (s, m) => googleErrorBody(s, m),
        sse: stream && sse,
        streamError: (s, m) => `data: ${JSON.stringify(googleErrorBody(s, m))}\r\n\r\n`,
        usage: action === 'generateContent' || action === 'streamGenerateContent',
        counts: action === 'generateContent' || action === 'streamGenerateContent',
      });
    };
  }

  // --- OpenAI and Anthropic -------------------------------------------------

  function translated(protocol: 'openai' | 'anthropic', route: string, kind: 'generate' | 'count', which: 'openai' | 'anthropic' | 'responses' = protocol) {
    return async (ctx: RequestContext): Promise<void> => {
      const cfg = deps.config();
      const door = getDoors()[which];
      const track = newTrack(engine, route, protocol);
      let parsed;
      try {
        const { body } = await readJsonWithRaw(ctx.req, cfg.max_body_bytes);
        if (kind === 'count') {
          if (!door.countTokens) throw new HttpError(404, 'not_found', 'token counting is not available on this route');
          parsed = door.countTokens.parseRequest(body);
        } else {
          parsed = door.parseRequest(body);
        }
        checkModelName(parsed.requestedModel);
        // Translated requests are re-serialised, tool arguments and inputs included.
        if (translatedTooDeep(parsed.gemini)) throw tooDeep('the request (tool call arguments or inputs included)');
      } catch (e) {
        throw recordBadRequest(engine, track, e);
      }
      track.modelRequested = parsed.requestedModel;
      const model = aliasesFor(cfg.model_aliases).resolve(parsed.requestedModel, families.pick);
      track.modelUsed = model;
      const notes = [...(parsed.notes ?? [])];
      if (kind === 'generate') {
        const clamped = clampOutputLimits(parsed.gemini, model, limitsFromList(modelCache.peek(), model));
        if (clamped.notes.length) {
          parsed = { ...parsed, gemini: clamped.body };
          notes.push(...clamped.notes);
        }
      }
      if (notes.length) track.note = notes.join('; ');
      const { origin, prefix } = baseOf(cfg.gemini_base_url);
      const call = {
        door,
        parsed: {
          ...parsed,
          gemini: withReasoningEffort(parsed.gemini, parsed.reasoningEffort, model),
          sessionKey: sessionKeyOf(ctx.req.headers, parsed.sessionKey),
        },
        model,
        pinned: header(ctx.req, PIN_HEADER),
        origin,
        modelPath: `${prefix}/v1beta/models/${encodeURIComponent(model)}`,
        signal: clientSignal(ctx.res),
        track,
      };
      if (kind === 'count') await forwardCountTokens(engine, ctx.res, call);
      else await forwardTranslated(engine, ctx.res, call);
    };
  }

  // --- Google API pass-through ------------------------------------------------

  async function google(ctx: RequestContext): Promise<void> {
    const cfg = deps.config();
    const track: Track = newTrack(engine, '/google/*', 'google');
    const method = (ctx.req.method ?? 'GET').toUpperCase();
    let body: Buffer | null = null;
    if (method !== 'GET' && method !== 'HEAD') {
      try {
        const b = await readBody(ctx.req, cfg.max_body_bytes);
        body = b.length ? b : null;
      } catch (e) {
        throw recordBadRequest(engine, track, e);
      }
    }
    const target = buildPassthrough(cfg.google_api_base_url, ctx.url, ctx.req.headers);
    track.modelRequested = null;
    await forwardRaw(engine, ctx.res, {
      spec: {
        model: '',
        passthrough: true,
        pinned: header(ctx.req, PIN_HEADER),
        consume: 'stream',
        checkHead: passthroughHead(method, String(ctx.req.headers.accept ?? '')),
        origin: target.origin,
        method,
        path: target.path,
        body,
        headers: target.headers,
        signal: clientSignal(ctx.res),
      },
      track,
      errorBody: (s, m) => googleErrorBody(s, m),
      sse: false,
      usage: false,
      counts: false,
    });
  }

  // --- registration -----------------------------------------------------------

  // Every proxy path also answers CORS preflights (in guarded()), for browser apps that hold a key.
  const preflightOnly = guarded('openai', () => {
    throw new HttpError(405, 'method_not_allowed', 'OPTIONS is answered only as a CORS preflight (with Origin and Access-Control-Request-Method)');
  });
  const withPreflight = new Set<string>();
  const on = (method: string, path: string, handler: (ctx: RequestContext) => Promise<void>) => {
    router.on(method, path, handler);
    if (method !== 'ANY' && !withPreflight.has(path)) {
      withPreflight.add(path);
      router.on('OPTIONS', path, preflightOnly);
    }
  };

  on(
    'GET',
    '/healthz',
    guarded(
      'gemini',
      ({ res }) => {
        sendJsonOk(res, { status: 'ok', ...(deps.health?.() ?? {}) });
      },
      { health: true },
    ),
  );

  const v1Protocol = (ctx: RequestContext): Protocol => (isGoogleClient(ctx.req, ctx.url) ? 'gemini' : 'openai');
  on('GET', '/v1/models', guarded(v1Protocol, (ctx) => (isGoogleClient(ctx.req, ctx.url) ? listGemini(ctx) : listOpenAI(ctx))));
  on('GET', '/v1beta/models', guarded('gemini', listGemini));
  on('GET', '/v1beta/models/:model', guarded('gemini', (ctx) => getModel(ctx, 'v1beta', true)));
  on('GET', '/v1/models/:model', guarded(v1Protocol, (ctx) => getModel(ctx, 'v1', isGoogleClient(ctx.req, ctx.url))));
  on('POST', '/v1beta/models/:modelAction', guarded('gemini', geminiGenerate('v1beta')));
  on('POST', '/v1/models/:modelAction', guarded('gemini', geminiGenerate('v1')));
  on('POST', '/v1/chat/completions', guarded('openai', translated('openai', '/v1/chat/completions', 'generate')));
  on('POST', '/v1/responses', guarded('openai', translated('openai', '/v1/responses', 'generate', 'responses')));
  on('POST', '/v1/messages', guarded('anthropic', translated('anthropic', '/v1/messages', 'generate')));
  on('POST', '/v1/messages/count_tokens', guarded('anthropic', translated('anthropic', '/v1/messages/count_tokens', 'count')));
  on('ANY', '/google/*path', guarded('google', google));

  // Paths under the doors that no route takes: the key check, then a 404 (or
  // 405 with Allow) in the shape of the protocol the path belongs to, logged.
  const unknownRoute = (which: Protocol | ((ctx: RequestContext) => Protocol)) => {
    const answer = guarded(which, (ctx) => {
      ctx.req.resume();
      const path = ctx.url.pathname.slice(0, 200);
      if (ctx.allowed) {
        ctx.res.setHeader('allow', ctx.allowed.join(', '));
        throw new HttpError(405, 'method_not_allowed', `${ctx.req.method} is not allowed on ${path}; use ${ctx.allowed.join(', ')}`);
      }
      throw new HttpError(404, 'not_found', `The gateway has no route ${ctx.req.method} ${path}.`);
    });
    return async (ctx: RequestContext): Promise<void> => {
      await answer(ctx);
      const protocol = typeof which === 'function' ? which(ctx) : which;
      deps.logger.info({ method: ctx.req.method, path: ctx.url.pathname.slice(0, 200), status: ctx.res.statusCode, protocol }, 'no such proxy route');
    };
  };
  const v1UnknownProtocol = (ctx: RequestContext): Protocol =>
    ctx.req.headers['anthropic-version'] !== undefined || ctx.req.headers['x-api-key'] !== undefined ? 'anthropic' : v1Protocol(ctx);
  router.fallback('/v1/*rest', unknownRoute(v1UnknownProtocol));
  router.fallback('/v1beta/*rest', unknownRoute('gemini'));

  return {
    aliases: () => aliasesFor(deps.config().model_aliases).entries(families.pick),
    async close() {
      if (ownClient) await client.close();
    },
  };
}
