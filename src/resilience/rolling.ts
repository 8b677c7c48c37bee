/**
 * Two counters summed over a rolling time window: `buckets` slots of `windowMs / buckets` ms in a
 * ring, with running sums; the window slides one slot at a time. The circuit breaker's time window
 * counts (calls, failures) with it, the retry budget (requests, retries).
 *
 * Allocation-free. A gap of any length costs at most `buckets` slot clears (a counter idle for an
 * hour does not walk an hour of slots), and a clock that steps backwards keeps counting into the
 * newest slot rather than corrupting the ring.
 */
import { invariant } from '../errors/index.js';

export class RollingCounters {
  /** Sum of the first counter over the window (as of the last `advance`). */
  sumA = 0;
  /** Sum of the second counter over the window (as of the last `advance`). */
  sumB = 0;
  private readonly bucketMs: number;
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  /** Absolute slot index (floor(now / bucketMs)) of the newest slot. */
  private headIndex = -Infinity;

  /** The caller validates: windowMs finite > 0, buckets an integer >= 1. */
  constructor(windowMs: number, buckets: number) {
    this.bucketMs = windowMs / buckets;
    this.a = new Float64Array(buckets);
    this.b = new Float64Array(buckets);
  }

  /** Rolls the window forward to `nowMs`, dropping expired slots from the sums. */
  advance(nowMs: number): void {
    const n = this.a.length;
    const index = Math.floor(nowMs / this.bucketMs);
    if (index <= this.headIndex) return;
    const from = index - this.headIndex > n ? index - n + 1 : this.headIndex + 1;
    for (let i = from; i <= index; i++) {
      const slot = ((i % n) + n) % n;
      this.sumA -= this.a[slot] as number;
      this.sumB -= this.b[slot] as number;
      this.a[slot] = 0;
      this.b[slot] = 0;
    }
    this.headIndex = index;
    // Counts are small integers, so the sums stay exact; this guards the arithmetic above.
    invariant(this.sumA >= 0 && this.sumB >= 0, 'rolling counter sums are non-negative');
  }

  /** Adds `da` and `db` to the newest slot: call `advance(nowMs)` first. */
  add(da: number, db: number): void {
    const n = this.a.length;
    const slot = ((this.headIndex % n) + n) % n;
    this.a[slot] = (this.a[slot] as number) + da;
    this.b[slot] = (this.b[slot] as number) + db;
    this.sumA += da;
    this.sumB += db;
  }

  /** Empties the window. */
  reset(): void {
    this.a.fill(0);
    this.b.fill(0);
    this.sumA = 0;
    this.sumB = 0;
    this.headIndex = -Infinity;
  }
}
