/**
 * A minimal Prometheus registry: counters and histograms kept in maps keyed by their label values,
 * gauges computed at scrape time, and the text exposition format (version 0.0.4). Written for the
 * proxy's hot path: one map lookup and a few additions per observation, no allocation once a series
 * exists. `scripts/bench-metrics.ts` compares it with prom-client.
 *
 * Cardinality is bounded twice: each metric keeps at most {@link MAX_SERIES} series (later label
 * sets are counted under every label `"other"`), and callers pass only bounded label values (ids
 * from the store, codes from tables; never request ids or free text).
 *
 * @module
 */

/** Series one metric may hold before new label sets collapse into the `other` series. */
export const MAX_SERIES = 2000;

const SEP = "\u0001";

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function num(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

abstract class Metric<S> {
  protected readonly series = new Map<string, { values: readonly string[]; s: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected abstract fresh(): S;

  /**
   * The series of one label set (made on first use; past {@link MAX_SERIES}, the `other` series).
   * A caller may keep it and update it directly: series are never dropped.
   */
  get(values: readonly string[]): S {
    const key = values.join(SEP);
    let e = this.series.get(key);
    if (e === undefined) {
      let vals = values;
      let k = key;
      if (this.series.size >= MAX_SERIES) {
        vals = this.labelNames.map(() => "other");
        k = vals.join(SEP);
        const other = this.series.get(k);
        if (other) return other.s;
      }
      e = { values: [...vals], s: this.fresh() };
      this.series.set(k, e);
    }
    return e.s;
  }

  abstract render(out: string[]): void;
}

export class Counter extends Metric<{ v: number }> {
  protected fresh() {
    return { v: 0 };
  }
  inc(values: readonly string[], by = 1): void {
    this.get(values).v += by;
  }
  /** The value of one series (tests, readiness of the numbers). */
  value(values: readonly string[]): number {
    return this.series.get(values.join(SEP))?.s.v ?? 0;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const { values, s } of this.series.values())
      out.push(`${this.name}${labelText(this.labelNames, values)} ${num(s.v)}`);
  }
}

export interface HistogramSeries {
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramSeries> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
  }
  protected fresh(): HistogramSeries {
    return { counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
  }
  observe(values: readonly string[], v: number): void {
    this.observeIn(this.get(values), v);
  }
  /** Observes `v` in a series got from {@link Metric.get}. */
  observeIn(s: HistogramSeries, v: number): void {
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) if (v <= b[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const { values, s } of this.series.values()) {
      for (let i = 0; i < this.buckets.length; i++)
        out.push(
          `${this.name}_bucket${labelText(this.labelNames, values, `le="${num(this.buckets[i]!)}"`)} ${s.counts[i]}`,
        );
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${num(s.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, values)} ${s.count}`);
    }
  }
}

/** A gauge whose series are computed when scraped. */
export class Gauge {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly collect: () =>
      | Promise<readonly [readonly string[], number][]>
      | readonly [readonly string[], number][],
  ) {}
  async render(out: string[]): Promise<void> {
    const rows = await this.collect();
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    for (const [values, v] of rows.slice(0, MAX_SERIES))
      out.push(`${this.name}${labelText(this.labelNames, values)} ${num(v)}`);
  }
}

export class Registry {
  readonly #metrics: (Counter | Histogram | Gauge)[] = [];

  add<M extends Counter | Histogram | Gauge>(m: M): M {
    if (this.#metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.#metrics.push(m);
    return m;
  }

  /** The text exposition format (`text/plain; version=0.0.4`). */
  async render(): Promise<string> {
    const out: string[] = [];
    for (const m of this.#metrics) {
      if (m instanceof Gauge) await m.render(out);
      else m.render(out);
    }
    return `${out.join("\n")}\n`;
  }
}

/** Keeps a label's distinct values bounded: the first `max` values seen, then `other`. */
export class BoundedValues {
  readonly #seen = new Set<string>();
  constructor(
    private readonly max: number,
    private readonly pattern = /^[A-Za-z0-9._:/@+-]{1,80}$/,
  ) {}
  of(v: string | null | undefined): string {
    if (v === null || v === undefined || v === "") return "none";
    if (this.#seen.has(v)) return v;
    if (this.#seen.size >= this.max || !this.pattern.test(v)) return "other";
    this.#seen.add(v);
    return v;
  }
}
