// What answers when no route takes a request: a CORS-preflight-only OPTIONS
// handler, and for paths under the doors that no route takes, the key check,
// then a 404 (or 405 with Allow) in the shape of the protocol the path
// belongs to, logged.
import type { RequestContext } from '../../http/router.ts';
import { HttpError } from '../../http/http-util.ts';
import type { Handler, ProtocolOf, RouteContext } from './context.ts';

export function preflightOnly(rc: RouteContext): Handler {
  return rc.guarded('openai', () => {
    throw new HttpError(405, 'method_not_allowed', 'OPTIONS is answered only as a CORS preflight (with Origin and Access-Control-Request-Method)');
  });
}

export function unknownRoute(rc: RouteContext, which: ProtocolOf): Handler {
  const answer = rc.guarded(which, (ctx) => {
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
    rc.deps.logger.info({ method: ctx.req.method, path: ctx.url.pathname.slice(0, 200), status: ctx.res.statusCode, protocol }, 'no such proxy route');
  };
}
