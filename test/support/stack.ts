// The whole system for end-to-end tests: the OIDC stand-in (acting as
// accounts.google.com), the Gemini API stand-in (accepting exactly the access
// tokens the issuer says are valid), and the real gateway on a temp data dir.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startIssuer, type StandInIssuer, type ConsentOptions } from './oidc-issuer.ts';
import { startGeminiUpstream, type GeminiUpstream } from './gemini-upstream.ts';
import { startCloudProjects, type CloudProjects, type CloudProjectsOptions } from './cloud-projects.ts';
import { startGateway, type Gateway } from '../../src/app/gateway.ts';
import { createLogger } from '../../src/log/logger.ts';
import type { Clock } from '../../src/util/clock.ts';

/** Real time plus an offset the test can move forward. */
export class OffsetClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/** Log lines captured as parsed JSON objects. */
export class LogCapture {
  lines: Record<string, unknown>[] = [];
  readonly stream = new Writable({
    write: (chunk, _enc, cb) => {
      for (const line of String(chunk).split('\n')) if (line.trim()) this.lines.push(JSON.parse(line));
      cb();
    },
  });
  messages(): string[] {
    return this.lines.map((l) => String(l.msg));
  }
  text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Stack {
  issuer: StandInIssuer;
  upstream: GeminiUpstream;
  /** Resource Manager + Service Usage stand-in (with `cloud`); the Gemini stand-in then meters per project. */
  cloud: CloudProjects | null;
  gateway: Gateway;
  dataDir: string;
  env: Record<string, string>;
  clock: OffsetClock;
  logs: LogCapture;
  /** Admin API call; throws on a non-2xx answer unless `allowError`. */
  api<T = any>(method: string, path: string, body?: unknown, opts?: { allowError?: boolean }): Promise<{ status: number; body: T }>;
  /** Runs a consent for `email` through the gateway (start → issuer → browser redirect to /oauth2callback). */
  addAccount(email: string, opts?: Omit<ConsentOptions, 'email'> & { loginHint?: string }): Promise<{ status: number; html: string }>;
  /** Every account file as it is on disk. */
  accountFiles(): Promise<any[]>;
  /** The account file of `email`, or null. */
  accountFile(email: string): Promise<any | null>;
  /** Stops the gateway and starts it again on the same data directory and port. */
  restartGateway(): Promise<void>;
  close(): Promise<void>;
}

export async function startStack(
  opts: {
    accessTokenTtlSeconds?: number;
    env?: Record<string, string>;
    withClientSecret?: boolean;
    /** Start the Resource Manager / Service Usage stand-in and meter the Gemini API per project, as Google does. */
    cloud?: Omit<CloudProjectsOptions, 'tokenInfo'>;
  } = {},
): Promise<Stack> {
  const issuer = await startIssuer({ accessTokenTtlSeconds: opts.accessTokenTtlSeconds });
  const userinfoUrl = `${issuer.url.replace(/\/$/, '')}/v1/userinfo`;
  const cloud = opts.cloud ? await startCloudProjects({ ...opts.cloud, tokenInfo: (t) => issuer.tokenInfo(t) }) : null;
  // The OAuth client's project serves the Gemini API (accounts without a project of their own draw on it).
  cloud?.addProject(cloud.clientProject, { enabled: ['generativelanguage.googleapis.com'] });
  const upstream = await startGeminiUpstream({
    validateToken: async (token) => {
      const r = await fetch(userinfoUrl, { headers: { authorization: `Bearer ${token}` } });
      await r.arrayBuffer();
      return r.ok;
    },
    metering: cloud
      ? {
          tokenInfo: (t) => issuer.tokenInfo(t),
          clientProject: cloud.clientProject,
          canUse: (email, p) => cloud.canUse(email, p),
          isEnabled: (p, svc) => cloud.isEnabled(p, svc),
        }
      : undefined,
  });
  const dataDir = await mkdtemp(join(tmpdir(), 'grantpool-e2e-'));
  const port = await freePort();
  const redirectUri = `http://localhost:${port}/oauth2callback`;
  issuer.allowRedirectUri(redirectUri);
  if (opts.withClientSecret !== false) await issuer.writeClientSecret(join(dataDir, 'client_secret.json'), redirectUri);
  const env: Record<string, string> = {
    GRANTPOOL_DATA_DIR: dataDir,
    GRANTPOOL_HOST: '127.0.0.1',
    GRANTPOOL_PORT: String(port),
    GRANTPOOL_OAUTH_ISSUER: issuer.url,
    GRANTPOOL_GEMINI_BASE_URL: upstream.url,
    GRANTPOOL_GOOGLE_API_BASE_URL: upstream.url,
    // Without the stand-in, project discovery fails at once (nothing listens on port 9) instead of calling Google.
    GRANTPOOL_RESOURCE_MANAGER_BASE_URL: cloud?.url ?? 'http://127.0.0.1:9',
    GRANTPOOL_SERVICE_USAGE_BASE_URL: cloud?.url ?? 'http://127.0.0.1:9',
    // Without a Vertex AI stand-in (tests pass one in `env`), a Vertex lane's calls fail at once instead of calling Google.
    GRANTPOOL_VERTEX_BASE_URL: 'http://127.0.0.1:9',
    GRANTPOOL_ADMIN_TOKEN: 'test-admin-token-0123456789',
    // Google's security events come from the stand-in (never from accounts.google.com).
    GRANTPOOL_RISC_CONFIG_URL: issuer.riscConfigUrl,
    ...opts.env,
  };
  const clock = new OffsetClock();
  const logs = new LogCapture();
  const logger = createLogger({ destination: logs.stream, level: 'info' });
  let gateway = await startGateway({ env, logger, clock });

  const stack: Stack = {
    issuer,
    upstream,
    cloud,
    get gateway() {
      return gateway;
    },
    dataDir,
    env,
    clock,
    logs,
    async api(method, path, body, o = {}) {
      const res = await fetch(gateway.url + path, {
        method,
        headers: { authorization: `Bearer ${env.GRANTPOOL_ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = await res.json().catch(() => null);
      if (!res.ok && !o.allowError) throw new Error(`${method} ${path} → ${res.status}: ${JSON.stringify(json)}`);
      return { status: res.status, body: json };
    },
    async addAccount(email, o = {}) {
      const { body } = await stack.api('POST', '/api/oauth/start', o.loginHint ? { login_hint: o.loginHint } : {});
      const callback = await issuer.consent(body.auth_url, { email, ...o });
      const res = await fetch(callback.replace(`http://localhost:${port}`, gateway.url), { redirect: 'manual' });
      return { status: res.status, html: await res.text() };
    },
    async accountFiles() {
      const dir = join(dataDir, 'accounts');
      const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
      return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, n), 'utf8'))));
    },
    async accountFile(email) {
      return (await stack.accountFiles()).find((a) => a.email === email) ?? null;
    },
    async restartGateway() {
      await gateway.close();
      gateway = await startGateway({ env, logger, clock });
    },
    async close() {
      await gateway.close().catch(() => {});
      await upstream.close();
      await cloud?.close();
      await issuer.close();
      await rm(dataDir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
  return stack;
}
