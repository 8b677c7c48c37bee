/**
 * Timeouts and deadlines. `withTimeout` bounds one call; `Deadline` is an absolute point in time a
 * request carries through retries and nested calls, so every hop spends only what is left.
 */
import { ppError, requireArg } from '../errors/index.js';
import { TIMER_MS_MAX, abortError, monotonicClock, type Clock } from './clock.js';

export interface TimeoutOptions {
  /** Reject with PP_ERR_TIMEOUT after this long. `Infinity` means no timer (only `signal`/`deadline`). */
  timeoutMs: number;
  /** Parent signal: its abort rejects the call (PP_ERR_ABORTED, or the reason if it is a catalogue error). */
  signal?: AbortSignal;
  /** If given, the effective timeout is min(timeoutMs, deadline.remainingMs()). */
  deadline?: Deadline;
}

function timeoutError(timeoutMs: number): Error {
  return ppError('PP_ERR_TIMEOUT', { message: `deadline exceeded after ${timeoutMs} ms`, data: { timeoutMs } });
}

/**
 * Runs `fn` with a signal that aborts when the timeout fires or the parent aborts, and settles
 * with the first of: fn's result, PP_ERR_TIMEOUT (retryable), or the parent's abort error.
 * The timer and the parent listener are removed as soon as the race is decided, so a finished call
 * leaves nothing behind. `fn` should honour the signal; if it does not, its late result is dropped.
 */
export function withTimeout<T>(fn: (signal: AbortSignal) => Promise<T>, options: TimeoutOptions): Promise<T> {
  const { signal: parent, deadline } = options;
  let timeoutMs = options.timeoutMs;
  requireArg(typeof timeoutMs === 'number' && timeoutMs >= 0 && (timeoutMs <= TIMER_MS_MAX || timeoutMs === Infinity),
    'timeoutMs', `must be in [0, ${TIMER_MS_MAX}] or Infinity`);
  if (deadline !== undefined) timeoutMs = Math.min(timeoutMs, deadline.remainingMs());
  if (parent?.aborted) return Promise.reject(abortError(parent));
  if (timeoutMs <= 0) return Promise.reject(timeoutError(timeoutMs));

  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cleanup = (): void => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    };
    const fail = (err: Error): void => {
      if (settled) return;
      cleanup();
      // Abort the inner signal *before* rejecting so work started by fn is cancelled even if the
      // caller's rejection handler throws.
      controller.abort(err);
      reject(err);
    };
    const onParentAbort = (): void => fail(abortError(parent as AbortSignal));
    if (timeoutMs !== Infinity) timer = setTimeout(() => fail(timeoutError(timeoutMs)), timeoutMs);
    parent?.addEventListener('abort', onParentAbort, { once: true });

    let inner: Promise<T>;
    try {
      inner = fn(controller.signal);
    } catch (err) {
      cleanup();
      reject(err);
      return;
    }
    inner.then(
      (value) => {
        if (settled) return;
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        cleanup();
        reject(err);
      },
    );
  });
}

/**
 * An absolute deadline on `clock` (ms). Created once per incoming request and passed down: each
 * remote call sends `remainingMs()` (a duration, because peers do not share a clock) and the peer
 * rebuilds its own `Deadline.after(remaining)`.
 */
export class Deadline {
  readonly atMs: number;
  readonly clock: Clock;
  private controller: AbortController | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(atMs: number, clock: Clock = monotonicClock) {
    requireArg(!Number.isNaN(atMs), 'atMs', 'must be a number');
    this.atMs = atMs;
    this.clock = clock;
  }

  /** A deadline `ms` from now. */
  static after(ms: number, clock: Clock = monotonicClock): Deadline {
    requireArg(ms >= 0, 'ms', 'must be >= 0');
    return new Deadline(clock.now() + ms, clock);
  }

  /** Never expires; remainingMs() is Infinity. */
  static never(clock: Clock = monotonicClock): Deadline {
    return new Deadline(Infinity, clock);
  }

  /** Milliseconds left, never negative. */
  remainingMs(): number {
    return Math.max(0, this.atMs - this.clock.now());
  }

  expired(): boolean {
    return this.clock.now() >= this.atMs;
  }

  /** The earlier of this deadline and `ms` from now: for a per-attempt timeout inside a request. */
  within(ms: number): Deadline {
    requireArg(ms >= 0, 'ms', 'must be >= 0');
    return new Deadline(Math.min(this.atMs, this.clock.now() + ms), this.clock);
  }

  /** Throws PP_ERR_TIMEOUT if expired; cheap check before starting work. */
  throwIfExpired(): void {
    if (this.expired()) throw timeoutError(0);
  }

  /**
   * A signal that aborts with PP_ERR_TIMEOUT at the deadline. Created lazily (most users only need
   * remainingMs()). Its timer is unref'd so an unreached deadline never keeps the process alive;
   * call `dispose()` when the request finishes to release it early.
   */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      const controller = new AbortController();
      this.controller = controller;
      const remainingMs = this.remainingMs();
      if (remainingMs <= 0) controller.abort(timeoutError(0));
      else if (remainingMs <= TIMER_MS_MAX) {
        this.timer = setTimeout(() => controller.abort(timeoutError(remainingMs)), remainingMs);
        this.timer.unref?.();
      }
    }
    return this.controller.signal;
  }

  /** Clears the signal's timer, if one was created. */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
