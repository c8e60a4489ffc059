// The one HTTP port: routes requests to the router, answers unknown routes,
// and turns unexpected errors into a clean 500 without a stack trace.
import { createServer, type Server } from 'node:http';
import type { Logger } from '../log/logger.ts';
import type { RequestContext, Router } from './router.ts';
import { sendJson } from './http-util.ts';
import { describeForLog, INTERNAL_MESSAGE, isGatewayError } from '../util/errors.ts';
import { answerClientError } from './client-error.ts';

export function createHttpServer(router: Router, logger: Logger): Server {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://gateway');
    } catch {
      sendJson(res, 400, { error: { code: 'bad_url', message: 'the request URL could not be parsed' } });
      return;
    }
    const found = router.match(req.method ?? 'GET', url.pathname);
    if (!found || !('handler' in found)) {
      req.resume();
      const path = url.pathname.slice(0, 200);
      if (!found) {
        logger.info({ method: req.method, path, status: 404 }, 'no such route');
        sendJson(res, 404, { error: { code: 'not_found', message: `no route ${req.method} ${path}` } });
      } else {
        logger.info({ method: req.method, path, status: 405 }, 'method not allowed');
        sendJson(res, 405, { error: { code: 'method_not_allowed', message: `${req.method} is not allowed on ${path}; use ${found.allowed.join(', ')}` } }, { allow: found.allowed.join(', ') });
      }
      return;
    }
    let result: Promise<void> | void;
    try {
      const ctx: RequestContext = { req, res, url, params: found.params };
      if (found.allowed) ctx.allowed = found.allowed;
      result = found.handler(ctx);
    } catch (e) {
      result = Promise.reject(e);
    }
    if (result) {
      result.catch((e: unknown) => {
        // The last resort, for routes without an error handler of their own.
        if (isGatewayError(e)) {
          if (!res.headersSent) sendJson(res, e.status, { error: { code: e.code, message: e.message, ...(e.fix ? { fix: e.fix } : {}) } });
          else res.destroy();
          return;
        }
        logger.error({ err: describeForLog(e), route: url.pathname }, 'unhandled error in route');
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal_error', message: INTERNAL_MESSAGE } });
        else res.destroy();
      });
    }
  });
  server.on('clientError', answerClientError);
  return server;
}
