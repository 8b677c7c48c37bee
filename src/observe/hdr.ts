/**
 * An HDR-style latency histogram: log-linear buckets that keep a fixed number of significant
 * decimal digits over a wide range, in a fixed-size typed array, so recording a value is a few
 * integer operations and allocates nothing.
 *
 * UNIT: values are integer MICROSECONDS (fractions are dropped), from 0 to `highestUs` (default
 * one hour). Values above the range are recorded as `highestUs` (counted, never dropped) and
 * negative ones as 0; `clamped` counts both. `toHgrm()` prints milliseconds, as the HdrHistogram
 * plotter expects.
 *
 * LAYOUT (our own formulation of the HdrHistogram idea): let m be the smallest integer with
 * 2^m >= 10^digits (m = 10 for 3 digits) and S = 2^(m+1) sub-buckets. Values below S get one slot
 * each (exact). A value v >= S with k = floor(log2 v) - m has slot k·2^m + (v >> k): the top m+1
 * bits of v, so a slot spans 2^k values starting at >= 2^(m+k), a relative width below
 * 2^-m <= 10^-digits. With 3 digits over one hour that is 23,552 slots (184 KiB of Float64Array).
 *
 * Percentiles use the nearest-rank definition (the value of rank ceil(p/100 · count), at least 1)
 * and report the highest value of the slot holding that rank, clamped to the exact max: never
 * below the true value, and above it by less than 10^-digits of it. `min`, `max` and `mean` are
 * exact (the sum is kept alongside the counts); the standard deviation is computed from the slots.
 */
import { requireArg } from '../errors/index.js';

export interface HdrOptions {
  /** Significant decimal digits kept, 1..5 (default 3: every value within 0.1 %). */
  significantDigits?: number;
  /** Highest value kept apart, in microseconds (default 3,600,000,000 = 1 h; at most 2^53 - 1). */
  highestUs?: number;
}

const TWO_POW_32 = 4294967296;

/** floor(log2 v) for an integer 1 <= v < 2^53, without allocating (Math.clz32 on each half). */
function log2Floor(v: number): number {
  if (v < TWO_POW_32) return 31 - Math.clz32(v);
  return 63 - Math.clz32(Math.floor(v / TWO_POW_32));
}

export class Hdr {
  readonly significantDigits: number;
  readonly highestUs: number;
  /** m: 2^m >= 10^digits; a slot's width is at most 2^-m of its lowest value. */
  private readonly halfMagnitude: number;
  /** 2^m */
  private readonly half: number;
  /** 2^(m+1): number of slots of the exact first bucket, and "SubBuckets" in the .hgrm footer. */
  readonly subBucketCount: number;
  /** Number of power-of-two buckets (the first one exact), "Buckets" in the .hgrm footer. */
  readonly bucketCount: number;
  private readonly counts: Float64Array;
  private total = 0;
  private sum = 0;
  private minValue = Number.POSITIVE_INFINITY;
  private maxValue = 0;
  /** Lowest and highest slot indexes holding a count (bounds the scans of percentile and toHgrm). */
  private lowIndex = Number.POSITIVE_INFINITY;
  private highIndex = -1;
  /** Values recorded outside [0, highestUs] (stored at the nearest end). */
  clamped = 0;

  constructor(options: HdrOptions = {}) {
    const digits = options.significantDigits ?? 3;
    const highest = options.highestUs ?? 3_600_000_000;
    requireArg(Number.isInteger(digits) && digits >= 1 && digits <= 5, 'significantDigits', 'must be an integer from 1 to 5');
    requireArg(Number.isSafeInteger(highest) && highest >= 2, 'highestUs', 'must be an integer from 2 to 2^53 - 1');
    this.significantDigits = digits;
    this.highestUs = highest;
    this.halfMagnitude = Math.ceil(Math.log2(10 ** digits));
    this.half = 2 ** this.halfMagnitude;
    this.subBucketCount = 2 * this.half;
    const topK = Math.max(0, log2Floor(highest) - this.halfMagnitude);
    this.bucketCount = topK + 1;
    this.counts = new Float64Array(this.indexOf(highest) + 1);
  }

  /** Slot index of an integer value in [0, highestUs]. */
  private indexOf(v: number): number {
    if (v < this.subBucketCount) return v;
    if (v < TWO_POW_32) {
      const k = 31 - Math.clz32(v) - this.halfMagnitude;
      return k * this.half + (v >>> k);
    }
    const k = log2Floor(v) - this.halfMagnitude;
    return k * this.half + Math.floor(v / 2 ** k); // exact in doubles; >>> would wrap above 2^32
  }

  /** Lowest value of slot `i`. */
  private lowestOf(i: number): number {
    if (i < this.subBucketCount) return i;
    const k = Math.floor(i / this.half) - 1;
    return (i - k * this.half) * 2 ** k;
  }

  /** Highest value of slot `i` (clamped to the range). */
  private highestOf(i: number): number {
    if (i < this.subBucketCount) return i;
    const k = Math.floor(i / this.half) - 1;
    return Math.min(this.highestUs, this.lowestOf(i) + 2 ** k - 1);
  }

  /** Records one value in microseconds. Allocation-free. */
  record(us: number): void {
    let v = Math.floor(us);
    if (!(v >= 0)) { // also NaN
      v = 0;
      this.clamped++;
    } else if (v > this.highestUs) {
      v = this.highestUs;
      this.clamped++;
    }
    const i = this.indexOf(v);
    this.counts[i]! += 1;
    this.total++;
    this.sum += v;
    if (v < this.minValue) this.minValue = v;
    if (v > this.maxValue) this.maxValue = v;
    if (i < this.lowIndex) this.lowIndex = i;
    if (i > this.highIndex) this.highIndex = i;
  }

  get count(): number {
    return this.total;
  }

  /** Exact smallest recorded value (µs); 0 when empty. */
  get min(): number {
    return this.total === 0 ? 0 : this.minValue;
  }

  /** Exact largest recorded value (µs); 0 when empty. */
  get max(): number {
    return this.maxValue;
  }

  /** Exact mean (µs); 0 when empty. */
  get mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  /** Standard deviation (µs) from the slots' midpoints around the exact mean; 0 when empty. */
  get stdDev(): number {
    if (this.total === 0) return 0;
    const mean = this.mean;
    let acc = 0;
    for (let i = this.lowIndex; i <= this.highIndex; i++) {
      const c = this.counts[i]!;
      if (c === 0) continue;
      const mid = (this.lowestOf(i) + this.highestOf(i)) / 2;
      acc += c * (mid - mean) * (mid - mean);
    }
    return Math.sqrt(acc / this.total);
  }

  /** The slot holding the value of (1-based) rank `rank`. Requires 1 <= rank <= count. */
  private indexOfRank(rank: number): number {
    let seen = 0;
    for (let i = this.lowIndex; i <= this.highIndex; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i;
    }
    return this.highIndex;
  }

  /**
   * The value (µs) at percentile `p` (0..100): nearest rank, reported as its slot's highest value
   * clamped to [min, max]. 0 when empty.
   */
  percentile(p: number): number {
    requireArg(p >= 0 && p <= 100, 'p', 'must be a percentile from 0 to 100');
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    const v = this.highestOf(this.indexOfRank(rank));
    return Math.min(this.maxValue, Math.max(this.minValue, v));
  }

  /** How many recorded values are <= `us`. */
  countAtOrBelow(us: number): number {
    if (this.total === 0 || us < 0) return 0;
    const last = this.indexOf(Math.min(this.highestUs, Math.floor(us)));
    let seen = 0;
    for (let i = this.lowIndex; i <= Math.min(last, this.highIndex); i++) seen += this.counts[i]!;
    return seen;
  }

  /** Adds every value of `other` (same digits and range) to this histogram. */
  merge(other: Hdr): this {
    requireArg(
      other.significantDigits === this.significantDigits && other.highestUs === this.highestUs,
      'other', 'must have the same significantDigits and highestUs',
    );
    if (other.total === 0) return this;
    for (let i = other.lowIndex; i <= other.highIndex; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    this.clamped += other.clamped;
    if (other.minValue < this.minValue) this.minValue = other.minValue;
    if (other.maxValue > this.maxValue) this.maxValue = other.maxValue;
    if (other.lowIndex < this.lowIndex) this.lowIndex = other.lowIndex;
    if (other.highIndex > this.highIndex) this.highIndex = other.highIndex;
    return this;
  }

  /** An empty histogram with the same settings. */
  emptyCopy(): Hdr {
    return new Hdr({ significantDigits: this.significantDigits, highestUs: this.highestUs });
  }

  reset(): void {
    if (this.highIndex >= 0) this.counts.fill(0, this.lowIndex, this.highIndex + 1);
    this.total = 0;
    this.sum = 0;
    this.clamped = 0;
    this.minValue = Number.POSITIVE_INFINITY;
    this.maxValue = 0;
    this.lowIndex = Number.POSITIVE_INFINITY;
    this.highIndex = -1;
  }

  /**
   * The HdrHistogram "percentile distribution" text (.hgrm), values in milliseconds: a header,
   * one row per percentile tick (`ticksPerHalfDistance` rows per halving of the distance to 100 %,
   * as HdrHistogram prints them) with the value, the percentile as a fraction, the cumulative count
   * through that value's slot and 1/(1-percentile), a last row at 100 %, and the footer lines
   * `#[Mean = …]`, `#[Max = …]`, `#[Buckets = …]`.
   */
  toHgrm(ticksPerHalfDistance = 5): string {
    requireArg(Number.isInteger(ticksPerHalfDistance) && ticksPerHalfDistance >= 1, 'ticksPerHalfDistance', 'must be a positive integer');
    const d = this.significantDigits;
    const ms = (us: number): string => (us / 1000).toFixed(d).padStart(12);
    const lines: string[] = [`${'Value'.padStart(12)} ${'Percentile'.padStart(14)} ${'TotalCount'.padStart(10)} ${'1/(1-Percentile)'.padStart(14)}`, ''];
    if (this.total > 0) {
      let level = 0;
      // Cumulative counts through slot i, walked forward as the levels rise.
      let i = this.lowIndex;
      let seen = this.counts[i]!;
      for (;;) {
        const rank = Math.max(1, Math.ceil((level / 100) * this.total));
        while (seen < rank && i < this.highIndex) seen += this.counts[++i]!;
        const value = Math.min(this.maxValue, this.highestOf(i));
        const frac = level / 100;
        lines.push(`${ms(value)} ${frac.toFixed(12).padStart(14)} ${String(seen).padStart(10)} ${(1 / (1 - frac)).toFixed(2).padStart(14)}`);
        if (i >= this.highIndex) break; // reached the largest value: only the 100 % row follows
        // HdrHistogram's tick spacing: 100 / (ticks · 2^(floor(log2(100 / (100 - level))) + 1)).
        const halvings = Math.floor(Math.log2(100 / (100 - level))) + 1;
        const next = level + 100 / (ticksPerHalfDistance * 2 ** halvings);
        if (!(next > level) || next >= 100) break; // precision exhausted
        level = next;
      }
      lines.push(`${ms(this.maxValue)} ${(1).toFixed(12).padStart(14)} ${String(this.total).padStart(10)}`);
    }
    const num = (x: number): string => (x / 1000).toFixed(d).padStart(12);
    lines.push(`#[Mean    = ${num(this.mean)}, StdDeviation   = ${num(this.stdDev)}]`);
    lines.push(`#[Max     = ${num(this.maxValue)}, Total count    = ${String(this.total).padStart(12)}]`);
    lines.push(`#[Buckets = ${String(this.bucketCount).padStart(12)}, SubBuckets     = ${String(this.subBucketCount).padStart(12)}]`);
    return `${lines.join('\n')}\n`;
  }
}

/** One row of a parsed .hgrm text. */
export interface HgrmRow {
  valueMs: number;
  /** 0..1 */
  percentile: number;
  totalCount: number;
}

/** What `parseHgrm` reads back from a .hgrm text. */
export interface ParsedHgrm {
  rows: HgrmRow[];
  meanMs: number;
  stdDevMs: number;
  maxMs: number;
  totalCount: number;
  buckets: number;
  subBuckets: number;
}

/**
 * Parses an HdrHistogram percentile-distribution text (ours or HdrHistogram's). Throws, naming
 * the line, on a row or footer it does not understand or when a footer line is missing.
 */
export function parseHgrm(text: string): ParsedHgrm {
  const rows: HgrmRow[] = [];
  const footer = new Map<string, number>();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('Value')) continue;
    if (line.startsWith('#[')) {
      for (const m of line.matchAll(/([A-Za-z][A-Za-z ]*?)\s*=\s*([\d.eE+-]+|NaN|Infinity)/g)) footer.set(m[1]!.trim(), Number(m[2]));
      continue;
    }
    const cols = line.split(/\s+/);
    const [v, p, c] = cols.map(Number);
    if ((cols.length !== 3 && cols.length !== 4) || !Number.isFinite(v) || !Number.isFinite(p) || !Number.isInteger(c)) {
      throw new Error(`hgrm line ${n + 1} is not "Value Percentile TotalCount [1/(1-Percentile)]": ${line}`);
    }
    rows.push({ valueMs: v!, percentile: p!, totalCount: c! });
  }
  const need = (key: string): number => {
    const x = footer.get(key);
    if (x === undefined) throw new Error(`hgrm text has no "${key} =" footer`);
    return x;
  };
  return {
    rows, meanMs: need('Mean'), stdDevMs: need('StdDeviation'), maxMs: need('Max'), totalCount: need('Total count'),
    buckets: need('Buckets'), subBuckets: need('SubBuckets'),
  };
}
