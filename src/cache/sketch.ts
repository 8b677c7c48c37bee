/**
 * Count-min sketch of access frequencies with aging: the "TinyLFU" part of W-TinyLFU
 * (Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", 2017).
 *
 * Four rows of saturating 4-bit counters (held one per byte: a byte per counter is simpler and,
 * at 4 bytes per cached entry, still small). A key's estimate is the minimum over its four
 * counters, so it never under-counts until aging halves the counters. Aging: after
 * `sampleSize` (10 x capacity) increments every counter is halved, so the sketch forgets old
 * popularity and a once-hot key cannot squat forever.
 *
 * Layout: BLOCKED, as Caffeine's sketch since 3.0 — a key's four counters (one per row) all lie
 * in one 64-byte block (16 counters per row inside the block), chosen by the key hash; a second
 * hash (mix32) picks the counter in each row. One cache line per increment instead of four: on
 * the L1 get benchmark (10,000 keys, random order) the unblocked sketch cost W-TinyLFU ~40% of
 * its hit throughput against LRU. The key is hashed once when it enters the cache and the hash
 * is kept in its slot, so a hit does no string hashing.
 */
import { invariant, requireArg } from '../errors/index.js';
import { hash32, mix32 } from '../partition/index.js';

/** Counters saturate here (4-bit counters, as in Caffeine's FrequencySketch). */
export const SKETCH_COUNTER_MAX = 15;
const DEPTH = 4;
/** Bounds the sketch's memory (4 bytes per counter column): 4 x 2^24 bytes = 64 MiB at most. */
export const SKETCH_MAX_WIDTH = 1 << 24;

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export class CountMinSketch {
  /** Counters per row (a power of two, >= 16). */
  readonly width: number;
  /** Increments between two halvings. */
  readonly sampleSize: number;
  private readonly blockMask: number;
  private readonly table: Uint8Array;
  /** The same bytes as 32-bit words: halving works on four counters at a time. */
  private readonly words: Int32Array;
  private additions = 0;
  /** How many times the counters were halved (tests: "before aging"). */
  agings = 0;

  /** `capacity` is the number of entries the cache holds; the sketch is sized from it. */
  constructor(capacity: number, sampleFactor = 10) {
    requireArg(Number.isInteger(capacity) && capacity >= 1, 'capacity', 'must be an integer >= 1');
    requireArg(Number.isInteger(sampleFactor) && sampleFactor >= 1 && sampleFactor <= 1000, 'sampleFactor', 'must be an integer in [1, 1000]');
    // Two counters per row per cached entry (8 bytes per entry over the four rows): with one, a
    // scan of 10x capacity saturated small sketches and hot keys lost admission contests.
    this.width = Math.min(SKETCH_MAX_WIDTH, Math.max(16, 2 * nextPow2(capacity)));
    this.blockMask = this.width / 16 - 1;
    this.table = new Uint8Array(this.width * DEPTH);
    this.words = new Int32Array(this.table.buffer);
    this.sampleSize = Math.max(16, sampleFactor * capacity);
  }

  /** Counts one access of the key whose 32-bit hash is `hash`. Allocation-free. */
  increment(hash: number): void {
    const t = this.table;
    const base = (hash & this.blockMask) << 6;
    const h2 = mix32(hash);
    let added = false;
    let i = base + (h2 & 15);
    if (t[i]! < SKETCH_COUNTER_MAX) { t[i]!++; added = true; }
    i = base + 16 + ((h2 >>> 8) & 15);
    if (t[i]! < SKETCH_COUNTER_MAX) { t[i]!++; added = true; }
    i = base + 32 + ((h2 >>> 16) & 15);
    if (t[i]! < SKETCH_COUNTER_MAX) { t[i]!++; added = true; }
    i = base + 48 + ((h2 >>> 24) & 15);
    if (t[i]! < SKETCH_COUNTER_MAX) { t[i]!++; added = true; }
    // Only counted increments advance the sample (as Caffeine): saturated hot keys do not age the sketch.
    if (added && ++this.additions >= this.sampleSize) this.age();
  }

  /** Estimated accesses of the key (0..15): min over its four counters. */
  estimate(hash: number): number {
    const t = this.table;
    const base = (hash & this.blockMask) << 6;
    const h2 = mix32(hash);
    let f = t[base + (h2 & 15)]!;
    let c = t[base + 16 + ((h2 >>> 8) & 15)]!;
    if (c < f) f = c;
    c = t[base + 32 + ((h2 >>> 16) & 15)]!;
    if (c < f) f = c;
    c = t[base + 48 + ((h2 >>> 24) & 15)]!;
    if (c < f) f = c;
    return f;
  }

  /** Halves every counter (the "reset" of TinyLFU). Four counters per 32-bit word. */
  age(): void {
    const words = this.words;
    // Int32Array, not Uint32Array: words above 2^31 would be read as heap doubles; `>> 1` then the
    // mask gives the same bits as `>>> 1` (the profile showed the Uint32 form at ~100 ns per word).
    const n = words.length;
    for (let i = 0; i < n; i++) words[i] = (words[i]! >> 1) & 0x7f7f7f7f;
    this.additions = Math.floor(this.additions / 2);
    this.agings++;
    invariant(this.additions < this.sampleSize, 'sketch additions below the sample size after aging');
  }

  clear(): void {
    this.table.fill(0);
    this.additions = 0;
  }
}

/**
 * Hash of a cache key for the sketch and the Bloom filter: xxHash32 of a string (no allocation),
 * a mix of the two 32-bit halves of a number.
 */
export function hashKey(key: string | number): number {
  if (typeof key === 'string') return hash32(key);
  const lo = key | 0;
  const hi = (key / 4294967296) | 0;
  // Fractions and -0 fold onto integers: a collision only costs sketch accuracy.
  return mix32(lo ^ Math.imul(hi, 0x9e3779b1) ^ 0x5bd1e995);
}
