// The OAuth clients this data directory has used, kept after client_secret.json
// is replaced, so that every account keeps refreshing with the client that
// issued its refresh token (Google binds a refresh token to its client).
// One file per client: <data dir>/clients/<client_id>.json, mode 0600, in the
// format of client_secret.json.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsx/atomic-write.ts';
import type { Logger } from '../log/logger.ts';
import { ClientSecretError, validateClientSecretJson, type ClientSecret } from './client-secret.ts';

function knownClientsDir(dataDir: string): string {
  return join(dataDir, 'clients');
}

/** A client id as a file name: Google's ids are `<digits>-<letters>.apps.googleusercontent.com`. */
function fileName(clientId: string): string | null {
  return /^[A-Za-z0-9._-]{1,200}$/.test(clientId) && !clientId.startsWith('.') ? `${clientId}.json` : null;
}

/** Every readable kept client; unreadable files are logged and skipped. */
export async function loadKnownClients(dataDir: string, logger: Logger): Promise<ClientSecret[]> {
  const dir = knownClientsDir(dataDir);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    logger.warn({ dir, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message }, 'cannot read the kept OAuth clients');
    return [];
  }
  const out: ClientSecret[] = [];
  for (const name of names.sort()) {
    const path = join(dir, name);
    try {
      out.push(validateClientSecretJson(await readFile(path, 'utf8'), path));
    } catch (e) {
      const reason = e instanceof ClientSecretError ? e.message : ((e as NodeJS.ErrnoException).code ?? (e as Error).message);
      logger.warn({ file: path, reason }, 'skipping a kept OAuth client that cannot be read');
    }
  }
  return out;
}

/** Keeps `secret` (replacing an older copy of the same client). */
export async function rememberClient(dataDir: string, secret: ClientSecret): Promise<void> {
  const name = fileName(secret.client_id);
  if (!name) throw new Error(`the client id ${JSON.stringify(secret.client_id.slice(0, 80))} cannot be a file name`);
  const dir = knownClientsDir(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const body: Record<string, unknown> = { client_id: secret.client_id, client_secret: secret.client_secret, redirect_uris: secret.redirect_uris };
  if (secret.auth_uri) body.auth_uri = secret.auth_uri;
  if (secret.token_uri) body.token_uri = secret.token_uri;
  await writeFileAtomic(join(dir, name), JSON.stringify({ [secret.kind]: body }, null, 2) + '\n', 0o600);
}

export function sameClient(a: ClientSecret, b: ClientSecret): boolean {
  return a.client_id === b.client_id && a.client_secret === b.client_secret && a.kind === b.kind;
}
