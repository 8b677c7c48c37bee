/**
 * Bulkhead: at most `concurrentMax` calls run at once; up to `queueMax` more wait in FIFO order;
 * anything beyond is rejected at once with PP_ERR_BULKHEAD_FULL. One bulkhead per downstream keeps
 * a slow dependency from tying up every pending request of the process.
 *
 * The fast path (a free slot, nobody queued) allocates no closure: completion is handled by a
 * pre-bound `release`. Only a call that must wait allocates its queue node (it needs its own
 * resolve/reject anyway). The queue is a doubly linked list so a waiter that times out or is
 * aborted leaves in O(1) without tombstones that would let the queue hold more than its bound.
 */
import { invariant, ppError, requireArg } from '../errors/index.js';
import { renamedOptions } from '../util/index.js';
import { abortError } from './clock.js';

export interface BulkheadOptions {
  /** Calls running at once. Default 10. */
  concurrentMax?: number;
  /** Calls waiting for a slot; 0 disables queueing. Default 100. */
  queueMax?: number;
  /** A queued call that has not started after this long is rejected (PP_ERR_BULKHEAD_FULL). Default: no limit. */
  queueWaitMsMax?: number;
  /** Used in error messages and data. */
  name?: string;
  /** @deprecated use concurrentMax */
  maxConcurrent?: number;
  /** @deprecated use queueMax */
  maxQueue?: number;
  /** @deprecated use queueWaitMsMax */
  maxQueueWaitMs?: number;
}

interface Waiter {
  fn: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  prev: Waiter | null;
  next: Waiter | null;
}

const BULKHEAD_RENAMED = { concurrentMax: 'maxConcurrent', queueMax: 'maxQueue', queueWaitMsMax: 'maxQueueWaitMs' } as const;

export class Bulkhead {
  readonly name: string;
  readonly concurrentMax: number;
  readonly queueMax: number;
  readonly queueWaitMsMax: number | undefined;
  private activeCount = 0;
  private queuedCount = 0;
  private head: Waiter | null = null;
  private tail: Waiter | null = null;

  constructor(options: BulkheadOptions = {}) {
    const { concurrentMax = 10, queueMax = 100, queueWaitMsMax, name = 'bulkhead' } = renamedOptions(options, BULKHEAD_RENAMED);
    requireArg(Number.isInteger(concurrentMax) && concurrentMax >= 1, 'concurrentMax', 'must be an integer >= 1');
    requireArg(Number.isInteger(queueMax) && queueMax >= 0, 'queueMax', 'must be an integer >= 0');
    requireArg(queueWaitMsMax === undefined || (queueWaitMsMax >= 0 && queueWaitMsMax <= 2_147_483_647),
      'queueWaitMsMax', 'must be in [0, 2147483647]');
    this.concurrentMax = concurrentMax;
    this.queueMax = queueMax;
    this.queueWaitMsMax = queueWaitMsMax;
    this.name = name;
  }

  /** Calls running now. */
  get active(): number {
    return this.activeCount;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.queuedCount;
  }

  /**
   * Takes a slot without queueing, for callers that manage the call themselves; pair every true
   * with exactly one `release()`. Fails when a slot is free but others are queued (FIFO fairness).
   */
  tryAcquire(): boolean {
    if (this.activeCount < this.concurrentMax && this.queuedCount === 0) {
      this.activeCount++;
      return true;
    }
    return false;
  }

  /**
   * Gives a slot back; hands it straight to the oldest waiter, if any. An arrow property, so the
   * fast path can pass it to `finally` without allocating a closure per call.
   */
  readonly release = (): void => {
    invariant(this.activeCount > 0, 'bulkhead release without a matching acquire');
    const waiter = this.dequeue();
    if (waiter === null) {
      this.activeCount--;
      return;
    }
    // The slot passes to the waiter without being freed, so a new arrival cannot jump the queue.
    this.invoke(waiter.fn).then(waiter.resolve, waiter.reject);
  };

  /**
   * Runs `fn` when a slot is free. Rejects with PP_ERR_BULKHEAD_FULL when the queue is full or the
   * queue wait expires, with the abort error when `signal` aborts while queued. Once started, `fn`
   * is not interrupted by the bulkhead (pass it the signal yourself).
   */
  run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.tryAcquire()) return this.invoke(fn);
    if (this.queuedCount >= this.queueMax) return Promise.reject(this.fullError('queue full'));
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        fn, resolve: resolve as (value: unknown) => void, reject, timer: undefined, signal, onAbort: undefined, prev: this.tail, next: null,
      };
      if (this.queueWaitMsMax !== undefined) {
        waiter.timer = setTimeout(() => {
          this.unlink(waiter);
          reject(this.fullError('queue wait exceeded'));
        }, this.queueWaitMsMax);
      }
      if (signal !== undefined) {
        waiter.onAbort = () => {
          this.unlink(waiter);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      if (this.tail === null) this.head = waiter;
      else this.tail.next = waiter;
      this.tail = waiter;
      this.queuedCount++;
      invariant(this.queuedCount <= this.queueMax, 'bulkhead queue within queueMax');
    });
  }

  private invoke<T>(fn: () => Promise<T>): Promise<T> {
    invariant(this.activeCount <= this.concurrentMax, 'bulkhead active within concurrentMax');
    let promise: Promise<T>;
    try {
      promise = fn();
    } catch (err) {
      this.release();
      return Promise.reject(err);
    }
    return promise.finally(this.release);
  }

  private dequeue(): Waiter | null {
    const waiter = this.head;
    if (waiter !== null) this.unlink(waiter);
    return waiter;
  }

  /** Removes a waiter from the list and drops its timer and abort listener. Idempotent. */
  private unlink(waiter: Waiter): void {
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    waiter.timer = undefined;
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.onAbort = undefined;
    const linked = waiter.prev !== null || this.head === waiter;
    if (!linked) return;
    if (waiter.prev === null) this.head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === null) this.tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = null;
    waiter.next = null;
    this.queuedCount--;
    invariant(this.queuedCount >= 0, 'bulkhead queue count non-negative');
  }

  private fullError(reason: string): Error {
    return ppError('PP_ERR_BULKHEAD_FULL', {
      message: `bulkhead '${this.name}': ${reason}`,
      data: { bulkhead: this.name, reason, concurrentMax: this.concurrentMax, queueMax: this.queueMax },
    });
  }
}
