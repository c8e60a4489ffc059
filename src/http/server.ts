// The one HTTP port: routes requests to the router, answers unknown routes,
// and turns unexpected errors into a clean 500 without a stack trace.
import { createServer, type Server } from 'node:http';
import type { Logger } from '../log/logger.ts';
import type { RequestContext, Router } from './router.ts';
import { sendJson, setBodyIdleTimeout } from './http-util.ts';
import { describeForLog, INTERNAL_MESSAGE, isGatewayError } from '../util/errors.ts';
import { answerClientError } from './client-error.ts';

/** Deadlines for receiving a request (the response side is not bounded: answers may stream for minutes). */
export interface ClientLimits {
  /** The headers must be complete within this time. */
  headersTimeoutMs: number;
  /** Longest silence while a body is arriving (checked by readBody). */
  bodyIdleTimeoutMs: number;
  /** The whole request, headers and body, must arrive within this time. */
  requestTimeoutMs: number;
}

export const DEFAULT_CLIENT_LIMITS: ClientLimits = { headersTimeoutMs: 30_000, bodyIdleTimeoutMs: 30_000, requestTimeoutMs: 180_000 };

/** After an answer to a request whose body is still arriving, the rest may drain this long. */
const DRAIN_AFTER_ANSWER_MS = 2000;

/** Request URLs without a query, parsed: the same few paths come again and again. */
const parsedPaths = new Map<string, URL>();
const MAX_PARSED_PATHS = 512;

/**
 * The request's URL (throws when it cannot be parsed). One without a query is
 * parsed once and shared by the requests for it (parsing costs ~1-2 µs a
 * request): nothing changes a request's URL once it is made. One with a query
 * (it may carry a key) is parsed for the request alone.
 */
function requestUrl(raw: string): URL {
  if (raw.length > 256 || raw.includes('?')) return new URL(raw, 'http://gateway');
  let url = parsedPaths.get(raw);
  if (url === undefined) {
    url = new URL(raw, 'http://gateway');
    if (parsedPaths.size >= MAX_PARSED_PATHS) parsedPaths.clear();
    parsedPaths.set(raw, url);
  }
  return url;
}

export function createHttpServer(router: Router, logger: Logger, limits: ClientLimits = DEFAULT_CLIENT_LIMITS): Server {
  const requestTimeout = Math.max(1, limits.requestTimeoutMs);
  const headersTimeout = Math.max(1, Math.min(limits.headersTimeoutMs, requestTimeout));
  /** Connections whose request was answered before its body arrived: no second answer goes to them. */
  const answeredEarly = new WeakSet<object>();
  const timeoutMessage = `the request was not received in time (headers within ${limits.headersTimeoutMs / 1000} s, the whole request within ${limits.requestTimeoutMs / 1000} s)`;
  const server = createServer({
    keepAliveTimeout: 65_000,
    headersTimeout,
    requestTimeout,
    // Node checks the two deadlines on this interval.
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headersTimeout / 4))),
  }, (req, res) => {
    setBodyIdleTimeout(req, limits.bodyIdleTimeoutMs);
    // An answer given before the body arrived (413, 408, bad input): the rest may drain briefly, then the connection goes.
    res.once('finish', () => {
      if (req.complete) return;
      answeredEarly.add(req.socket);
      const t = setTimeout(() => req.socket.destroy(), DRAIN_AFTER_ANSWER_MS);
      t.unref();
      req.once('end', () => {
        clearTimeout(t);
        answeredEarly.delete(req.socket);
      });
    });
    let url: URL;
    try {
      url = requestUrl(req.url ?? '/');
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
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Never write into an answer that has begun.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (!socket.writable || inFlight?.headersSent || answeredEarly.has(socket)) {
      socket.destroy();
      return;
    }
    answerClientError(err, socket, timeoutMessage);
  });
  return server;
}
