import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/resilience/index.js';
import { FakeClock } from './fake-clock.js';

describe('TokenBucket', () => {
  it('property: never admits more than burst + rate * t over any interval of length t', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.double({ min: 0, max: 50, noNaN: true })) }),
      fc.record({ kind: fc.constant('take' as const), n: fc.integer({ min: 1, max: 5 }) }),
    );
    fc.assert(fc.property(
      fc.double({ min: 0.1, max: 1_000, noNaN: true }),
      fc.integer({ min: 1, max: 20 }),
      fc.array(op, { maxLength: 300, size: 'max' }),
      (ratePerSec, burst, ops) => {
        const clock = new FakeClock(1_000);
        const bucket = new TokenBucket({ ratePerSec, burst, clock });
        const admitted: { atMs: number; n: number }[] = [];
        for (const o of ops) {
          if (o.kind === 'advance') clock.advance(o.ms);
          else if (bucket.tryTake(o.n)) admitted.push({ atMs: clock.now(), n: o.n });
        }
        // Every interval worth checking starts and ends at an admission.
        for (let i = 0; i < admitted.length; i++) {
          let total = 0;
          for (let j = i; j < admitted.length; j++) {
            total += (admitted[j] as { n: number }).n;
            const t = (admitted[j] as { atMs: number }).atMs - (admitted[i] as { atMs: number }).atMs;
            // 1e-9 tokens of slack for IEEE rounding in the refill arithmetic.
            expect(total).toBeLessThanOrEqual(burst + (ratePerSec * t) / 1000 + 1e-9);
          }
        }
      },
    ));
  });

  it('admits a full burst, then refills at the rate', () => {
    const clock = new FakeClock(0);
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 3, clock });
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake(2)).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    expect(bucket.waitMs()).toBeCloseTo(100);
    clock.advance(99);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(1);
    expect(bucket.tryTake()).toBe(true);
    clock.advance(10_000);
    expect(bucket.available()).toBe(3);
  });

  it('waitMs is exact: after waiting it, tryTake succeeds (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 10 }), (ratePerSec, burst, taken) => {
      const clock = new FakeClock(0);
      const bucket = new TokenBucket({ ratePerSec, burst, clock });
      for (let i = 0; i < taken; i++) bucket.tryTake();
      const n = Math.min(burst, 1 + (taken % burst));
      const wait = bucket.waitMs(n);
      expect(wait).toBeGreaterThanOrEqual(0);
      clock.advance(wait + 1e-6);
      expect(bucket.tryTake(n)).toBe(true);
    }));
  });

  it('a request larger than burst never fits; invalid input is a typed error', () => {
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 2, clock: new FakeClock() });
    expect(bucket.waitMs(3)).toBe(Infinity);
    expect(bucket.tryTake(3)).toBe(false);
    expect(() => bucket.tryTake(0)).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'n' }));
    expect(() => new TokenBucket({ ratePerSec: 0, burst: 1 })).toThrow(expect.objectContaining({ field: 'ratePerSec' }));
  });

  it('a clock stepping backwards mints no tokens', () => {
    const clock = new FakeClock(10_000);
    const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, clock });
    expect(bucket.tryTake()).toBe(true);
    clock.advance(-5_000);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(5_999);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(1);
    expect(bucket.tryTake()).toBe(true);
  });
});
