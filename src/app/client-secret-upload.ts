// POST /api/client-secret: a client file uploaded from the dashboard is
// validated, written over client_secret.json (0600, atomically) and used at
// once; the client it replaces is kept for the accounts it issued (OAuthHolder).
import { writeFileAtomic } from '../fsx/atomic-write.ts';
import { validateClientSecretJson } from '../oauth/client-secret.ts';
import type { OAuthHolder } from '../oauth/oauth-holder.ts';
import type { Pool } from '../pool/pool.ts';

export interface ClientSecretUploadDeps {
  clientSecretPath: () => string;
  oauth: Pick<OAuthHolder, 'setClient'>;
  pool: Pick<Pool, 'resetClientFailures'>;
}

export function clientSecretUpload(deps: ClientSecretUploadDeps): (json: string) => Promise<{ client_id: string }> {
  return async (json) => {
    const secret = validateClientSecretJson(json, 'the uploaded file');
    await writeFileAtomic(deps.clientSecretPath(), JSON.stringify(JSON.parse(json), null, 2) + '\n', 0o600);
    await deps.oauth.setClient(secret);
    // A client that failed may work now: try it at once.
    deps.pool.resetClientFailures();
    return { client_id: secret.client_id };
  };
}
