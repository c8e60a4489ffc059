// ANY /google/*: the Google API pass-through (docs/api.md): the request goes
// to google_api_base_url with a pooled account's token, the answer streams back.
import type { RequestContext } from '../../http/router.ts';
import { readBody } from '../../http/http-util.ts';
import { clientSignal, forwardRaw, newTrack, passthroughHead, type Track } from '../engine.ts';
import { googleErrorBody } from '../gemini-door.ts';
import { buildPassthrough } from '../google-passthrough.ts';
import { header, PIN_HEADER, recordBadRequest } from '../route-checks.ts';
import type { RouteContext } from './context.ts';

export function googlePassthrough(rc: RouteContext): (ctx: RequestContext) => Promise<void> {
  const { deps, engine } = rc;
  return async (ctx: RequestContext): Promise<void> => {
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
      counts: false,
    });
  };
}
