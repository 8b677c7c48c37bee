/**
 * Jump consistent hash (Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm",
 * 2014): no table at all, O(ln N) expected steps per lookup, near-perfect balance, and when the
 * bucket count grows from N to N+1 exactly the keys that move go to the new bucket (≈ 1/(N+1)).
 *
 * The catch: buckets are numbered 0..N-1, so only the LAST bucket can be added or removed without
 * remapping. Shard names map to buckets by their index in the list; removing a shard from the
 * middle renumbers everything after it and moves far more than 1/N of the keys. Use jump where
 * shards are appended and retired from the end (or replaced in place under the same index),
 * otherwise use rendezvous, a ring or Maglev.
 *
 * The algorithm steps a 64-bit LCG (key = key * 2862933555777941757 + 1). JavaScript has no
 * 64-bit integer multiply short of BigInt, which allocates; we keep the key as two uint32 halves
 * and build the product from Math.imul (low halves) plus a split 16-bit multiply for the carry.
 * The 64-bit key is the 32-bit hash zero-extended, so results equal the reference C++ for any
 * key < 2^32 (checked against a BigInt transcription in the tests).
 */
import { assertSeed, hash32 } from './hash.js';
import { checkShards, type Placement } from './placement.js';

// 2862933555777941757 = 0x27BB2EE6_87B0B0FD.
const MUL_HI = 0x27bb2ee6;
const MUL_LO = 0x87b0b0fd;
const MUL_LO_LOW16 = MUL_LO & 0xffff;
const MUL_LO_HIGH16 = MUL_LO >>> 16;
const TWO_POW_31 = 2147483648;

/**
 * Jump consistent hash of a uint32 key into [0, buckets). Allocation-free.
 * `buckets` must be an integer in [1, 2^31); not checked here (hot path) — `JumpPlacement` does.
 */
export function jumpHash(hash: number, buckets: number): number {
  let lo = hash >>> 0;
  let hi = 0;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    // High 32 bits of lo * MUL_LO, exactly: lo * MUL_LO = c * 2^16 + a with a, c < 2^48.
    const a = lo * MUL_LO_LOW16;
    const c = lo * MUL_LO_HIGH16;
    const carry = Math.floor((c + Math.floor(a / 65536)) / 65536);
    // (hi:lo) * (MUL_HI:MUL_LO) mod 2^64; hi * MUL_HI only touches bits >= 64, dropped.
    let nextHi = (carry + Math.imul(lo, MUL_HI) + Math.imul(hi, MUL_LO)) >>> 0;
    let nextLo = Math.imul(lo, MUL_LO) >>> 0;
    nextLo = (nextLo + 1) >>> 0;
    if (nextLo === 0) nextHi = (nextHi + 1) >>> 0;
    lo = nextLo;
    hi = nextHi;
    // j = (b + 1) * 2^31 / ((key >> 33) + 1); key >> 33 is hi >>> 1.
    j = Math.floor((b + 1) * (TWO_POW_31 / ((hi >>> 1) + 1)));
  }
  return b;
}

export interface JumpOptions {
  /** Seed for `shardForKey`'s hash32. Default 0. */
  readonly seed?: number;
}

export class JumpPlacement implements Placement {
  readonly name = 'jump';
  readonly shards: readonly string[];
  readonly #bucketCount: number;
  readonly #seed: number;

  constructor(shards: readonly string[], options: JumpOptions = {}) {
    this.shards = checkShards(shards);
    this.#bucketCount = this.shards.length;
    this.#seed = options.seed ?? 0;
    assertSeed(this.#seed);
  }

  shardIndexOf(hash: number): number {
    return jumpHash(hash, this.#bucketCount);
  }

  shardOf(hash: number): string {
    return this.shards[jumpHash(hash, this.#bucketCount)]!;
  }

  shardForKey(key: string | Uint8Array): string {
    return this.shards[jumpHash(hash32(key, this.#seed), this.#bucketCount)]!;
  }
}

export function createJump(shards: readonly string[], options: JumpOptions = {}): JumpPlacement {
  return new JumpPlacement(shards, options);
}
