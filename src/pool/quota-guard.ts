// Quota protection as the pool applies it: today's usage against the
// configured daily limits per model, counted per lane (every account drawing
// on one project uses up the same quota). The usage store keeps counts per
// account (the dashboard charts them); a lane's sum over its accounts is kept
// on the lane, built on first use and updated as requests are counted (and
// built again when counts from other gateways arrive).
import type { Config } from '../config/schema.ts';
import { QuotaDayCache, QuotaLimits, isQuotaProtected, type DayUsage, type QuotaDay } from './quota.ts';
import { nonNegative, type UsageStore } from './usage.ts';
import { laneOfService, splitUsageModel, usageModelKey, type Lane, type LaneMember, type LaneService } from './lanes.ts';

interface Member extends LaneMember<Member> {}

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

  /** True when this account's lane (of this service) must be kept out for this model until the next reset. */
  protects(e: Member, lane: Lane<Member>, service: LaneService, model: string, now: number): boolean {
    if (!this.on) return false;
    const limit = this.limits.for(model);
    if (!limit) return false;
    return isQuotaProtected(this.laneUsage(e, lane, usageModelKey(service, model), this.days.current(now).key), limit, this.threshold);
  }

  /**
   * The first model today for which one of the account's lanes is protected,
   * with the reset time (unix s) and the service, or null.
   */
  protectedModel(e: Member, now: number, only?: LaneService): { model: string; until: number; service: LaneService } | null {
    if (!this.on) return null;
    const day = this.days.current(now);
    for (const lane of only === 'vertex' ? [e.vertexLane] : only === 'gemini_api' ? [e.lane] : [e.lane, e.vertexLane]) {
      if (!lane) continue;
      const seen = new Set<string>();
      for (const m of this.membersOf(e, lane)) {
        for (const r of this.usage.records(day.key, m.id)) {
          if (r.date !== day.key || seen.has(r.model)) continue;
          seen.add(r.model);
          const { service, model } = splitUsageModel(r.model);
          if (service !== lane.service) continue;
          if (isQuotaProtected(this.laneUsage(e, lane, r.model, day.key), this.limits.for(model), this.threshold)) {
            return { model, until: Math.ceil(day.end / 1000), service };
          }
        }
      }
    }
    return null;
  }

  /** Counts usage of one account on one service (in the usage store, and in its lane's sum). */
  add(e: Member, service: LaneService, model: string, now: number, delta: Partial<DayUsage>): void {
    const key = this.days.current(now).key;
    const umodel = usageModelKey(service, model);
    this.usage.add(key, e.id, umodel, delta);
    const lane = laneOfService(e, service);
    const sums = lane?.sums;
    if (!sums || lane!.memberCount <= 1 || sums.day !== key || sums.revision !== this.usage.revision) return;
    const u = sums.byModel.get(umodel);
    if (!u) return;
    u.requests += nonNegative(delta.requests);
    u.tokens_in += nonNegative(delta.tokens_in);
    u.tokens_out += nonNegative(delta.tokens_out);
  }

  private membersOf(e: Member, lane: Lane<Member>): readonly Member[] {
    return lane.has(e) ? lane.items : [e];
  }

  /** Today's usage of the account's lane for a usage model key. */
  private laneUsage(e: Member, lane: Lane<Member>, model: string, dayKey: string): DayUsage {
    if (lane.memberCount <= 1 || !lane.has(e)) return this.usage.get(dayKey, e.id, model);
    let sums = lane.sums;
    if (!sums || sums.day !== dayKey || sums.revision !== this.usage.revision) {
      // A new day, or counts from other gateways arrived: sum again.
      sums = lane.sums = { day: dayKey, revision: this.usage.revision, byModel: new Map() };
    }
    let sum = sums.byModel.get(model);
    if (!sum) {
      sum = { requests: 0, tokens_in: 0, tokens_out: 0 };
      for (const m of lane.items) {
        const u = this.usage.get(dayKey, m.id, model);
        sum.requests += u.requests;
        sum.tokens_in += u.tokens_in;
        sum.tokens_out += u.tokens_out;
      }
      sums.byModel.set(model, sum);
    }
    return sum;
  }
}
