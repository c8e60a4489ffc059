// Adding accounts with the OAuth client loaded now: the pending consents
// belong to the client that started them, so a new client gets new ones.
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../log/logger.ts';
import type { AccountStore } from '../store/store.ts';
import type { SharedKv } from '../store/shared-state.ts';
import { ConsentFlows } from '../oauth/flows.ts';
import type { AddAccountDeps } from '../oauth/add-account.ts';
import type { OAuthHolder } from '../oauth/oauth-holder.ts';

export interface Consents {
  /** The add-account dependencies for the current client, or null when none is configured. */
  current(): AddAccountDeps | null;
  /** The same, or a 409 that says what is missing. */
  require(): Promise<AddAccountDeps>;
}

export interface ConsentsDeps {
  oauth: OAuthHolder;
  store: AccountStore;
  clock: Clock;
  logger: Logger;
  /** Where pending consents live (shared by the gateways of one store, so a consent may finish on another's callback). */
  kv: SharedKv;
  /** Called with every account added or re-added (project discovery). */
  afterAdd?: AddAccountDeps['afterAdd'];
}

export function createConsents(deps: ConsentsDeps): Consents {
  let current: AddAccountDeps | null = null;
  const currentDeps = (): AddAccountDeps | null => {
    const client = deps.oauth.current();
    if (!client) return null;
    if (current?.oauth !== client) {
      current = { oauth: client, store: deps.store, flows: new ConsentFlows({ oauth: client, clock: deps.clock, kv: deps.kv, clientId: client.primaryClientId }), clock: deps.clock, logger: deps.logger, afterAdd: deps.afterAdd };
    }
    return current;
  };
  return {
    current: currentDeps,
    async require() {
      await deps.oauth.require();
      return currentDeps()!;
    },
  };
}
