// Google's RISC management API (`grantpool risc register` / `status`): the
// stream configuration of the OAuth client's project, called with a JWT the
// service account signs itself (aud: the RISC management service; no token
// exchange). docs/security.md, "Registering the stream".
import { readFile } from 'node:fs/promises';
import { importPKCS8, SignJWT } from 'jose';
import { z } from 'zod';
import type { Clock } from '../util/clock.ts';
import { describeJsonError } from '../util/json.ts';
import { RiscError } from './errors.ts';

export const RISC_AUDIENCE = 'https://risc.googleapis.com/google.identity.risc.v1beta.RiscManagementService';
const PUSH_DELIVERY = 'https://schemas.openid.net/secevent/risc/delivery-method/push';

const ServiceAccountSchema = z.looseObject({
  type: z.literal('service_account'),
  client_email: z.string().min(3),
  private_key_id: z.string().min(1),
  private_key: z.string().includes('PRIVATE KEY'),
  project_id: z.string().optional(),
});

export type ServiceAccount = z.infer<typeof ServiceAccountSchema>;

/** The stream as Google keeps it (the body of GET /v1beta/stream, the same shape stream:update takes). */
const StreamSchema = z.looseObject({
  delivery: z.looseObject({ delivery_method: z.string().optional(), url: z.string().optional() }).optional(),
  events_requested: z.array(z.string()).optional(),
});
export type Stream = z.infer<typeof StreamSchema>;

const SERVICE_ACCOUNT_FIX =
  'Create a key for a service account with the RISC Configuration Admin role (roles/riscconfigs.admin) in the project of the OAuth client (Google Cloud console > IAM & Admin > Service accounts > Keys > Add key > JSON) and pass the downloaded file.';

/** Reads a service account key file (the JSON Google Cloud gives). */
export async function readServiceAccount(path: string): Promise<ServiceAccount> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RiscError('risc_service_account', `cannot read the service account file ${path} (${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)})`, { status: 400, fix: SERVICE_ACCOUNT_FIX, cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RiscError('risc_service_account', `the service account file ${path} is ${describeJsonError(e)}`, { status: 400, fix: SERVICE_ACCOUNT_FIX, cause: e });
  }
  const parsed = ServiceAccountSchema.safeParse(json);
  if (!parsed.success) {
    const field = String(parsed.error.issues[0]?.path[0] ?? 'type');
    const what = (json as { web?: unknown; installed?: unknown } | null)?.web || (json as { installed?: unknown } | null)?.installed ? ' (it is an OAuth client file, not a service account key)' : '';
    throw new RiscError('risc_service_account', `${path} is not a service account key file: "${field}" is missing or wrong${what}`, { status: 400, fix: SERVICE_ACCOUNT_FIX });
  }
  return parsed.data;
}

/** The bearer token for the RISC API: signed by the service account, valid for one hour. */
async function managementToken(sa: ServiceAccount, nowMs: number): Promise<string> {
  let key: Awaited<ReturnType<typeof importPKCS8>>;
  try {
    key = await importPKCS8(sa.private_key, 'RS256');
  } catch (e) {
    throw new RiscError('risc_service_account', `the private key of ${sa.client_email} cannot be read (${(e as Error).message})`, { status: 400, fix: SERVICE_ACCOUNT_FIX, cause: e });
  }
  const now = Math.floor(nowMs / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: sa.private_key_id, typ: 'JWT' })
    .setIssuer(sa.client_email)
    .setSubject(sa.client_email)
    .setAudience(RISC_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(key);
}

export interface RiscApiOptions {
  /** config `risc_api_base_url` (https://risc.googleapis.com). */
  baseUrl: string;
  serviceAccount: ServiceAccount;
  clock: Clock;
  timeoutMs?: number;
}

export class RiscApi {
  private readonly o: RiscApiOptions;
  private token: { value: string; until: number } | null = null;

  constructor(opts: RiscApiOptions) {
    this.o = opts;
  }

  /** The stream configuration, or null when the project has none yet. */
  async stream(): Promise<Stream | null> {
    const r = await this.call('GET', '/v1beta/stream', undefined, true);
    if (r === null) return null;
    const s = StreamSchema.safeParse(r);
    return s.success ? s.data : {};
  }

  /** Whether Google sends events now (`enabled` / `disabled`), or null when the project has no stream. */
  async status(): Promise<string | null> {
    const r = (await this.call('GET', '/v1beta/stream/status', undefined, true)) as { status?: unknown } | null;
    return r && typeof r.status === 'string' ? r.status : null;
  }

  /** Creates or replaces the stream: push delivery to `url`, the events requested. */
  async update(url: string, events: readonly string[]): Promise<void> {
    await this.call('POST', '/v1beta/stream:update', { delivery: { delivery_method: PUSH_DELIVERY, url }, events_requested: [...events] });
  }

  /** Asks Google to send a verification event carrying `state` to the stream. */
  async verify(state: string): Promise<void> {
    await this.call('POST', '/v1beta/stream:verify', { state });
  }

  private async bearer(): Promise<string> {
    const now = this.o.clock.now();
    if (this.token && now < this.token.until) return this.token.value;
    const value = await managementToken(this.o.serviceAccount, now);
    this.token = { value, until: now + 50 * 60_000 };
    return value;
  }

  private async call(method: string, path: string, body: unknown, notFoundIsNull = false): Promise<unknown> {
    const url = `${this.o.baseUrl.replace(/\/+$/, '')}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${await this.bearer()}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000),
      });
    } catch (e) {
      if (e instanceof RiscError) throw e;
      throw new RiscError('risc_api_error', `the RISC API at ${url} could not be reached (${(e as Error).message})`, { status: 502, fix: 'Check the network (and GRANTPOOL_RISC_API_URL), then try again.', cause: e });
    }
    const text = await res.text().catch(() => '');
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = null;
    }
    if (res.ok) return json ?? {};
    if (res.status === 404 && notFoundIsNull) return null;
    const message = googleMessage(json) ?? `HTTP ${res.status}`;
    throw new RiscError('risc_api_error', `the RISC API refused ${method} ${path} (${res.status}): ${message}`, { status: 502, fix: fixFor(res.status, message) });
  }
}

function googleMessage(json: unknown): string | null {
  const m = (json as { error?: { message?: unknown } } | null)?.error?.message;
  return typeof m === 'string' && m ? m.slice(0, 500) : null;
}

/** What to do about the RISC API's answer (its error code reference). */
function fixFor(status: number, message: string): string {
  const m = message.toLowerCase();
  if (status === 401) return 'The service account key was not accepted: use a current key of the service account (a deleted or disabled key fails), and check the machine clock.';
  if (m.includes('https')) return 'Google delivers only to https:// URLs: set GRANTPOOL_PUBLIC_URL (or public_url) to the gateway\'s public https address, or pass --url.';
  if (m.includes('domain')) return 'Add the domain of the receiver URL to the authorized domains of the OAuth consent screen (Google Cloud console > Google Auth Platform > Branding), then run the command again.';
  if (m.includes('permission') || m.includes('service account')) return 'Give the service account the RISC Configuration Admin role (roles/riscconfigs.admin) in the project of the OAuth client.';
  if (m.includes('project')) return 'Use a service account of the project that holds the OAuth client, with the RISC API enabled (Google Cloud console > APIs & Services > Library > RISC API).';
  if (m.includes('oauth client')) return 'The project needs an OAuth client: the one in client_secret.json must belong to it.';
  if (status === 403) return 'Enable the RISC API in the project of the OAuth client (and accept its terms), and give the service account the RISC Configuration Admin role.';
  if (status === 404) return 'The project has no stream yet: run `grantpool risc register`.';
  if (status === 429 || status >= 500) return 'Google is busy or failing; try again in a minute.';
  return 'See https://developers.google.com/identity/protocols/risc#error-codes for this answer.';
}
