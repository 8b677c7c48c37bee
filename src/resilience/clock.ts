/**
 * Time and randomness, injected. Every resilience primitive reads time through a `Clock` and draws
 * jitter through a `RandomSource` so tests drive them deterministically (a fake clock advanced by
 * hand, a seeded random) and never wait or assert on wall-clock timings.
 */
import { ppError, isPowerplantError, type PowerplantError } from '../errors/index.js';

/** A source of milliseconds. Only differences matter, except for `Deadline.atMs` (same clock). */
export interface Clock {
  now(): number;
}

/** Uniform in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/**
 * Default clock: `performance.now()`, which is monotonic. `Date.now` can jump backwards on an NTP
 * step, and a breaker that sees time go backwards would stay open for the size of the jump.
 */
export const monotonicClock: Clock = { now: () => performance.now() };

export const defaultRandom: RandomSource = Math.random;

/** A sleep that callers can replace in tests; must reject (or resolve early) when `signal` aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/**
 * The error to raise when `signal` aborted. A reason that is already a catalogue error (e.g. the
 * PP_ERR_TIMEOUT a `Deadline` aborts with) passes through unchanged so the caller sees the real
 * cause; any other reason becomes PP_ERR_ABORTED (not retryable: the caller gave up).
 */
export function abortError(signal: AbortSignal): PowerplantError {
  const reason: unknown = signal.reason;
  if (isPowerplantError(reason)) return reason;
  return ppError('PP_ERR_ABORTED', { cause: reason });
}

/** `setTimeout` as a promise; clears its timer and rejects with `abortError` when `signal` aborts. */
export const realSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Largest delay `setTimeout` honours (2^31 - 1 ms); larger values fire immediately in Node. */
export const TIMER_MS_MAX = 2_147_483_647;
