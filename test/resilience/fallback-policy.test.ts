import { describe, expect, it, vi } from 'vitest';
import { isPowerplantError, ppError } from '../../src/errors/index.js';
import { Bulkhead, CircuitBreaker, policy, withFallback } from '../../src/resilience/index.js';
import { FakeClock } from './fake-clock.js';

describe('withFallback', () => {
  it('falls back on dependency failures, passing the error', async () => {
    const err = ppError('PP_ERR_UNAVAILABLE');
    const fallback = vi.fn((e: unknown) => (e === err ? 'cached' : 'wrong'));
    await expect(withFallback(async () => { throw err; }, fallback)).resolves.toBe('cached');
    await expect(withFallback(async () => 'fresh', fallback)).resolves.toBe('fresh');
    expect(fallback).toHaveBeenCalledTimes(1);
  });

  it('does not mask client errors by default, and honours `when`', async () => {
    const bad = ppError('PP_ERR_VALIDATION', { field: 'id' });
    await expect(withFallback(async () => { throw bad; }, () => 'x')).rejects.toBe(bad);
    await expect(withFallback(async () => { throw bad; }, () => 'x', { when: () => true })).resolves.toBe('x');
    const timeout = ppError('PP_ERR_TIMEOUT');
    await expect(withFallback(async () => { throw timeout; }, () => 'x', { when: () => false })).rejects.toBe(timeout);
  });

  it('errors of the fallback itself propagate', async () => {
    const second = new Error('fallback broke');
    await expect(withFallback(async () => { throw new Error('first'); }, () => { throw second; })).rejects.toBe(second);
  });
});

describe('policy', () => {
  it('retries retryable failures and returns the first success', async () => {
    const call = policy({ retry: { attemptsMax: 3, sleep: async () => undefined } });
    let n = 0;
    await expect(call(async () => {
      n++;
      if (n < 3) throw ppError('PP_ERR_UNAVAILABLE');
      return n;
    })).resolves.toBe(3);
  });

  it('a tripped breaker stops calls reaching fn; bulkhead rejections do not count against the breaker', async () => {
    const clock = new FakeClock(0);
    const breaker = new CircuitBreaker({ throughputMin: 3, failureRateThreshold: 0.6, openMs: 1_000, clock });
    const bulkhead = new Bulkhead({ concurrentMax: 1, queueMax: 0 });
    const call = policy({ breaker, bulkhead, clock });
    const fn = vi.fn(async () => { throw ppError('PP_ERR_UNAVAILABLE'); });

    let release: () => void = () => undefined;
    const hold = call(() => new Promise<void>((r) => { release = r; }));
    for (let i = 0; i < 5; i++) {
      const e = await call(async () => 1).catch((x: unknown) => x);
      expect(isPowerplantError(e, 'PP_ERR_BULKHEAD_FULL')).toBe(true);
    }
    release();
    await hold;
    expect(breaker.stats()).toMatchObject({ state: 'closed', failures: 0 });

    await call(fn).catch(() => undefined);
    await call(fn).catch(() => undefined);
    expect(breaker.state).toBe('open');
    const e = await call(fn).catch((x: unknown) => x);
    expect(isPowerplantError(e, 'PP_ERR_CIRCUIT_OPEN')).toBe(true);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('an attempt timeout turns a hung attempt into a retry', async () => {
    vi.useFakeTimers();
    try {
      const call = policy({ attemptTimeoutMs: 50, timeoutMs: 1_000, retry: { attemptsMax: 2, sleep: async () => undefined } });
      let n = 0;
      const p = call((signal) => {
        n++;
        if (n === 1) return new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
        return Promise.resolve('second');
      });
      await vi.advanceTimersByTimeAsync(50);
      await expect(p).resolves.toBe('second');
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rejects bad timeouts when the policy is built, naming the field', () => {
    for (const bad of [-1, Number.NaN, 2 ** 31]) {
      expect(() => policy({ timeoutMs: bad })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'timeoutMs' }));
      expect(() => policy({ attemptTimeoutMs: bad })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'attemptTimeoutMs' }));
    }
  });
});
