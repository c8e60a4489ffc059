// The Anthropic door for Claude models (SPEC section 8, "Claude stays
// Claude"): POST /v1/messages and /v1/messages/count_tokens for a `claude-*`
// model go to Claude on Vertex AI when some account can serve Vertex AI. The
// body goes as the client wrote it (vertex-body.ts: `model` out,
// `anthropic_version` in), the betas Vertex accepts go in `anthropic-beta`,
// and the answer comes back as Anthropic sent it (exchange/claude-raw.ts).
// Each attempt is built for its lease (the project is in the URL), so 429s
// fail over across Vertex lanes. Without a Vertex lane, `claude_fallback`
// says what happens: "gemini" translates to Gemini as for any other model,
// "none" answers 503 saying why.
import type { RequestContext } from '../../http/router.ts';
import { HttpError, readJsonWithRaw } from '../../http/http-util.ts';
import type { Lease } from '../../pool/types.ts';
import { clientSignal, newTrack, type Track } from '../engine.ts';
import { forwardClaude } from '../exchange/claude-raw.ts';
import { vertexCountTokensBody, vertexMessagesBody } from '../anthropic/vertex-body.ts';
import {
  claudeJson, claudeSseHead, isClaudeModel, VERTEX_COUNT_TOKENS_BETAS, VERTEX_MESSAGE_BETAS, vertexBetas, vertexClaudeModel,
} from '../anthropic/vertex-claude.ts';
import { vertexOrigin, vertexUrl } from '../vertex-url.ts';
import { sessionKeyOf } from '../session-key.ts';
import { checkModelName, header, PIN_HEADER, recordBadRequest } from '../route-checks.ts';
import type { RouteContext } from './context.ts';
import { serveTranslated } from './translated.ts';
import { isObj } from '../translate-util.ts';

const ENABLE_FIX =
  'Enable Vertex AI in an account\'s project (`grantpool accounts project <account> --enable-vertex <project>`) and enable the Claude models in its Model Garden, or set claude_fallback to "gemini".';

/** POST /v1/messages (`generate`) and /v1/messages/count_tokens (`count`) on the Anthropic door. */
export function anthropicMessages(rc: RouteContext, route: string, kind: 'generate' | 'count'): (ctx: RequestContext) => Promise<void> {
  const { deps, engine } = rc;
  return async (ctx: RequestContext): Promise<void> => {
    const cfg = deps.config();
    const track = newTrack(engine, route, 'anthropic');
    let raw: Buffer;
    let body: unknown;
    try {
      ({ raw, body } = await readJsonWithRaw(ctx.req, cfg.max_body_bytes));
    } catch (e) {
      throw recordBadRequest(engine, track, e);
    }
    const model = isObj(body) && typeof body.model === 'string' ? body.model : null;
    if (model !== null && isClaudeModel(model)) {
      if (deps.pool.canServe('vertex')) {
        await claudeOnVertex(rc, ctx, track, { raw, body: body as Record<string, unknown>, model, kind });
        return;
      }
      if (cfg.claude_fallback === 'none') {
        track.modelRequested = model;
        // A retry cannot help until the configuration changes: Anthropic's SDKs (Claude Code) honour this.
        ctx.res.setHeader('x-should-retry', 'false');
        throw recordBadRequest(
          engine,
          track,
          new HttpError(503, 'no_service', `${model} is served by Claude on Vertex AI, and no account can serve Vertex AI (claude_fallback is "none"). ${ENABLE_FIX}`, { fix: ENABLE_FIX }),
        );
      }
    }
    await serveTranslated(rc, ctx, track, body, { protocol: 'anthropic', kind, which: 'anthropic' });
  };
}

function claudeOnVertex(
  rc: RouteContext,
  ctx: RequestContext,
  track: Track,
  req: { raw: Buffer; body: Record<string, unknown>; model: string; kind: 'generate' | 'count' },
): Promise<unknown> {
  const { deps, engine } = rc;
  const cfg = deps.config();
  const count = req.kind === 'count';
  let payload: Buffer;
  let vertexModel: string;
  try {
    checkModelName(req.model);
    vertexModel = vertexClaudeModel(req.model, cfg.vertex_claude_models);
    checkModelName(vertexModel);
    payload = count ? vertexCountTokensBody(req.raw, vertexModel) : vertexMessagesBody(req.raw);
  } catch (e) {
    throw recordBadRequest(engine, track, e instanceof SyntaxError ? new HttpError(400, 'invalid_json', `request body is not a JSON object (${e.message})`) : e);
  }
  track.modelRequested = req.model;
  track.modelUsed = vertexModel;
  const stream = !count && req.body.stream === true;
  const betas = vertexBetas(ctx.req.headers['anthropic-beta'], count ? VERTEX_COUNT_TOKENS_BETAS : VERTEX_MESSAGE_BETAS);
  if (betas.dropped.length) track.note = `anthropic-beta not sent to Vertex AI: ${betas.dropped.join(', ')}`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (betas.header) headers['anthropic-beta'] = betas.header;
  const metadata = isObj(req.body.metadata) ? req.body.metadata : null;
  const fromBody = metadata && typeof metadata.user_id === 'string' ? metadata.user_id : undefined;
  const method = count ? 'rawPredict' : stream ? 'streamRawPredict' : 'rawPredict';
  const target = (lease: Lease) => vertexUrl(cfg, lease.projectId ?? '', 'anthropic', count ? 'count-tokens' : vertexModel, method);
  return forwardClaude(engine, ctx.res, {
    spec: {
      model: vertexModel,
      services: ['vertex'],
      target,
      sessionKey: sessionKeyOf(ctx.req.headers, fromBody),
      pinned: header(ctx.req, PIN_HEADER),
      consume: stream ? 'stream' : 'full',
      stream,
      sse: stream,
      check: (b) => claudeJson(b, count),
      checkHead: (head) => claudeSseHead(head.firstEvent, head.overflow),
      origin: vertexOrigin(cfg),
      method: 'POST',
      path: '',
      body: payload,
      headers,
      signal: clientSignal(ctx.res),
    },
    track,
    errorBody: (s, m, t) => rc.doors().anthropic.errorBody(s, m, t),
    sse: stream,
    counts: !count,
  });
}
