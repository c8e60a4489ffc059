// What the exchange pipeline needs from the gateway.
import type { Config } from '../../config/schema.ts';
import type { Logger } from '../../log/logger.ts';
import type { TokenPool } from '../../pool/types.ts';
import type { Clock } from '../../util/clock.ts';
import type { RequestLog } from '../request-log.ts';
import type { UpstreamClient } from '../upstream-client.ts';

export interface EngineDeps {
  config: () => Config;
  pool: TokenPool;
  logger: Logger;
  clock: Clock;
  client: UpstreamClient;
  requestLog?: RequestLog;
}

export type Protocol = 'openai' | 'anthropic' | 'gemini' | 'google';
