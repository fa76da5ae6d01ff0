/** A small Prometheus text-format registry: counters and gauges with labels, no dependencies. */
type Labels = Record<string, string | number>;

class Series {
  readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge') {}
  private key(labels: Labels = {}) {
    return Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, '_')}"`).join(',');
  }
  inc(labels?: Labels, by = 1) {
    const k = this.key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  set(value: number, labels?: Labels) {
    this.values.set(this.key(labels), value);
  }
  get(labels?: Labels) {
    return this.values.get(this.key(labels)) ?? 0;
  }
}

export class Metrics {
  private readonly series: Series[] = [];
  counter(name: string, help: string) {
    return this.add(new Series(name, help, 'counter'));
  }
  gauge(name: string, help: string) {
    return this.add(new Series(name, help, 'gauge'));
  }
  private add(s: Series) {
    this.series.push(s);
    return s;
  }
  render(): string {
    const lines: string[] = [];
    for (const s of this.series) {
      lines.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
      if (s.values.size === 0) lines.push(`${s.name} 0`);
      for (const [k, v] of s.values) lines.push(k ? `${s.name}{${k}} ${v}` : `${s.name} ${v}`);
    }
    return lines.join('\n') + '\n';
  }
}
