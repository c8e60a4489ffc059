// Time-bounded "not now" marks: per account and model after an upstream 429 or
// 5xx, and the per-account refresh backoff after a transient refresh failure.
// Pure data with a clock passed in; expired marks are ignored (and dropped lazily).

export interface Cooldown {
  /** Epoch ms when the account may be used again. */
  until: number;
  reason: string;
}

/** Cooldowns of one account, per model ('' is the Google API pass-through). */
export class ModelCooldowns {
  private byModel: Map<string, Cooldown> | null = null;

  /** Sets a cooldown; an existing longer one is kept (never shorten what upstream said). */
  set(model: string, until: number, reason: string): void {
    this.byModel ??= new Map();
    const cur = this.byModel.get(model);
    if (cur && cur.until >= until) return;
    this.byModel.set(model, { until, reason });
  }

  /** The active cooldown for a model, or null. */
  active(model: string, now: number): Cooldown | null {
    const c = this.byModel?.get(model);
    if (!c) return null;
    if (c.until <= now) {
      this.byModel!.delete(model);
      return null;
    }
    return c;
  }

  /** The longest active cooldown over all models (for an account's displayed state). */
  longest(now: number): (Cooldown & { model: string }) | null {
    if (!this.byModel) return null;
    let best: (Cooldown & { model: string }) | null = null;
    for (const [model, c] of this.byModel) {
      if (c.until <= now) {
        this.byModel.delete(model);
        continue;
      }
      if (!best || c.until > best.until) best = { ...c, model };
    }
    return best;
  }

}

/**
 * The cooldowns of every account and lane that never had one: one shared,
 * read-only object (two per account cost 6 MB with 100,000 accounts). Set
 * cooldowns through cool(), which puts an object of their own in its place.
 */
export const NO_COOLDOWNS = Object.freeze(new ModelCooldowns()) as ModelCooldowns;

/** `c` with a cooldown set: `c` itself, or a new object when it is the shared empty one. Keep what it returns. */
export function cool(c: ModelCooldowns, model: string, until: number, reason: string): ModelCooldowns {
  const own = c === NO_COOLDOWNS ? new ModelCooldowns() : c;
  own.set(model, until, reason);
  return own;
}

/** Backoff after transient refresh failures of one account. */
export interface RefreshBackoff {
  attempts: number;
  /** Epoch ms before which no new refresh is attempted. */
  until: number;
  reason: string;
  /** 'client': the OAuth client was rejected for this account (retried slowly, shown as a client problem). */
  kind?: 'transient' | 'client';
}

/**
 * Exponential backoff with jitter for the n-th consecutive failure (n >= 1):
 * base = min * 2^(n-1) capped at max, then a random point in [base/2, base],
 * never below min nor above max. Seconds in, milliseconds out.
 */
export function backoffMs(attempt: number, minSeconds: number, maxSeconds: number, random: () => number): number {
  const min = minSeconds * 1000;
  const max = Math.max(min, maxSeconds * 1000);
  const base = Math.min(max, min * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  const jittered = base / 2 + random() * (base / 2);
  return Math.round(Math.min(max, Math.max(min, jittered)));
}
