/**
 * Token-bucket rate limiter. The bucket holds at most `burst` tokens and refills continuously at
 * `ratePerSec`; a call takes `n` tokens or is refused. Guarantee: over ANY interval of length t ms
 * it admits at most `burst + ratePerSec * t / 1000` tokens (the bucket can hold at most burst at the
 * interval's start and gains at most rate * t during it), up to float rounding (~1e-9 tokens).
 *
 * State is two numbers, refilled lazily from the injected clock on each call: no timers, and the
 * bucket's own code allocates nothing, so it can sit on every request. (The default clock,
 * `performance.now()`, allocates a heap number per read in Node 20; it is the one per-call cost.)
 */
import { invariant, requireArg } from '../errors/index.js';
import { monotonicClock, type Clock } from './clock.js';

export interface TokenBucketOptions {
  /** Refill rate, tokens per second (> 0). */
  ratePerSec: number;
  /** Bucket capacity (>= 1): the largest burst admitted at once. */
  burst: number;
  /** Tokens at construction. Default `burst` (a fresh limiter admits a full burst). */
  initialTokens?: number;
  clock?: Clock;
}

export class TokenBucket {
  readonly ratePerSec: number;
  readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private lastMs: number;

  constructor(options: TokenBucketOptions) {
    const { ratePerSec, burst, initialTokens = burst, clock = monotonicClock } = options;
    requireArg(ratePerSec > 0 && Number.isFinite(ratePerSec), 'ratePerSec', 'must be a finite number > 0');
    requireArg(burst >= 1 && Number.isFinite(burst), 'burst', 'must be a finite number >= 1');
    requireArg(initialTokens >= 0 && initialTokens <= burst, 'initialTokens', 'must be in [0, burst]');
    this.ratePerSec = ratePerSec;
    this.burst = burst;
    this.clock = clock;
    this.tokens = initialTokens;
    this.lastMs = clock.now();
  }

  private refill(): void {
    const nowMs = this.clock.now();
    // A clock that steps backwards must not mint tokens later for time it already credited: only
    // move lastMs forward.
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) * this.ratePerSec) / 1000);
      this.lastMs = nowMs;
    }
  }

  /** Takes `n` tokens if available now; never partially. */
  tryTake(n = 1): boolean {
    requireArg(n > 0 && Number.isFinite(n), 'n', 'must be a finite number > 0');
    this.refill();
    if (this.tokens < n) return false;
    this.tokens -= n;
    invariant(this.tokens >= 0 && this.tokens <= this.burst, 'token bucket level within [0, burst]');
    return true;
  }

  /**
   * Milliseconds until `n` tokens will be available (0 = now), assuming nobody else takes any.
   * Infinity when n > burst: such a request can never be admitted.
   */
  waitMs(n = 1): number {
    requireArg(n > 0 && Number.isFinite(n), 'n', 'must be a finite number > 0');
    if (n > this.burst) return Infinity;
    this.refill();
    const deficit = n - this.tokens;
    return deficit <= 0 ? 0 : (deficit * 1000) / this.ratePerSec;
  }

  /** Tokens available now (fractional). */
  available(): number {
    this.refill();
    return this.tokens;
  }
}
