// `grantpool serve` (and `npm start`): run the gateway until stopped.
import { configPath, resolveDataDir } from '../config/load.ts';
import { describeStorageError } from '../fsx/storage-errors.ts';
import { createLogger } from '../log/logger.ts';
import { startGateway } from '../app/gateway.ts';
import type { Out } from './output.ts';
import { paint, reportCliError } from './output.ts';

export async function serve(out: Out, env: Record<string, string | undefined>): Promise<number> {
  const logger = createLogger({ pretty: Boolean(process.stdout.isTTY) && env.GRANTPOOL_LOG_FORMAT !== 'json' });
  let gateway;
  try {
    gateway = await startGateway({ env, logger });
  } catch (e) {
    // A full disk on a first start: one line that says so, not a bug report.
    const storage = describeStorageError(e, `the data directory ${resolveDataDir(env)}`);
    if (storage) {
      out.error(`grantpool: cannot start: ${storage}\n`);
      return 1;
    }
    return reportCliError(out, e, 'cannot start: ');
  }
  const { config, generated, url } = gateway;
  const lines: string[] = [''];
  lines.push(`${paint(out, 'bold', 'Grantpool')} is running on ${url}   (data: ${config.data_dir})`);
  lines.push(`  dashboard  ${url}/`);
  lines.push(`  OpenAI     ${url}/v1      Anthropic  ${url}      Gemini  ${url}/v1beta`);
  lines.push(`  auth mode  ${config.effective_auth_mode} (${config.auth_mode_reason})`);
  if (generated.apiKey || generated.adminToken) lines.push('', ...firstStartSecrets(out, generated, configPath(config.data_dir), onTerminal()));
  const status = gateway.oauth.status();
  lines.push('');
  if (!status.configured) {
    lines.push(paint(out, 'yellow', 'Next step: set up your Google OAuth client.'));
    lines.push(`  ${status.problem}`);
    lines.push(`  Redirect URI to authorize in the Cloud console: ${config.redirect_uri}`);
  } else if (gateway.pool.size === 0) {
    lines.push(paint(out, 'yellow', 'Next step: add your first Google account:'), '  npx grantpool accounts add', `  or open ${url}/ and choose "Add via Google".`);
  } else {
    lines.push(`${gateway.pool.size} account(s) in the pool.`);
  }
  out.write(lines.join('\n') + '\n\n');

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  logger.info('shutting down');
  await gateway.close();
  logger.flush?.();
  return 0;
}

/** True when stdout is a person's terminal (not a pipe, a file, journald or a container log). */
function onTerminal(): boolean {
  return Boolean(process.stdout.isTTY);
}

/**
 * What the first start says about the secrets it generated. Their values go
 * only to a terminal: stdout is often a log (journald, `docker logs`), where a
 * key would outlive the file that guards it (mode 0600).
 */
export function firstStartSecrets(out: Out, generated: { apiKey?: string; adminToken?: string }, file: string, terminal: boolean): string[] {
  const parts = [generated.apiKey && 'a proxy API key', generated.adminToken && 'an admin token'].filter(Boolean);
  const what = `${parts.join(' and ')} ${parts.length > 1 ? 'were' : 'was'}`;
  if (terminal) {
    const lines = [paint(out, 'yellow', `First start: ${what} generated and saved in ${file} (shown once):`)];
    if (generated.apiKey) lines.push(`  proxy API key  ${generated.apiKey}`);
    if (generated.adminToken) lines.push(`  admin token    ${generated.adminToken}   (dashboard login, /api/*)`);
    return lines;
  }
  const lines = [`First start: ${what} generated and saved in ${file} (mode 0600; not printed here, as this output may be a log).`];
  if (generated.apiKey) lines.push(`  proxy API key: "api_keys"[0]."key" in that file`);
  if (generated.adminToken) lines.push(`  admin token:   "admin_token" in that file (dashboard login, /api/*)`);
  return lines;
}
