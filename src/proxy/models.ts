// Model names: aliases (`model_aliases`, `*` wildcards) turn what a client
// asks for (claude-sonnet-4-5, gpt-4o, ...) into a Gemini model, on every door.
// The model lists (OpenAI and Gemini shapes) are the upstream's models, cached
// briefly, plus the aliases.

/**
 * Alias resolution: an exact alias key wins; otherwise the first wildcard
 * pattern that matches, in insertion order; otherwise the name passes through
 * unchanged. A leading `models/` is dropped.
 */
export class ModelAliases {
  private readonly exact = new Map<string, string>();
  private readonly patterns: { pattern: string; re: RegExp; target: string }[] = [];
  private readonly cache = new Map<string, string>();
  readonly source: Readonly<Record<string, string>>;

  constructor(aliases: Readonly<Record<string, string>>) {
    this.source = aliases;
    for (const [pattern, target] of Object.entries(aliases)) {
      const t = target.replace(/^models\//, '');
      if (pattern.includes('*')) {
        const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`, 'i');
        this.patterns.push({ pattern, re, target: t });
      } else {
        this.exact.set(pattern.toLowerCase(), t);
      }
    }
  }

  resolve(name: string): string {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    const bare = name.replace(/^models\//, '');
    let out = this.exact.get(bare.toLowerCase());
    if (out === undefined) {
      for (const p of this.patterns) {
        if (p.re.test(bare)) {
          out = p.target;
          break;
        }
      }
    }
    out ??= bare;
    if (this.cache.size >= 1000) this.cache.clear();
    this.cache.set(name, out);
    return out;
  }

  /** Every alias: pattern or name, and its target. */
  entries(): { alias: string; target: string }[] {
    return Object.entries(this.source).map(([alias, target]) => ({ alias, target: target.replace(/^models\//, '') }));
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const aliasCache = new WeakMap<object, ModelAliases>();

/** The ModelAliases for a config's alias table (built once per table object). */
export function aliasesFor(table: Readonly<Record<string, string>>): ModelAliases {
  let a = aliasCache.get(table);
  if (!a) {
    a = new ModelAliases(table);
    aliasCache.set(table, a);
  }
  return a;
}

/** A model as the Gemini API lists it. */
export type GeminiModel = Record<string, unknown> & { name: string };

/** Gemini shape: the upstream's models, then one entry per alias (copying its target's details). */
export function geminiModelList(upstream: GeminiModel[], aliases: ModelAliases): { models: GeminiModel[] } {
  const byId = new Map(upstream.map((m) => [m.name.replace(/^models\//, ''), m]));
  const out: GeminiModel[] = [...upstream];
  for (const { alias, target } of aliases.entries()) {
    if (byId.has(alias)) continue;
    const base = byId.get(target);
    out.push({
      ...(base ?? { supportedGenerationMethods: ['generateContent', 'countTokens'] }),
      name: `models/${alias}`,
      displayName: `${alias} → ${target}`,
      description: `Grantpool alias for ${target}`,
    });
  }
  return { models: out };
}

/** OpenAI shape (`GET /v1/models`). */
export function openAIModelList(upstream: GeminiModel[], aliases: ModelAliases, createdSec: number) {
  const seen = new Set<string>();
  const data: { id: string; object: 'model'; created: number; owned_by: string }[] = [];
  for (const m of upstream) {
    const id = m.name.replace(/^models\//, '');
    if (seen.has(id)) continue;
    seen.add(id);
    data.push({ id, object: 'model', created: createdSec, owned_by: 'google' });
  }
  for (const { alias } of aliases.entries()) {
    if (seen.has(alias)) continue;
    seen.add(alias);
    data.push({ id: alias, object: 'model', created: createdSec, owned_by: 'grantpool-alias' });
  }
  return { object: 'list' as const, data };
}

/** One model in OpenAI's shape (`GET /v1/models/{id}`). */
export function openAIModel(id: string, createdSec: number, alias: boolean) {
  return { id, object: 'model' as const, created: createdSec, owned_by: alias ? 'grantpool-alias' : 'google' };
}

/** Caches the upstream model list for `ttlMs`; concurrent callers share one fetch; a stale list is served when a refresh fails. */
export class ModelListCache {
  private value: GeminiModel[] | null = null;
  private fetchedAt = 0;
  private inflight: Promise<GeminiModel[]> | null = null;
  private readonly fetcher: () => Promise<GeminiModel[]>;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(fetcher: () => Promise<GeminiModel[]>, ttlMs: number, now: () => number) {
    this.fetcher = fetcher;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  async get(): Promise<GeminiModel[]> {
    if (this.value && this.now() - this.fetchedAt < this.ttlMs) return this.value;
    if (!this.inflight) {
      this.inflight = this.fetcher()
        .then((v) => {
          this.value = v;
          this.fetchedAt = this.now();
          return v;
        })
        .finally(() => {
          this.inflight = null;
        });
    }
    try {
      return await this.inflight;
    } catch (e) {
      if (this.value) return this.value;
      throw e;
    }
  }
}
