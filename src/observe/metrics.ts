/**
 * Metrics in the Prometheus text exposition format (version 0.0.4), without a client library:
 * counters, histograms and callback gauges, each a family with fixed label names.
 *
 * Hot path: callers resolve a labelled series ONCE (`family.labels(...)`, a map lookup) and keep
 * it; `inc()`/`observe()` are then a number add and, for histograms, a scan of ~14 bucket bounds
 * into a Float64Array. Rendering (a scrape) is the only place that builds strings.
 */
import { requireArg } from '../errors/index.js';

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Latency buckets in ms: sub-millisecond in-process calls up to multi-second timeouts. */
export const DEFAULT_LATENCY_BUCKETS_MS: readonly number[] = [0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

/** Series per family at most: label values come from action names and node ids, not from user input. */
const SERIES_PER_FAMILY_MAX = 10_000;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export class CounterSeries {
  value = 0;
  constructor(readonly labelValues: readonly string[]) {}
  inc(by = 1): void {
    this.value += by;
  }
}

export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly labelValues: readonly string[], readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.bounds;
    // Non-cumulative counts here; the renderer accumulates. A value above every bound only
    // counts in +Inf (sum/count).
    for (let i = 0; i < b.length; i++) {
      if (v <= (b[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

abstract class Family<S extends { labelValues: readonly string[] }> {
  private readonly series = new Map<string, S>();
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[]) {
    requireArg(NAME_RE.test(name), 'name', `invalid metric name '${name}'`);
  }
  protected abstract make(values: readonly string[]): S;
  /** The series for these label values (created on first use). */
  labels(...values: string[]): S {
    requireArg(values.length === this.labelNames.length, 'labels', `${this.name} takes ${this.labelNames.length} label values`);
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      requireArg(this.series.size < SERIES_PER_FAMILY_MAX, 'labels', `${this.name}: more than ${SERIES_PER_FAMILY_MAX} series`);
      s = this.make(values);
      this.series.set(key, s);
    }
    return s;
  }
  all(): IterableIterator<S> {
    return this.series.values();
  }
  abstract render(out: string[]): void;
}

export class Counter extends Family<CounterSeries> {
  protected make(values: readonly string[]): CounterSeries {
    return new CounterSeries(values);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const s of this.all()) out.push(`${this.name}${labelText(this.labelNames, s.labelValues)} ${s.value}`);
  }
}

export class Histogram extends Family<HistogramSeries> {
  constructor(name: string, help: string, labelNames: readonly string[], readonly bounds: readonly number[] = DEFAULT_LATENCY_BUCKETS_MS) {
    super(name, help, labelNames);
    requireArg(bounds.every((b, i) => i === 0 || b > (bounds[i - 1] as number)), 'bounds', 'must be strictly increasing');
  }
  protected make(values: readonly string[]): HistogramSeries {
    return new HistogramSeries(values, this.bounds);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const s of this.all()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += s.counts[i] as number;
        out.push(`${this.name}_bucket${labelText(this.labelNames, s.labelValues, `le="${this.bounds[i]}"`)} ${cumulative}`);
      }
      out.push(`${this.name}_bucket${labelText(this.labelNames, s.labelValues, 'le="+Inf"')} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, s.labelValues)} ${s.sum}`);
      out.push(`${this.name}_count${labelText(this.labelNames, s.labelValues)} ${s.count}`);
    }
  }
}

/** A gauge whose samples are read at scrape time (breaker states, registry size, queue depths). */
export class CallbackGauge {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly collect: () => Iterable<readonly [labelValues: readonly string[], value: number]>,
  ) {
    requireArg(NAME_RE.test(name), 'name', `invalid metric name '${name}'`);
  }
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`);
    for (const [values, v] of this.collect()) out.push(`${this.name}${labelText(this.labelNames, values)} ${v}`);
  }
}

type Renderable = Counter | Histogram | CallbackGauge;

export class MetricsRegistry {
  private readonly families = new Map<string, Renderable>();

  /**
   * A counter family. Asking again for the same name with the same labels returns the same family
   * (two gateways on one node share `pp_http_requests_total`); any other clash is an error.
   */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    const existing = this.families.get(name);
    if (existing instanceof Counter && existing.labelNames.join('\0') === labelNames.join('\0')) return existing;
    return this.add(new Counter(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], bounds?: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, bounds));
  }

  gauge(name: string, help: string, labelNames: readonly string[], collect: () => Iterable<readonly [readonly string[], number]>): CallbackGauge {
    return this.add(new CallbackGauge(name, help, labelNames, collect));
  }

  private add<T extends Renderable>(family: T): T {
    requireArg(!this.families.has(family.name), 'name', `metric '${family.name}' is already registered`);
    this.families.set(family.name, family);
    return family;
  }

  /** The Prometheus text for every family. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) f.render(out);
    out.push('');
    return out.join('\n');
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
