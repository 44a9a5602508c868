import type { Metric, Registry } from "prom-client";

/** One labelled series of a {@link PlainHistogram}: counts in a plain array. */
export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Counts `value`; a value that is not a finite number is ignored, as no bucket can hold it. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    let bucket = 0;
    while (bucket < this.bounds.length && value > this.bounds[bucket]!) bucket++;
    this.counts[bucket]! += 1;
    this.sum += value;
    this.count += 1;
  }

  /** The series in prom-client's form: cumulative buckets, then +Inf, sum and count. */
  values(name: string): PromValue[] {
    const values: PromValue[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      values.push({ metricName: `${name}_bucket`, labels: { le: this.bounds[i]! }, sharedLabels: this.labels, value: cumulative });
    }
    values.push({ metricName: `${name}_bucket`, labels: { le: "+Inf" }, sharedLabels: this.labels, value: this.count });
    values.push({ metricName: `${name}_sum`, labels: {}, sharedLabels: this.labels, value: this.sum });
    values.push({ metricName: `${name}_count`, labels: {}, sharedLabels: this.labels, value: this.count });
    return values;
  }
}

interface PromValue {
  readonly metricName: string;
  readonly labels: Record<string, string | number>;
  readonly sharedLabels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * A Prometheus histogram whose observations are plain array increments, read into prom-client's
 * form only when scraped. prom-client's own `observe` hashes and validates the labels at every call,
 * which cost several percent of the main thread with a task latency observed per task. The text it
 * scrapes to is the same as prom-client's histogram.
 */
export class PlainHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly series = new Map<string, HistogramSeries>();

  /**
   * @param labelName the one label the series are told apart by, or undefined for a single series.
   * @param buckets upper bounds, ascending.
   */
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string | undefined,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
    // An unlabelled histogram shows its zero buckets before its first observation, as prom-client's does.
    if (labelName === undefined) this.labelled("");
  }

  /** The series whose label has `value` (look it up once and keep it: this allocates the first time). */
  labelled(value: string): HistogramSeries {
    let series = this.series.get(value);
    if (series === undefined) {
      series = new HistogramSeries(this.buckets, this.labelName === undefined ? {} : { [this.labelName]: value });
      this.series.set(value, series);
    }
    return series;
  }

  /** Counts `value` in the unlabelled series. */
  observe(value: number): void {
    this.labelled("").observe(value);
  }

  /** What prom-client's registry formats at a scrape: each value's own labels, and its series' apart. */
  getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: PromValue[] }> {
    const values = [...this.series.values()].flatMap((series) => series.values(this.name));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** The values with every label on each (`le` and the series' label), as prom-client's `get` gives them. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] }> {
    const metric = await this.getForPromString();
    const values = metric.values.map(({ metricName, labels, sharedLabels, value }) => ({ metricName, labels: { ...labels, ...sharedLabels }, value }));
    return { ...metric, values };
  }
}
