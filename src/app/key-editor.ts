// Editing the proxy API keys from the management API: create and revoke in
// config.json, and the gateway's configuration follows at once. Keys given by
// GRANTPOOL_API_KEYS cannot be edited here (409 with what to do instead).
// With gateways on one database, keys made here go to the shared list
// (shared-keys.ts) and work on every gateway; keys already in config.json
// stay there and can still be revoked.
import { apiKeyId, createApiKey, listedKey, revokeApiKey } from '../config/api-keys.ts';
import type { ResolvedConfig } from '../config/load.ts';
import { HttpError } from '../http/http-util.ts';
import type { Clock } from '../util/clock.ts';
import type { ApiDeps } from '../api/deps.ts';
import type { SharedKeys } from './shared-keys.ts';

export interface KeyEditorDeps {
  env: Record<string, string | undefined>;
  clock: Clock;
  config: () => ResolvedConfig;
  setConfig: (next: ResolvedConfig) => void;
  /** The keys shared by the gateways on one database (absent: config.json only). */
  shared?: SharedKeys;
}

export function createKeyEditor(deps: KeyEditorDeps): ApiDeps['keys'] {
  const assertEditable = () => {
    if (deps.env.GRANTPOOL_API_KEYS) {
      throw new HttpError(409, 'keys_from_env', 'the API keys come from GRANTPOOL_API_KEYS; change that variable instead');
    }
  };
  return {
    list: () => deps.config().api_keys.map(listedKey),
    create: async (label) => {
      assertEditable();
      if (deps.shared) {
        const entry = await deps.shared.create(label);
        return { id: apiKeyId(entry.key), label, key: entry.key };
      }
      const config = deps.config();
      const entry = await createApiKey(config.data_dir, label, Math.floor(deps.clock.now() / 1000));
      deps.setConfig({ ...deps.config(), api_keys: [...deps.config().api_keys, entry] });
      return { id: apiKeyId(entry.key), label, key: entry.key };
    },
    revoke: async (id) => {
      assertEditable();
      if (deps.shared && (await deps.shared.revoke(id))) return true;
      if (!(await revokeApiKey(deps.config().data_dir, id))) return false;
      deps.setConfig({ ...deps.config(), api_keys: deps.config().api_keys.filter((k) => apiKeyId(k.key) !== id) });
      return true;
    },
  };
}
