import type { Counter, Registry } from 'prom-client';

/**
 * Metrics counted as plain numbers on the request path and handed to prom-client only
 * when scraped. prom-client hashes a label object on every inc() and observe(), cached
 * label children included (a child is the same call with its labels bound), and that
 * hashing was a tenth of the gateway's CPU per request (load-tests/PROFILE.md). Here the
 * request path adds to a number it already holds; the label sets are built per scrape.
 */

/** One counter series: the hot path adds to `value`. */
export interface CounterSlot {
  value: number;
}

/**
 * A prom-client Counter whose series are slots: keep the slot (per configured route, per
 * limit result, ...) and add to it; the counter is filled from the slots when scraped.
 */
export class TallyCounter<L extends string> {
  private readonly slots = new Map<string, { readonly labels: Record<L, string>; readonly slot: CounterSlot }>();

  constructor(private readonly counter: Counter<L>, private readonly labelNames: readonly L[]) {}

  /** The slot of these label values, in labelNames order (made on first use, then the same one). */
  slot(...values: string[]): CounterSlot {
    const key = values.join('\u0000');
    let s = this.slots.get(key);
    if (s === undefined) {
      const labels = Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])) as Record<L, string>;
      s = { labels, slot: { value: 0 } };
      this.slots.set(key, s);
    }
    return s.slot;
  }

  /** The counter's collect(): prom-client's own series replaced by the slots' totals. */
  export(): void {
    this.counter.reset();
    for (const { labels, slot } of this.slots.values()) if (slot.value > 0) this.counter.inc(labels, slot.value);
  }
}

/** One histogram series: per-bucket counts (the last is +Inf), sum and count. */
export interface HistogramSeries {
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface ExportedValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName: string;
}

/**
 * A Prometheus histogram kept as numbers, registered in a prom-client Registry as a
 * metric of its own (prom-client's Histogram has no way to be filled at scrape time).
 * Its get() answers in prom-client's form, so the text exposition and a cluster
 * primary's aggregation (AggregatorRegistry, aggregator 'sum') treat it like any other.
 */
export class TallyHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all = new Map<string, { readonly labels: Record<L, string>; readonly series: HistogramSeries }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  /** The series of these label values, in labelNames order (made on first use, then the same one). */
  series(...values: string[]): HistogramSeries {
    const key = values.join('\u0000');
    let s = this.all.get(key);
    if (s === undefined) {
      const labels = Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])) as Record<L, string>;
      s = { labels, series: { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 } };
      this.all.set(key, s);
    }
    return s.series;
  }

  observe(s: HistogramSeries, v: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const { labels, series } of this.all.values()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += series.counts[i]!;
        values.push({ value: acc, labels: { ...labels, le: this.buckets[i]! }, metricName: bucketName });
      }
      values.push({ value: series.count, labels: { ...labels, le: '+Inf' }, metricName: bucketName });
      values.push({ value: series.sum, labels: { ...labels }, metricName: `${this.name}_sum` });
      values.push({ value: series.count, labels: { ...labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const { series } of this.all.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
