// Quota protection as the pool applies it: today's usage (from the usage
// store) against the configured daily limits per model.
import type { Config } from '../config/schema.ts';
import { QuotaDayCache, QuotaLimits, isQuotaProtected, type QuotaDay } from './quota.ts';
import type { UsageStore } from './usage.ts';

export class QuotaGuard {
  /** False when protection is off or no limit is set: every check is then a constant false. */
  readonly on: boolean;
  private readonly limits: QuotaLimits;
  private readonly threshold: number;
  private readonly days = new QuotaDayCache();
  private readonly usage: UsageStore;

  constructor(config: Config['quota_protection'] | undefined, usage: UsageStore) {
    this.on = !!config?.enabled && Object.keys(config.limits ?? {}).length > 0;
    this.limits = new QuotaLimits(config?.limits ?? {});
    this.threshold = config?.threshold_percent ?? 0;
    this.usage = usage;
  }

  /** The quota day containing `now` (cached). */
  day(now: number): QuotaDay {
    return this.days.current(now);
  }

  /** True when this account must be kept out for this model until the next reset. */
  protects(accountId: string, model: string, now: number): boolean {
    if (!this.on) return false;
    const limit = this.limits.for(model);
    if (!limit) return false;
    return isQuotaProtected(this.usage.get(this.days.current(now).key, accountId, model), limit, this.threshold);
  }

  /** The first model today for which the account is protected, with the reset time (unix s), or null. */
  protectedModel(accountId: string, now: number): { model: string; until: number } | null {
    if (!this.on) return null;
    const day = this.days.current(now);
    for (const r of this.usage.records(day.key, accountId)) {
      if (r.date !== day.key) continue;
      if (isQuotaProtected(r, this.limits.for(r.model), this.threshold)) return { model: r.model, until: Math.ceil(day.end / 1000) };
    }
    return null;
  }
}
