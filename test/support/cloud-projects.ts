// A local stand-in for Cloud Resource Manager v3 and Service Usage v1
// (cloudresourcemanager.googleapis.com, serviceusage.googleapis.com), as
// strict as Google about what Grantpool uses:
// - `GET /v3/projects:search` lists the projects the caller may see
//   (resourcemanager.projects.get: any role), honouring `query=state:ACTIVE`,
//   `pageSize` (at most `maxPageSize`, default 2, so that paging is exercised)
//   and `pageToken`;
// - `GET /v1/projects/{id or number}/services/{service}` answers
//   `{name: "projects/<number>/services/<service>", parent, config, state}`
//   with state ENABLED or DISABLED (403 without serviceusage.services.get);
// - `POST .../services/{service}:enable` answers a long-running operation
//   (`{name: "operations/…"}`), done after `pollsToEnable` operations.get
//   calls (403 without serviceusage.services.enable; a service that needs
//   billing ends in an operation error when the project has none);
// - `GET /v1/operations/{id}`.
// Every call needs a token with the cloud-platform scope (else 403
// ACCESS_TOKEN_SCOPE_INSUFFICIENT) and is metered on the OAuth client's
// project, which must have both APIs enabled (else 403 SERVICE_DISABLED with
// the activation URL), as Google does for calls without x-goog-user-project.
// The same directory answers the Gemini stand-in's questions (may this user
// use project P; is the Generative Language API on in P).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { googleError } from './gemini-upstream.ts';
import { listenLoopback } from './listen.ts';

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const RM = 'cloudresourcemanager.googleapis.com';
const SU = 'serviceusage.googleapis.com';
const BILLED_SERVICES = new Set(['aiplatform.googleapis.com']);

/** What a user may do in a project: owner (everything), consumer (services.get + services.use), viewer (list + services.get). */
export type Role = 'owner' | 'consumer' | 'viewer';

export interface StandInProject {
  projectId: string;
  number: string;
  displayName: string;
  state: 'ACTIVE' | 'DELETE_REQUESTED';
  members: Map<string, Role>;
  enabled: Set<string>;
  billing: boolean;
}

export interface TokenInfo {
  email: string;
  scopes: string[];
}

export interface CloudProjectsOptions {
  /** Who a bearer token belongs to and what it may do (null: not a valid token). */
  tokenInfo: (token: string) => Promise<TokenInfo | null>;
  /** The project that owns the OAuth client (calls without x-goog-user-project are metered there). */
  clientProject?: string;
  /** Resource Manager and Service Usage enabled in the client's project (default true; or each on its own). */
  clientApisEnabled?: ClientApis;
  /** Largest page projects:search returns (default 2). */
  maxPageSize?: number;
  /** operations.get calls before an enable operation is done (default 2). */
  pollsToEnable?: number;
}

/** Both APIs on or off in the client's project, or each on its own. */
export type ClientApis = boolean | { resourceManager: boolean; serviceUsage: boolean };

export interface RecordedCall {
  method: string;
  path: string;
  email: string | null;
  status: number;
}

export interface CloudProjects {
  /** Base URL for both GRANTPOOL_RESOURCE_MANAGER_BASE_URL and GRANTPOOL_SERVICE_USAGE_BASE_URL. */
  readonly url: string;
  readonly calls: RecordedCall[];
  readonly clientProject: string;
  addProject(projectId: string, opts?: { members?: Record<string, Role>; enabled?: string[]; billing?: boolean; state?: StandInProject['state']; displayName?: string }): StandInProject;
  project(idOrNumber: string): StandInProject | undefined;
  /** May `email` use project P for quota (serviceusage.services.use)? */
  canUse(email: string, project: string): boolean;
  isEnabled(project: string, service: string): boolean;
  setClientApisEnabled(on: ClientApis): void;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): number {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  return status;
}

function errorInfo(reason: string, metadata: Record<string, string>, domain = 'googleapis.com') {
  return { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain, metadata };
}

export async function startCloudProjects(opts: CloudProjectsOptions): Promise<CloudProjects> {
  const projects = new Map<string, StandInProject>();
  const operations = new Map<string, { project: StandInProject; service: string; polls: number; error: string | null }>();
  const calls: RecordedCall[] = [];
  const clientProject = opts.clientProject ?? 'grantpool-standin';
  const apisOn = (on: ClientApis) =>
    new Set([...((typeof on === 'boolean' ? on : on.resourceManager) ? [RM] : []), ...((typeof on === 'boolean' ? on : on.serviceUsage) ? [SU] : [])]);
  let clientApis = apisOn(opts.clientApisEnabled ?? true);
  const maxPage = opts.maxPageSize ?? 2;
  const pollsToEnable = opts.pollsToEnable ?? 2;
  let nextNumber = 100000000001;

  const find = (idOrNumber: string) => projects.get(idOrNumber) ?? [...projects.values()].find((p) => p.number === idOrNumber);
  const roleOf = (p: StandInProject, email: string) => p.members.get(email.toLowerCase()) ?? null;

  function serviceBody(p: StandInProject, service: string) {
    return {
      name: `projects/${p.number}/services/${service}`,
      parent: `projects/${p.number}`,
      config: { name: service, title: service === 'generativelanguage.googleapis.com' ? 'Generative Language API' : service },
      state: p.enabled.has(service) ? 'ENABLED' : 'DISABLED',
    };
  }

  function denied(res: ServerResponse, permission: string, resource: string): number {
    return send(
      res,
      403,
      googleError(403, `Permission denied to ${permission.split('.').pop()} service [${resource}]\nHelp Token: ${randomBytes(8).toString('hex')}`, [
        errorInfo('AUTH_PERMISSION_DENIED', { permission }, 'serviceusage.googleapis.com'),
      ]),
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse, rec: RecordedCall): Promise<number> {
    for await (const _ of req) void _;
    const url = new URL(req.url ?? '/', 'http://cloud');
    const auth = req.headers.authorization;
    const token = auth && /^Bearer /i.test(auth) ? auth.slice(7).trim() : null;
    const info = token ? await opts.tokenInfo(token) : null;
    if (!info) {
      return send(res, 401, googleError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.'));
    }
    const email = info.email.toLowerCase();
    rec.email = email;
    const isRm = url.pathname.startsWith('/v3/');
    const service = isRm ? RM : SU;
    if (!info.scopes.includes(CLOUD_PLATFORM_SCOPE)) {
      return send(
        res,
        403,
        googleError(403, 'Request had insufficient authentication scopes.', [
          errorInfo('ACCESS_TOKEN_SCOPE_INSUFFICIENT', { service, method: isRm ? 'google.cloud.resourcemanager.v3.Projects.SearchProjects' : 'google.api.serviceusage.v1.ServiceUsage.GetService' }),
        ]),
      );
    }
    if (!clientApis.has(service)) {
      const title = isRm ? 'Cloud Resource Manager API' : 'Service Usage API';
      const activationUrl = `https://console.developers.google.com/apis/api/${service}/overview?project=${clientProject}`;
      return send(
        res,
        403,
        googleError(403, `${title} has not been used in project ${clientProject} before or it is disabled. Enable it by visiting ${activationUrl} then retry.`, [
          errorInfo('SERVICE_DISABLED', { service, consumer: `projects/${clientProject}`, activationUrl, containerInfo: clientProject, serviceTitle: title }),
          { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Google developers console API activation', url: activationUrl }] },
        ]),
      );
    }

    if (req.method === 'GET' && url.pathname === '/v3/projects:search') {
      for (const k of url.searchParams.keys()) {
        if (!['query', 'pageSize', 'pageToken'].includes(k)) {
          return send(res, 400, googleError(400, `Invalid JSON payload received. Unknown name "${k}": Cannot bind query parameter.`));
        }
      }
      const q = (url.searchParams.get('query') ?? '').trim();
      const stateFilter = /^state:(\w+)$/i.exec(q)?.[1]?.toUpperCase() ?? null;
      if (q && !stateFilter) return send(res, 400, googleError(400, `Invalid query: ${q}`));
      const visible = [...projects.values()].filter((p) => roleOf(p, email) && (!stateFilter || p.state === stateFilter));
      const size = Math.min(Math.max(Number(url.searchParams.get('pageSize')) || maxPage, 1), maxPage);
      const start = Number(url.searchParams.get('pageToken') || 0);
      if (!Number.isInteger(start) || start < 0) return send(res, 400, googleError(400, 'Invalid page token.'));
      const page = visible.slice(start, start + size);
      const body: Record<string, unknown> = {};
      if (page.length) {
        body.projects = page.map((p) => ({
          name: `projects/${p.number}`,
          parent: 'organizations/0',
          projectId: p.projectId,
          state: p.state,
          displayName: p.displayName,
          createTime: '2025-01-01T00:00:00.000Z',
          updateTime: '2025-01-01T00:00:00.000Z',
          etag: `W/"${p.number}"`,
        }));
      }
      if (start + size < visible.length) body.nextPageToken = String(start + size);
      return send(res, 200, body);
    }

    const svc = /^\/v1\/projects\/([^/]+)\/services\/([a-z0-9.-]+)(:enable)?$/.exec(url.pathname);
    if (svc) {
      const [, ref, service, enable] = svc as unknown as [string, string, string, string | undefined];
      const p = find(decodeURIComponent(ref));
      const role = p ? roleOf(p, email) : null;
      if (!p || !role) return denied(res, enable ? 'serviceusage.services.enable' : 'serviceusage.services.get', service);
      if (!enable) {
        if (req.method !== 'GET') return send(res, 404, googleError(404, 'Method not found.'));
        return send(res, 200, serviceBody(p, service));
      }
      if (req.method !== 'POST') return send(res, 404, googleError(404, 'Method not found.'));
      if (role !== 'owner') return denied(res, 'serviceusage.services.enable', service);
      if (p.enabled.has(service)) return send(res, 200, { name: 'operations/noop.DONE_OPERATION', done: true, response: { '@type': 'type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse', service: serviceBody(p, service) } });
      const name = `operations/acf.p2-${p.number}-${randomBytes(8).toString('hex')}`;
      const needsBilling = BILLED_SERVICES.has(service) && !p.billing;
      operations.set(name, {
        project: p,
        service,
        polls: 0,
        error: needsBilling ? `Billing must be enabled for activation of service '${service}' in project '${p.number}' to proceed.` : null,
      });
      return send(res, 200, { name });
    }

    const op = /^\/v1\/(operations\/[^/]+)$/.exec(url.pathname);
    if (op && req.method === 'GET') {
      const o = operations.get(decodeURIComponent(op[1]!));
      if (!o) return send(res, 404, googleError(404, 'Operation not found.'));
      o.polls++;
      if (o.polls < pollsToEnable) {
        return send(res, 200, { name: op[1], metadata: { '@type': 'type.googleapis.com/google.protobuf.Empty' } });
      }
      if (o.error) return send(res, 200, { name: op[1], done: true, error: { code: 9, message: o.error, details: [] } });
      o.project.enabled.add(o.service);
      return send(res, 200, {
        name: op[1],
        done: true,
        response: { '@type': 'type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse', service: serviceBody(o.project, o.service) },
      });
    }
    return send(res, 404, googleError(404, 'Method not found.'));
  }

  const server: Server = createServer((req, res) => {
    const rec: RecordedCall = { method: req.method ?? 'GET', path: (req.url ?? '').split('?')[0]!, email: null, status: 0 };
    calls.push(rec);
    handle(req, res, rec)
      .then((s) => (rec.status = s))
      .catch((e) => {
        rec.status = 500;
        if (!res.headersSent) send(res, 500, googleError(500, `stand-in failure: ${(e as Error).message}`));
      });
  });
  const listening = await listenLoopback(server);

  return {
    url: listening.url,
    calls,
    clientProject,
    addProject(projectId, o = {}) {
      const p: StandInProject = {
        projectId,
        number: String(nextNumber++),
        displayName: o.displayName ?? projectId,
        state: o.state ?? 'ACTIVE',
        members: new Map(Object.entries(o.members ?? {}).map(([e, r]) => [e.toLowerCase(), r])),
        enabled: new Set(o.enabled ?? []),
        billing: o.billing ?? false,
      };
      projects.set(projectId, p);
      return p;
    },
    project: find,
    canUse(email, project) {
      const p = find(project);
      const role = p ? roleOf(p, email) : null;
      return role === 'owner' || role === 'consumer';
    },
    isEnabled(project, service) {
      return find(project)?.enabled.has(service) ?? false;
    },
    setClientApisEnabled(on) {
      clientApis = apisOn(on);
    },
    async close() {
      await listening.close();
    },
  };
}
