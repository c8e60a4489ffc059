// `grantpool serve` (and `npm start`): run the gateway until stopped.
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
    return reportCliError(out, e, 'cannot start: ');
  }
  const { config, generated, url } = gateway;
  const lines: string[] = [''];
  lines.push(`${paint(out, 'bold', 'Grantpool')} is running on ${url}   (data: ${config.data_dir})`);
  lines.push(`  dashboard  ${url}/`);
  lines.push(`  OpenAI     ${url}/v1      Anthropic  ${url}      Gemini  ${url}/v1beta`);
  lines.push(`  auth mode  ${config.effective_auth_mode} (${config.auth_mode_reason})`);
  if (generated.apiKey || generated.adminToken) {
    lines.push('', paint(out, 'yellow', 'First start: these secrets were generated and saved in config.json (shown once):'));
    if (generated.apiKey) lines.push(`  proxy API key  ${generated.apiKey}`);
    if (generated.adminToken) lines.push(`  admin token    ${generated.adminToken}   (dashboard login, /api/*)`);
  }
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
