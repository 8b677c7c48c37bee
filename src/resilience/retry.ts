/**
 * Retry with capped exponential backoff and full jitter, bounded by attempts, a deadline and a
 * retry budget. Full jitter (AWS architecture blog, "Exponential Backoff and Jitter") spreads
 * retries of many clients uniformly so they do not arrive in synchronized waves.
 *
 * One implementation: `RetryPolicy` makes the decision after each failed attempt (no loop, no
 * sleep, no allocation); `retry()` is a loop around it, and the service runtime's call path drives
 * it attempt by attempt (service/caller.ts).
 */
import { invariant, isRetryable, ppError, requireArg } from '../errors/index.js';
import { renamedOptions } from '../util/index.js';
import { abortError, defaultRandom, monotonicClock, realSleep, type Clock, type RandomSource, type Sleep } from './clock.js';
import { RollingCounters } from './rolling.js';
import type { Deadline } from './timeout.js';

/**
 * Delay before retry number `retryIndex` (0 = the first retry, after attempt 0 failed):
 * uniform in [0, min(delayMsMax, baseDelayMs * 2^retryIndex)).
 */
export function backoffDelayMs(retryIndex: number, baseDelayMs: number, delayMsMax: number, random: RandomSource = defaultRandom): number {
  // 2 ** 1100 is Infinity; Math.min keeps the cap, so a large retryIndex cannot overflow to NaN.
  const ceilingMs = Math.min(delayMsMax, baseDelayMs * 2 ** retryIndex);
  return random() * ceilingMs;
}

export interface RetryBudgetOptions {
  /** Retries allowed as a fraction of requests in the window (Finagle's percentCanRetry). Default 0.2. */
  ratio?: number;
  /** Retries always allowed per second even with no traffic, so low-volume callers can still retry. Default 10. */
  retriesPerSecMin?: number;
  /** Length of the rolling window. Default 10_000 ms. */
  windowMs?: number;
  /** Buckets the window is split into; the window slides one bucket at a time. Default 10. */
  buckets?: number;
  clock?: Clock;
  /** @deprecated use retriesPerSecMin */
  minRetriesPerSec?: number;
}

/**
 * A retry budget shared by every caller of one downstream (Finagle / Linkerd style). A retry is
 * allowed only while, over the rolling window,
 *
 *     retries + 1 <= ratio * requests + retriesPerSecMin * windowMs / 1000
 *
 * so retries can add at most `ratio` extra load (plus a small fixed reserve) when the downstream is
 * failing, instead of multiplying load by attemptsMax. The window is `buckets` ring-buffer slots
 * (`RollingCounters`, shared with the breaker's time window): O(1) amortised and allocation-free.
 */
export class RetryBudget {
  readonly ratio: number;
  readonly reserve: number;
  readonly windowMs: number;
  private readonly clock: Clock;
  /** (requests, retries) over the rolling window. */
  private readonly counts: RollingCounters;

  constructor(options: RetryBudgetOptions = {}) {
    const { ratio = 0.2, retriesPerSecMin = 10, windowMs = 10_000, buckets = 10, clock = monotonicClock } = renamedOptions(options, { retriesPerSecMin: 'minRetriesPerSec' });
    requireArg(ratio >= 0 && Number.isFinite(ratio), 'ratio', 'must be a finite number >= 0');
    requireArg(retriesPerSecMin >= 0 && Number.isFinite(retriesPerSecMin), 'retriesPerSecMin', 'must be a finite number >= 0');
    requireArg(windowMs > 0 && Number.isFinite(windowMs), 'windowMs', 'must be a finite number > 0');
    requireArg(Number.isInteger(buckets) && buckets >= 1 && buckets <= 1000, 'buckets', 'must be an integer in [1, 1000]');
    this.ratio = ratio;
    this.reserve = (retriesPerSecMin * windowMs) / 1000;
    this.windowMs = windowMs;
    this.clock = clock;
    this.counts = new RollingCounters(windowMs, buckets);
  }

  /** Counts one request (call this once per logical call, not per attempt). */
  recordRequest(): void {
    this.counts.advance(this.clock.now());
    this.counts.add(1, 0);
  }

  /** Takes one retry from the budget if it allows one; false means do not retry. */
  tryWithdraw(): boolean {
    this.counts.advance(this.clock.now());
    if (this.counts.sumB + 1 > this.ratio * this.counts.sumA + this.reserve) return false;
    this.counts.add(0, 1);
    return true;
  }

  /** Retries that could be withdrawn right now. */
  available(): number {
    this.counts.advance(this.clock.now());
    return Math.max(0, Math.floor(this.ratio * this.counts.sumA + this.reserve - this.counts.sumB));
  }
}

/** `RetryPolicy.next` result: do not retry (not retryable, attempts used up, or the backoff would end past the deadline). */
export const RETRY_STOP = -1;
/** `RetryPolicy.next` result: the retry was worth making but the budget refused it. */
export const RETRY_BUDGET_REFUSED = -2;

export interface RetryPolicyOptions {
  /** Total attempts including the first. Default 3. */
  attemptsMax?: number;
  /** Backoff base. Default 50 ms. */
  baseDelayMs?: number;
  /** Backoff cap. Default 2_000 ms. */
  delayMsMax?: number;
  /** Which errors to retry. Default `isRetryable` (the catalogue decides; foreign errors opt in). */
  retryOn?: (err: unknown, attempt: number) => boolean;
  /** Shared budget: `begin` deposits a request, every retry `next` allows withdraws one. */
  budget?: RetryBudget;
  random?: RandomSource;
  /** @deprecated use attemptsMax */
  maxAttempts?: number;
  /** @deprecated use delayMsMax */
  maxDelayMs?: number;
}

/**
 * THE retry decision, step by step: attempts, full-jitter backoff, a retry predicate, the deadline
 * and a retry budget, with no loop, no sleep and no allocation of its own, so any caller can drive
 * it one attempt at a time. `retry()` is built on it; so is the service runtime's call path, which
 * must pick ANOTHER instance per attempt and stay synchronous while the attempts are (a retry with
 * a backoff under 1 ms runs at once), so it cannot hand its attempts to a promise-based loop.
 *
 *     policy.begin();                                   // once per logical call
 *     for (let attempt = 0; ; attempt++) {
 *       try { return await op(attempt); }
 *       catch (err) {
 *         const delayMs = policy.next(err, attempt, deadlineAtMs - now());
 *         if (delayMs < 0) throw err;                   // RETRY_STOP or RETRY_BUDGET_REFUSED
 *         await sleep(delayMs);
 *       }
 *     }
 */
export class RetryPolicy {
  readonly attemptsMax: number;
  readonly baseDelayMs: number;
  readonly delayMsMax: number;
  readonly budget: RetryBudget | undefined;
  private readonly retryOn: (err: unknown, attempt: number) => boolean;
  private readonly random: RandomSource;

  constructor(options: RetryPolicyOptions = {}) {
    const { attemptsMax = 3, baseDelayMs = 50, delayMsMax = 2_000, retryOn = isRetryable, budget, random = defaultRandom } = renamedOptions(options, { attemptsMax: 'maxAttempts', delayMsMax: 'maxDelayMs' });
    requireArg(Number.isInteger(attemptsMax) && attemptsMax >= 1, 'attemptsMax', 'must be an integer >= 1');
    requireArg(baseDelayMs >= 0 && Number.isFinite(baseDelayMs), 'baseDelayMs', 'must be a finite number >= 0');
    requireArg(delayMsMax >= 0 && Number.isFinite(delayMsMax), 'delayMsMax', 'must be a finite number >= 0');
    this.attemptsMax = attemptsMax;
    this.baseDelayMs = baseDelayMs;
    this.delayMsMax = delayMsMax;
    this.retryOn = retryOn;
    this.budget = budget;
    this.random = random;
  }

  /** Starts one logical call: deposits one request in the budget (once per call, not per attempt). */
  begin(): void {
    this.budget?.recordRequest();
  }

  /**
   * Attempt `attempt` (0 = the first) failed with `err`, `remainingMs` before the call's deadline
   * (Infinity: none). Returns the backoff in ms before the next attempt (>= 0: retry, and the budget
   * was charged), or RETRY_STOP (the attempts are used up, `retryOn` rejects the error, or the
   * backoff would end at or after the deadline: a retry that could not start before it is not made),
   * or RETRY_BUDGET_REFUSED. The budget is asked last, so a retry that would not be made anyway
   * spends nothing.
   */
  next(err: unknown, attempt: number, remainingMs: number): number {
    if (attempt + 1 >= this.attemptsMax || !this.retryOn(err, attempt)) return RETRY_STOP;
    const delayMs = backoffDelayMs(attempt, this.baseDelayMs, this.delayMsMax, this.random);
    invariant(delayMs >= 0 && delayMs <= this.delayMsMax, 'backoff delay within [0, delayMsMax]');
    if (delayMs >= remainingMs) return RETRY_STOP;
    if (this.budget !== undefined && !this.budget.tryWithdraw()) return RETRY_BUDGET_REFUSED;
    return delayMs;
  }
}

export interface RetryOptions extends RetryPolicyOptions {
  /** Aborting stops retrying at once (PP_ERR_ABORTED, or the reason if it is a catalogue error). */
  signal?: AbortSignal;
  /** Never sleep past this; a retry that could not start before it is not made. */
  deadline?: Deadline;
  /** Shared budget; when it refuses, retry throws PP_ERR_RETRY_BUDGET_EXHAUSTED. */
  budget?: RetryBudget;
  sleep?: Sleep;
  /** Called before each backoff sleep (for logs and metrics). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Calls `fn(attempt, signal)` (attempt counts from 0) until it resolves or retrying stops: a loop
 * around one `RetryPolicy` (built from the same options), with sleeps and an abort signal.
 *
 * Stopping and what is thrown:
 * - `fn` threw an error `retryOn` rejects, or attemptsMax reached, or the next backoff would end at
 *   or after `deadline`: the LAST ERROR, unchanged. A timeout stays PP_ERR_TIMEOUT (504), a 404 stays
 *   a 404, so the caller and the gateway see the real failure rather than a generic wrapper.
 * - the budget refused: PP_ERR_RETRY_BUDGET_EXHAUSTED with the last error as `cause`. This one is
 *   deliberately wrapped: it is not retryable, so an outer layer does not retry what the budget
 *   just refused (which is the point of a budget: no retry storms across layers).
 * - `signal` aborted: its abort error (PP_ERR_ABORTED unless the reason is a catalogue error).
 */
export async function retry<T>(fn: (attempt: number, signal: AbortSignal | undefined) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { signal, deadline, sleep = realSleep, onRetry } = options;
  const policy = new RetryPolicy(options);
  policy.begin();
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw abortError(signal);
    try {
      return await fn(attempt, signal);
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      const delayMs = policy.next(err, attempt, deadline === undefined ? Infinity : deadline.remainingMs());
      if (delayMs === RETRY_BUDGET_REFUSED) {
        throw ppError('PP_ERR_RETRY_BUDGET_EXHAUSTED', { cause: err, data: { attempts: attempt + 1 } });
      }
      if (delayMs < 0) throw err;
      onRetry?.(err, attempt, delayMs);
      await sleep(delayMs, signal);
    }
  }
}
