/**
 * The HDR histogram against exact answers: percentiles within the stated relative precision of the
 * nearest-rank percentile of the sorted values, merge = recording both, monotone percentiles, and
 * the .hgrm text reading back to the same counts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Hdr, parseHgrm } from '../../src/observe/index.js';

/** Nearest-rank percentile of a sorted array. */
function exactPercentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** Latency-like values: mostly small, some huge, in integer microseconds up to 1 h. */
const value = fc.oneof(
  fc.integer({ min: 0, max: 5_000 }),
  fc.integer({ min: 0, max: 1_000_000 }),
  fc.integer({ min: 0, max: 3_600_000_000 }),
);
const values = fc.array(value, { minLength: 1, maxLength: 400 });
const digits = fc.integer({ min: 1, max: 5 });

function filled(vs: readonly number[], significantDigits = 3): Hdr {
  const h = new Hdr({ significantDigits });
  for (const v of vs) h.record(v);
  return h;
}

describe('Hdr', () => {
  it('percentiles are within 10^-digits of the exact nearest-rank percentile, never below it', () => {
    fc.assert(fc.property(values, digits, fc.double({ min: 0, max: 100, noNaN: true }), (vs, d, p) => {
      const h = filled(vs, d);
      const exact = exactPercentile([...vs].sort((a, b) => a - b), p);
      const got = h.percentile(p);
      expect(got).toBeGreaterThanOrEqual(exact);
      expect(got - exact).toBeLessThanOrEqual(exact * 10 ** -d);
    }), { numRuns: 300 });
  });

  it('min, max, mean and count are exact', () => {
    fc.assert(fc.property(values, (vs) => {
      const h = filled(vs);
      expect(h.count).toBe(vs.length);
      expect(h.min).toBe(Math.min(...vs));
      expect(h.max).toBe(Math.max(...vs));
      expect(h.mean).toBeCloseTo(vs.reduce((a, b) => a + b, 0) / vs.length, 6);
      expect(h.percentile(100)).toBe(h.max);
    }));
  });

  it('merging equals recording both', () => {
    fc.assert(fc.property(values, values, (a, b) => {
      const merged = filled(a).merge(filled(b));
      const both = filled([...a, ...b]);
      expect(merged.count).toBe(both.count);
      expect(merged.min).toBe(both.min);
      expect(merged.max).toBe(both.max);
      expect(merged.mean).toBeCloseTo(both.mean, 6);
      for (const p of [0, 1, 25, 50, 90, 99, 99.9, 100]) expect(merged.percentile(p)).toBe(both.percentile(p));
      expect(merged.toHgrm()).toBe(both.toHgrm());
    }));
  });

  it('percentiles are monotone in p', () => {
    fc.assert(fc.property(values, fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 2, maxLength: 20 }), (vs, ps) => {
      const h = filled(vs);
      const sorted = [...ps].sort((a, b) => a - b);
      for (let i = 1; i < sorted.length; i++) expect(h.percentile(sorted[i]!)).toBeGreaterThanOrEqual(h.percentile(sorted[i - 1]!));
    }));
  });

  it('the .hgrm text reads back to the same counts', () => {
    fc.assert(fc.property(values, (vs) => {
      const h = filled(vs);
      const parsed = parseHgrm(h.toHgrm());
      expect(parsed.totalCount).toBe(vs.length);
      expect(parsed.maxMs).toBeCloseTo(h.max / 1000, 3);
      expect(parsed.meanMs).toBeCloseTo(h.mean / 1000, 2);
      expect(parsed.subBuckets).toBe(2048);
      expect(parsed.buckets).toBe(22);
      const last = parsed.rows.at(-1)!;
      expect(last.percentile).toBe(1);
      expect(last.totalCount).toBe(vs.length);
      let prev = parsed.rows[0]!;
      for (const row of parsed.rows) {
        // Each row's cumulative count is the number of recorded values <= its value.
        const us = Math.round(row.valueMs * 1000);
        expect(row.totalCount).toBe(vs.filter((v) => v <= us).length);
        expect(row.totalCount).toBe(h.countAtOrBelow(us));
        expect(row.valueMs).toBeGreaterThanOrEqual(prev.valueMs);
        expect(row.percentile).toBeGreaterThanOrEqual(prev.percentile);
        prev = row;
      }
    }));
  });

  it('prints the HdrHistogram layout', () => {
    const h = new Hdr();
    for (let i = 1; i <= 10_000; i++) h.record(i * 10); // 10 us .. 100 ms
    const text = h.toHgrm();
    const lines = text.split('\n');
    expect(lines[0]).toBe('       Value     Percentile TotalCount 1/(1-Percentile)');
    expect(lines[1]).toBe('');
    expect(lines[2]).toBe('       0.010 0.000000000000          1           1.00');
    expect(text).toContain('     100.000 1.000000000000      10000\n');
    expect(text).toMatch(/#\[Mean {4}= {7}50\.005, StdDeviation {3}= {7}28\.\d{3}\]\n/);
    expect(text).toContain('#[Max     =      100.000, Total count    =        10000]\n');
    expect(text).toContain('#[Buckets =           22, SubBuckets     =         2048]\n');
    expect(h.percentile(50)).toBeGreaterThanOrEqual(50_000);
    expect(h.percentile(50)).toBeLessThanOrEqual(50_050);
  });

  it('clamps out-of-range values instead of dropping them, and resets', () => {
    const h = new Hdr({ highestUs: 1_000_000 });
    h.record(-5);
    h.record(Number.NaN);
    h.record(5_000_000);
    h.record(12.9);
    expect(h.count).toBe(4);
    expect(h.clamped).toBe(3);
    expect(h.max).toBe(1_000_000);
    expect(h.min).toBe(0);
    expect(h.percentile(75)).toBe(12);
    h.reset();
    expect(h.count).toBe(0);
    expect(h.percentile(50)).toBe(0);
    expect(h.toHgrm()).toContain('Total count    =            0]');
    h.record(7);
    expect(h.percentile(0)).toBe(7);
    expect(() => h.merge(new Hdr())).toThrow(/highestUs/);
    expect(() => new Hdr({ significantDigits: 7 })).toThrow(/significantDigits/);
  });
});
