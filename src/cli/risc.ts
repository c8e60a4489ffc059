// `grantpool risc register` and `grantpool risc status`: Google's security
// event stream for the OAuth client's project (docs/security.md).
import { systemClock } from '../util/clock.ts';
import { persistentKvFor } from '../store/open-store.ts';
import { RiscApi, readServiceAccount, type Stream } from '../risc/management.ts';
import { EVENTS_REQUESTED } from '../risc/events.ts';
import { RiscError } from '../risc/errors.ts';
import { receivedEvents, type ReceivedEntry, type ReceiverStatus } from '../risc/receiver.ts';
import { RISC_PATH } from '../risc/route.ts';
import { CliError, type CliContext } from './context.ts';
import { formatTime, paint, table, type Out } from './output.ts';

/** The receiver URL: `--url`, else `<public url>/risc`; Google delivers only to https. */
async function receiverUrl(ctx: CliContext, url?: string): Promise<string> {
  const chosen = url ?? `${(await ctx.config()).public_base_url}${RISC_PATH}`;
  let u: URL;
  try {
    u = new URL(chosen);
  } catch {
    throw new CliError(`--url ${chosen} is not a URL`);
  }
  if (u.protocol !== 'https:') {
    throw new RiscError('risc_public_url', `Google delivers security events only to https:// URLs, and the receiver would be ${chosen}`, {
      status: 400,
      fix: 'Set GRANTPOOL_PUBLIC_URL (or public_url in config.json) to the public https address of the gateway (its domain must be an authorized domain of the OAuth consent screen), or pass --url https://…/risc.',
    });
  }
  return u.href;
}

async function api(ctx: CliContext, serviceAccountFile: string): Promise<RiscApi> {
  const serviceAccount = await readServiceAccount(serviceAccountFile);
  return new RiscApi({ baseUrl: (await ctx.config()).risc_api_base_url, serviceAccount, clock: systemClock });
}

export async function riscRegister(ctx: CliContext, out: Out, opts: { serviceAccount?: string; url?: string }): Promise<number> {
  if (!opts.serviceAccount) throw new CliError('usage: grantpool risc register --service-account FILE [--url https://…/risc]');
  const url = await receiverUrl(ctx, opts.url);
  const risc = await api(ctx, opts.serviceAccount);
  await risc.update(url, EVENTS_REQUESTED);
  out.write(`Stream registered: Google pushes security events to ${url}\n`);
  out.write(`Events: ${EVENTS_REQUESTED.map((e) => e.slice(e.lastIndexOf('/') + 1)).join(', ')}\n`);
  const state = `grantpool ${new Date().toISOString()}`;
  await risc.verify(state);
  out.write(`A verification event was requested (state "${state}"); \`grantpool risc status\` shows when it arrived.\n`);
  return 0;
}

export async function riscStatus(ctx: CliContext, out: Out, opts: { serviceAccount?: string; json: boolean }): Promise<number> {
  let google: { stream: Stream | null; status: string | null } | null = null;
  if (opts.serviceAccount) {
    const risc = await api(ctx, opts.serviceAccount);
    const stream = await risc.stream();
    google = { stream, status: stream ? await risc.status().catch(() => null) : null };
  }
  const gw = await ctx.gateway();
  let receiver: ReceiverStatus;
  if (gw) {
    receiver = await gw.request<ReceiverStatus>('GET', '/api/risc');
  } else {
    const config = await ctx.config();
    receiver = {
      receiver_url: `${config.public_base_url}${RISC_PATH}`,
      config_url: config.risc_config_url,
      issuer: null,
      audiences: [],
      received: await receivedEvents(persistentKvFor(await ctx.store(), config.data_dir)),
    };
  }
  if (opts.json) {
    out.write(JSON.stringify({ google, receiver }, null, 2) + '\n');
    return 0;
  }
  const lines: string[] = [];
  if (google) {
    const s = google.stream;
    if (!s) lines.push(`Google: ${paint(out, 'yellow', 'no stream registered')} (run \`grantpool risc register --service-account FILE\`)`);
    else {
      lines.push(`Google delivers to: ${s.delivery?.url ?? '(no URL)'}${google.status ? `  (stream ${google.status})` : ''}`);
      lines.push(`Events requested: ${(s.events_requested ?? []).map((e) => e.slice(e.lastIndexOf('/') + 1)).join(', ') || '(none)'}`);
      if (s.delivery?.url && s.delivery.url !== receiver.receiver_url) {
        lines.push(paint(out, 'yellow', `warning: this gateway's receiver is ${receiver.receiver_url}; run \`grantpool risc register\` again if it moved`));
      }
    }
  } else {
    lines.push(paint(out, 'gray', '(pass --service-account FILE to see the stream Google has)'));
  }
  lines.push(`Receiver: ${receiver.receiver_url}${gw ? '' : paint(out, 'gray', '  (gateway not running: events as stored)')}`);
  out.write(lines.join('\n') + '\n');
  if (receiver.received.length === 0) {
    out.write('No security event received yet.\n');
    return 0;
  }
  out.write(table([['RECEIVED', 'EVENT', 'ACCOUNTS', 'NOTE'].map((h) => paint(out, 'bold', h)), ...receiver.received.flatMap(rowsOf)]));
  return 0;
}

function rowsOf(r: ReceivedEntry): string[][] {
  return r.events.map((e) => [
    formatTime(r.received_at),
    `${e.event}${e.reason ? ` (${e.reason})` : ''}`,
    e.accounts.map((a) => `${a.email}${a.disabled ? ' (disabled)' : ''}`).join(', ') || '-',
    e.note ?? '',
  ]);
}
