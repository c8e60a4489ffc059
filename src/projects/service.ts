// Projects of one account (docs/projects.md), for the gateway, the management
// API and the CLI: discovery after an add (in the background, never failing
// the add), the list of the account's projects with both API states, and
// choosing one (checked first) or enabling the Gemini API in one (following
// the long-running operation). Every result is written to the account file
// through the store, so a running gateway applies it at once.
import type { Account, ProjectInfo } from '../store/account.ts';
import { unixNow } from '../store/account.ts';
import type { AccountStore } from '../store/store.ts';
import { AccountNotFoundError } from '../store/account-ops.ts';
import type { Config } from '../config/schema.ts';
import { HttpError } from '../http/http-util.ts';
import type { ProjectErrorCode } from '../util/errors.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../log/logger.ts';
import type { TokenRefresher } from '../oauth/refresh-error.ts';
import { refreshUnderLock } from '../pool/refresh.ts';
import { GEMINI_SERVICE, GoogleApis, ProjectApiError, VERTEX_SERVICE, operationError, type Operation } from './google-apis.ts';
import { describeError, discover, listProjectStates, projectStates, type ProjectStates } from './discovery.ts';
import { isProjectErrorReason } from './project-errors.ts';

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

export interface ProjectServiceDeps {
  store: AccountStore;
  refresher: TokenRefresher;
  config: () => Pick<Config, 'resource_manager_base_url' | 'service_usage_base_url'>;
  clock: Clock;
  logger: Logger;
  /** Between two polls of a long-running operation. Default 2 s (growing to 10 s). */
  pollIntervalMs?: number;
  /** How long enabling an API may take. Default 3 min. */
  enableTimeoutMs?: number;
}

export type EnableWhich = 'gemini' | 'vertex';

export interface EnableProgress {
  project: string;
  service: string;
  operation: string;
  polls: number;
  elapsed_ms: number;
  done: boolean;
}

export interface SetProjectOptions {
  /** Enable this API first (services.enable, then follow the operation). */
  enable?: EnableWhich | null;
  onProgress?: (p: EnableProgress) => void;
}

/** A project error as the API and the CLI show it (status, code, message, fix). */
export class ProjectError extends HttpError {
  constructor(status: number, code: ProjectErrorCode, message: string, fix?: string) {
    super(status, code, message, fix ? { fix } : {});
  }
}

function projectErrorOf(e: unknown): ProjectError {
  if (e instanceof ProjectError) return e;
  if (e instanceof ProjectApiError) {
    const status = e.kind === 'permission' || e.kind === 'scope' || e.kind === 'api_disabled' ? 403 : e.kind === 'not_found' ? 404 : e.kind === 'billing' ? 409 : e.kind === 'timeout' ? 504 : e.kind === 'rate_limited' ? 429 : 502;
    return new ProjectError(status, `project_${e.kind}`, e.message, e.fix || undefined);
  }
  return new ProjectError(502, 'project_error', (e as Error)?.message ?? String(e));
}

const PROJECT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z][a-z0-9.:-]{2,98}[a-z0-9]$/;

export class ProjectService {
  private readonly deps: ProjectServiceDeps;
  private readonly inflight = new Map<string, Promise<Account | null>>();

  constructor(deps: ProjectServiceDeps) {
    this.deps = deps;
  }

  private api(): GoogleApis {
    const c = this.deps.config();
    return new GoogleApis({ resourceManagerBaseUrl: c.resource_manager_base_url, serviceUsageBaseUrl: c.service_usage_base_url });
  }

  private async account(id: string): Promise<Account> {
    const a = await this.deps.store.get(id);
    if (!a) throw new AccountNotFoundError(id);
    return a;
  }

  /** A valid access token of the account (refreshed under the store's lock when it is about to expire). */
  async accessToken(account: Account): Promise<string> {
    if (account.disabled) {
      throw new ProjectError(409, 'account_disabled', `${account.email} is disabled (${account.disabled_reason ?? 'disabled'}); add it again first`);
    }
    const granted = account.token.scope.split(/\s+/).filter(Boolean);
    if (granted.length > 0 && !granted.includes(CLOUD_PLATFORM_SCOPE)) {
      throw new ProjectError(
        403,
        'project_scope',
        `${account.email} did not grant the ${CLOUD_PLATFORM_SCOPE} scope, which Resource Manager and Service Usage need`,
        'add the account again (`grantpool accounts add`; Google adds the scope to what was granted) and allow access to Google Cloud data',
      );
    }
    const { clock, store, refresher } = this.deps;
    if (account.token.expiry_timestamp * 1000 - clock.now() > 60_000) return account.token.access_token;
    const attempt = await refreshUnderLock({ store, refresher, clock }, account.id, {
      held: account,
      staleAccessToken: account.token.access_token,
      force: false,
      marginMs: 60_000,
      refreshBeforeMs: 60_000,
    });
    if (attempt.ok) return attempt.account.token.access_token;
    if (attempt.reason === 'failed') throw new ProjectError(502, 'token_refresh_failed', `could not refresh the access token of ${account.email}: ${attempt.failure.message}`);
    throw new ProjectError(409, 'account_unusable', `${account.email} is ${attempt.reason === 'gone' ? 'removed' : 'disabled'}`);
  }

  /**
   * After an add: discovers a project in the background when the account has
   * none. Never throws; the outcome is written to the account file.
   */
  discoverInBackground(account: Account): void {
    if (account.project_id) return;
    void this.discover(account.id).catch((e) =>
      this.deps.logger.warn({ account_id: account.id, email: account.email, err: { message: (e as Error).message } }, `Project discovery for ${account.email} failed`),
    );
  }

  /**
   * Discovery for one account (one at a time per account). With `force` it
   * runs even when a project is set (re-discovery on demand). Returns the
   * account as written, or null when it was removed meanwhile.
   */
  discover(accountId: string, opts: { force?: boolean } = {}): Promise<Account | null> {
    const running = this.inflight.get(accountId);
    if (running) return running;
    const p = this.runDiscovery(accountId, !!opts.force).finally(() => this.inflight.delete(accountId));
    this.inflight.set(accountId, p);
    return p;
  }

  private async runDiscovery(accountId: string, force: boolean): Promise<Account | null> {
    const { store, logger, clock } = this.deps;
    const account = await store.get(accountId);
    if (!account) return null;
    if (account.project_id && !force) return account;
    let outcome: { ok: true; project: ProjectStates } | { ok: false; reason: string };
    try {
      const token = await this.accessToken(account);
      outcome = await discover(this.api(), token);
    } catch (e) {
      const pe = projectErrorOf(e);
      outcome = { ok: false, reason: pe.fix ? `${pe.message}. Fix: ${pe.fix}` : pe.message };
    }
    const now = unixNow(clock.now());
    if (outcome.ok) {
      const found = outcome.project;
      const written = await store.update(accountId, (cur) =>
        cur.project_id && !force
          ? null // set by someone else meanwhile
          : withProject(cur, found.project_id, { source: 'discovered', checked_at: now, gemini_api: found.gemini_api, vertex_ai: found.vertex_ai }),
      );
      if (written) {
        logger.info(
          { account_id: written.id, email: written.email, project_id: found.project_id, vertex_ai: found.vertex_ai },
          `Account ${written.email} draws on project ${found.project_id}`,
        );
      }
      return written;
    }
    const reason = outcome.reason.replaceAll('<email>', account.email).slice(0, 1000);
    const written = await store.update(accountId, (cur) => (cur.project_id && !force ? null : { ...cur, project_error: reason }));
    logger.warn(
      { account_id: account.id, email: account.email, reason },
      `No project found for ${account.email}; it draws on the OAuth client's project: ${reason}`,
    );
    return written ?? (await store.get(accountId));
  }

  /** The account's projects with the state of both APIs in each. */
  async listProjects(accountId: string): Promise<{ account: Account; projects: ProjectStates[] }> {
    const account = await this.account(accountId);
    try {
      const token = await this.accessToken(account);
      return { account, projects: await listProjectStates(this.api(), token) };
    } catch (e) {
      throw projectErrorOf(e);
    }
  }

  /**
   * Sets the account's project (source "manual"): checked with Service Usage
   * first; with `enable`, that API is enabled first and its operation
   * followed until done. Clears a proxy_disabled that a project error caused.
   */
  async setProject(accountId: string, projectId: string, opts: SetProjectOptions = {}): Promise<Account> {
    const { store, logger, clock } = this.deps;
    const project = projectId.trim();
    if (!PROJECT_ID.test(project)) {
      throw new ProjectError(400, 'invalid_project_id', `"${projectId.slice(0, 100)}" is not a Google Cloud project id (6-30 lower-case letters, digits and hyphens)`);
    }
    const account = await this.account(accountId);
    let states: ProjectStates;
    try {
      const token = await this.accessToken(account);
      const api = this.api();
      if (opts.enable) await this.enable(api, token, account.email, project, opts.enable === 'vertex' ? VERTEX_SERVICE : GEMINI_SERVICE, opts.onProgress);
      states = await projectStates(api, token, project);
    } catch (e) {
      throw projectErrorOf(e);
    }
    if (states.gemini_api !== 'enabled' && opts.enable !== 'vertex') {
      const why =
        states.gemini_api === 'disabled'
          ? `the Generative Language API is not enabled in ${project}`
          : states.gemini_api === 'denied'
            ? `${account.email} may not read the services of ${project}${states.error ? ` (${states.error})` : ''}`
            : `the state of the Generative Language API in ${project} is unknown${states.error ? ` (${states.error})` : ''}`;
      throw new ProjectError(
        409,
        'project_not_ready',
        `cannot use ${project} for ${account.email}: ${why}`,
        states.gemini_api === 'disabled' ? `\`grantpool accounts project ${account.email} --enable ${project}\`` : undefined,
      );
    }
    const info: ProjectInfo = { source: 'manual', checked_at: unixNow(clock.now()), gemini_api: states.gemini_api, vertex_ai: states.vertex_ai };
    const written = await store.update(account.id, (cur) => withProject(cur, project, info));
    if (!written) throw new AccountNotFoundError(accountId);
    logger.info({ account_id: written.id, email: written.email, project_id: project }, `Account ${written.email} draws on project ${project}`);
    return written;
  }

  /** services.enable, then operations.get until done (or the time limit). */
  private async enable(api: GoogleApis, token: string, email: string, project: string, service: string, onProgress?: (p: EnableProgress) => void): Promise<void> {
    const started = Date.now();
    const timeout = this.deps.enableTimeoutMs ?? 180_000;
    let interval = this.deps.pollIntervalMs ?? 2000;
    let op: Operation = await api.enableService(token, project, service);
    let polls = 0;
    const report = () => onProgress?.({ project, service, operation: op.name, polls, elapsed_ms: Date.now() - started, done: op.done });
    report();
    while (!op.done) {
      if (Date.now() - started + interval > timeout) {
        throw new ProjectApiError(
          'timeout',
          `enabling ${service} in ${project} did not finish within ${Math.round(timeout / 1000)} s (operation ${op.name})`,
          `it may still finish: run \`grantpool accounts project ${email} --use ${project}\` in a minute`,
        );
      }
      await new Promise((r) => setTimeout(r, interval));
      interval = Math.min(interval * 1.5, Math.max(10_000, this.deps.pollIntervalMs ?? 0));
      op = await api.operation(token, op.name, project);
      polls++;
      report();
    }
    if (op.error) throw operationError(op, project, service);
    this.deps.logger.info({ project_id: project, service, operation: op.name, polls }, `Enabled ${service} in project ${project}`);
  }
}

/** The account with project P set (and what a project error did undone). */
function withProject(cur: Account, project: string, info: ProjectInfo): Account {
  const next: Account = { ...cur, project_id: project, project: info, project_error: null };
  if (cur.proxy_disabled && isProjectErrorReason(cur.proxy_disabled_reason)) {
    next.proxy_disabled = false;
    next.proxy_disabled_at = null;
    next.proxy_disabled_reason = null;
  }
  return next;
}

export { describeError };
