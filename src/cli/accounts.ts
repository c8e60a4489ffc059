// `grantpool accounts …`: list, add, import, enable, disable, remove. Every
// command works whether or not a gateway is running; a running gateway sees
// the change at once through the store's change notification.
import { describeJsonError } from '../util/json.ts';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { byCreation, publicAccount, type Account } from '../store/account.ts';
import { findAccount, removeAccount, setProxyDisabled } from '../store/account-ops.ts';
import type { AccountState } from '../pool/types.ts';
import { describeLanes, type AccountLane, type AccountLaneState } from '../pool/lanes.ts';
import { completeConsent, importRefreshToken, type AddAccountResult } from '../oauth/add-account.ts';
import { ConsentFlows } from '../oauth/flows.ts';
import { CliError, type CliContext } from './context.ts';
import { describeState, formatTime, paint, table, type Out } from './output.ts';
import { waitForCallback } from './loopback.ts';
import { describeProject, projectService } from './projects.ts';

/** The state of an account as its file says it (no gateway running to ask). */
export function storedState(a: Account): AccountState {
  if (a.disabled) return { state: 'disabled', reason: a.disabled_reason ?? 'disabled' };
  if (a.proxy_disabled) return { state: 'proxy_disabled', reason: a.proxy_disabled_reason ?? 'manual' };
  return { state: 'active' };
}

interface ListedAccount {
  id: string;
  email: string;
  name: string | null;
  last_used: number | null;
  missing_scopes: string[];
  /** Google's security events (Cross-Account Protection), newest first. */
  security_events?: { event: string; received_at: number; reason: string | null }[];
  state: AccountState;
  usage_today?: { requests: number; tokens: number };
  lane?: AccountLane;
  /** Every lane with its state (from a running gateway); offline, the lanes without states. */
  lanes?: (AccountLane & { state?: AccountLaneState['state'] })[];
}

export async function listAccounts(ctx: CliContext, out: Out, opts: { json: boolean }): Promise<number> {
  const gw = await ctx.gateway();
  let accounts: ListedAccount[];
  if (gw) {
    accounts = (await gw.request<{ accounts: ListedAccount[] }>('GET', '/api/accounts')).accounts;
  } else {
    const stored = await (await ctx.store()).list();
    stored.sort(byCreation);
    const described = describeLanes(stored);
    accounts = stored.map((a) => ({ ...publicAccount(a), state: storedState(a), lane: described.byAccount.get(a.id), lanes: described.allByAccount.get(a.id) }));
  }
  if (opts.json) {
    out.write(JSON.stringify(accounts, null, 2) + '\n');
    return 0;
  }
  if (accounts.length === 0) {
    out.write('No accounts yet. Add one with `grantpool accounts add`.\n');
    return 0;
  }
  const rows = [['EMAIL', 'NAME', 'STATE', 'LAST USED', 'TODAY', 'QUOTA (LANE)', 'SERVICES', 'ID', 'REASON'].map((h) => paint(out, 'bold', h))];
  /** Shared lanes, each warned about once below the table. */
  const warnings = new Map<string, string>();
  for (const a of accounts) {
    const { word, detail } = describeState(out, a.state);
    const missing = a.missing_scopes.length ? `missing scopes: ${a.missing_scopes.join(' ')}` : '';
    const google = a.security_events?.[0];
    const security = google ? `Google: ${google.event}${google.reason ? ` (${google.reason})` : ''} at ${formatTime(google.received_at)}` : '';
    const off = (a.lanes ?? []).flatMap((l) => (l.state?.state === 'off' ? [`Vertex AI: ${l.state.reason}`] : []));
    rows.push([
      a.email,
      a.name ?? '-',
      word,
      formatTime(a.last_used),
      a.usage_today ? `${a.usage_today.requests} req` : '-',
      laneLabel(a.lane),
      servicesLabel(a.lanes),
      a.id,
      [detail, missing, security, ...off].filter(Boolean).join('; '),
    ]);
    if (a.lane?.warning) warnings.set(a.lane.key, a.lane.warning);
  }
  out.write(table(rows));
  for (const w of warnings.values()) out.write(paint(out, 'yellow', `warning: ${w}\n`));
  if (!gw) out.write(paint(out, 'gray', '(gateway not running: states as stored in the account files)\n'));
  return 0;
}

export async function setEnabled(ctx: CliContext, out: Out, ref: string, enabled: boolean): Promise<number> {
  const store = await ctx.store();
  const account = await findAccount(store, ref);
  await setProxyDisabled(store, account.id, !enabled, 'manual');
  out.write(`${account.email}: ${enabled ? 'back in the proxy' : 'taken out of the proxy (reason: manual)'}\n`);
  if (enabled && account.disabled) {
    out.write(`note: ${account.email} is also disabled (${account.disabled_reason}); re-add it with \`grantpool accounts add\` to bring it back\n`);
  }
  return 0;
}

export async function remove(ctx: CliContext, out: Out, ref: string, opts: { revoke: boolean }): Promise<number> {
  const store = await ctx.store();
  const account = await findAccount(store, ref);
  let revoke = null;
  if (opts.revoke) {
    const client = await (await ctx.oauth()).get();
    revoke = client
      ? (a: Account) => client.revoke(a.token.refresh_token, a.oauth_client_id)
      : async () => {
          throw new CliError('no OAuth client configured (client_secret.json) to revoke with');
        };
  }
  const result = await removeAccount(store, account, revoke);
  const how = {
    revoked: 'refresh token revoked at Google',
    already_revoked: 'refresh token was already revoked',
    skipped: 'not revoked (--no-revoke)',
    failed: `revocation failed: ${result.revocationError}`,
  }[result.revocation];
  out.write(`${account.email}: removed (${how})\n`);
  return 0;
}

/** After an add made here (not through a gateway): discovery in the foreground, one line about the project. */
async function discoverAfterAdd(ctx: CliContext, r: AddAccountResult): Promise<string> {
  if (r.account.project_id) return '';
  try {
    const a = await (await projectService(ctx)).discover(r.account.id);
    return a ? `\n  ${describeProject(a)}` : '';
  } catch (e) {
    return `\n  project discovery failed: ${(e as Error).message}`;
  }
}

function describeAdd(r: AddAccountResult): string {
  const what = r.created ? 'added' : r.reenabled ? 're-added and enabled again' : 'updated';
  const missing = r.missing_scopes.length ? ` (missing scopes: ${r.missing_scopes.join(' ')})` : '';
  return `${r.account.email}: ${what}${missing}`;
}

const ImportFile = z.union([
  z.array(z.looseObject({ email: z.string().optional(), refresh_token: z.string().min(1) })),
  z.looseObject({ accounts: z.array(z.looseObject({ email: z.string().optional(), refresh_token: z.string().min(1) })) }),
]);

export async function importAccounts(
  ctx: CliContext,
  out: Out,
  opts: { refreshToken?: string; file?: string },
): Promise<number> {
  if (!opts.refreshToken === !opts.file) throw new CliError('give exactly one of --refresh-token T or --file F');
  const oauth = await (await ctx.oauth()).require();
  const deps = { oauth, store: await ctx.store(), logger: ctx.logger };
  if (opts.refreshToken) {
    let token = opts.refreshToken.trim();
    if (token === '-') {
      token = await readSecret('Refresh token (not shown): ');
      if (!token) throw new CliError('no refresh token on stdin; pipe it in (grantpool accounts import --refresh-token - < token.txt) or type it at the prompt');
    } else {
      out.error(
        'warning: a refresh token given on the command line can be read by other users of this machine (/proc/<pid>/cmdline, ps) and stays in your shell history; ' +
          'use --refresh-token - and give it on stdin or at the prompt.\n',
      );
    }
    const r = await importRefreshToken(deps, token);
    out.write(describeAdd(r) + (await discoverAfterAdd(ctx, r)) + '\n');
    return 0;
  }
  let parsed: z.infer<typeof ImportFile>;
  try {
    parsed = ImportFile.parse(JSON.parse(await readFile(opts.file!, 'utf8')));
  } catch (e) {
    const why = e instanceof z.ZodError
      ? 'expected a JSON array of {"email"?, "refresh_token"} or {"accounts": [...]}'
      : e instanceof SyntaxError ? describeJsonError(e) : (e as Error).message;
    throw new CliError(`cannot import ${opts.file}: ${why}`);
  }
  const entries = Array.isArray(parsed) ? parsed : parsed.accounts;
  let failed = 0;
  for (const [i, entry] of entries.entries()) {
    const label = entry.email ?? `entry ${i + 1}`;
    const prefix = `[${i + 1}/${entries.length}] `;
    try {
      const r = await importRefreshToken(deps, entry.refresh_token.trim());
      out.write(prefix + describeAdd(r) + (await discoverAfterAdd(ctx, r)) + '\n');
    } catch (e) {
      failed++;
      out.write(`${prefix}${label}: ${paint(out, 'red', 'failed')}: ${(e as Error).message}\n`);
    }
  }
  out.write(`${entries.length - failed} of ${entries.length} imported${failed ? `, ${failed} failed` : ''}\n`);
  return failed ? 1 : 0;
}

async function readLine(prompt: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(prompt)).trim();
  } finally {
    rl.close();
  }
}

export async function addAccount(
  ctx: CliContext,
  out: Out,
  opts: { paste: boolean; pasteUrl?: string; loginHint?: string; readLine?: (prompt: string) => Promise<string>; timeoutMs?: number },
): Promise<number> {
  const ask = opts.readLine ?? readLine;
  const pasted = async () => opts.pasteUrl ?? (await ask('Paste the whole URL from the browser address bar: '));
  const gw = await ctx.gateway();
  if (gw) {
    const { auth_url } = await gw.request<{ auth_url: string }>('POST', '/api/oauth/start', opts.loginHint ? { login_hint: opts.loginHint } : {});
    out.write(`Open this URL in a browser and allow access:\n\n  ${auth_url}\n\n`);
    if (opts.paste) {
      const r = await gw.request<AddAccountResult>('POST', '/api/oauth/complete', { callback_url: await pasted() });
      out.write(describeAdd(r) + '\n');
      return 0;
    }
    out.write(`Waiting for Google to redirect to ${(await ctx.config()).redirect_uri} …\n`);
    const r = await waitForStoreChange(ctx, opts.timeoutMs ?? 10 * 60_000);
    out.write(`${r.email}: added to the running gateway\n`);
    return 0;
  }
  const holder = await ctx.oauth();
  const oauth = await holder.require();
  const config = await ctx.config();
  const flows = new ConsentFlows({ oauth });
  const deps = { oauth, store: await ctx.store(), flows, logger: ctx.logger };
  const { authUrl } = await flows.start({ loginHint: opts.loginHint });
  out.write(`Open this URL in a browser and allow access:\n\n  ${authUrl}\n\n`);
  if (opts.paste) {
    const r = await completeConsent(deps, await pasted());
    out.write(describeAdd(r) + (await discoverAfterAdd(ctx, r)) + '\n');
    return 0;
  }
  out.write(`Waiting for Google to redirect to ${config.redirect_uri} (or run with --paste) …\n`);
  const r = await waitForCallback(deps, config.redirect_uri, opts.timeoutMs ?? 10 * 60_000);
  out.write(describeAdd(r) + (await discoverAfterAdd(ctx, r)) + '\n');
  return 0;
}

/** Resolves with the first account added, or re-added with new credentials, in the store. */
async function waitForStoreChange(ctx: CliContext, timeoutMs: number): Promise<Account> {
  const store = await ctx.store();
  const before = new Map((await store.list()).map((a) => [a.id, a.token.refresh_token]));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new CliError('no account was added within the time limit; run `grantpool accounts add` again'));
    }, timeoutMs);
    const stop = store.watch((change) => {
      const a = change.account;
      if (!a || before.get(a.id) === a.token.refresh_token) return;
      clearTimeout(timer);
      stop();
      resolve(a);
    });
  });
}

/** Where an account's quota comes from, in a table cell. */
function laneLabel(lane: AccountLane | undefined): string {
  if (!lane) return '-';
  const what = lane.project_id ? `project ${lane.project_id}` : 'OAuth client project';
  return lane.accounts > 1 ? `${what} (shared by ${lane.accounts})` : what;
}

/** Each lane's service and state in a table cell: `Gemini API ok, Vertex AI cooling (gemini-2.5-flash until 12:34Z)`. */
export function servicesLabel(lanes: ListedAccount['lanes']): string {
  if (!lanes || lanes.length === 0) return '-';
  return lanes
    .map((l) => {
      const name = l.service === 'vertex' ? 'Vertex AI' : 'Gemini API';
      const st = l.state;
      if (!st) return name;
      switch (st.state) {
        case 'active':
          return `${name} ok`;
        case 'cooling_down':
          return `${name} cooling (${st.model || 'all'} until ${formatTime(st.until).slice(11)})`;
        case 'quota_protected':
          return `${name} quota (${st.model})`;
        case 'off':
          return `${name} off`;
      }
    })
    .join(', ');
}

/** Largest secret read from stdin (a refresh token is far smaller). */
const MAX_SECRET_BYTES = 1024 * 1024;

/**
 * A secret from stdin: typed at a prompt without echo on a terminal, else the
 * first non-empty line of what is piped in. It never appears in the process's
 * command line.
 */
async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.length > MAX_SECRET_BYTES) throw new CliError('stdin holds more than 1 MiB; expected one refresh token');
    }
    return text.split(/\r?\n/).map((l) => l.trim()).find(Boolean) ?? '';
  }
  const muted = new Writable({ write: (_c, _e, cb) => cb() });
  const rl = createInterface({ input: stdin, output: muted, terminal: true });
  process.stderr.write(prompt);
  try {
    return (await rl.question('')).trim();
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}
