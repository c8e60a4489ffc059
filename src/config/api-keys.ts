// Proxy API keys kept in config.json: listed without their values, created
// (the value is shown once), revoked. Changes are serialised across processes.
import { createHash } from 'node:crypto';
import type { ApiKeySchema } from './schema.ts';
import type { z } from 'zod';
import { generateApiKey, updateConfigFile } from './load.ts';

type ApiKey = z.infer<typeof ApiKeySchema>;

/** A stable id for a key that reveals nothing usable about it. */
export function apiKeyId(key: string): string {
  return `k_${createHash('sha256').update(key).digest('base64url').slice(0, 16)}`;
}

/** A key as the API lists it: generated keys show their first characters, others nothing. */
export function listedKey(k: ApiKey) {
  return {
    id: apiKeyId(k.key),
    label: k.label,
    prefix: k.key.startsWith('gp-') && k.key.length > 16 ? `${k.key.slice(0, 7)}…` : '•••',
    created_at: k.created_at,
  };
}

function keysOf(raw: Record<string, unknown>): ApiKey[] {
  return Array.isArray(raw.api_keys) ? (raw.api_keys as ApiKey[]) : [];
}

export async function createApiKey(dataDir: string, label: string, nowSeconds: number): Promise<ApiKey> {
  const entry = { key: generateApiKey(), label, created_at: nowSeconds };
  await updateConfigFile(dataDir, (raw) => ({ ...raw, api_keys: [...keysOf(raw), entry] }));
  return entry;
}

/** Removes the key with this id; false when there is none. */
export async function revokeApiKey(dataDir: string, id: string): Promise<boolean> {
  let found = false;
  await updateConfigFile(dataDir, (raw) => {
    const keys = keysOf(raw);
    const kept = keys.filter((k) => apiKeyId(k.key) !== id);
    found = kept.length < keys.length;
    return found ? { ...raw, api_keys: kept } : null;
  });
  return found;
}
