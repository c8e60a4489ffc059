// The metrics every proxied request touches, kept cheap on the request path:
// prom-client's own `inc` and `observe` validate and hash the label set on
// every call (a few µs a request together), so the counts are kept in plain
// maps here and read by prom-client only when /metrics is scraped. The text a
// scrape returns is the same as prom-client's Counter and Histogram give.
import { Counter, type Registry } from 'prom-client';

type Cell = { labels: Record<string, string>; n: number };
type Level = Map<string | number, Level | Cell>;

/**
 * A counter whose increments are summed per label set in nested maps (one
 * lookup per label value: no key string is built per request) and added to
 * the prom-client Counter when scraped (its `collect`).
 */
export class BufferedCounter<L extends string> {
  private readonly root: Level = new Map();
  private readonly cells: Cell[] = [];
  private readonly labelNames: readonly L[];

  constructor(opts: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] }) {
    this.labelNames = opts.labelNames;
    const cells = this.cells;
    new Counter<L>({
      ...opts,
      collect() {
        for (const c of cells) {
          if (c.n === 0) continue;
          this.inc(c.labels as never, c.n);
          c.n = 0;
        }
      },
    });
  }

  /** One more for the label values, in the order of `labelNames` (numbers are shown as they print). */
  inc(...values: (string | number)[]): void {
    let level = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(values[i]!) as Level | undefined;
      if (!next) level.set(values[i]!, (next = new Map()));
      level = next;
    }
    const cell = level.get(values[last]!) as Cell | undefined;
    if (cell) {
      cell.n++;
      return;
    }
    const labels: Record<string, string> = {};
    this.labelNames.forEach((name, i) => (labels[name] = String(values[i])));
    const c: Cell = { labels, n: 1 };
    level.set(values[last]!, c);
    this.cells.push(c);
  }
}

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  buckets: number[];
  sum: number;
  count: number;
}

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
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
    // The registry needs `name`, `help`, `type`, `aggregator`, `get()` and `reset()`: the shape of its own metrics.
    for (const r of opts.registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
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
