// `grantpool status`: a summary of the running gateway.
import type { Out } from './output.ts';
import { paint } from './output.ts';
import { CliError, localBaseUrl, type CliContext } from './context.ts';

interface StatusBody {
  version: string;
  listen_url: string;
  auth_mode: string;
  redirect_uri: string;
  oauth: {
    configured: boolean;
    problem: string | null;
    fix: string | null;
    clients: { client_id: string; failing: boolean; error: string | null; fix: string | null }[];
    testing_mode?: { message: string; fix: string } | null;
  };
  pool: { total: number; by_state: Record<string, number> };
  /** Present while the gateway still reads its accounts (it serves with those read so far). */
  loading?: { loaded: number; total: number };
  requests_last_hour: number;
}

export async function status(ctx: CliContext, out: Out): Promise<number> {
  const gw = await ctx.gateway();
  if (!gw) throw new CliError(`no gateway is running at ${localBaseUrl(await ctx.config())} (start it with \`npm start\` or \`grantpool serve\`)`);
  const s = await gw.request<StatusBody>('GET', '/api/status');
  const lines = [
    `Grantpool ${s.version} on ${s.listen_url}  (auth mode: ${s.auth_mode})`,
  ];
  if (!s.oauth.configured) {
    lines.push(`OAuth client: ${paint(out, 'red', 'not configured')}: ${s.oauth.problem}`);
  } else {
    for (const c of s.oauth.clients) {
      lines.push(c.failing ? `OAuth client ${c.client_id}: ${paint(out, 'red', 'FAILING')}: ${c.error}${c.fix ? `\n  fix: ${c.fix}` : ''}` : `OAuth client ${c.client_id}: ${paint(out, 'green', 'ok')}`);
    }
  }
  if (s.oauth.testing_mode) lines.push(`${paint(out, 'yellow', 'warning')}: ${s.oauth.testing_mode.message}\n  fix: ${s.oauth.testing_mode.fix}`);
  const parts = Object.entries(s.pool.by_state)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state.replace('_', ' ')}`);
  lines.push(`Accounts: ${s.pool.total}${parts.length ? ` (${parts.join(', ')})` : ''}`);
  if (s.loading) lines.push(`Loading accounts: ${s.loading.loaded} of ${s.loading.total} read so far (serving with those)`);
  lines.push(`Requests in the last hour: ${s.requests_last_hour}`);
  out.write(lines.join('\n') + '\n');
  return 0;
}
