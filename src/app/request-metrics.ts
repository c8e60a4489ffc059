// The metrics every proxied request touches, kept cheap on the request path
// and small: prom-client's own `inc` and `observe` validate and hash the label
// set on every call (a few µs a request together), and its Counter keeps an
// object per label set (a few hundred bytes, 60,000 of them for 20,000 lanes
// and three doors). Here the counts are kept in plain maps and columns, and the
// registry reads them only when /metrics is scraped. The text a scrape returns
// is the same as prom-client's Counter and Histogram give.
import type { Registry } from 'prom-client';

/** Label value -> the next level, or (at the last label) the series' index. */
type Level = Map<string | number, Level | number>;

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** What the registry needs of a metric: `name`, `help`, `type`, `aggregator`, `get()` and `reset()` (the shape of its own). */
function register(metric: object, registers: Registry[]): void {
  for (const r of registers) r.registerMetric(metric as Parameters<Registry['registerMetric']>[0]);
}

/**
 * A counter whose series are found through nested maps (one lookup per label
 * value: no key string is built per request) and kept as columns: per series,
 * its count and its label values, no object. Series are shown in the order
 * they were first counted, as prom-client does.
 */
export class BufferedCounter<L extends string> {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly L[];
  private root: Level = new Map();
  private counts: number[] = [];
  /** One column per label: the value each series has (numbers are shown as they print). */
  private columns: (string | number)[][];

  constructor(opts: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    this.columns = opts.labelNames.map(() => []);
    register(this, opts.registers);
  }

  /** One more for the label values, in the order of `labelNames`. */
  inc(...values: (string | number)[]): void {
    let level = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(values[i]!) as Level | undefined;
      if (!next) level.set(values[i]!, (next = new Map()));
      level = next;
    }
    const at = level.get(values[last]!) as number | undefined;
    if (at !== undefined) {
      this.counts[at]!++;
      return;
    }
    level.set(values[last]!, this.counts.length);
    this.counts.push(1);
    for (let i = 0; i < this.columns.length; i++) this.columns[i]!.push(values[i]!);
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values: Value[] = [];
    for (let s = 0; s < this.counts.length; s++) {
      const labels: Record<string, string> = {};
      for (let i = 0; i < this.labelNames.length; i++) labels[this.labelNames[i]!] = String(this.columns[i]![s]);
      values.push({ value: this.counts[s]!, labels });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.root = new Map();
    this.counts = [];
    this.columns = this.labelNames.map(() => []);
  }
}

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  buckets: number[];
  sum: number;
  count: number;
}

/**
 * A histogram with one label: what prom-client's Histogram exposes
 * (`_bucket` with `le` first, `_sum`, `_count`), for a registry.
 */
export class OneLabelHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly label: string;
  private readonly bounds: readonly number[];
  private series = new Map<string, Series>();

  constructor(opts: { name: string; help: string; label: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.label = opts.label;
    this.bounds = [...opts.buckets].sort((a, b) => a - b);
    register(this, opts.registers);
  }

  observe(labelValue: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let s = this.series.get(labelValue);
    if (!s) {
      s = { labels: { [this.label]: labelValue }, buckets: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(labelValue, s);
    }
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    s.buckets[i]!++;
    s.sum += value;
    s.count++;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.buckets[i]!;
        values.push({ value: acc, labels: { le: this.bounds[i]!, ...s.labels }, metricName: bucket });
      }
      values.push({ value: s.count, labels: { le: '+Inf', ...s.labels }, metricName: bucket });
      values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series = new Map();
  }
}
