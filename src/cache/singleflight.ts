/**
 * Single-flight and the stale-set guard.
 *
 * `SingleFlight`: at most one load per key in this process; concurrent callers share its promise
 * (1,000 concurrent misses -> 1 loader call). Bounded: past `inFlightMax` distinct keys loading
 * at once, further loads are refused with PP_ERR_OVERLOADED rather than growing without limit.
 *
 * `InvalidationEpochs`: the local half of "no stale sets". A load remembers the epoch of its key
 * before it reads L2 or calls the loader; every invalidation of the key (local delete or set,
 * one received from another node, a feed record) bumps it; the load writes its result into L1
 * only if the epoch is unchanged. So a miss-then-set can never overwrite an invalidation that
 * happened while it was loading. Epochs live in a fixed array of buckets indexed by key hash
 * (no per-key memory, nothing to clean up); two keys sharing a bucket only cost a skipped fill.
 * Tag invalidations and clears bump a global epoch that every load also checks. (The L2 half is
 * the Redis lease: tiers/redis.ts.)
 */
import { ppError, requireArg } from '../errors/index.js';

export const DEFAULT_IN_FLIGHT_MAX = 10_000;

export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();
  readonly inFlightMax: number;

  constructor(inFlightMax = DEFAULT_IN_FLIGHT_MAX) {
    requireArg(Number.isInteger(inFlightMax) && inFlightMax >= 1, 'inFlightMax', 'must be an integer >= 1');
    this.inFlightMax = inFlightMax;
  }

  get size(): number {
    return this.inFlight.size;
  }

  /** The load in flight for `key`, if any. */
  current(key: string): Promise<T> | undefined {
    return this.inFlight.get(key);
  }

  /** Joins the load of `key` or starts `start()` as that load. */
  run(key: string, start: () => Promise<T>): Promise<T> {
    const existing = this.inFlight.get(key);
    if (existing !== undefined) return existing;
    if (this.inFlight.size >= this.inFlightMax) {
      return Promise.reject(ppError('PP_ERR_OVERLOADED', { message: `more than ${this.inFlightMax} cache loads in flight (inFlightMax)`, data: { inFlightMax: this.inFlightMax } }));
    }
    let p: Promise<T>;
    try {
      p = start();
    } catch (err) {
      return Promise.reject(err);
    }
    const tracked = p.finally(() => {
      if (this.inFlight.get(key) === tracked) this.inFlight.delete(key);
    });
    this.inFlight.set(key, tracked);
    return tracked;
  }
}

export const DEFAULT_EPOCH_BUCKETS = 4096;

export class InvalidationEpochs {
  private readonly buckets: Uint32Array;
  private readonly mask: number;
  private global = 0;

  constructor(buckets = DEFAULT_EPOCH_BUCKETS) {
    requireArg(Number.isInteger(buckets) && buckets >= 1 && (buckets & (buckets - 1)) === 0, 'epochBuckets', 'must be a power of two');
    this.buckets = new Uint32Array(buckets);
    this.mask = buckets - 1;
  }

  /** A token for the key's current state: compare it with `token(hash)` later. */
  token(hash: number): number {
    // 2^32 bucket epochs x any global epoch: the sum is compared, and both only grow, so any
    // bump between two reads changes it (until 2^53, never in practice).
    return this.buckets[hash & this.mask]! + this.global * 4294967296;
  }

  bump(hash: number): void {
    const i = hash & this.mask;
    this.buckets[i] = (this.buckets[i]! + 1) >>> 0;
  }

  bumpAll(): void {
    this.global++;
  }
}
