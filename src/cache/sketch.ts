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
 * is kept in its slot, so a hit does no string hashing; `increment` reports saturation so the
 * policy can skip keys whose counters cannot grow until the next aging.
 */
import { invariant, requireArg } from '../errors/index.js';
import { mix32 } from '../partition/index.js';

/** Counters saturate here (4-bit counters, as in Caffeine's FrequencySketch). */
export const SKETCH_COUNTER_MAX = 15;
const DEPTH = 4;
/** Bounds the sketch's memory (4 bytes per counter column): 4 x 2^24 bytes = 64 MiB at most. */
export const SKETCH_WIDTH_MAX = 1 << 24;

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
    this.width = Math.min(SKETCH_WIDTH_MAX, Math.max(16, 2 * nextPow2(capacity)));
    this.blockMask = this.width / 16 - 1;
    this.table = new Uint8Array(this.width * DEPTH);
    this.words = new Int32Array(this.table.buffer);
    this.sampleSize = Math.max(16, sampleFactor * capacity);
  }

  /**
   * Counts one access of the key whose 32-bit hash is `hash`. Returns true when all four of its
   * counters are saturated afterwards: further increments are no-ops until the next aging (other
   * keys only raise counters), so a caller may skip them until `agings` changes. Allocation-free
   * and branch-free on the counters: whether a counter is below the maximum is data the CPU
   * cannot predict (hot keys saturate, cold ones do not), so `(c - 15) >>> 31` adds 1 or 0.
   */
  increment(hash: number): boolean {
    const t = this.table;
    const base = (hash & this.blockMask) << 6;
    const h2 = mix32(hash);
    const i0 = base + (h2 & 15);
    const i1 = base + 16 + ((h2 >>> 8) & 15);
    const i2 = base + 32 + ((h2 >>> 16) & 15);
    const i3 = base + 48 + ((h2 >>> 24) & 15);
    const c0 = t[i0]!;
    const c1 = t[i1]!;
    const c2 = t[i2]!;
    const c3 = t[i3]!;
    const a0 = (c0 - SKETCH_COUNTER_MAX) >>> 31;
    const a1 = (c1 - SKETCH_COUNTER_MAX) >>> 31;
    const a2 = (c2 - SKETCH_COUNTER_MAX) >>> 31;
    const a3 = (c3 - SKETCH_COUNTER_MAX) >>> 31;
    t[i0] = c0 + a0;
    t[i1] = c1 + a1;
    t[i2] = c2 + a2;
    t[i3] = c3 + a3;
    // Only counted increments advance the sample (as Caffeine): saturated hot keys do not age the sketch.
    this.additions += a0 | a1 | a2 | a3;
    if (this.additions >= this.sampleSize) {
      this.age();
      return false;
    }
    return ((c0 + a0) & (c1 + a1) & (c2 + a2) & (c3 + a3)) === SKETCH_COUNTER_MAX;
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
 * Hash of a cache key for the sketch, the Bloom filter of missing keys and the epoch buckets —
 * all in-process, so the hash need not be stable across versions or nodes. Strings: FNV-1a over
 * the UTF-16 code units, then MurmurHash3's finalizer so every output bit depends on every
 * input bit; no allocation. It replaced xxHash32 over UTF-8 (partition/hash.ts, which must match
 * other implementations byte for byte): on the L1 set benchmark the UTF-8 encoding and lane
 * bookkeeping cost more than the whole lru-cache insert for keys like `key:1234`. Numbers: a mix
 * of the two 32-bit halves.
 */
export function hashKey(key: string | number): number {
  if (typeof key === 'string') {
    let h = 0x811c9dc5;
    const n = key.length;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return mix32(h ^ n);
  }
  const lo = key | 0;
  const hi = (key / 4294967296) | 0;
  // Fractions and -0 fold onto integers: a collision only costs sketch accuracy.
  return mix32(lo ^ Math.imul(hi, 0x9e3779b1) ^ 0x5bd1e995);
}
