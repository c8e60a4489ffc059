// The translating doors: POST /v1/chat/completions and /v1/responses
// (https://platform.openai.com/docs/api-reference/chat,
// https://platform.openai.com/docs/api-reference/responses), /v1/messages and
// /v1/messages/count_tokens (https://docs.anthropic.com/en/api/messages).
// The door parses and translates the body; the exchange sends it to Gemini.
import type { RequestContext } from '../../http/router.ts';
import { HttpError, readJsonWithRaw } from '../../http/http-util.ts';
import type { GeminiCountTokensRequest, GeminiRequest, ParsedRequest } from '../door.ts';
import { clientSignal, forwardCountTokens, forwardTranslated, newTrack, type Track } from '../engine.ts';
import { aliasesFor } from '../models.ts';
import { baseOf } from '../upstream-client.ts';
import { withReasoningEffort } from '../translate-util.ts';
import { sessionKeyOf } from '../session-key.ts';
import { clampOutputLimits, limitsFromList } from '../output-limits.ts';
import { checkModelName, header, PIN_HEADER, recordBadRequest, tooDeep, translatedTooDeep } from '../route-checks.ts';
import type { Doors, RouteContext } from './context.ts';
import { geminiServices } from '../vertex-gemini.ts';

export function translated(
  rc: RouteContext,
  protocol: 'openai' | 'anthropic',
  route: string,
  kind: 'generate' | 'count',
  which: keyof Doors = protocol,
): (ctx: RequestContext) => Promise<void> {
  const { deps, engine } = rc;
  return async (ctx: RequestContext): Promise<void> => {
    const track = newTrack(engine, route, protocol);
    let body: unknown;
    try {
      ({ body } = await readJsonWithRaw(ctx.req, deps.config().max_body_bytes));
    } catch (e) {
      throw recordBadRequest(engine, track, e);
    }
    await serveTranslated(rc, ctx, track, body, { protocol, kind, which });
  };
}

/** Translates a request body already read (the Claude route hands over what does not go to Vertex AI) and serves it from Gemini. */
export async function serveTranslated(
  rc: RouteContext,
  ctx: RequestContext,
  track: Track,
  body: unknown,
  o: { protocol: 'openai' | 'anthropic'; kind: 'generate' | 'count'; which: keyof Doors },
): Promise<void> {
  const { deps, engine, modelCache, families } = rc;
  const { kind } = o;
  const cfg = deps.config();
  const door = rc.doors()[o.which];
  let parsed: ParsedRequest<GeminiRequest | GeminiCountTokensRequest>;
  try {
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
    // Gemini through the Gemini API or Vertex AI, in the order of gemini_services
    services: geminiServices(cfg, parsed.gemini as Record<string, unknown>, kind === 'count' ? 'countTokens' : 'generateContent', deps.pool.canServe('vertex')),
    vertex: cfg,
    signal: clientSignal(ctx.res),
    track,
  };
  await (kind === 'count' ? forwardCountTokens(engine, ctx.res, call) : forwardTranslated(engine, ctx.res, call));
}
