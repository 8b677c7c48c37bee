import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Sfc32, seededRandom, ZipfSampler } from '../../src/util/index.js';

describe('seededRandom / Sfc32', () => {
  it('is determined by its seed and stays in [0, 1)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (seed) => {
        const a = seededRandom(seed);
        const b = seededRandom(seed);
        const g = new Sfc32(seed);
        for (let i = 0; i < 50; i++) {
          const x = a();
          expect(b()).toBe(x);
          expect(g.next()).toBe(x);
          expect(x).toBeGreaterThanOrEqual(0);
          expect(x).toBeLessThan(1);
        }
      }),
    );
    expect(seededRandom(1)()).not.toBe(seededRandom(2)());
  });

  it('rejects a seed that is not an integer, naming it', () => {
    expect(() => seededRandom(1.5)).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'seed' }));
  });
});

describe('ZipfSampler', () => {
  it('returns ranks in [0, n), rank 0 the most frequent, monotone in u', () => {
    const n = 100;
    const z = new ZipfSampler(n, 0.99);
    const random = seededRandom(3);
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < 20_000; i++) counts[z.rank(random())]!++;
    expect(counts.reduce((a, b) => a + b, 0)).toBe(20_000);
    expect(Math.max(...counts)).toBe(counts[0]);
    expect(counts[0]!).toBeGreaterThan(counts[50]! * 10);
    fc.assert(fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (u, v) => {
      const [lo, hi] = u <= v ? [u, v] : [v, u];
      expect(z.rank(lo)).toBeLessThanOrEqual(z.rank(hi));
      expect(z.rank(hi)).toBeLessThan(n);
    }));
  });

  it('rejects an empty range, naming n', () => {
    expect(() => new ZipfSampler(0, 1)).toThrow(expect.objectContaining({ field: 'n' }));
  });
});
