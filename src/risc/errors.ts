// The one error of Cross-Account Protection: a GatewayError with, for the
// receiver's answers, the error code of RFC 8935 section 2.4 (`err`) that the
// transmitter (Google) reads.
import { GatewayError, type GatewayErrorOptions, type RiscErrorCode } from '../util/errors.ts';

/** RFC 8935 error codes (IANA "Security Event Token Error Codes"). */
export type SetErrorCode = 'invalid_request' | 'invalid_key' | 'invalid_issuer' | 'invalid_audience' | 'authentication_failed' | 'access_denied';

export class RiscError extends GatewayError {
  /** The RFC 8935 code of a receiver answer (absent for the management API's errors). */
  readonly err?: SetErrorCode;
  constructor(code: RiscErrorCode, message: string, opts: GatewayErrorOptions & { err?: SetErrorCode } = {}) {
    super(code, message, opts);
    if (opts.err) this.err = opts.err;
  }
}

/** 400: the token is not one this gateway accepts (Google does not redeliver it). */
export function invalidToken(err: SetErrorCode, message: string, cause?: unknown): RiscError {
  return new RiscError('invalid_security_event', message, { status: 400, err, cause });
}
