// The Google OAuth client file (client_secret.json as the Cloud console
// downloads it): `{"web": {...}}` for a "Web application" client or
// `{"installed": {...}}` for a "Desktop app" client.
import { describeJsonError } from '../util/json.ts';
import { GatewayError } from '../util/errors.ts';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

export interface ClientSecret {
  kind: 'web' | 'installed';
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  auth_uri?: string;
  token_uri?: string;
}

export type ClientSecretErrorCode = 'missing' | 'invalid';

/** client_secret.json is missing or unusable (400 when uploaded through the API). */
export class ClientSecretError extends GatewayError {
  declare readonly code: ClientSecretErrorCode;
  /** What to do about it, in plain words. */
  declare readonly fix: string;
  constructor(code: ClientSecretErrorCode, message: string, fix: string, opts: { cause?: unknown } = {}) {
    super(code, `${message}. ${fix}`, { status: 400, fix, cause: opts.cause });
  }
}

const CREATE_CLIENT =
  'In the Google Cloud console open "APIs & Services" > "Credentials", create an OAuth client ID of type ' +
  '"Web application" with the authorized redirect URI of this gateway, and download its JSON';

const ClientBody = z.looseObject({
  client_id: z.string().trim().min(1, 'is empty'),
  client_secret: z.string().trim().min(1, 'is empty'),
  redirect_uris: z.array(z.string()).optional(),
  auth_uri: z.string().url().optional(),
  token_uri: z.string().url().optional(),
});

/**
 * Parses and validates the text of a client file (from disk or an upload).
 * Throws ClientSecretError (code 'invalid') saying what is wrong and what to do.
 */
export function validateClientSecretJson(text: string, source = 'the client file'): ClientSecret {
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new ClientSecretError('invalid', `${source} is ${describeJsonError(e)}`, `${CREATE_CLIENT} again; use the file exactly as downloaded`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ClientSecretError('invalid', `${source} must hold a JSON object like {"web": {...}}`, CREATE_CLIENT);
  }
  const obj = raw as Record<string, unknown>;
  if (obj.type === 'service_account') {
    throw new ClientSecretError(
      'invalid',
      `${source} is a service account key, not an OAuth client`,
      `${CREATE_CLIENT} (Grantpool signs in real Google accounts; service account keys do not work)`,
    );
  }
  const kind = 'web' in obj ? 'web' : 'installed' in obj ? 'installed' : null;
  if (!kind) {
    const keys = Object.keys(obj).slice(0, 5).map((k) => JSON.stringify(k)).join(', ') || 'none';
    throw new ClientSecretError(
      'invalid',
      `${source} has neither a "web" nor an "installed" section (top-level keys: ${keys})`,
      CREATE_CLIENT,
    );
  }
  const parsed = ClientBody.safeParse(obj[kind]);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => {
        const path = [kind, ...i.path.map(String)].join('.');
        return i.code === 'invalid_type' && i.input === undefined ? `"${path}" is missing` : `"${path}" ${i.message}`;
      })
      .join('; ');
    throw new ClientSecretError('invalid', `${source} is not a complete OAuth client: ${problems}`, `${CREATE_CLIENT} again; use the file exactly as downloaded`);
  }
  const body = parsed.data;
  const secret: ClientSecret = {
    kind,
    client_id: body.client_id.trim(),
    client_secret: body.client_secret.trim(),
    redirect_uris: body.redirect_uris ?? [],
  };
  if (body.auth_uri) secret.auth_uri = body.auth_uri;
  if (body.token_uri) secret.token_uri = body.token_uri;
  return secret;
}

/** Reads and validates the client file. Throws ClientSecretError ('missing' or 'invalid'). */
export async function readClientSecretFile(path: string): Promise<ClientSecret> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ClientSecretError(
        'missing',
        `no OAuth client file at ${path}`,
        `${CREATE_CLIENT} and save it as ${path} (or point GRANTPOOL_CLIENT_SECRET_FILE at it, or upload it in the dashboard)`,
      );
    }
    if (code === 'EISDIR') {
      throw new ClientSecretError('invalid', `${path} is a directory, not the OAuth client file`, `put the downloaded client JSON file at ${path}`);
    }
    throw new ClientSecretError('invalid', `cannot read the OAuth client file ${path} (${code ?? (e as Error).message})`, `check that the file is readable by the user running Grantpool`);
  }
  return validateClientSecretJson(text, path);
}

/**
 * Whether the client file lists `redirectUri` among its authorized redirect
 * URIs. Null when the file lists none (older downloads, desktop clients), so
 * nothing can be said.
 */
export function listsRedirectUri(secret: ClientSecret, redirectUri: string): boolean | null {
  if (secret.redirect_uris.length === 0) return null;
  return secret.redirect_uris.includes(redirectUri);
}
