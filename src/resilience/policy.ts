/**
 * A ready-made composition for calls to ONE endpoint:
 *
 *   overall timeout -> retry -> bulkhead -> circuit breaker -> attempt timeout -> fn
 *
 * The overall timeout is the caller's deadline; retry works inside it and never sleeps past it;
 * each attempt waits for a bulkhead slot, then asks the breaker, then runs under its own timeout
 * (so one hung attempt cannot eat the whole deadline). The bulkhead sits OUTSIDE the breaker so a
 * local "bulkhead full" is never recorded as a failure of the remote endpoint.
 *
 * The service runtime picks a different endpoint per attempt, so it composes the primitives itself
 * (one breaker per endpoint); this helper is for the common single-endpoint case.
 */
import { requireArg } from '../errors/index.js';
import type { Bulkhead } from './bulkhead.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { retry, type RetryOptions } from './retry.js';
import { Deadline, withTimeout } from './timeout.js';
import { TIMER_MS_MAX, type Clock } from './clock.js';

export interface PolicyOptions {
  /** Whole call, all attempts and backoff included. Default Infinity (none). */
  timeoutMs?: number;
  /** Each attempt. Default Infinity (none). */
  attemptTimeoutMs?: number;
  /** Retry settings; signal and deadline are supplied by the policy. Default: no retry. */
  retry?: Omit<RetryOptions, 'signal' | 'deadline'>;
  breaker?: CircuitBreaker;
  bulkhead?: Bulkhead;
  /** Clock for the deadline retry respects; must be the clock the breaker uses, if you inject one. */
  clock?: Clock;
}

export type Policy = <T>(fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal) => Promise<T>;

export function policy(options: PolicyOptions = {}): Policy {
  const { timeoutMs = Infinity, attemptTimeoutMs = Infinity, breaker, bulkhead, clock } = options;
  const retryOptions = options.retry ?? { attemptsMax: 1 };
  // Checked here, not on the first call: withTimeout would throw them synchronously from every call.
  const validTimeout = (ms: number): boolean => (ms >= 0 && ms <= TIMER_MS_MAX) || ms === Infinity;
  requireArg(validTimeout(timeoutMs), 'timeoutMs', `must be in [0, ${TIMER_MS_MAX}] or Infinity`);
  requireArg(validTimeout(attemptTimeoutMs), 'attemptTimeoutMs', `must be in [0, ${TIMER_MS_MAX}] or Infinity`);

  return <T>(fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> => {
    const deadline = timeoutMs === Infinity ? undefined : Deadline.after(timeoutMs, clock);
    return withTimeout(
      (callSignal) => retry((_attempt, attemptSignal) => {
        const s = attemptSignal ?? callSignal;
        const guarded = (): Promise<T> => withTimeout(fn, { timeoutMs: attemptTimeoutMs, signal: s, ...(deadline ? { deadline } : {}) });
        const broken = breaker === undefined ? guarded : (): Promise<T> => breaker.execute(guarded);
        return bulkhead === undefined ? broken() : bulkhead.run(broken, s);
      }, { ...retryOptions, signal: callSignal, ...(deadline ? { deadline } : {}) }),
      { timeoutMs, ...(signal ? { signal } : {}) },
    );
  };
}
