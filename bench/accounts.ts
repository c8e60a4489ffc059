// Account files for the benchmark's data directories: N accounts with valid,
// non-expired tokens written straight into <dataDir>/accounts (as the store
// would write them), and one real account from the OIDC stand-in for the
// refresh herd.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AccountSchema, type Account } from '../src/store/account.ts';
import { accountFileName, formatAccount } from '../src/store/account-file.ts';
import { DEFAULT_SCOPES } from '../src/config/schema.ts';
import { OAuthClient } from '../src/oauth/oauth-client.ts';
import { ConsentFlows } from '../src/oauth/flows.ts';
import { completeConsent } from '../src/oauth/add-account.ts';
import { MemoryAccountStore } from '../src/store/memory-store.ts';
import type { StandInIssuer } from '../test/support/oidc-issuer.ts';
import type { ClientSecret } from '../src/oauth/client-secret.ts';

export const BENCH_CLIENT_ID = 'bench-client.apps.googleusercontent.com';

export function benchAccountId(i: number): string {
  return `bench-${String(i).padStart(6, '0')}`;
}

/** Lanes (consumer projects) the benchmark's accounts are spread over: 10,000 accounts on 2,000 lanes by default. */
export const BENCH_ACCOUNTS_PER_LANE = 5;

/** Account i draws on project `bench-project-<i / perLane>` (perLane accounts share one lane); 0: no project (one lane). */
export function benchAccount(i: number, nowSec: number, clientId = BENCH_CLIENT_ID, perLane = BENCH_ACCOUNTS_PER_LANE, vertex = false): Account {
  return AccountSchema.parse({
    // With `vertex`, its project has Vertex AI enabled: the account also draws on lane vertex:<project>.
    ...(vertex && perLane > 0 ? { project: { source: 'manual', checked_at: nowSec, gemini_api: 'enabled', vertex_ai: 'enabled' } } : {}),
    id: benchAccountId(i),
    email: `user${i}@bench.example.com`,
    sub: `1${String(i).padStart(20, '0')}`,
    name: `Bench User ${i}`,
    token: {
      access_token: `ya29.bench-${i}-${randomBytes(24).toString('base64url')}`,
      refresh_token: `1//bench-${i}-${randomBytes(24).toString('base64url')}`,
      expiry_timestamp: nowSec + 3600,
      token_type: 'Bearer',
      scope: DEFAULT_SCOPES.join(' '),
    },
    oauth_client_id: clientId,
    project_id: perLane > 0 ? `bench-project-${String(Math.floor(i / perLane)).padStart(5, '0')}` : null,
    created_at: nowSec - 86_400 + i,
    last_used: null,
  });
}

export async function writeAccountFile(dataDir: string, account: Account): Promise<void> {
  await writeFile(join(dataDir, 'accounts', accountFileName(account.id)), formatAccount(account), { mode: 0o600 });
}

/** Writes `n` healthy accounts into <dataDir>/accounts, `perLane` accounts on each project (with Vertex AI enabled there when `vertex`). */
export async function writeAccounts(dataDir: string, n: number, perLane = BENCH_ACCOUNTS_PER_LANE, vertex = false): Promise<void> {
  await mkdir(join(dataDir, 'accounts'), { recursive: true, mode: 0o700 });
  const now = Math.floor(Date.now() / 1000);
  const batch = 256;
  for (let i = 0; i < n; i += batch) {
    const jobs: Promise<void>[] = [];
    for (let j = i; j < Math.min(n, i + batch); j++) jobs.push(writeAccountFile(dataDir, benchAccount(j, now, BENCH_CLIENT_ID, perLane, vertex)));
    await Promise.all(jobs);
  }
}

/**
 * An account added through a real consent at the stand-in issuer (so its
 * refresh token works), returned with its access token already expired.
 */
export async function expiredIssuerAccount(issuer: StandInIssuer, redirectUri: string, email: string): Promise<Account> {
  const secret: ClientSecret = {
    kind: 'web',
    client_id: issuer.client.client_id,
    client_secret: issuer.client.client_secret,
    redirect_uris: [redirectUri],
  };
  issuer.allowRedirectUri(redirectUri);
  const oauth = new OAuthClient({ issuer: issuer.url, scopes: DEFAULT_SCOPES, redirectUri, clients: [secret], timeoutMs: 10_000 });
  const store = new MemoryAccountStore();
  const flows = new ConsentFlows({ oauth });
  const { authUrl } = await flows.start();
  await completeConsent({ oauth, flows, store }, await issuer.consent(authUrl, { email }));
  const [account] = await store.list();
  if (!account) throw new Error('the consent at the OIDC stand-in added no account');
  const now = Math.floor(Date.now() / 1000);
  return AccountSchema.parse({ ...account, token: { ...account.token, expiry_timestamp: now - 600 } });
}
