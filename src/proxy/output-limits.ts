// Output limits (docs/projects.md#output-limits): Google answers 400 when maxOutputTokens is
// above the model's outputTokenLimit or a thinkingBudget is outside the
// model's range, while clients ask for what their own vendor allows (Claude
// Code: max_tokens 32,000-128,000 and a thinking budget of 31,999). Every door
// clamps both to the target model's limits here, on the Gemini request body
// after translation, and the request log says that it did.
//
// Thinking-budget ranges are Google's documented ones per model family
// (ai.google.dev/gemini-api/docs/thinking): 2.5 Pro 128-32,768 (thinking
// cannot be turned off), 2.5 Flash 0-24,576, 2.5 Flash-Lite 512-24,576 (or 0:
// off); -1 (dynamic) is valid for all of them. Other families are left alone.
import { isObj, type Json } from './translate-util.ts';

/** What is known about one model's limits (from the model list). */
export interface ModelLimits {
  /** `outputTokenLimit` of the model list. */
  outputTokenLimit?: number;
  /** `thinking` of the model list: false for a model that does not think. */
  thinking?: boolean;
}

export interface ThinkingRange {
  min: number;
  max: number;
  /** 0 (no thinking) is accepted. */
  canDisable: boolean;
}

/** The documented thinking-budget range of a model family, or null when none is documented. */
export function thinkingRange(model: string): ThinkingRange | null {
  const m = model.replace(/^models\//, '').toLowerCase();
  if (/^gemini-2\.5-pro/.test(m)) return { min: 128, max: 32_768, canDisable: false };
  if (/^gemini-2\.5-flash-lite/.test(m)) return { min: 512, max: 24_576, canDisable: true };
  if (/^gemini-2\.5-flash/.test(m)) return { min: 1, max: 24_576, canDisable: true };
  if (/^gemini-robotics-er-1\.5/.test(m)) return { min: 1, max: 24_576, canDisable: true };
  return null;
}

/** Documented outputTokenLimit per family, used while the model list has not been fetched. */
export function defaultOutputLimit(model: string): number | undefined {
  const m = model.replace(/^models\//, '').toLowerCase();
  if (/^gemini-(2\.5|3)/.test(m)) return 65_536;
  if (/^gemini-2\.0-flash/.test(m)) return 8_192;
  return undefined;
}

/** Limits per model, per model list read (a new list is a new array, so its limits are looked up afresh). */
const limitsCache = new WeakMap<object, Map<string, ModelLimits>>();
/** The same while no model list has been read. */
const NO_LIST = {};
/** Model names come from clients: a cache of one list holds at most this many. */
const MAX_CACHED_MODELS = 256;

/** The limits of `model` from a model list (or the documented defaults when it is not listed). Cached per list; frozen. */
export function limitsFromList(list: readonly { name: string }[] | null, model: string): ModelLimits {
  let byModel = limitsCache.get(list ?? NO_LIST);
  if (!byModel) limitsCache.set(list ?? NO_LIST, (byModel = new Map()));
  let limits = byModel.get(model);
  if (!limits) {
    limits = Object.freeze(readLimits(list, model));
    if (byModel.size >= MAX_CACHED_MODELS) byModel.clear();
    byModel.set(model, limits);
  }
  return limits;
}

function readLimits(list: readonly { name: string }[] | null, model: string): ModelLimits {
  const m = list?.find((x) => x.name === `models/${model}`) as Record<string, unknown> | undefined;
  const listed = typeof m?.outputTokenLimit === 'number' ? m.outputTokenLimit : undefined;
  return {
    outputTokenLimit: listed ?? defaultOutputLimit(model),
    ...(typeof m?.thinking === 'boolean' ? { thinking: m.thinking } : {}),
  };
}

/** The snake_case spelling of each field name `pick` is asked for. */
const SNAKE: Record<string, string> = {
  generationConfig: 'generation_config',
  maxOutputTokens: 'max_output_tokens',
  thinkingConfig: 'thinking_config',
  thinkingBudget: 'thinking_budget',
  includeThoughts: 'include_thoughts',
};

/** The field in camelCase or snake_case (Google accepts both), with the key it was found under. */
function pick(obj: Json, camel: string): { key: string; value: unknown } | null {
  if (obj[camel] !== undefined) return { key: camel, value: obj[camel] };
  const snake = SNAKE[camel] ?? camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  if (obj[snake] !== undefined) return { key: snake, value: obj[snake] };
  return null;
}

export interface ClampResult<T extends Json = Json> {
  /** The body to send: the same object when nothing changed, else a changed copy. */
  body: T;
  /** What was changed, for the request log (empty when nothing was). */
  notes: string[];
}

/**
 * Clamps `generationConfig.maxOutputTokens` to the model's outputTokenLimit
 * and `generationConfig.thinkingConfig.thinkingBudget` to its family's range.
 * Pure: never changes `body`.
 */
export function clampOutputLimits<T extends Json>(body: T, model: string, limits: ModelLimits | null | undefined): ClampResult<T> {
  const gcField = pick(body, 'generationConfig');
  if (!gcField || !isObj(gcField.value)) return { body, notes: [] };
  const gc: Json = { ...gcField.value };
  const notes: string[] = [];

  const max = pick(gc, 'maxOutputTokens');
  const limit = limits?.outputTokenLimit;
  if (max && typeof max.value === 'number' && typeof limit === 'number' && limit > 0 && max.value > limit) {
    notes.push(`maxOutputTokens ${max.value} -> ${limit} (the outputTokenLimit of ${model})`);
    gc[max.key] = limit;
  }

  const tcField = pick(gc, 'thinkingConfig');
  if (tcField && isObj(tcField.value)) {
    const tc: Json = { ...tcField.value };
    const budget = pick(tc, 'thinkingBudget');
    if (budget && typeof budget.value === 'number') {
      const b = budget.value;
      if (limits?.thinking === false) {
        notes.push(`thinkingBudget ${b} dropped (${model} does not think)`);
        delete tc[budget.key];
        if (pick(tc, 'includeThoughts')) delete tc[pick(tc, 'includeThoughts')!.key];
      } else {
        const range = thinkingRange(model);
        if (range && b !== -1) {
          let next = b;
          if (b === 0 && !range.canDisable) next = range.min;
          else if (b < 0) next = -1;
          else if (b > 0 && b < range.min) next = range.min;
          else if (b > range.max) next = range.max;
          if (next !== b) {
            notes.push(`thinkingBudget ${b} -> ${next} (${model} accepts ${range.canDisable ? '0 or ' : ''}${range.min}-${range.max}, or -1)`);
            tc[budget.key] = next;
          }
        }
      }
    }
    if (notes.length) gc[tcField.key] = tc;
  }
  if (notes.length === 0) return { body, notes };
  return { body: { ...body, [gcField.key]: gc }, notes };
}
