// POST /risc: Google's push delivery of security event tokens (RFC 8935).
// Public (Google holds no key of ours; the token's signature is the
// authentication). The body is the compact JWT (`application/secevent+jwt`);
// 202 with no body when it was verified (handled now, or before), 400 with
// RFC 8935's `{"err", "description"}` when it is not acceptable, 503 with
// Retry-After when Google's keys cannot be fetched or the store cannot be
// written, so that Google delivers it again.
import type { ServerResponse } from 'node:http';
import type { Router } from '../http/router.ts';
import { readBody, sendJson } from '../http/http-util.ts';
import type { Logger } from '../log/logger.ts';
import { describeForLog, INTERNAL_MESSAGE, isGatewayError } from '../util/errors.ts';
import { RiscError } from './errors.ts';
import { receiveSecurityEvent, type ReceiverDeps } from './receiver.ts';

export const RISC_PATH = '/risc';
/** A security event token is well under 2 KB; anything bigger is not one. */
const MAX_SET_BYTES = 16 * 1024;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function registerRiscRoute(router: Router, deps: ReceiverDeps): void {
  router.on('POST', RISC_PATH, async ({ req, res }) => {
    const { logger } = deps;
    try {
      const raw = await readBody(req, MAX_SET_BYTES);
      const token = raw.toString('latin1').trim();
      if (!COMPACT_JWS.test(token)) {
        throw new RiscError('invalid_security_event', 'the body is not a security event token (a compact signed JWT, application/secevent+jwt)', { status: 400, err: 'invalid_request' });
      }
      const outcome = await receiveSecurityEvent(deps, token);
      res.writeHead(202, { 'cache-control': 'no-store', 'content-length': '0' });
      res.end();
      if (outcome.status === 'handled') {
        logger.info({ jti: outcome.entry.jti, events: outcome.entry.events.map((e) => e.event) }, `Security event ${outcome.entry.jti} accepted`);
      }
    } catch (e) {
      answerError(res, e, logger);
    }
  });
}

function answerError(res: ServerResponse, e: unknown, logger: Logger): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (!isGatewayError(e)) {
    logger.error({ err: describeForLog(e), route: RISC_PATH }, 'unhandled error in the security event receiver');
    sendJson(res, 500, { err: 'internal_error', description: INTERNAL_MESSAGE });
    return;
  }
  const transient = e.status >= 500;
  // A body that is too big, too slow or unreadable is not an acceptable token either.
  const status = transient ? e.status : 400;
  const err = e instanceof RiscError && e.err ? e.err : transient ? 'temporarily_unavailable' : 'invalid_request';
  const cause = e.cause instanceof Error ? e.cause.message.slice(0, 200) : undefined;
  logger.warn({ status, err, reason: e.message, ...(cause ? { detail: cause } : {}) }, `Security event token ${transient ? 'not handled now' : 'rejected'}: ${e.message}`);
  sendJson(res, status, { err, description: e.message }, e.retryAfterSeconds ? { 'retry-after': String(e.retryAfterSeconds) } : {});
}
