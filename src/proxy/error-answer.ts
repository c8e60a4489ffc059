// The proxy's one mapping from an error to an answer, in the protocol shape of
// the route (OpenAI `{"error":{"message","type","code"}}`, Anthropic
// `{"type":"error","error":{"type","message"}}`, Google
// `{"error":{"code","message","status"}}`; the doors build the bodies). A
// GatewayError is answered as it is (status, message, code, Retry-After);
// anything else is unexpected: logged once with its stack (scrubbed), and the
// client gets a generic 500 that never quotes it.
import type { Logger } from '../log/logger.ts';
import { redactSecrets } from '../util/redact.ts';
import { describeForLog, INTERNAL_MESSAGE, isGatewayError } from '../util/errors.ts';

/** An error body in one protocol's shape; `code` is the short machine code. */
export type ErrorBodyShaper = (status: number, message: string, code?: string) => unknown;

export interface ProxyErrorAnswer {
  status: number;
  body: unknown;
  retryAfterSeconds?: number;
  /** What the request log records for it (an unexpected error's message, scrubbed: the log is the admin's). */
  logText: string;
}

/** The answer to `e`; an unexpected one is logged on `logger` (null: the caller passes it on to a boundary that logs it). */
export function proxyErrorAnswer(e: unknown, shape: ErrorBodyShaper, logger: Logger | null, route: string): ProxyErrorAnswer {
  if (isGatewayError(e)) {
    return { status: e.status, body: shape(e.status, e.message, e.code), retryAfterSeconds: e.retryAfterSeconds, logText: e.message };
  }
  const err = describeForLog(e);
  logger?.error({ err, route }, 'proxy request failed');
  return { status: 500, body: shape(500, INTERNAL_MESSAGE, 'internal_error'), logText: `internal error: ${redactSecrets(err.message)}` };
}
