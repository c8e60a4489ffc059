// Editing the proxy API keys from the management API: create and revoke in
// config.json, and the gateway's configuration follows at once. Keys given by
// GRANTPOOL_API_KEYS cannot be edited here (409 with what to do instead).
import { apiKeyId, createApiKey, listedKey, revokeApiKey } from '../config/api-keys.ts';
import type { ResolvedConfig } from '../config/load.ts';
import { HttpError } from '../http/http-util.ts';
import type { Clock } from '../util/clock.ts';
import type { ApiDeps } from '../api/deps.ts';

export interface KeyEditorDeps {
  env: Record<string, string | undefined>;
  clock: Clock;
  config: () => ResolvedConfig;
  setConfig: (next: ResolvedConfig) => void;
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
      const config = deps.config();
      const entry = await createApiKey(config.data_dir, label, Math.floor(deps.clock.now() / 1000));
      deps.setConfig({ ...deps.config(), api_keys: [...deps.config().api_keys, entry] });
      return { id: apiKeyId(entry.key), label, key: entry.key };
    },
    revoke: async (id) => {
      assertEditable();
      if (!(await revokeApiKey(deps.config().data_dir, id))) return false;
      deps.setConfig({ ...deps.config(), api_keys: deps.config().api_keys.filter((k) => apiKeyId(k.key) !== id) });
      return true;
    },
  };
}
