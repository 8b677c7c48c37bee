import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ppError } from '../../src/errors/index.js';
import { RETRY_BUDGET_REFUSED, RETRY_STOP, RetryBudget, RetryPolicy, backoffDelayMs } from '../../src/resilience/index.js';
import { FakeClock } from './fake-clock.js';

const unavailable = ppError('PP_ERR_UNAVAILABLE');

describe('RetryPolicy (the step-wise decision retry() and the call path share)', () => {
  it('allows attempts 0 .. attemptsMax-2 to be retried, then stops', () => {
    const p = new RetryPolicy({ attemptsMax: 4, random: () => 0.5 });
    expect([0, 1, 2, 3].map((a) => p.next(unavailable, a, Infinity))).toEqual([25, 50, 100, RETRY_STOP]);
  });

  it('stops on what retryOn rejects (default: the catalogue), and passes it the attempt', () => {
    const p = new RetryPolicy({ attemptsMax: 5 });
    expect(p.next(ppError('PP_ERR_VALIDATION'), 0, Infinity)).toBe(RETRY_STOP);
    expect(p.next(new Error('plain'), 0, Infinity)).toBe(RETRY_STOP);
    const seen: number[] = [];
    const q = new RetryPolicy({ attemptsMax: 5, retryOn: (_e, attempt) => { seen.push(attempt); return attempt < 2; } });
    expect(q.next(new Error('x'), 1, Infinity)).toBeGreaterThanOrEqual(0);
    expect(q.next(new Error('x'), 2, Infinity)).toBe(RETRY_STOP);
    expect(seen).toEqual([1, 2]);
  });

  it('the delay is the full-jitter backoff, and a backoff ending at or after the deadline stops (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 8 }),
      fc.double({ min: 0, max: 1_000, noNaN: true }),
      fc.double({ min: 0, max: 10_000, noNaN: true }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      fc.double({ min: 0, max: 20_000, noNaN: true }),
      (attempt, baseDelayMs, delayMsMax, draw, remainingMs) => {
        const p = new RetryPolicy({ attemptsMax: 10, baseDelayMs, delayMsMax, random: () => draw });
        const expected = backoffDelayMs(attempt, baseDelayMs, delayMsMax, () => draw);
        expect(p.next(unavailable, attempt, remainingMs)).toBe(expected < remainingMs ? expected : RETRY_STOP);
      },
    ));
  });

  it('charges the budget only for a retry it allows, and says when the budget refused', () => {
    const clock = new FakeClock(0);
    const budget = new RetryBudget({ ratio: 0, retriesPerSecMin: 0.1, windowMs: 10_000, clock });
    const p = new RetryPolicy({ attemptsMax: 3, baseDelayMs: 10, random: () => 0.99, budget });
    p.begin();
    expect(budget.available()).toBe(1);
    // Stopped for other reasons: the last attempt, a non-retryable error, the deadline. Nothing spent.
    expect(p.next(unavailable, 2, Infinity)).toBe(RETRY_STOP);
    expect(p.next(ppError('PP_ERR_NOT_FOUND'), 0, Infinity)).toBe(RETRY_STOP);
    expect(p.next(unavailable, 0, 5)).toBe(RETRY_STOP);
    expect(budget.available()).toBe(1);
    expect(p.next(unavailable, 0, Infinity)).toBeCloseTo(9.9, 9);
    expect(budget.available()).toBe(0);
    expect(p.next(unavailable, 0, Infinity)).toBe(RETRY_BUDGET_REFUSED);
  });

  it('rejects invalid options with typed errors naming the field', () => {
    expect(() => new RetryPolicy({ attemptsMax: 1.5 })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'attemptsMax' }));
    expect(() => new RetryPolicy({ baseDelayMs: -1 })).toThrow(expect.objectContaining({ field: 'baseDelayMs' }));
    expect(() => new RetryPolicy({ delayMsMax: Infinity })).toThrow(expect.objectContaining({ field: 'delayMsMax' }));
  });
});
