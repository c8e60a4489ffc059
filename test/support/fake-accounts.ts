// Accounts, a captured logger and a ready pool for pool tests (fake clock,
// in-memory store, fake refresher).
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log/logger.ts';
import { AccountSchema, type Account } from '../../src/store/account.ts';
import { MemoryAccountStore } from '../../src/store/memory-store.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { createPool, type Pool, type PoolConfig, type PoolOptions } from '../../src/pool/pool.ts';
import { MemoryUsageStore, type UsageStore } from '../../src/pool/usage.ts';
import { FakeRefresher } from './fake-refresher.ts';

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
export const GEMINI_SCOPE = 'https://www.googleapis.com/auth/generative-language.retriever';
export const CLOUD_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

/** An account whose token expires `expiresIn` seconds after `nowMs`. */
export function fakeAccount(
  id: string,
  opts: { nowMs?: number; expiresIn?: number; scope?: string; clientId?: string | null } & Partial<Account> = {},
): Account {
  const { nowMs = T0, expiresIn = 3600, scope = `openid email ${CLOUD_SCOPE} ${GEMINI_SCOPE}`, clientId = 'client-a.apps.googleusercontent.com', ...rest } = opts;
  return AccountSchema.parse({
    id,
    email: `${id}@example.com`,
    sub: `sub-${id}`,
    name: `User ${id}`,
    token: {
      access_token: `ya29.initial-${id}`,
      refresh_token: `1//refresh-${id}`,
      expiry_timestamp: Math.floor(nowMs / 1000) + expiresIn,
      token_type: 'Bearer',
      scope,
    },
    oauth_client_id: clientId,
    created_at: Math.floor(nowMs / 1000) - 86400,
    ...rest,
  });
}

/** A pino logger whose JSON lines are kept. */
export function captureLog(): {
  logger: Logger;
  lines: () => Array<Record<string, any>>;
  messages: () => string[];
  text: () => string;
} {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination: destination as never });
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>);
  return { logger, lines, messages: () => lines().map((l) => String(l.msg)), text };
}

export const defaultPoolConfig: PoolConfig = {
  strategy: 'round_robin',
  session_affinity: true,
  refresh_before_seconds: 300,
  refresh_backoff_min_seconds: 5,
  refresh_backoff_max_seconds: 600,
  server_error_cooldown_seconds: 10,
  quota_protection: { enabled: false, threshold_percent: 10, limits: {} },
};

export interface Harness {
  clock: FakeClock;
  store: MemoryAccountStore;
  refresher: FakeRefresher;
  pool: Pool;
  usage: UsageStore;
  log: ReturnType<typeof captureLog>;
}

/** A started pool over a memory store holding `accounts`. */
export async function poolHarness(
  accounts: Account[],
  opts: { config?: Partial<PoolConfig>; usage?: UsageStore; clock?: FakeClock; store?: MemoryAccountStore } & Omit<Partial<PoolOptions>, 'config'> = {},
): Promise<Harness> {
  const clock = opts.clock ?? new FakeClock(T0);
  const store = opts.store ?? new MemoryAccountStore(accounts);
  const refresher = new FakeRefresher(clock);
  const usage = opts.usage ?? new MemoryUsageStore();
  const log = captureLog();
  const { config, ...rest } = opts;
  const pool = createPool({
    random: () => 0.5,
    backgroundIntervalMs: 0,
    ...rest,
    store,
    refresher,
    clock,
    logger: log.logger,
    usage,
    config: { ...defaultPoolConfig, ...config },
  });
  await pool.start();
  return { clock, store, refresher, pool, usage, log };
}

/** Lets pending promise callbacks and store notifications run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
