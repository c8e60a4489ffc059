// The three small Google REST endpoints that projects need (docs/projects.md),
// called with the account's own access token (cloud-platform scope):
// - Cloud Resource Manager v3 `GET /v3/projects:search` (active projects, every page);
// - Service Usage v1 `GET /v1/projects/{p}/services/{service}` (ENABLED / DISABLED);
// - Service Usage v1 `POST /v1/projects/{p}/services/{service}:enable`, a
//   long-running operation polled with `GET /v1/{operation name}` until `done`.
// Answers are validated with zod; every failure becomes a ProjectApiError
// that says what went wrong and how to fix it, never a stack trace.
import { request } from 'undici';
import { z } from 'zod';
import { GatewayError } from '../util/errors.ts';
import { oneLine } from '../util/text.ts';

export const GEMINI_SERVICE = 'generativelanguage.googleapis.com';
export const VERTEX_SERVICE = 'aiplatform.googleapis.com';
export const RESOURCE_MANAGER_SERVICE = 'cloudresourcemanager.googleapis.com';
export const SERVICE_USAGE_SERVICE = 'serviceusage.googleapis.com';

export type ProjectApiErrorKind =
  /** The OAuth client's project has not enabled Resource Manager / Service Usage. */
  | 'api_disabled'
  /** The access token lacks the cloud-platform scope. */
  | 'scope'
  /** The user may not do this in that project (IAM). */
  | 'permission'
  /** The project has no (open) billing account. */
  | 'billing'
  | 'not_found'
  | 'rate_limited'
  /** The operation did not finish in time. */
  | 'timeout'
  /** Network error, 5xx, or an answer that is not what Google documents. */
  | 'unavailable';

/** A failed Resource Manager / Service Usage call; `status` is what Google answered (0: no answer). */
export class ProjectApiError extends GatewayError {
  readonly kind: ProjectApiErrorKind;
  declare readonly fix: string;
  /** For `api_disabled`: the API that is off, the project it is off in, and Google's link to enable it. */
  readonly disabled: { service: string; consumer: string | null; activationUrl: string | null } | null;
  constructor(kind: ProjectApiErrorKind, message: string, fix = '', status: number | null = null, disabled: ProjectApiError['disabled'] = null) {
    super(`project_${kind}`, message, { status: status ?? 0 });
    this.kind = kind;
    this.fix = fix;
    this.disabled = disabled;
  }
}

// ---- wire formats ----------------------------------------------------------

const ProjectSchema = z.looseObject({
  /** `projects/<number>` */
  name: z.string(),
  projectId: z.string().min(1),
  state: z.string().default('STATE_UNSPECIFIED'),
  displayName: z.string().optional(),
});

const SearchProjectsSchema = z.looseObject({
  projects: z.array(ProjectSchema).default([]),
  nextPageToken: z.string().optional(),
});

const ServiceSchema = z.looseObject({
  name: z.string().optional(),
  state: z.enum(['STATE_UNSPECIFIED', 'DISABLED', 'ENABLED']),
});

const StatusSchema = z.looseObject({
  code: z.number().int().optional(),
  message: z.string().default(''),
  details: z.array(z.record(z.string(), z.unknown())).optional(),
});

const OperationSchema = z.looseObject({
  name: z.string().min(1),
  done: z.boolean().default(false),
  error: StatusSchema.optional(),
  response: z.record(z.string(), z.unknown()).optional(),
});

export type Operation = z.infer<typeof OperationSchema>;

export interface CloudProject {
  project_id: string;
  /** `projects/<number>` */
  name: string;
  display_name: string | null;
}

export type ServiceState = 'ENABLED' | 'DISABLED' | 'STATE_UNSPECIFIED';

// ---- the client --------------------------------------------------------------

export interface GoogleApisOptions {
  resourceManagerBaseUrl: string;
  serviceUsageBaseUrl: string;
  /** Per-call limit (headers and body). Default 20 s. */
  timeoutMs?: number;
}

/** Most projects Resource Manager is asked for (pages of 100). */
const MAX_PROJECTS = 1000;

export class GoogleApis {
  private readonly rm: string;
  private readonly su: string;
  private readonly timeoutMs: number;

  constructor(opts: GoogleApisOptions) {
    this.rm = opts.resourceManagerBaseUrl.replace(/\/+$/, '');
    this.su = opts.serviceUsageBaseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 20_000;
  }

  /** The user's active projects, every page, in the order Google lists them. */
  async searchProjects(token: string): Promise<CloudProject[]> {
    const out: CloudProject[] = [];
    let pageToken = '';
    do {
      const page = await this.searchPage(token, 100, pageToken);
      out.push(...page.projects);
      pageToken = page.nextPageToken;
    } while (pageToken && out.length < MAX_PROJECTS);
    return out;
  }

  /** One page of projects:search (active projects). */
  async searchPage(token: string, pageSize: number, pageToken = ''): Promise<{ projects: CloudProject[]; nextPageToken: string }> {
    const q = new URLSearchParams({ query: 'state:ACTIVE', pageSize: String(pageSize) });
    if (pageToken) q.set('pageToken', pageToken);
    const page = await this.call(token, 'GET', `${this.rm}/v3/projects:search?${q}`, SearchProjectsSchema, 'Cloud Resource Manager');
    const projects: CloudProject[] = [];
    for (const p of page.projects) {
      if (p.state === 'ACTIVE') projects.push({ project_id: p.projectId, name: p.name, display_name: p.displayName ?? null });
    }
    return { projects, nextPageToken: page.nextPageToken ?? '' };
  }

  /** services.get: is `service` enabled in `project`? */
  async serviceState(token: string, project: string, service: string): Promise<ServiceState> {
    const url = `${this.su}/v1/projects/${encodeURIComponent(project)}/services/${service}`;
    const s = await this.call(token, 'GET', url, ServiceSchema, 'Service Usage', project);
    return s.state;
  }

  /** services.enable: starts enabling `service` in `project`; returns the long-running operation. */
  async enableService(token: string, project: string, service: string): Promise<Operation> {
    const url = `${this.su}/v1/projects/${encodeURIComponent(project)}/services/${service}:enable`;
    return this.call(token, 'POST', url, OperationSchema, 'Service Usage', project, '{}');
  }

  /** operations.get */
  async operation(token: string, name: string, project?: string): Promise<Operation> {
    if (!/^operations\/[A-Za-z0-9._:~-]+$/.test(name)) {
      throw new ProjectApiError('unavailable', `Service Usage answered with an operation name that is not one: "${name.slice(0, 100)}"`);
    }
    return this.call(token, 'GET', `${this.su}/v1/${name}`, OperationSchema, 'Service Usage', project);
  }

  private async call<T>(
    token: string,
    method: 'GET' | 'POST',
    url: string,
    schema: z.ZodType<T>,
    api: string,
    project?: string,
    body?: string,
  ): Promise<T> {
    let status: number;
    let text: string;
    try {
      const res = await request(url, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
        body,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (e) {
      const err = e as { code?: string; cause?: { code?: string }; message?: string; name?: string };
      const code = err.code ?? err.cause?.code ?? err.name ?? 'network error';
      throw new ProjectApiError('unavailable', `${api} could not be reached (${code})`, 'check the network connection and try again');
    }
    if (status < 200 || status >= 300) throw apiError(api, status, text, project);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new ProjectApiError('unavailable', `${api} answered ${status} with a body that is not JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ProjectApiError('unavailable', `${api} answered in an unexpected shape (${issue.path.join('.') || 'body'}: ${issue.message})`);
    }
    return parsed.data;
  }
}

// ---- errors --------------------------------------------------------------------

interface GoogleError {
  status: string;
  message: string;
  reason: string | null;
  metadata: Record<string, string>;
}

function readError(text: string): GoogleError {
  const out: GoogleError = { status: '', message: '', reason: null, metadata: {} };
  try {
    const e = (JSON.parse(text) as { error?: Record<string, unknown> }).error;
    if (!e || typeof e !== 'object') return { ...out, message: text.slice(0, 300) };
    out.status = typeof e.status === 'string' ? e.status : '';
    out.message = typeof e.message === 'string' ? e.message : '';
    for (const d of Array.isArray(e.details) ? (e.details as Record<string, unknown>[]) : []) {
      if (d?.['@type'] === 'type.googleapis.com/google.rpc.ErrorInfo') {
        out.reason = typeof d.reason === 'string' ? d.reason : null;
        const meta = d.metadata && typeof d.metadata === 'object' ? (d.metadata as Record<string, unknown>) : {};
        for (const [k, v] of Object.entries(meta)) if (typeof v === 'string') out.metadata[k] = v;
      }
    }
  } catch {
    out.message = text.replace(/\s+/g, ' ').trim().slice(0, 300);
  }
  return out;
}

const API_NAMES: Record<string, string> = {
  [RESOURCE_MANAGER_SERVICE]: 'Cloud Resource Manager API',
  [SERVICE_USAGE_SERVICE]: 'Service Usage API',
};

/** The IAM page of a project (where a person grants roles). */
export function iamPage(project: string): string {
  return `https://console.cloud.google.com/iam-admin/iam?project=${encodeURIComponent(project)}`;
}

/** A non-2xx answer of Resource Manager or Service Usage as a ProjectApiError. */
export function apiError(api: string, status: number, text: string, project?: string): ProjectApiError {
  const e = readError(text);
  const said = oneLine(e.message || `${api} answered ${status}`, 400);
  const where = project ? ` (project ${project})` : '';
  if (e.reason === 'SERVICE_DISABLED' || e.reason === 'API_DISABLED') {
    // Resource Manager and Service Usage are metered on the OAuth client's project.
    const service = e.metadata.service ?? '';
    const name = API_NAMES[service] ?? (service || api);
    const link = e.metadata.activationUrl ?? `https://console.cloud.google.com/apis/library/${service || RESOURCE_MANAGER_SERVICE}`;
    return new ProjectApiError(
      'api_disabled',
      `${api}: ${said}`,
      `the Google Cloud project that owns the OAuth client (client_secret.json) must have the ${name} enabled: open ${link}, press Enable, wait a minute and try again (the Cloud Resource Manager API and the Service Usage API are both needed)`,
      status,
      { service: service || (api === 'Service Usage' ? SERVICE_USAGE_SERVICE : RESOURCE_MANAGER_SERVICE), consumer: e.metadata.consumer ?? null, activationUrl: e.metadata.activationUrl ?? null },
    );
  }
  if (e.reason === 'ACCESS_TOKEN_SCOPE_INSUFFICIENT' || (status === 403 && /insufficient authentication scopes/i.test(e.message))) {
    return new ProjectApiError(
      'scope',
      `${api}: ${said}`,
      'the account did not grant the https://www.googleapis.com/auth/cloud-platform scope: add the account again (`grantpool accounts add`) and allow "See, edit, configure and delete your Google Cloud data"',
      status,
    );
  }
  if (status === 403 || e.status === 'PERMISSION_DENIED') {
    return new ProjectApiError(
      'permission',
      `${api}${where}: ${said}`,
      project
        ? `the account needs a role with serviceusage.services.get and serviceusage.services.enable in ${project} (e.g. Owner, Editor or Service Usage Admin): ${iamPage(project)}`
        : 'the account lacks the permission for this call',
      status,
    );
  }
  if (/billing/i.test(e.message) || (e.reason ?? '').includes('BILLING')) {
    return new ProjectApiError('billing', `${api}${where}: ${said}`, project ? `link a billing account to ${project}: https://console.cloud.google.com/billing/linkedaccount?project=${encodeURIComponent(project)}` : '', status);
  }
  if (status === 404) return new ProjectApiError('not_found', `${api}${where}: ${said}`, 'check the project id (`grantpool accounts project <email>` lists the account\'s projects)', status);
  if (status === 429) return new ProjectApiError('rate_limited', `${api}: ${said}`, 'wait a minute and try again', status);
  if (status === 401) return new ProjectApiError('permission', `${api}: the access token was refused (${said})`, 'try again; if it persists, add the account again', status);
  return new ProjectApiError(status >= 500 ? 'unavailable' : 'permission', `${api}${where} answered ${status}: ${said}`, status >= 500 ? 'try again later' : '', status);
}

/** An operation that ended with an error, as a ProjectApiError. */
export function operationError(op: Operation, project: string, service: string): ProjectApiError {
  const msg = oneLine(op.error?.message || 'the operation failed', 400);
  const code = op.error?.code;
  const text = `enabling ${service} in ${project} failed: ${msg}`;
  if (/billing/i.test(msg)) {
    return new ProjectApiError('billing', text, `link a billing account to ${project}: https://console.cloud.google.com/billing/linkedaccount?project=${encodeURIComponent(project)}`);
  }
  if (code === 7 || /permission/i.test(msg)) {
    return new ProjectApiError('permission', text, `the account needs serviceusage.services.enable in ${project} (e.g. Owner, Editor or Service Usage Admin): ${iamPage(project)}`);
  }
  return new ProjectApiError('unavailable', text, 'try again later');
}
