// The gateway's OAuth client, which may not exist yet: without a valid
// client_secret.json the gateway still starts and says what is missing, and a
// file dropped in place (or uploaded on the dashboard) is picked up without a
// restart. Clients used before (client_secret.json replaced, or another one
// uploaded) are kept in the data directory (known-clients.ts), so an account
// keeps refreshing with the client that issued its token; new consents use
// the current one.
import { stat } from 'node:fs/promises';
import type { Logger } from '../log/logger.ts';
import type { Account, Token } from '../store/account.ts';
import { RefreshError, type TokenRefresher } from './refresh-error.ts';
import { OAuthClient } from './oauth-client.ts';
import { ClientSecretError, readClientSecretFile, type ClientSecret } from './client-secret.ts';
import { loadKnownClients, rememberClient, sameClient } from './known-clients.ts';
import type { ResolvedConfig } from '../config/load.ts';
import type { Clock } from '../util/clock.ts';
import { HttpError } from '../http/http-util.ts';

export interface OAuthProblem {
  code: 'missing' | 'invalid';
  message: string;
  fix: string;
}

export class OAuthHolder implements TokenRefresher {
  private client: OAuthClient | null = null;
  private problem: OAuthProblem | null = null;
  private loadedMtime = -1;
  /** Every client seen in this data directory, by client id (the current one included). */
  private readonly known = new Map<string, ClientSecret>();
  private knownLoaded: Promise<void> | null = null;
  private readonly config: () => ResolvedConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;

  constructor(opts: { config: () => ResolvedConfig; logger: Logger; clock: Clock }) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.clock = opts.clock;
  }

  /** (Re)reads client_secret.json when it changed since the last read. */
  async reload(): Promise<void> {
    await this.loadKnown();
    const path = this.config().client_secret_path;
    const mtime = await stat(path).then((s) => s.mtimeMs, () => 0);
    if (mtime === this.loadedMtime && (this.client || this.problem)) return;
    this.loadedMtime = mtime;
    try {
      const secret = await readClientSecretFile(path);
      await this.setClient(secret);
    } catch (e) {
      if (!(e instanceof ClientSecretError)) throw e;
      this.client = null;
      this.problem = { code: e.code, message: e.message, fix: e.fix };
      this.logger.warn({ client_secret_file: path, problem: e.code }, `OAuth client not configured: ${e.message}`);
    }
  }

  /**
   * Makes `secret` the client for new consents, keeping it (persistently) with
   * the clients seen before, which go on refreshing the accounts they issued.
   */
  async setClient(secret: ClientSecret): Promise<void> {
    await this.loadKnown();
    const kept = this.known.get(secret.client_id);
    if (!kept || !sameClient(kept, secret)) {
      this.known.set(secret.client_id, secret);
      try {
        await rememberClient(this.config().data_dir, secret);
      } catch (e) {
        this.logger.warn(
          { client_id: secret.client_id, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message },
          'could not keep a copy of the OAuth client in the data directory; accounts it issued stop refreshing if client_secret.json is replaced',
        );
      }
    }
    const c = this.config();
    const previous = [...this.known.values()].filter((k) => k.client_id !== secret.client_id);
    this.client = new OAuthClient({
      issuer: c.oauth_issuer,
      scopes: c.scopes,
      redirectUri: c.redirect_uri,
      clients: [secret, ...previous],
      logger: this.logger,
      clock: this.clock,
    });
    this.problem = null;
    this.logger.info({ client_id: secret.client_id, issuer: c.oauth_issuer, previous_clients: previous.map((k) => k.client_id) }, 'OAuth client loaded');
  }

  /** The clients kept from earlier client files, once per holder. */
  private loadKnown(): Promise<void> {
    this.knownLoaded ??= loadKnownClients(this.config().data_dir, this.logger).then((list) => {
      for (const k of list) if (!this.known.has(k.client_id)) this.known.set(k.client_id, k);
    });
    return this.knownLoaded;
  }

  /** The OAuth client loaded now, if any. */
  current(): OAuthClient | null {
    return this.client;
  }

  /** The OAuth client, re-reading the file first when none is loaded. */
  async get(): Promise<OAuthClient | null> {
    if (!this.client) await this.reload();
    return this.client;
  }

  /** The OAuth client or an error that says what is missing. */
  async require(): Promise<OAuthClient> {
    const client = await this.get();
    if (client) return client;
    const p = this.problem!;
    throw new HttpError(409, 'oauth_client_not_configured', p.message, { fix: p.fix });
  }

  status(): { configured: boolean; problem: string | null; fix: string | null; clientId: string | null; previousClientIds: string[] } {
    const clientId = this.client?.primaryClientId ?? null;
    return {
      configured: this.client !== null,
      problem: this.problem?.message ?? null,
      fix: this.problem?.fix ?? null,
      clientId,
      previousClientIds: this.client ? [...this.known.keys()].filter((id) => id !== clientId) : [],
    };
  }

  async refresh(account: Account): Promise<Token> {
    const client = await this.get();
    if (!client) {
      throw new RefreshError('client', 'client_not_configured', this.problem?.message ?? 'no OAuth client configured');
    }
    return client.refresh(account);
  }
}
