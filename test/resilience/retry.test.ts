import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { PowerplantError } from '../../src/errors/index.js';
import { isPowerplantError, ppError } from '../../src/errors/index.js';
import { Deadline, RetryBudget, backoffDelayMs, retry, type Sleep } from '../../src/resilience/index.js';
import { FakeClock } from './fake-clock.js';

/** A sleep that records delays and advances a fake clock instead of waiting. */
function recordingSleep(clock?: FakeClock): { sleep: Sleep; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms) => {
      delays.push(ms);
      clock?.advance(ms);
    },
  };
}

describe('retry', () => {
  it('stops at attemptsMax and throws the last error unchanged', async () => {
    const { sleep } = recordingSleep();
    const errors: PowerplantError[] = [];
    const fn = vi.fn(async (attempt: number) => {
      const e = ppError('PP_ERR_UNAVAILABLE', { message: `attempt ${attempt}` });
      errors.push(e);
      throw e;
    });
    const err = await retry(fn, { attemptsMax: 4, sleep }).catch((e: unknown) => e);
    expect(fn).toHaveBeenCalledTimes(4);
    expect(fn.mock.calls.map((c) => c[0])).toEqual([0, 1, 2, 3]);
    expect(err).toBe(errors[3]);
  });

  it('returns the first success', async () => {
    const { sleep, delays } = recordingSleep();
    const fn = vi.fn(async (attempt: number) => {
      if (attempt < 2) throw ppError('PP_ERR_TIMEOUT');
      return 'ok';
    });
    await expect(retry(fn, { attemptsMax: 5, sleep })).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(3);
    expect(delays).toHaveLength(2);
  });

  it('does not retry non-retryable errors, nor foreign errors that do not opt in', async () => {
    const { sleep } = recordingSleep();
    for (const e of [ppError('PP_ERR_VALIDATION'), ppError('PP_ERR_NOT_FOUND'), new Error('plain')]) {
      const fn = vi.fn(async () => { throw e; });
      await expect(retry(fn, { attemptsMax: 5, sleep })).rejects.toBe(e);
      expect(fn).toHaveBeenCalledTimes(1);
    }
    const optIn = Object.assign(new Error('reset'), { retryable: true });
    const fn = vi.fn(async () => { throw optIn; });
    await expect(retry(fn, { attemptsMax: 3, sleep })).rejects.toBe(optIn);
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('honours an injected predicate', async () => {
    const { sleep } = recordingSleep();
    const fn = vi.fn(async () => { throw new Error('flaky'); });
    await expect(retry(fn, { attemptsMax: 3, sleep, retryOn: (e) => e instanceof Error && e.message === 'flaky' })).rejects.toThrow('flaky');
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('backoff delay k lies in [0, min(cap, base * 2^k)] (property, arbitrary random source)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 10 }),
      fc.double({ min: 0, max: 1_000, noNaN: true }),
      fc.double({ min: 0, max: 100_000, noNaN: true }),
      fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 10, maxLength: 10 }),
      async (attemptsMax, baseDelayMs, delayMsMax, draws) => {
        const { sleep, delays } = recordingSleep();
        let i = 0;
        const random = (): number => draws[i++ % draws.length] as number;
        await retry(async () => { throw ppError('PP_ERR_UNAVAILABLE'); }, { attemptsMax, baseDelayMs, delayMsMax, sleep, random }).catch(() => undefined);
        expect(delays).toHaveLength(attemptsMax - 1);
        delays.forEach((d, k) => {
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(Math.min(delayMsMax, baseDelayMs * 2 ** k));
          // Full jitter: the delay is the draw scaled to the ceiling, not a fixed value.
          expect(d).toBeCloseTo((draws[k] as number) * Math.min(delayMsMax, baseDelayMs * 2 ** k), 6);
        });
      },
    ));
    expect(backoffDelayMs(5000, 10, 500, () => 0.5)).toBe(250);
  });

  it('never sleeps past the deadline: stops with the last error instead', async () => {
    const clock = new FakeClock(0);
    const { sleep, delays } = recordingSleep(clock);
    const deadline = Deadline.after(100, clock);
    const fn = vi.fn(async () => { throw ppError('PP_ERR_UNAVAILABLE'); });
    // random() = 0.99 makes delays ~ 49.5, 99, ...: the second would end past the deadline.
    const err = await retry(fn, { attemptsMax: 10, baseDelayMs: 50, delayMsMax: 10_000, random: () => 0.99, sleep, deadline }).catch((e: unknown) => e);
    expect(isPowerplantError(err, 'PP_ERR_UNAVAILABLE')).toBe(true);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(delays.reduce((a, b) => a + b, 0)).toBeLessThan(100);
  });

  it('stops when the signal aborts during backoff, with PP_ERR_ABORTED', async () => {
    const controller = new AbortController();
    const fn = vi.fn(async () => { throw ppError('PP_ERR_UNAVAILABLE'); });
    const sleep: Sleep = async () => { controller.abort(); };
    const err = await retry(fn, { attemptsMax: 5, sleep, signal: controller.signal }).catch((e: unknown) => e);
    expect(isPowerplantError(err, 'PP_ERR_ABORTED')).toBe(true);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('the real sleep waits and is cancellable', async () => {
    vi.useFakeTimers();
    try {
      const controller = new AbortController();
      const fn = vi.fn(async () => { throw ppError('PP_ERR_UNAVAILABLE'); });
      const p = retry(fn, { attemptsMax: 5, baseDelayMs: 1_000, random: () => 0.5, signal: controller.signal }).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(499);
      expect(fn).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(fn).toHaveBeenCalledTimes(2);
      controller.abort();
      expect(isPowerplantError(await p, 'PP_ERR_ABORTED')).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a refused budget throws non-retryable PP_ERR_RETRY_BUDGET_EXHAUSTED with the last error as cause', async () => {
    const clock = new FakeClock(0);
    const budget = new RetryBudget({ ratio: 0, retriesPerSecMin: 0, clock });
    const last = ppError('PP_ERR_UNAVAILABLE');
    const fn = vi.fn(async () => { throw last; });
    const err = await retry(fn, { attemptsMax: 5, sleep: recordingSleep().sleep, budget }).catch((e: unknown) => e);
    expect(isPowerplantError(err, 'PP_ERR_RETRY_BUDGET_EXHAUSTED')).toBe(true);
    expect((err as PowerplantError).retryable).toBe(false);
    expect((err as PowerplantError).cause).toBe(last);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('the budget limits retries to ratio * requests + reserve (property, concurrent-free sequence)', async () => {
    await fc.assert(fc.asyncProperty(
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 5 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }),
      async (ratio, retriesPerSecMin, failing) => {
        const clock = new FakeClock(12_345);
        const budget = new RetryBudget({ ratio, retriesPerSecMin, windowMs: 1_000, clock });
        let attempts = 0;
        for (const alwaysFails of failing) {
          await retry(async (attempt) => {
            attempts++;
            if (alwaysFails || attempt === 0) throw ppError('PP_ERR_UNAVAILABLE');
          }, { attemptsMax: 4, sleep: async () => undefined, budget }).catch(() => undefined);
        }
        const retries = attempts - failing.length;
        expect(retries).toBeLessThanOrEqual(ratio * failing.length + retriesPerSecMin + 1e-9);
      },
    ));
  });

  it('RetryBudget matches a reference model over a rolling window with clock advances (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('request' as const) }),
      fc.record({ kind: fc.constant('retry' as const) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 700 }) }),
    );
    fc.assert(fc.property(
      fc.double({ min: 0, max: 2, noNaN: true }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 1, max: 8 }),
      fc.array(op, { maxLength: 200, size: 'max' }),
      (ratio, retriesPerSecMin, buckets, ops) => {
        const windowMs = 1_000;
        const bucketMs = windowMs / buckets;
        const clock = new FakeClock(0);
        const budget = new RetryBudget({ ratio, retriesPerSecMin, windowMs, buckets, clock });
        const events: { index: number; kind: 'request' | 'retry' }[] = [];
        for (const o of ops) {
          if (o.kind === 'advance') { clock.advance(o.ms); continue; }
          const index = Math.floor(clock.now() / bucketMs);
          const inWindow = events.filter((e) => e.index > index - buckets);
          if (o.kind === 'request') {
            budget.recordRequest();
            events.push({ index, kind: 'request' });
          } else {
            const requests = inWindow.filter((e) => e.kind === 'request').length;
            const retries = inWindow.filter((e) => e.kind === 'retry').length;
            const allowed = retries + 1 <= ratio * requests + retriesPerSecMin * (windowMs / 1000);
            expect(budget.tryWithdraw()).toBe(allowed);
            if (allowed) events.push({ index, kind: 'retry' });
          }
        }
      },
    ));
  });

  it('rejects invalid options with typed errors', async () => {
    await expect(retry(async () => 1, { attemptsMax: 0 })).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'attemptsMax' });
    expect(() => new RetryBudget({ ratio: -1 })).toThrow(expect.objectContaining({ field: 'ratio' }));
  });
});
