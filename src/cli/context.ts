// What a CLI command works with: the configuration, the account store, the
// OAuth client, and the running gateway when there is one.
import { loadConfig, type ResolvedConfig } from '../config/load.ts';
import { loadEncryptionKeys, type EncryptionKeys } from '../config/encryption-keys.ts';
import { openAccountStore } from '../store/open-store.ts';
import type { AccountStore } from '../store/store.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { OAuthHolder } from '../oauth/oauth-holder.ts';
import { systemClock } from '../util/clock.ts';
import { GatewayError } from '../util/errors.ts';

/** A command cannot go on: the CLI prints its message (and fix) and exits non-zero. */
export class CliError extends GatewayError {
  constructor(message: string, opts: { fix?: string; cause?: unknown } = {}) {
    super('cli_error', message, { status: 400, ...opts });
  }
}

/** The management API of a running gateway. */
export interface GatewayClient {
  baseUrl: string;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

export interface CliContext {
  env: Record<string, string | undefined>;
  config: () => Promise<ResolvedConfig>;
  /** The encryption keys the configuration names (docs/security.md). */
  keys: () => Promise<EncryptionKeys>;
  store: () => Promise<AccountStore>;
  oauth: () => Promise<OAuthHolder>;
  /** The running gateway, or null when none answers. */
  gateway: () => Promise<GatewayClient | null>;
  logger: Logger;
  close: () => Promise<void>;
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | null = null;
  return () => (p ??= fn());
}

export function localBaseUrl(config: ResolvedConfig): string {
  const host = ['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}

export function createCliContext(env: Record<string, string | undefined> = process.env): CliContext {
  const logger = silentLogger();
  const config = once(async () => (await loadConfig({ env })).config);
  const keys = once(async () => loadEncryptionKeys(await config(), env));
  let opened: AccountStore | null = null;
  const store = once(async () => {
    const c = await config();
    opened = await openAccountStore({ dataDir: c.data_dir, databaseUrl: c.database_url }, logger, await keys());
    return opened;
  });
  const oauth = once(async () => {
    const c = await config();
    const holder = new OAuthHolder({ config: () => c, logger, clock: systemClock });
    await holder.reload();
    return holder;
  });
  const gateway = once(async (): Promise<GatewayClient | null> => {
    const c = await config();
    const baseUrl = localBaseUrl(c);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (c.admin_token) headers.authorization = `Bearer ${c.admin_token}`;
    const request = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const json = (await res.json().catch(() => null)) as { error?: { message?: string; fix?: string } } | null;
      if (!res.ok) {
        const e = json?.error;
        throw new CliError(e?.message ?? `the gateway answered ${res.status}`, { fix: e?.fix });
      }
      return json as T;
    };
    try {
      const res = await fetch(`${baseUrl}/api/status`, { headers, signal: AbortSignal.timeout(1500) });
      if (res.status === 401) throw new CliError(`a gateway answers at ${baseUrl} but refuses this data directory's admin token`);
      if (!res.ok) return null;
      await res.arrayBuffer();
      return { baseUrl, request };
    } catch (e) {
      if (e instanceof CliError) throw e;
      return null;
    }
  });
  return {
    env,
    config,
    keys,
    store,
    oauth,
    gateway,
    logger,
    close: async () => {
      await opened?.close();
    },
  };
}
