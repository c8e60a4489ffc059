// `grantpool doctor`: checks the setup, one line per check with the fix.
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { ConfigError, configPath, loadConfig, resolveDataDir, type ResolvedConfig } from '../config/load.ts';
import { checkRedirectUri } from '../config/redirect-uri.ts';
import { ClientSecretError, listsRedirectUri, readClientSecretFile, type ClientSecret } from '../oauth/client-secret.ts';
import { OAuthClient } from '../oauth/oauth-client.ts';
import type { Out } from './output.ts';
import { paint } from './output.ts';
import type { CliContext } from './context.ts';
import { describeLanes } from '../pool/lanes.ts';
import { testingModeSuspicion } from '../oauth/testing-mode.ts';
import type { Account } from '../store/account.ts';
import { GoogleApis } from '../projects/google-apis.ts';
import { checkClientApis } from '../projects/client-apis.ts';
import { CLOUD_PLATFORM_SCOPE } from '../projects/service.ts';
import { projectService } from './projects.ts';

interface Check {
  name: string;
  ok: boolean;
  /** Not a failure, but worth fixing (shown with its fix, not counted as failed). */
  warn?: boolean;
  detail: string;
  fix?: string;
}

export async function doctor(ctx: CliContext, out: Out): Promise<number> {
  const checks: Check[] = [];
  const add = (c: Check) => {
    checks.push(c);
    const mark = c.warn ? paint(out, 'yellow', 'warn') : c.ok ? paint(out, 'green', 'ok  ') : paint(out, 'red', 'FAIL');
    out.write(`${mark} ${c.name}: ${c.detail}\n${(!c.ok || c.warn) && c.fix ? `     fix: ${c.fix}\n` : ''}`);
  };

  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const nodeOk = major > 22 || (major === 22 && minor >= 18);
  add({ name: 'Node.js', ok: nodeOk, detail: `v${process.versions.node}${nodeOk ? '' : ' (need >= 22.18)'}`, fix: 'run through npm (`npx grantpool …`), which uses the Node 24 that `npm install` brought' });

  // Looked at before loading the config, which tightens the mode of the folder.
  const dataDir = resolveDataDir(ctx.env);
  const dirMode = await stat(dataDir).then((s) => s.mode & 0o777, () => null);
  if (dirMode !== null) {
    add({ name: 'data directory', ok: (dirMode & 0o077) === 0, detail: `${dataDir} mode ${dirMode.toString(8)}`, fix: `chmod 700 ${dataDir} (Grantpool tightens it itself at its next start)` });
  }

  let config: ResolvedConfig | null = null;
  try {
    config = (await loadConfig({ env: ctx.env })).config;
    add({ name: 'config', ok: true, detail: `${configPath(config.data_dir)} is valid` });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    add({ name: 'config', ok: false, detail: e.message, fix: 'correct the key named above in config.json or its environment variable' });
  }
  if (!config) return 1;

  const cfgMode = await stat(configPath(config.data_dir)).then((s) => s.mode & 0o777, () => null);
  if (cfgMode !== null) {
    add({ name: 'config.json permissions', ok: (cfgMode & 0o077) === 0, detail: `mode ${cfgMode.toString(8)}`, fix: `chmod 600 ${configPath(config.data_dir)}` });
  }
  add({
    name: 'API key',
    ok: config.api_keys.length > 0,
    detail: config.api_keys.length ? `${config.api_keys.length} key(s) configured` : 'none yet',
    fix: 'start the gateway once (`npm start`) to generate one, or set GRANTPOOL_API_KEYS',
  });

  const broken = checkRedirectUri(config.redirect_uri);
  add({ name: 'redirect URI', ok: !broken, detail: broken ? `${config.redirect_uri}: ${broken}` : config.redirect_uri, fix: 'set GRANTPOOL_PUBLIC_URL (or public_url) to an https URL, or http://localhost:<port>' });

  let secret: ClientSecret | null = null;
  try {
    secret = await readClientSecretFile(config.client_secret_path);
    add({ name: 'client_secret.json', ok: true, detail: `${secret.kind} client ${secret.client_id}` });
    const listed = listsRedirectUri(secret, config.redirect_uri);
    if (listed === false) {
      add({ name: 'redirect URI registered', ok: false, detail: `${config.redirect_uri} is not among the client's authorized redirect URIs`, fix: `add ${config.redirect_uri} to the client in the Google Cloud console (Clients > your client > Authorized redirect URIs) and download the file again` });
    }
  } catch (e) {
    if (!(e instanceof ClientSecretError)) throw e;
    add({ name: 'client_secret.json', ok: false, detail: e.message.replace(/\. .*$/, ''), fix: e.fix });
  }

  if (secret) {
    try {
      const client = new OAuthClient({ issuer: config.oauth_issuer, scopes: config.scopes, redirectUri: config.redirect_uri, clients: [secret], timeoutMs: 5000 });
      await client.discover();
      add({ name: 'issuer discovery', ok: true, detail: `${config.oauth_issuer} answers` });
    } catch (e) {
      add({ name: 'issuer discovery', ok: false, detail: (e as Error).message, fix: `check the network and GRANTPOOL_OAUTH_ISSUER (${config.oauth_issuer})` });
    }
  }

  let keysOk = true;
  try {
    const keys = await ctx.keys();
    for (const w of keys.warnings) add({ name: 'encryption key file', ok: true, warn: true, detail: w.replace(/ \(chmod .*\)$/, ''), fix: w.match(/\((chmod [^)]*)\)$/)?.[1] ?? 'chmod 600 the key file' });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    keysOk = false;
    add({ name: 'token encryption', ok: false, detail: e.message, fix: e.fix ?? 'correct GRANTPOOL_ENCRYPTION_KEY or encryption_key_file' });
  }
  const store = keysOk ? await ctx.store().catch(() => null) : null;
  const accounts = store ? await store.list().catch(() => null) : null;
  const enc = accounts ? (store?.encryption?.() ?? null) : null;
  if (enc) {
    if (enc.locked.length) {
      const ids = [...new Set(enc.locked.map((a) => a.key_id))].join(', ');
      add({
        name: 'token encryption',
        ok: false,
        detail: `${enc.locked.length} account(s) have tokens this configuration cannot decrypt (key id ${ids}${enc.key_id ? `; the configured key is ${enc.key_id}` : '; no key is configured'}): ${enc.locked.slice(0, 3).map((a) => a.email).join(', ')}${enc.locked.length > 3 ? ', …' : ''}`,
        fix: `configure the key with id ${ids} (GRANTPOOL_ENCRYPTION_KEY or encryption_key_file; an old key in encryption_old_key_files), see docs/security.md`,
      });
    } else if (enc.key_id) {
      const old = enc.encrypted_with_old_key;
      add({
        name: 'token encryption',
        ok: true,
        warn: enc.plain > 0 || old > 0,
        detail: `key id ${enc.key_id}: ${enc.encrypted} account(s) encrypted${old ? ` (${old} with an old key)` : ''}, ${enc.plain} plain`,
        fix: enc.plain > 0 ? '`grantpool encrypt` encrypts the plain ones' : '`grantpool encrypt --rotate` re-encrypts them with the current key',
      });
    } else {
      add({ name: 'token encryption', ok: true, detail: 'off: tokens are stored unencrypted (docs/security.md)' });
    }
  }
  if (accounts && accounts.length > 0) {
    const lanes = describeLanes(accounts);
    add({
      name: 'quota per account',
      ok: true,
      warn: lanes.shared.length > 0,
      detail: lanes.shared.length
        ? lanes.shared.map((l) => l.warning).join('; ')
        : `${accounts.length} account(s) on ${lanes.lanes} quota lane(s)`,
      fix: 'Google meters the Gemini API per Cloud project: set a project of its own on each account (its project_id), with the Generative Language API enabled there',
    });
    const testing = testingModeSuspicion(accounts);
    add({
      name: 'refresh token lifetime',
      ok: true,
      warn: testing !== null,
      detail: testing ? testing.message : 'no account died with invalid_grant a week after its consent',
      fix: testing?.fix,
    });
  }

  if (secret) {
    for (const c of await clientApiChecks(ctx, config, accounts ?? [])) add(c);
  }

  const gw = await ctx.gateway().catch(() => null);
  if (gw) {
    add({ name: 'port', ok: true, detail: `a gateway is running on ${gw.baseUrl}` });
  } else {
    const free = await portFree(config.host, config.port);
    add({ name: 'port', ok: free, detail: free ? `${config.host}:${config.port} is free` : `${config.host}:${config.port} is used by another program`, fix: 'stop that program or set GRANTPOOL_PORT' });
  }

  const failed = checks.filter((c) => !c.ok).length;
  out.write(failed ? `\n${failed} check(s) failed\n` : '\nall checks passed\n');
  return failed ? 1 : 0;
}

/**
 * The Resource Manager and Service Usage APIs in the OAuth client's project
 * (project discovery needs both), asked with the token of one account that
 * granted cloud-platform.
 */
async function clientApiChecks(ctx: CliContext, config: ResolvedConfig, accounts: Account[]): Promise<Check[]> {
  const name = 'Resource Manager and Service Usage APIs';
  const byHand =
    'enable the Cloud Resource Manager API (https://console.cloud.google.com/apis/library/cloudresourcemanager.googleapis.com) and the ' +
    'Service Usage API (https://console.cloud.google.com/apis/library/serviceusage.googleapis.com) in the project that owns the OAuth client';
  const probe = accounts.find((a) => !a.disabled && a.token.scope.split(/\s+/).includes(CLOUD_PLATFORM_SCOPE));
  if (!probe) {
    return [{ name, ok: true, warn: true, detail: 'not checked: no working account has granted the cloud-platform scope yet', fix: `${byHand}; \`grantpool doctor\` checks them once such an account is added` }];
  }
  const clientProject = await readFile(config.client_secret_path, 'utf8').then(
    (t) => {
      const j = JSON.parse(t) as Record<string, { project_id?: unknown } | undefined>;
      const id = (j.web ?? j.installed)?.project_id;
      return typeof id === 'string' ? id : null;
    },
    () => null,
  );
  let token: string;
  try {
    token = await (await projectService(ctx)).accessToken(probe);
  } catch (e) {
    return [{ name, ok: true, warn: true, detail: `not checked: no access token for ${probe.email} (${(e as Error).message})`, fix: byHand }];
  }
  const api = new GoogleApis({ resourceManagerBaseUrl: config.resource_manager_base_url, serviceUsageBaseUrl: config.service_usage_base_url, timeoutMs: 5000 });
  const checks = await checkClientApis(api, token, { probeProject: probe.project_id, clientProject });
  return checks.map((c) => ({
    name: `${c.title}${clientProject ? ` in ${clientProject}` : ''} (for project discovery)`,
    ok: c.state !== 'disabled',
    warn: c.state === 'unknown',
    detail: c.state === 'enabled' ? `${c.detail}, asked as ${probe.email}` : c.detail,
    fix: c.fix ?? undefined,
  }));
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}
