/**
 * K2's one way to declare a metric: `registry.counter(name, help)`, `.gauge(name, help)`,
 * `.histogram(name, help, buckets)` with labels per observation (MetricsRegistry). Two registries
 * implement it: `Metrics` here, a small Prometheus text-format registry with no dependencies (the
 * API serves its render() at /metrics), and observability/sdk-metrics.ts, which hands the same calls
 * to the Temporal SDK's meter (the worker's /metrics at K2_WORKER_METRICS, beside the SDK's own).
 * Label values never carry personal data: they are call names, stages, reasons, error classes.
 */
export type Labels = Record<string, string | number>;

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}
export interface Gauge {
  set(value: number, labels?: Labels): void;
}
export interface Histogram {
  observe(value: number, labels?: Labels): void;
}
export interface MetricsRegistry {
  counter(name: string, help: string): Counter;
  gauge(name: string, help: string): Gauge;
  /** `buckets`: upper bounds, ascending (+Inf is implied). */
  histogram(name: string, help: string, buckets: readonly number[]): Histogram;
}

/** The text form of a label set, sorted by name (one series per distinct set). */
function labelKey(labels: Labels = {}): string {
  return Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, '_')}"`)
    .join(',');
}

class Series implements Counter, Gauge {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}
  inc(labels?: Labels, by = 1) {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  set(value: number, labels?: Labels) {
    this.values.set(labelKey(labels), value);
  }
  get(labels?: Labels) {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  lines(): string[] {
    if (this.values.size === 0) return [`${this.name} 0`];
    return [...this.values].map(([k, v]) => (k ? `${this.name}{${k}} ${v}` : `${this.name} ${v}`));
  }
}

class HistogramSeries implements Histogram {
  readonly type = 'histogram';
  private readonly values = new Map<string, { buckets: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
  ) {
    if (bounds.length === 0 || bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1])))
      throw new RangeError(`histogram ${name}: buckets must be finite and ascending`);
  }
  observe(value: number, labels?: Labels) {
    const k = labelKey(labels);
    let v = this.values.get(k);
    if (!v) this.values.set(k, (v = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
    this.bounds.forEach((bound, i) => {
      if (value <= bound) v.buckets[i]++;
    });
    v.sum += value;
    v.count++;
  }
  lines(): string[] {
    const out: string[] = [];
    for (const [k, v] of this.values) {
      const withLe = (le: string) => (k ? `{${k},le="${le}"}` : `{le="${le}"}`);
      this.bounds.forEach((bound, i) => out.push(`${this.name}_bucket${withLe(String(bound))} ${v.buckets[i]}`));
      out.push(
        `${this.name}_bucket${withLe('+Inf')} ${v.count}`,
        `${this.name}_sum${k ? `{${k}}` : ''} ${v.sum}`,
        `${this.name}_count${k ? `{${k}}` : ''} ${v.count}`,
      );
    }
    return out;
  }
}

export class Metrics implements MetricsRegistry {
  private readonly series: Array<Series | HistogramSeries> = [];
  counter(name: string, help: string) {
    return this.add(new Series(name, help, 'counter'));
  }
  gauge(name: string, help: string) {
    return this.add(new Series(name, help, 'gauge'));
  }
  histogram(name: string, help: string, buckets: readonly number[]) {
    return this.add(new HistogramSeries(name, help, buckets));
  }
  private add<S extends Series | HistogramSeries>(s: S): S {
    this.series.push(s);
    return s;
  }
  render(): string {
    const lines: string[] = [];
    for (const s of this.series) lines.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`, ...s.lines());
    return lines.join('\n') + '\n';
  }
}
