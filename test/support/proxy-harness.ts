// A gateway with only the proxy routes, on 127.0.0.1:0, in front of the
// Gemini API stand-in, with a programmable fake TokenPool (or any TokenPool).
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { ConfigSchema, type Config } from '../../src/config/schema.ts';
import { Router } from '../../src/http/router.ts';
import { createHttpServer, type ClientLimits } from '../../src/http/server.ts';
import { silentLogger, type Logger } from '../../src/log/logger.ts';
import { registerProxyRoutes, type ProxyConfig, type ProxyRoutes } from '../../src/proxy/routes.ts';
import { createRequestLog, type RequestLog } from '../../src/proxy/request-log.ts';
import { NoAccountError, type AcquireRequest, type LaneService, type Lease, type TokenPool, type UpstreamOutcome } from '../../src/pool/types.ts';
import type { Clock } from '../../src/util/clock.ts';
import { startGeminiUpstream, type GeminiUpstream, type GeminiUpstreamOptions } from './gemini-upstream.ts';

export interface FakeAccount {
  id: string;
  email: string;
  projectId: string | null;
  /** Its project has Vertex AI: it has a Vertex lane `vertex:<projectId>`. */
  vertex: boolean;
  token: string;
  /** Model (`vertex:<model>` on Vertex AI) -> cooled down until (ms). */
  cooling: Map<string, number>;
  forbidden: string | null;
  /** refreshAfterUnauthorized answers null (as after invalid_grant). */
  refreshFails: boolean;
}

const coolKey = (service: LaneService, model: string) => (service === 'gemini_api' ? model : `${service}:${model}`);

/**
 * A TokenPool that keeps its rules obvious: round robin, per-model cooldowns
 * (per service), forbidden accounts out, services in the order asked (an
 * account serves Vertex AI when added with `vertex: true` and a project),
 * every call recorded.
 */
export class FakePool implements TokenPool {
  readonly accounts: FakeAccount[] = [];
  readonly reports: { accountId: string; model: string; outcome: UpstreamOutcome }[] = [];
  readonly acquires: AcquireRequest[] = [];
  refreshes = 0;
  private next = 0;
  private readonly clock: Clock;
  /** Called with each new token a refresh mints (tests register it with the upstream). */
  onToken: (token: string, account: FakeAccount) => void = () => {};

  constructor(clock: Clock) {
    this.clock = clock;
  }

  add(id: string, opts: { projectId?: string | null; token?: string; vertex?: boolean } = {}): FakeAccount {
    const a: FakeAccount = {
      id,
      email: `${id}@example.com`,
      projectId: opts.projectId ?? null,
      vertex: !!opts.vertex && !!opts.projectId,
      token: opts.token ?? `tok-${id}-0`,
      cooling: new Map(),
      forbidden: null,
      refreshFails: false,
    };
    this.accounts.push(a);
    this.onToken(a.token, a);
    return a;
  }

  private lease(a: FakeAccount, service: LaneService = 'gemini_api'): Lease {
    const lane = service === 'vertex' ? `vertex:${a.projectId}` : a.projectId ? `gemini_api:${a.projectId}` : 'gemini_api:client:fake';
    return { accountId: a.id, email: a.email, projectId: a.projectId, accessToken: a.token, service, lane };
  }

  private has(a: FakeAccount, service: LaneService): boolean {
    return service === 'gemini_api' || a.vertex;
  }

  canServe(service: LaneService): boolean {
    return this.accounts.some((a) => !a.forbidden && this.has(a, service));
  }

  async acquire(req: AcquireRequest): Promise<Lease> {
    this.acquires.push({ ...req, exclude: new Set(req.exclude ?? []) });
    const now = this.clock.now();
    const services = req.services?.length ? req.services : (['gemini_api'] as const);
    if (req.pinned) {
      const a = this.accounts.find((x) => x.id === req.pinned || x.email === req.pinned);
      if (!a) throw new NoAccountError('pinned_unknown', `no account "${req.pinned}" in the pool`, 404);
      for (const s of services) {
        if (!a.forbidden && this.has(a, s) && !req.excludeOn?.[s]?.has(a.id) && (a.cooling.get(coolKey(s, req.model)) ?? 0) <= now) return this.lease(a, s);
      }
      throw new NoAccountError('pinned_unusable', `account ${a.email} cannot serve now`, 503);
    }
    if (this.accounts.length === 0) throw new NoAccountError('no_accounts', 'no accounts in the pool', 503);
    const cooling: number[] = [];
    for (const s of services) {
      const usable = this.accounts.filter((a) => !a.forbidden && this.has(a, s) && !req.exclude?.has(a.id) && !req.excludeOn?.[s]?.has(a.id));
      const ready = usable.filter((a) => (a.cooling.get(coolKey(s, req.model)) ?? 0) <= now);
      if (ready.length > 0) return this.lease(ready[this.next++ % ready.length]!, s);
      cooling.push(...usable.map((a) => a.cooling.get(coolKey(s, req.model)) ?? 0).filter((t) => t > now));
    }
    if (cooling.length) {
      const secs = Math.ceil((Math.min(...cooling) - now) / 1000);
      throw new NoAccountError('all_cooling_down', `every account is cooling down for ${req.model}`, 429, secs);
    }
    if (!services.includes('gemini_api') && !this.accounts.some((a) => a.vertex)) {
      throw new NoAccountError('no_service', 'no account can serve Vertex AI', 503);
    }
    throw new NoAccountError('exhausted', 'no other account can serve this request', 503);
  }

  report(lease: Lease, model: string, outcome: UpstreamOutcome): void {
    this.reports.push({ accountId: lease.accountId, model, outcome });
    const a = this.accounts.find((x) => x.id === lease.accountId);
    if (!a) return;
    if (outcome.kind === 'rate_limited') a.cooling.set(coolKey(lease.service ?? 'gemini_api', model), outcome.untilMs);
    if (outcome.kind === 'forbidden') a.forbidden = outcome.reason;
  }

  async refreshAfterUnauthorized(lease: Lease): Promise<Lease | null> {
    this.refreshes++;
    const a = this.accounts.find((x) => x.id === lease.accountId);
    if (!a || a.refreshFails) return null;
    const n = Number(a.token.split('-').pop()) + 1;
    a.token = `tok-${a.id}-${n}`;
    this.onToken(a.token, a);
    return this.lease(a, lease.service);
  }

  outcomes(kind?: UpstreamOutcome['kind']): { accountId: string; model: string; outcome: UpstreamOutcome }[] {
    return kind ? this.reports.filter((r) => r.outcome.kind === kind) : this.reports;
  }
}

export interface Harness {
  url: string;
  upstream: GeminiUpstream;
  pool: TokenPool;
  requestLog: RequestLog;
  config: ProxyConfig;
  routes: ProxyRoutes;
  server: Server;
  close(): Promise<void>;
}

export interface HarnessOptions {
  pool?: TokenPool;
  /** Accounts added to a FakePool created here (ignored with `pool`). */
  accounts?: string[];
  config?: Partial<Config> & { effective_auth_mode?: ProxyConfig['effective_auth_mode'] };
  upstream?: GeminiUpstreamOptions;
  clock?: Clock;
  googleApiBaseUrl?: string;
  /** Where the proxy and the HTTP server log (silent by default). */
  logger?: Logger;
  /** Request deadlines of the HTTP server (default: the server's defaults). */
  clientLimits?: ClientLimits;
}

export const systemTestClock: Clock = { now: () => Date.now() };

/** Starts the stand-in and a gateway in front of it. With no `pool`, a FakePool whose tokens the stand-in accepts. */
export async function startProxy(opts: HarnessOptions = {}): Promise<Harness & { fake: FakePool | null }> {
  const clock = opts.clock ?? systemTestClock;
  const upstream = await startGeminiUpstream(opts.upstream);
  let fake: FakePool | null = null;
  let pool = opts.pool;
  if (!pool) {
    fake = new FakePool(clock);
    fake.onToken = (token, a) => upstream.addToken(token, { project: a.projectId });
    for (const id of opts.accounts ?? ['a', 'b', 'c']) fake.add(id);
    pool = fake;
  }
  const config: ProxyConfig = {
    ...ConfigSchema.parse({}),
    auth_mode: 'off',
    gemini_base_url: upstream.url,
    google_api_base_url: opts.googleApiBaseUrl ?? upstream.url,
    ...opts.config,
  };
  const requestLog = createRequestLog({ size: config.request_log_size });
  const router = new Router();
  const logger = opts.logger ?? silentLogger();
  const routes = registerProxyRoutes(router, { config: () => config, pool, logger, requestLog, clock });
  const server = createHttpServer(router, logger, opts.clientLimits);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    upstream,
    pool,
    fake,
    requestLog,
    config,
    routes,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await routes.close();
      await upstream.close();
    },
  };
}
