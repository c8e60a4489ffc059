// `grantpool accounts project <email or id>`: the account's Google Cloud
// projects with the state of the Gemini API and Vertex AI in each; `--use P`
// checks P and sets it, `--enable P` / `--enable-vertex P` enable the API in P
// (following Google's long-running operation with a progress line) and set
// it, `--discover` runs discovery again. It works on the data directory
// directly (a running gateway applies the change at once).
import type { Account } from '../store/account.ts';
import { findAccount } from '../store/account-ops.ts';
import { ProjectService, type EnableProgress } from '../projects/service.ts';
import { systemClock } from '../util/clock.ts';
import { CliError, type CliContext } from './context.ts';
import { formatTime, paint, table, type Out } from './output.ts';

export interface ProjectCommand {
  use?: string;
  enable?: string;
  enableVertex?: string;
  discover?: boolean;
  json?: boolean;
}

export async function projectService(ctx: CliContext): Promise<ProjectService> {
  const config = await ctx.config();
  const holder = await ctx.oauth();
  await holder.require();
  return new ProjectService({ store: await ctx.store(), refresher: holder, config: () => config, clock: systemClock, logger: ctx.logger });
}

/** One line about the account's project (or why it has none). */
export function describeProject(a: Account): string {
  if (a.project_id) {
    const p = a.project;
    const how = p ? ` (${p.source}, checked ${formatTime(p.checked_at)}; Gemini API ${p.gemini_api}, Vertex AI ${p.vertex_ai})` : '';
    return `${a.email} draws on project ${a.project_id}${how}`;
  }
  return `${a.email} has no project of its own and draws on the OAuth client's project${a.project_error ? `: ${a.project_error}` : ''}`;
}

function progressLine(out: Out, p: EnableProgress): string {
  const secs = Math.round(p.elapsed_ms / 1000);
  return p.done
    ? `Enabled ${p.service} in ${p.project} (${secs} s, ${p.polls} poll${p.polls === 1 ? '' : 's'})`
    : `Enabling ${p.service} in ${p.project} … ${secs} s (operation ${p.operation}${p.polls ? `, poll ${p.polls}` : ''})`;
}

export async function accountProject(ctx: CliContext, out: Out, ref: string, cmd: ProjectCommand): Promise<number> {
  const chosen = [cmd.use, cmd.enable, cmd.enableVertex].filter((v) => v !== undefined);
  if (chosen.length + (cmd.discover ? 1 : 0) > 1) throw new CliError('give at most one of --use P, --enable P, --enable-vertex P, --discover');
  const store = await ctx.store();
  const account = await findAccount(store, ref);
  const service = await projectService(ctx);

  if (cmd.discover) {
    const a = (await service.discover(account.id, { force: true })) ?? account;
    out.write(describeProject(a) + '\n');
    return a.project_id ? 0 : 1;
  }
  const target = cmd.use ?? cmd.enable ?? cmd.enableVertex;
  if (target !== undefined) {
    const enable = cmd.enable !== undefined ? 'gemini' : cmd.enableVertex !== undefined ? 'vertex' : null;
    const tty = out.color; // a terminal: one line, rewritten
    let last = '';
    const updated = await service.setProject(account.id, target, {
      enable,
      onProgress: (p) => {
        const line = progressLine(out, p);
        if (line === last) return;
        last = line;
        out.write(tty ? `\r\x1b[K${line}${p.done ? '\n' : ''}` : `${line}\n`);
      },
    });
    out.write(`${describeProject(updated)}\n`);
    if (account.proxy_disabled && !updated.proxy_disabled) out.write(`${updated.email} is back in the proxy\n`);
    return 0;
  }

  const { projects } = await service.listProjects(account.id);
  if (cmd.json) {
    out.write(JSON.stringify({ account_id: account.id, email: account.email, project_id: account.project_id, project: account.project, projects }, null, 2) + '\n');
    return 0;
  }
  out.write(describeProject(account) + '\n');
  if (projects.length === 0) {
    out.write('The account has no active Google Cloud project. Create one at https://console.cloud.google.com/projectcreate, then run this command with --enable <project>.\n');
    return 0;
  }
  const rows = [['', 'PROJECT', 'NAME', 'GEMINI API', 'VERTEX AI', 'NOTE'].map((h) => paint(out, 'bold', h))];
  for (const p of projects) {
    rows.push([
      p.project_id === account.project_id ? '*' : '',
      p.project_id,
      p.display_name ?? '-',
      paint(out, p.gemini_api === 'enabled' ? 'green' : p.gemini_api === 'disabled' ? 'yellow' : 'red', p.gemini_api),
      p.vertex_ai,
      p.error ? p.error.slice(0, 160) : '',
    ]);
  }
  out.write(table(rows));
  const usable = projects.find((p) => p.gemini_api === 'enabled' && p.project_id !== account.project_id);
  const off = projects.find((p) => p.gemini_api === 'disabled');
  if (!account.project_id && usable) out.write(`Use one: grantpool accounts project ${account.email} --use ${usable.project_id}\n`);
  else if (!account.project_id && off) out.write(`Enable the Gemini API in one: grantpool accounts project ${account.email} --enable ${off.project_id}\n`);
  return 0;
}
