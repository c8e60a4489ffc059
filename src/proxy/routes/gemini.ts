// The Gemini-native door: POST /v1beta/models/{model}:{action} (and /v1/),
// generateContent, streamGenerateContent, countTokens, embedContent and
// batchEmbedContents (https://ai.google.dev/api/generate-content), forwarded
// with the model alias resolved and output limits fitted to the model.
import type { RequestContext } from '../../http/router.ts';
import { HttpError, readJsonWithRaw } from '../../http/http-util.ts';
import { nestsDeeperThan } from '../../util/json.ts';
import { setCountTokensModel } from '../door.ts';
import { clientSignal, forwardRaw, GEMINI_USAGE, geminiArrayHead, geminiJson, geminiSseHead, newTrack } from '../engine.ts';
import { checkGeminiBody, GEMINI_ACTIONS, googleErrorBody, splitModelAction, type GeminiAction, type GeminiBody } from '../gemini-door.ts';
import { aliasesFor } from '../models.ts';
import { baseOf } from '../upstream-client.ts';
import { sessionKeyOf } from '../session-key.ts';
import { clampOutputLimits, limitsFromList } from '../output-limits.ts';
import { FORWARDED_GEMINI_PARAMS, header, MAX_JSON_DEPTH, PIN_HEADER, recordBadRequest, tooDeep } from '../route-checks.ts';
import { geminiServices, geminiTarget } from '../vertex-gemini.ts';
import type { RouteContext } from './context.ts';

export function geminiGenerate(rc: RouteContext, version: 'v1' | 'v1beta'): (ctx: RequestContext) => Promise<void> {
  const { deps, engine, modelCache, families } = rc;
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
    let body: GeminiBody;
    try {
      const read = await readJsonWithRaw(ctx.req, cfg.max_body_bytes);
      raw = read.raw;
      body = checkGeminiBody(read.body, action);
      // Every body may be re-serialised (countTokens with the model set, output limits
      // fitted, Vertex AI's shape) and none so deep is served: refused before an account is spent.
      if (nestsDeeperThan(body, MAX_JSON_DEPTH)) throw tooDeep('the request body');
    } catch (e) {
      throw recordBadRequest(engine, track, e);
    }
    const model = aliasesFor(cfg.model_aliases).resolve(split.model, families.pick);
    track.modelUsed = model;
    let payload: Buffer = raw;
    /** The body as it goes upstream (parsed), for Vertex AI's version of it. */
    let sent: Record<string, unknown> = body;
    if (action === 'countTokens') {
      const withModel = setCountTokensModel(body, model);
      if (withModel !== body) payload = Buffer.from(JSON.stringify(withModel));
    } else if (action === 'generateContent' || action === 'streamGenerateContent') {
      const clamped = clampOutputLimits(body, model, limitsFromList(modelCache.peek(), model));
      if (clamped.notes.length) {
        payload = Buffer.from(JSON.stringify(clamped.body));
        sent = clamped.body;
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
    const path = `${prefix}/${version}/models/${encodeURIComponent(model)}:${action}${query ? `?${query}` : ''}`;
    // Generate and countTokens may be served by Vertex AI too (gemini_services); embeddings stay on the Gemini API.
    const method = action === 'generateContent' || action === 'streamGenerateContent' || action === 'countTokens' ? action : null;
    const services = method ? geminiServices(cfg, sent, method, engine.pool.canServe('vertex')) : undefined;
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
        path,
        body: payload,
        services,
        target: method && services?.includes('vertex') ? geminiTarget({ gemini: { origin, path }, cfg, model, method, body: sent, query }) : undefined,
        headers: { 'content-type': 'application/json' },
        signal: clientSignal(ctx.res),
      },
      track,
      errorBody: (s, m) => googleErrorBody(s, m),
      sse: stream && sse,
      streamError: (s, m) => `data: ${JSON.stringify(googleErrorBody(s, m))}\r\n\r\n`,
      usage: action === 'generateContent' || action === 'streamGenerateContent' ? GEMINI_USAGE : undefined,
      counts: action === 'generateContent' || action === 'streamGenerateContent',
    });
  };
}


