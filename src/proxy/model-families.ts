// Alias targets that do not go stale: `family:pro`, `family:flash`,
// `family:flash-lite` (any `family:<name>`) name the newest model of that
// family in the upstream's live model list (gemini-<version>-<name>, a stable
// release before a preview of the same version), so a retired model never
// breaks the defaults. Until a list has been read (or when it has none of the
// family), a known-good fallback is used.
import type { GeminiModel } from './models.ts';

export const FAMILY_PREFIX = 'family:';

/** Used before the live list is known, or when it lacks the family. */
export const FAMILY_FALLBACKS: Readonly<Record<string, string>> = {
  pro: 'gemini-2.5-pro',
  flash: 'gemini-2.5-flash',
  'flash-lite': 'gemini-2.5-flash-lite',
};

/** The family an alias target names (`family:flash` -> `flash`), or null for a model name. */
export function familyOf(target: string): string | null {
  if (!target.startsWith(FAMILY_PREFIX)) return null;
  const f = target.slice(FAMILY_PREFIX.length).trim().toLowerCase();
  return f || null;
}

export function familyFallback(family: string): string {
  return FAMILY_FALLBACKS[family] ?? `gemini-${family}-latest`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

interface Ranked {
  id: string;
  major: number;
  minor: number;
  stable: boolean;
}

/**
 * The newest model of a family in a model list: gemini-<major>[.<minor>]-<family>,
 * optionally -preview[-<date>] or a -<NNN> revision (so `flash` never matches
 * flash-lite, flash-image or flash-live), that can generateContent. Highest
 * version first; a stable release before a preview of the same version.
 */
export function newestOfFamily(models: readonly GeminiModel[], family: string): string | null {
  const re = new RegExp(`^gemini-(\\d+)(?:\\.(\\d+))?-${escapeRegExp(family)}(?:-(preview)(?:-[\\w-]+)?|-\\d{3})?$`, 'i');
  let best: Ranked | null = null;
  for (const m of models) {
    const id = m.name.replace(/^models\//, '');
    const match = re.exec(id);
    if (!match) continue;
    const methods = m.supportedGenerationMethods;
    if (Array.isArray(methods) && !methods.includes('generateContent')) continue;
    const r: Ranked = { id, major: Number(match[1]), minor: Number(match[2] ?? 0), stable: !match[3] };
    if (!best || better(r, best)) best = r;
  }
  return best?.id ?? null;
}

function better(a: Ranked, b: Ranked): boolean {
  if (a.major !== b.major) return a.major > b.major;
  if (a.minor !== b.minor) return a.minor > b.minor;
  if (a.stable !== b.stable) return a.stable;
  return a.id.length < b.id.length; // gemini-2.5-flash before gemini-2.5-flash-001
}

/** Resolves families against the latest model list the gateway has (never waits for one). */
export class FamilyResolver {
  private readonly list: () => readonly GeminiModel[] | null;
  private memoFor: readonly GeminiModel[] | null = null;
  private readonly memo = new Map<string, string | null>();

  constructor(list: () => readonly GeminiModel[] | null) {
    this.list = list;
  }

  /** The model a family stands for now, and whether the live list chose it. */
  describe(family: string): { model: string; live: boolean } {
    const models = this.list();
    if (models !== this.memoFor) {
      this.memoFor = models;
      this.memo.clear();
    }
    let found = this.memo.get(family);
    if (found === undefined) {
      found = models ? newestOfFamily(models, family) : null;
      this.memo.set(family, found);
    }
    return found ? { model: found, live: true } : { model: familyFallback(family), live: false };
  }

  readonly pick = (family: string): string => this.describe(family).model;
}
