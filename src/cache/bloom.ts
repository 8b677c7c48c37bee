/**
 * A Bloom filter of keys the loader reported missing (penetration defence): a flood of lookups
 * for keys that do not exist is answered from ~10 bits per key instead of one L1 slot per key or
 * a loader call per key.
 *
 * Two things make a filter of MISSING keys safe to answer from:
 *  - counters, not bits (a counting Bloom filter, 8-bit saturating counters): when a key is set
 *    or invalidated, it is removed, so a key that starts to exist is not reported missing. A
 *    removal of a key that was never added can only produce false NEGATIVES for other keys (the
 *    loader is asked: safe); saturated counters are never decremented.
 *  - generations: the filter is two filters, current and previous; every `generationMs` the
 *    previous is dropped and the current becomes previous. A key added once is reported missing
 *    for at most 2 x generationMs, like a negative entry's TTL.
 * A false positive (rate about `falsePositiveRate` at `expectedKeys` keys per generation) reports
 * an existing key missing: the cache consults the filter only after L1 and L2 missed, so only a key
 * cached nowhere and never set or invalidated through the cache in that time can be affected.
 */
import { requireArg } from '../errors/index.js';
import type { Clock } from '../resilience/index.js';
import { mix32 } from '../partition/index.js';

export interface BloomOptions {
  /** Keys per generation the filter is sized for. Default 100,000. */
  expectedKeys?: number;
  /** Target false-positive rate at expectedKeys, in (0, 0.5). Default 0.001. */
  falsePositiveRate?: number;
  /** Lifetime of a generation. A key is reported missing for at most 2x this. */
  generationMs: number;
  clock: Clock;
}

/** Counters per generation at most (bytes of memory per generation). */
export const BLOOM_COUNTERS_MAX = 1 << 28;

export class MissingKeyFilter {
  readonly counters: number;
  readonly hashes: number;
  private current: Uint8Array;
  private previous: Uint8Array;
  private readonly generationMs: number;
  private readonly clock: Clock;
  private rotatedAtMs: number;

  constructor(options: BloomOptions) {
    const n = options.expectedKeys ?? 100_000;
    const p = options.falsePositiveRate ?? 0.001;
    requireArg(Number.isInteger(n) && n >= 1, 'bloom.expectedKeys', 'must be an integer >= 1');
    requireArg(p > 0 && p < 0.5, 'bloom.falsePositiveRate', 'must be in (0, 0.5)');
    requireArg(options.generationMs > 0 && Number.isFinite(options.generationMs), 'bloom.generationMs', 'must be a finite number > 0');
    // m = -n ln p / (ln 2)^2, k = m/n ln 2 (the textbook optimum).
    const m = Math.ceil((-n * Math.log(p)) / (Math.LN2 * Math.LN2));
    requireArg(m <= BLOOM_COUNTERS_MAX, 'bloom.expectedKeys', `needs ${m} counters, more than ${BLOOM_COUNTERS_MAX}`);
    this.counters = Math.max(64, m);
    this.hashes = Math.max(1, Math.min(16, Math.round((this.counters / n) * Math.LN2)));
    this.current = new Uint8Array(this.counters);
    this.previous = new Uint8Array(this.counters);
    this.generationMs = options.generationMs;
    this.clock = options.clock;
    this.rotatedAtMs = this.clock.now();
  }

  add(hash: number): void {
    this.rotate();
    const h2 = mix32(hash) | 1;
    const t = this.current;
    for (let i = 0; i < this.hashes; i++) {
      const j = (hash + Math.imul(i, h2)) >>> 0;
      const idx = j % this.counters;
      if (t[idx]! < 255) t[idx]!++;
    }
  }

  /** True when the key was probably added in this or the previous generation (and not removed). */
  has(hash: number): boolean {
    this.rotate();
    return this.in(this.current, hash) || this.in(this.previous, hash);
  }

  /** Removes the key from both generations where it is (probably) present. */
  remove(hash: number): void {
    for (const t of [this.current, this.previous]) {
      if (!this.in(t, hash)) continue;
      const h2 = mix32(hash) | 1;
      for (let i = 0; i < this.hashes; i++) {
        const idx = ((hash + Math.imul(i, h2)) >>> 0) % this.counters;
        const c = t[idx]!;
        if (c > 0 && c < 255) t[idx] = c - 1;
      }
    }
  }

  clear(): void {
    this.current.fill(0);
    this.previous.fill(0);
  }

  private in(t: Uint8Array, hash: number): boolean {
    const h2 = mix32(hash) | 1;
    for (let i = 0; i < this.hashes; i++) {
      if (t[((hash + Math.imul(i, h2)) >>> 0) % this.counters] === 0) return false;
    }
    return true;
  }

  private rotate(): void {
    const now = this.clock.now();
    if (now - this.rotatedAtMs < this.generationMs) return;
    const old = this.previous;
    this.previous = this.current;
    if (now - this.rotatedAtMs >= 2 * this.generationMs) this.previous.fill(0); // idle for two generations
    old.fill(0);
    this.current = old;
    this.rotatedAtMs = now;
  }
}
