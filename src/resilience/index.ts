/**
 * Fault-tolerance building blocks: pure logic over an injected clock, no network I/O. See
 * docs/resilience.md for semantics, defaults and how they compose around a remote call.
 */
export { monotonicClock, defaultRandom, realSleep, abortError, TIMER_MS_MAX } from './clock.js';
export type { Clock, RandomSource, Sleep } from './clock.js';
export { withTimeout, Deadline } from './timeout.js';
export type { TimeoutOptions } from './timeout.js';
export { retry, backoffDelayMs, RetryBudget, RetryPolicy, RETRY_STOP, RETRY_BUDGET_REFUSED } from './retry.js';
export type { RetryOptions, RetryBudgetOptions, RetryPolicyOptions } from './retry.js';
export { CircuitBreaker, isBreakerFailure, REJECTED } from './circuit-breaker.js';
export type { CircuitState, BreakerWindow, CircuitBreakerOptions, CircuitStateChange } from './circuit-breaker.js';
export { Bulkhead } from './bulkhead.js';
export type { BulkheadOptions } from './bulkhead.js';
export { TokenBucket } from './rate-limiter.js';
export type { TokenBucketOptions } from './rate-limiter.js';
export { withFallback } from './fallback.js';
export type { FallbackOptions } from './fallback.js';
export { FailureDetector, phiNormal, elapsedForPhiNormal } from './failure-detector.js';
export type { NodeStatus, NodeStatusChange, FailureDetectorOptions } from './failure-detector.js';
export { policy } from './policy.js';
export type { Policy, PolicyOptions } from './policy.js';
