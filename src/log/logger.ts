// Structured logs that say what happened to which account, never a token.
import { pino, type Logger, type DestinationStream } from 'pino';
import { describeForLog } from '../util/errors.ts';

export type { Logger };

/** Field names whose values are secrets wherever they appear. */
const SECRET_KEYS = [
  'access_token', 'refresh_token', 'id_token', 'client_secret', 'code_verifier',
  'authorization', 'admin_token', 'api_key', 'key', 'token', 'code', 'cookie',
];

export interface LoggerOptions {
  level?: string;
  /** Human-readable lines (for a terminal) instead of JSON lines. */
  pretty?: boolean;
  /** Where lines go; stdout by default. Tests pass a capture stream. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? process.env.GRANTPOOL_LOG_LEVEL ?? 'info',
    base: undefined,
    // An Error under `err` is logged with its stack and causes, scrubbed of anything token-shaped.
    serializers: { err: (v: unknown) => (v instanceof Error ? describeForLog(v) : v) },
    redact: {
      paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
      censor: '[redacted]',
    },
  };
  if (opts.destination) return pino(options, opts.destination);
  if (opts.pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } },
    });
  }
  return pino(options);
}

/** A logger that drops everything (for library use and quiet tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
