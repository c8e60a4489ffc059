// The gateway's own error answer to a proxied request (no account, every
// attempt failed): the routes answer it in their protocol's shape.
import { GatewayError, type ErrorCode } from '../../util/errors.ts';

/** A request the gateway answers with an error of its own (no account, all failed, bad upstream answer). */
export class ProxyFailure extends GatewayError {
  constructor(status: number, code: ErrorCode, message: string, retryAfterSeconds?: number, opts: { cause?: unknown } = {}) {
    super(code, message, { status, retryAfterSeconds, cause: opts.cause });
  }
  /** The code, as the doors' error bodies call it. */
  get type(): ErrorCode {
    return this.code;
  }
}
