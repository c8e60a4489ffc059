// Loading the configuration: data directory, config.json, environment
// variables (which win), and the secrets generated on first start.
import { describeJsonError } from '../util/json.ts';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { ConfigSchema, type Config } from './schema.ts';
import { writeFileAtomic } from '../fsx/atomic-write.ts';
import { withFileLock } from '../fsx/file-lock.ts';
import { isLoopbackHost } from '../util/net.ts';
import { GatewayError } from '../util/errors.ts';
import { decideAuthMode } from './auth-mode.ts';
import { userPath } from './user-path.ts';

/** The configuration cannot be used (config.json, an environment variable, the listen address). */
export class ConfigError extends GatewayError {
  constructor(message: string, opts: { fix?: string; cause?: unknown } = {}) {
    super('config_invalid', message, { status: 500, ...opts });
  }
}

export interface ResolvedConfig extends Config {
  data_dir: string;
  /** The external base URL without a trailing slash. */
  public_base_url: string;
  redirect_uri: string;
  client_secret_path: string;
  /** The auth mode in force (`auto` resolved by the listen address and the public URL). */
  effective_auth_mode: 'off' | 'strict' | 'all_except_health';
  /** Why that mode is in force (start banner, /api/status). */
  auth_mode_reason: string;
}

export interface LoadedConfig {
  config: ResolvedConfig;
  /** Secrets created by this load (first start), to print once. */
  generated: { apiKey?: string; adminToken?: string };
}

type Env = Record<string, string | undefined>;

export function resolveDataDir(env: Env = process.env): string {
  const dir = env.GRANTPOOL_DATA_DIR?.trim();
  return dir ? userPath(dir) : join(homedir(), '.grantpool');
}

/** Creates the data directory (mode 0700), tightening the mode of an existing one. */
export async function ensureDataDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = await stat(dir);
    if ((s.mode & 0o077) !== 0) await chmod(dir, 0o700);
  } catch (e) {
    throw new ConfigError(`cannot use the data directory ${dir}: ${(e as Error).message}`, {
      cause: e,
      fix: 'set GRANTPOOL_DATA_DIR to a directory this user may create and write',
    });
  }
}

export function configPath(dataDir: string): string {
  return join(dataDir, 'config.json');
}

/** The raw object in config.json ({} when there is none). */
export async function readConfigFile(dataDir: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(configPath(dataDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read ${configPath(dataDir)}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${configPath(dataDir)} is ${describeJsonError(e)}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${configPath(dataDir)} must hold a JSON object`);
  }
  return raw as Record<string, unknown>;
}

/**
 * Read-modify-write of config.json, serialised across processes (the gateway's
 * key management, first starts). `change` returns the new object, or null to
 * leave the file as it is.
 */
export async function updateConfigFile(
  dataDir: string,
  change: (raw: Record<string, unknown>) => Record<string, unknown> | null,
): Promise<void> {
  await withFileLock(join(dataDir, '.config.lock'), async () => {
    const next = change(await readConfigFile(dataDir));
    if (next) await writeFileAtomic(configPath(dataDir), JSON.stringify(next, null, 2) + '\n', 0o600);
  });
}

/** Environment variables, as config keys (they win over config.json). */
function envOverrides(env: Env): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const str = (name: string, key: string) => {
    const v = env[name];
    if (v !== undefined && v !== '') o[key] = v;
  };
  str('GRANTPOOL_HOST', 'host');
  if (env.GRANTPOOL_PORT) {
    const n = Number(env.GRANTPOOL_PORT);
    o.port = Number.isInteger(n) ? n : env.GRANTPOOL_PORT;
  }
  str('GRANTPOOL_PUBLIC_URL', 'public_url');
  if (env.GRANTPOOL_API_KEYS) {
    o.api_keys = env.GRANTPOOL_API_KEYS.split(',')
      .map((k) => k.trim())
      .filter(Boolean)
      .map((key, i) => ({ key, label: `env ${i + 1}`, created_at: null }));
  }
  str('GRANTPOOL_AUTH_MODE', 'auth_mode');
  str('GRANTPOOL_ADMIN_TOKEN', 'admin_token');
  str('GRANTPOOL_CLIENT_SECRET_FILE', 'client_secret_file');
  str('GRANTPOOL_OAUTH_ISSUER', 'oauth_issuer');
  str('GRANTPOOL_GEMINI_BASE_URL', 'gemini_base_url');
  str('GRANTPOOL_GOOGLE_API_BASE_URL', 'google_api_base_url');
  str('GRANTPOOL_DATABASE_URL', 'database_url');
  str('GRANTPOOL_RESOURCE_MANAGER_BASE_URL', 'resource_manager_base_url');
  str('GRANTPOOL_SERVICE_USAGE_BASE_URL', 'service_usage_base_url');
  str('GRANTPOOL_VERTEX_BASE_URL', 'vertex_base_url');
  str('GRANTPOOL_VERTEX_LOCATION', 'vertex_location');
  str('GRANTPOOL_RISC_CONFIG_URL', 'risc_config_url');
  str('GRANTPOOL_RISC_API_URL', 'risc_api_base_url');
  str('GRANTPOOL_ENCRYPTION_KEY_FILE', 'encryption_key_file');
  if (env.GRANTPOOL_MODEL_ALIASES) {
    try {
      o.model_aliases = JSON.parse(env.GRANTPOOL_MODEL_ALIASES);
    } catch (e) {
      throw new ConfigError(`GRANTPOOL_MODEL_ALIASES is ${describeJsonError(e)}`);
    }
  }
  return o;
}

const ENV_NAME: Record<string, string> = {
  host: 'GRANTPOOL_HOST', port: 'GRANTPOOL_PORT', public_url: 'GRANTPOOL_PUBLIC_URL', api_keys: 'GRANTPOOL_API_KEYS',
  auth_mode: 'GRANTPOOL_AUTH_MODE', admin_token: 'GRANTPOOL_ADMIN_TOKEN', client_secret_file: 'GRANTPOOL_CLIENT_SECRET_FILE',
  oauth_issuer: 'GRANTPOOL_OAUTH_ISSUER', gemini_base_url: 'GRANTPOOL_GEMINI_BASE_URL',
  google_api_base_url: 'GRANTPOOL_GOOGLE_API_BASE_URL', model_aliases: 'GRANTPOOL_MODEL_ALIASES',
  database_url: 'GRANTPOOL_DATABASE_URL',
  resource_manager_base_url: 'GRANTPOOL_RESOURCE_MANAGER_BASE_URL', service_usage_base_url: 'GRANTPOOL_SERVICE_USAGE_BASE_URL',
  vertex_base_url: 'GRANTPOOL_VERTEX_BASE_URL', vertex_location: 'GRANTPOOL_VERTEX_LOCATION',
  risc_config_url: 'GRANTPOOL_RISC_CONFIG_URL', risc_api_base_url: 'GRANTPOOL_RISC_API_URL',
  encryption_key_file: 'GRANTPOOL_ENCRYPTION_KEY_FILE',
};

function formatIssues(error: z.ZodError, fromEnv: Set<string>): string {
  return error.issues
    .map((issue) => {
      const key = issue.path.join('.') || '(top level)';
      const top = String(issue.path[0] ?? '');
      const where = fromEnv.has(top) ? ` (from ${ENV_NAME[top]})` : '';
      if (issue.code === 'unrecognized_keys') {
        return `config.json: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${[...issue.path, k].join('.')}"`).join(', ')}`;
      }
      return `config key "${key}"${where}: ${issue.message}`;
    })
    .join('\n');
}

/** Upstreams and the issuer must be https, except on a loopback address (local testing). */
function checkUrlScheme(key: string, value: string): void {
  const u = new URL(value);
  if (u.protocol === 'https:') return;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return;
  throw new ConfigError(`config key "${key}": ${value} must use https:// (http:// is accepted only on a loopback address)`);
}

export function generateApiKey(): string {
  return `gp-${randomBytes(24).toString('base64url')}`;
}

function generateAdminToken(): string {
  return `gpa-${randomBytes(24).toString('base64url')}`;
}

/**
 * Loads and validates the configuration. With `persistSecrets` (the gateway's
 * start), a missing API key or admin token is generated and saved in config.json.
 */
export async function loadConfig(opts: { env?: Env; persistSecrets?: boolean } = {}): Promise<LoadedConfig> {
  const env = opts.env ?? process.env;
  const dataDir = resolveDataDir(env);
  await ensureDataDir(dataDir);
  const overrides = envOverrides(env);
  const generated: LoadedConfig['generated'] = {};
  let fileRaw = await readConfigFile(dataDir);

  const missingKey = (raw: Record<string, unknown>) =>
    !overrides.api_keys && !(Array.isArray(raw.api_keys) && raw.api_keys.length > 0);
  const missingAdmin = (raw: Record<string, unknown>) => !overrides.admin_token && !raw.admin_token;
  if (opts.persistSecrets && (missingKey(fileRaw) || missingAdmin(fileRaw))) {
    await updateConfigFile(dataDir, (raw) => {
      const now = Math.floor(Date.now() / 1000);
      if (missingKey(raw)) {
        generated.apiKey = generateApiKey();
        raw.api_keys = [{ key: generated.apiKey, label: 'default', created_at: now }];
      }
      if (missingAdmin(raw)) {
        generated.adminToken = generateAdminToken();
        raw.admin_token = generated.adminToken;
      }
      // Validate before saving so that a broken config.json is reported, not overwritten.
      const check = ConfigSchema.safeParse(raw);
      if (!check.success) throw new ConfigError(formatIssues(check.error, new Set()));
      fileRaw = raw;
      return generated.apiKey || generated.adminToken ? raw : null;
    });
  }

  const parsed = ConfigSchema.safeParse({ ...fileRaw, ...overrides });
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, new Set(Object.keys(overrides))));
  const config = parsed.data;
  checkUrlScheme('oauth_issuer', config.oauth_issuer);
  checkUrlScheme('gemini_base_url', config.gemini_base_url);
  checkUrlScheme('google_api_base_url', config.google_api_base_url);
  checkUrlScheme('resource_manager_base_url', config.resource_manager_base_url);
  checkUrlScheme('service_usage_base_url', config.service_usage_base_url);
  checkUrlScheme('vertex_base_url', config.vertex_base_url);
  checkUrlScheme('risc_config_url', config.risc_config_url);
  checkUrlScheme('risc_api_base_url', config.risc_api_base_url);

  const publicBase = (config.public_url ?? `http://localhost:${config.port}`).replace(/\/+$/, '');
  const auth = decideAuthMode(config.auth_mode, config.host, publicBase);
  return {
    config: {
      ...config,
      data_dir: dataDir,
      public_base_url: publicBase,
      redirect_uri: `${publicBase}/oauth2callback`,
      client_secret_path: config.client_secret_file
        ? userPath(config.client_secret_file, dataDir)
        : join(dataDir, 'client_secret.json'),
      effective_auth_mode: auth.mode,
      auth_mode_reason: auth.reason,
    },
    generated,
  };
}
