// Proxy API keys made in the dashboard, shared by the gateways on one
// database: the list lives in the shared key-value map (one entry, changed
// under its lock), every change is announced on the shared events (the event
// carries no key), and each gateway reads the list again when told, every
// 30 s, and when a request presents a key it does not know (each such key
// at most once a minute, all of them at most ten times a second), so a key
// made on one gateway works on another at once.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { generateApiKey } from '../config/load.ts';
import { apiKeyId } from '../config/api-keys.ts';
import { ApiKeySchema } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { SharedState } from '../store/shared-state.ts';
import type { Clock } from '../util/clock.ts';

export type ApiKey = z.infer<typeof ApiKeySchema>;

const NS = 'api_keys';
const KEY = 'dashboard';
const TOPIC = 'api_keys_changed';
/** The entry does not expire (the map wants a time: year 9999). */
const NEVER = Date.UTC(9999, 0, 1);
const KeyList = z.array(ApiKeySchema);

export interface SharedKeys {
  /** Reads the list (call once at start). */
  load(): Promise<void>;
  list(): readonly ApiKey[];
  create(label: string): Promise<ApiKey>;
  /** False when no shared key has this id. */
  revoke(id: string): Promise<boolean>;
  /** A request presented keys nobody here knows: reads the list again (rate limited, bounded wait). */
  recheck(presented: readonly string[]): Promise<void>;
  close(): void;
}

export interface SharedKeysDeps {
  shared: Pick<SharedState, 'kv' | 'events'>;
  clock: Clock;
  logger: Logger;
  /** Called with the new list whenever it changes. */
  changed: (keys: readonly ApiKey[]) => void;
  /** Periodic re-read (default 30 s; 0: none). */
  reloadIntervalMs?: number;
  /** One unknown key causes at most one read in this time (default 60 s). */
  perKeyGapMs?: number;
  /** Reads caused by unknown keys, at most per second (default 10). */
  rechecksPerSecond?: number;
  /** Longest wait for the database on a recheck (default 2 s). */
  recheckTimeoutMs?: number;
}

export function createSharedKeys(deps: SharedKeysDeps): SharedKeys {
  const { kv, events } = deps.shared;
  let keys: readonly ApiKey[] = [];
  let reading: Promise<boolean> | null = null;
  let queued: Promise<void> | null = null;
  /** Unknown keys (by digest) and when they last caused a read; bounded, oldest first out. */
  const tried = new Map<string, number>();
  let windowStart = 0;
  let inWindow = 0;

  const set = (next: readonly ApiKey[]): boolean => {
    const same = next.length === keys.length && next.every((k, i) => k.key === keys[i]!.key && k.label === keys[i]!.label);
    if (same) return false;
    keys = next;
    deps.changed(keys);
    return true;
  };
  const parse = (v: unknown): ApiKey[] => {
    const r = KeyList.safeParse(v ?? []);
    if (!r.success) {
      deps.logger.error('The shared API key list in the database is not valid; ignored');
      return [];
    }
    return r.data;
  };
  const read = (): Promise<boolean> =>
    (reading ??= (async () => set(parse(await kv.get(NS, KEY))))().finally(() => (reading = null)));
  /** A read that starts after this call (a key made just now is in it); one for all callers meanwhile. */
  const freshRead = (): Promise<void> =>
    (queued ??= (reading ?? Promise.resolve(false))
      .catch(() => false)
      .then(() => {
        queued = null;
        return read();
      })
      .then(
        () => {},
        () => {},
      ));
  const mayRecheck = (presented: readonly string[]): boolean => {
    const now = deps.clock.now();
    const gap = deps.perKeyGapMs ?? 60_000;
    const fresh = presented.map((k) => createHash('sha256').update(k).digest('base64url')).filter((d) => now - (tried.get(d) ?? -Infinity) >= gap);
    if (fresh.length === 0) return false;
    if (now - windowStart >= 1000) {
      windowStart = now;
      inWindow = 0;
    }
    if (inWindow >= (deps.rechecksPerSecond ?? 10)) return false;
    inWindow++;
    for (const d of fresh) {
      tried.delete(d);
      tried.set(d, now);
    }
    while (tried.size > 10_000) tried.delete(tried.keys().next().value!);
    return true;
  };
  const announce = () => events.publish(TOPIC, {}).catch((e: Error) => deps.logger.warn({ err: { message: e.message } }, 'could not tell the other gateways of an API key change; they read the list within 30 s'));

  const stop = events.subscribe(TOPIC, () => {
    read().catch((e: Error) => deps.logger.warn({ err: { message: e.message } }, 'could not read the shared API keys; will retry'));
  });
  const every = deps.reloadIntervalMs ?? 30_000;
  const timer = every > 0 ? setInterval(() => void read().catch(() => {}), every) : null;
  timer?.unref();

  return {
    load: async () => void (await read()),
    list: () => keys,
    async create(label) {
      const entry: ApiKey = { key: generateApiKey(), label, created_at: Math.floor(deps.clock.now() / 1000) };
      const next = await kv.update<unknown, ApiKey[]>(NS, KEY, (current) => {
        const list = [...parse(current), entry];
        return { value: list, expiresAtMs: NEVER, result: list };
      });
      set(next);
      await announce();
      return entry;
    },
    async revoke(id) {
      const next = await kv.update<unknown, ApiKey[] | null>(NS, KEY, (current) => {
        const list = parse(current);
        const kept = list.filter((k) => apiKeyId(k.key) !== id);
        return kept.length === list.length ? { result: null } : { value: kept, expiresAtMs: NEVER, result: kept };
      });
      if (!next) return false;
      set(next);
      await announce();
      return true;
    },
    async recheck(presented) {
      if (!mayRecheck(presented)) return;
      let t: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => (t = setTimeout(r, deps.recheckTimeoutMs ?? 2000)));
      try {
        await Promise.race([freshRead(), timeout]);
      } finally {
        clearTimeout(t);
      }
    },
    close() {
      stop();
      if (timer) clearInterval(timer);
    },
  };
}
