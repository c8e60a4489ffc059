// Quota protection as the pool applies it: today's usage against the
// configured daily limits per model, counted per lane (every account drawing
// on one project uses up the same quota). The usage store keeps counts per
// account (the dashboard charts them); a lane's sum over its accounts is kept
// on the lane, built on first use and updated as requests are counted (and
// built again when counts from other gateways arrive).
import type { Config } from '../config/schema.ts';
import { QuotaDayCache, QuotaLimits, isQuotaProtected, type DayUsage, type QuotaDay } from './quota.ts';
import { nonNegative, type UsageStore } from './usage.ts';
import type { Lane } from './lanes.ts';

interface Member {
  readonly id: string;
  lane: Lane<Member>;
}

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

  /** True when this account's lane must be kept out for this model until the next reset. */
  protects(e: Member, model: string, now: number): boolean {
    if (!this.on) return false;
    const limit = this.limits.for(model);
    if (!limit) return false;
    return isQuotaProtected(this.laneUsage(e, model, this.days.current(now).key), limit, this.threshold);
  }

  /** The first model today for which the account's lane is protected, with the reset time (unix s), or null. */
  protectedModel(e: Member, now: number): { model: string; until: number } | null {
    if (!this.on) return null;
    const day = this.days.current(now);
    const seen = new Set<string>();
    for (const m of this.membersOf(e)) {
      for (const r of this.usage.records(day.key, m.id)) {
        if (r.date !== day.key || seen.has(r.model)) continue;
        seen.add(r.model);
        if (isQuotaProtected(this.laneUsage(e, r.model, day.key), this.limits.for(r.model), this.threshold)) {
          return { model: r.model, until: Math.ceil(day.end / 1000) };
        }
      }
    }
    return null;
  }

  /** Counts usage of one account (in the usage store, and in its lane's sum). */
  add(e: Member, model: string, now: number, delta: Partial<DayUsage>): void {
    const key = this.days.current(now).key;
    this.usage.add(key, e.id, model, delta);
    const lane = e.lane;
    if (lane.members.size <= 1 || lane.usageDay !== key || !lane.usage || lane.usageRevision !== this.usage.revision) return;
    const u = lane.usage.get(model);
    if (!u) return;
    u.requests += nonNegative(delta.requests);
    u.tokens_in += nonNegative(delta.tokens_in);
    u.tokens_out += nonNegative(delta.tokens_out);
  }

  private membersOf(e: Member): Iterable<Member> {
    return e.lane.members.has(e) ? e.lane.members : [e];
  }

  /** Today's usage of the account's lane for a model. */
  private laneUsage(e: Member, model: string, dayKey: string): DayUsage {
    const lane = e.lane;
    if (lane.members.size <= 1 || !lane.members.has(e)) return this.usage.get(dayKey, e.id, model);
    if (lane.usageDay !== dayKey || !lane.usage || lane.usageRevision !== this.usage.revision) {
      // A new day, or counts from other gateways arrived: sum again.
      lane.usageDay = dayKey;
      lane.usageRevision = this.usage.revision;
      lane.usage = new Map();
    }
    let sum = lane.usage.get(model);
    if (!sum) {
      sum = { requests: 0, tokens_in: 0, tokens_out: 0 };
      for (const m of lane.members) {
        const u = this.usage.get(dayKey, m.id, model);
        sum.requests += u.requests;
        sum.tokens_in += u.tokens_in;
        sum.tokens_out += u.tokens_out;
      }
      lane.usage.set(model, sum);
    }
    return sum;
  }
}
