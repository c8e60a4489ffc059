// The management API's project routes (docs/api.md, docs/projects.md):
//   GET  /api/accounts/{id}/projects          the account's projects, both API states in each
//   PUT  /api/accounts/{id}/project           {"project_id", "enable"?, "vertex"?}: check (or enable) and use it
//   POST /api/accounts/{id}/project/discover  discovery again, on demand
import { z } from 'zod';
import type { RequestContext } from '../http/router.ts';
import { sendJson } from '../http/http-util.ts';
import type { Account } from '../store/account.ts';
import { findAccount } from '../store/account-ops.ts';
import type { AccountStore } from '../store/store.ts';
import type { ProjectService } from '../projects/service.ts';

const PutBody = z.object({
  project_id: z.string().trim().min(1, 'project_id must not be empty'),
  /** Enable the Generative Language API there first. */
  enable: z.boolean().default(false),
  /** Enable Vertex AI (aiplatform.googleapis.com) there first. */
  vertex: z.boolean().default(false),
});

type On = (method: string, path: string, fn: (ctx: RequestContext) => Promise<void>) => void;
type Body = <T>(ctx: RequestContext, schema: z.ZodType<T>) => Promise<T>;

export function registerProjectRoutes(
  on: On,
  deps: { store: AccountStore; projects: ProjectService; show: (a: Account) => unknown },
  body: Body,
): void {
  on('GET', '/api/accounts/:id/projects', async ({ res, params }) => {
    const account = await findAccount(deps.store, params.id!);
    const { projects } = await deps.projects.listProjects(account.id);
    sendJson(res, 200, {
      account_id: account.id,
      email: account.email,
      project_id: account.project_id,
      project: account.project,
      projects,
    });
  });

  on('PUT', '/api/accounts/:id/project', async (ctx) => {
    const b = await body(ctx, PutBody);
    const account = await findAccount(deps.store, ctx.params.id!);
    const enable = b.vertex ? 'vertex' : b.enable ? 'gemini' : null;
    let polls = 0;
    const updated = await deps.projects.setProject(account.id, b.project_id, { enable, onProgress: (p) => (polls = p.polls) });
    sendJson(ctx.res, 200, { account: deps.show(updated), ...(enable ? { enabled: enable, polls } : {}) });
  });

  on('POST', '/api/accounts/:id/project/discover', async ({ res, params }) => {
    const account = await findAccount(deps.store, params.id!);
    const updated = (await deps.projects.discover(account.id, { force: true })) ?? account;
    sendJson(res, 200, { account: deps.show(updated) });
  });
}
