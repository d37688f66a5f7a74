/**
 * A small Prometheus metrics registry: counters and histograms with labels,
 * rendered in the text exposition format (version 0.0.4). Gauges that are
 * read from the store at scrape time are passed to `render` as samples.
 */

type Labels = Record<string, string>;

/** Default histogram buckets in seconds, from 1 ms to a long poll's minute. */
export const DEFAULT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const key = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const fmtLabels = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escape(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};
const num = (n: number) => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN');

/** A counter that only goes up, per label set. */
export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const v = this.values.get(k) ?? { labels, value: 0 };
    v.value += by;
    this.values.set(k, v);
  }

  /** The value for one label set (0 when never counted). */
  get(labels: Labels = {}): number {
    return this.values.get(key(labels))?.value ?? 0;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${fmtLabels(labels)} ${num(value)}`);
    return lines;
  }
}

/** A histogram of observations (seconds), cumulative buckets per label set. */
export class Histogram {
  private readonly values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {}

  observe(value: number, labels: Labels = {}): void {
    const k = key(labels);
    const v = this.values.get(k) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((b, i) => {
      if (value <= b) v.counts[i] = (v.counts[i] ?? 0) + 1;
    });
    v.sum += value;
    v.count += 1;
    this.values.set(k, v);
  }

  /** How many observations for one label set. */
  count(labels: Labels = {}): number {
    return this.values.get(key(labels))?.count ?? 0;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, counts, sum, count } of this.values.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${fmtLabels({ ...labels, le: num(b) })} ${counts[i] ?? 0}`));
      lines.push(`${this.name}_bucket${fmtLabels({ ...labels, le: '+Inf' })} ${count}`);
      lines.push(`${this.name}_sum${fmtLabels(labels)} ${num(sum)}`);
      lines.push(`${this.name}_count${fmtLabels(labels)} ${count}`);
    }
    return lines;
  }
}

/**
 * A family read at scrape time: one value per label set. A gauge, or a
 * counter when the value only grows (e.g. a total the store keeps).
 */
export interface GaugeSamples {
  name: string;
  help: string;
  samples: { labels: Labels; value: number }[];
  type?: 'gauge' | 'counter';
}

/** Render gauges, then counters and histograms, as one exposition text. */
export function renderMetrics(gauges: GaugeSamples[], others: (Counter | Histogram)[]): string {
  const lines: string[] = [];
  for (const g of gauges) {
    lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} ${g.type ?? 'gauge'}`);
    for (const s of g.samples) lines.push(`${g.name}${fmtLabels(s.labels)} ${num(s.value)}`);
  }
  for (const m of others) lines.push(...m.render());
  return `${lines.join('\n')}\n`;
}
