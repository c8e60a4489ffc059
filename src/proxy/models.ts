// Model names: aliases (`model_aliases`, `*` wildcards) turn what a client
// asks for (claude-sonnet-4-5, gpt-4o, ...) into a Gemini model, on every door.
// The model lists (OpenAI and Gemini shapes) are the upstream's models, cached
// briefly, plus the aliases. A target may name a family (`family:flash`,
// model-families.ts), resolved against the live model list.
import { familyFallback, familyOf } from './model-families.ts';

/** Turns a family name into a model (FamilyResolver.pick); without one, the family's fallback is used. */
export type FamilyPick = (family: string) => string;

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

  /** The upstream model for a requested name (a family target is resolved with `families`). */
  resolve(name: string, families?: FamilyPick): string {
    const target = this.target(name);
    const family = familyOf(target);
    return family === null ? target : families ? families(family) : familyFallback(family);
  }

  /** The alias target for a name as configured (a model, or `family:<name>`). */
  target(name: string): string {
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

  /** Every alias: pattern or name, its target as configured, and the model it resolves to now. */
  entries(families?: FamilyPick): { alias: string; target: string; model: string }[] {
    return Object.entries(this.source).map(([alias, raw]) => {
      const target = raw.replace(/^models\//, '');
      const family = familyOf(target);
      return { alias, target, model: family === null ? target : families ? families(family) : familyFallback(family) };
    });
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
export function geminiModelList(upstream: GeminiModel[], aliases: ModelAliases, families?: FamilyPick): { models: GeminiModel[] } {
  const byId = new Map(upstream.map((m) => [m.name.replace(/^models\//, ''), m]));
  const out: GeminiModel[] = [...upstream];
  for (const { alias, target, model } of aliases.entries(families)) {
    if (byId.has(alias)) continue;
    const base = byId.get(model);
    out.push({
      ...(base ?? { supportedGenerationMethods: ['generateContent', 'countTokens'] }),
      name: `models/${alias}`,
      displayName: `${alias} → ${model}`,
      description: aliasDescription(target, model),
    });
  }
  return { models: out };
}

export function aliasDescription(target: string, model: string): string {
  const family = familyOf(target);
  return family === null ? `Grantpool alias for ${model}` : `Grantpool alias for the newest ${family} model, now ${model} (${target})`;
}

/** A model in OpenAI's shape; an alias also says its target and the model it resolves to now. */
export interface OpenAIModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  target?: string;
  resolves_to?: string;
}

/** OpenAI shape (`GET /v1/models`). */
export function openAIModelList(upstream: GeminiModel[], aliases: ModelAliases, createdSec: number, families?: FamilyPick) {
  const seen = new Set<string>();
  const data: OpenAIModelEntry[] = [];
  for (const m of upstream) {
    const id = m.name.replace(/^models\//, '');
    if (seen.has(id)) continue;
    seen.add(id);
    data.push({ id, object: 'model', created: createdSec, owned_by: 'google' });
  }
  for (const { alias, target, model } of aliases.entries(families)) {
    if (seen.has(alias)) continue;
    seen.add(alias);
    data.push({ id: alias, object: 'model', created: createdSec, owned_by: 'grantpool-alias', target, resolves_to: model });
  }
  return { object: 'list' as const, data };
}

/** One model in OpenAI's shape (`GET /v1/models/{id}`). */
export function openAIModel(id: string, createdSec: number, alias: { target: string; model: string } | null): OpenAIModelEntry {
  const entry: OpenAIModelEntry = { id, object: 'model', created: createdSec, owned_by: alias ? 'grantpool-alias' : 'google' };
  if (alias) {
    entry.target = alias.target;
    entry.resolves_to = alias.model;
  }
  return entry;
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

  private lastTry = -Infinity;

  /** True when the list is older than `maxAgeMs` (or missing), no read is under way, and none was tried in the last 30 s. */
  due(maxAgeMs: number): boolean {
    const now = this.now();
    if (this.inflight || now - this.lastTry < 30_000) return false;
    return this.value === null || now - this.fetchedAt >= maxAgeMs;
  }

  /** The last list read (however old), or null before the first; never fetches. */
  peek(): GeminiModel[] | null {
    return this.value;
  }

  async get(): Promise<GeminiModel[]> {
    if (this.value && this.now() - this.fetchedAt < this.ttlMs) return this.value;
    if (!this.inflight) {
      this.lastTry = this.now();
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
