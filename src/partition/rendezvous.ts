/**
 * Rendezvous hashing / highest random weight (Thaler & Ravishankar, 1998): every shard scores the
 * key and the highest score wins. No table, perfect theoretical balance, and removing a shard
 * moves exactly that shard's keys (every other shard's scores are untouched); adding one moves
 * exactly the keys it now wins (≈ 1/(N+1)). The price is O(N) work per lookup: fine for tens of
 * shards, ~100 ns-1 µs at 100 (see docs/partition.md for measured numbers); for thousands use a
 * ring or Maglev, or rendezvous over a slot table (`PartitionMap`).
 *
 * Scores: each shard gets a 32-bit seed = hash32(name); score = mix32(keyHash ^ seed). mix32 is a
 * bijection, so two shards with different seeds can never tie on a key. Should two names share a
 * seed (p ≈ N²/2^33), ties break by name so the answer never depends on list order.
 *
 * Weighted (Schindelhauer & Schomaker's logarithmic method): score = -w / ln(u) with u the
 * normalised hash in (0,1); a shard of weight 2w receives twice the keys of one of weight w, and
 * the minimal-movement properties hold. It costs one Math.log per shard per lookup, so unweighted
 * lists take the integer-only path.
 */
import { requireArg } from '../errors/index.js';
import { assertSeed, hash32, mix32 } from './hash.js';
import { checkShards, type Placement } from './placement.js';

/** Seed for deriving shard seeds from names; fixed so placements agree across processes. */
const SHARD_SEED_SALT = 0x5bd1e995;
const TWO_POW_32 = 4294967296;

export interface RendezvousOptions {
  /** Per-shard weights (> 0, finite), index-aligned with shards. Omitted: all equal. */
  readonly weights?: readonly number[];
  /** Seed for `shardForKey`'s hash32. Default 0. */
  readonly seed?: number;
}

export class RendezvousPlacement implements Placement {
  readonly name = 'rendezvous';
  readonly shards: readonly string[];
  readonly weights: readonly number[] | undefined;
  readonly #shardSeeds: Int32Array; // Int32: Uint32 reads >= 2^31 come back as doubles
  readonly #weights: Float64Array | undefined;
  readonly #seed: number;

  constructor(shards: readonly string[], options: RendezvousOptions = {}) {
    this.shards = checkShards(shards);
    const n = this.shards.length;
    this.#shardSeeds = new Int32Array(n);
    for (let i = 0; i < n; i++) this.#shardSeeds[i] = hash32(this.shards[i]!, SHARD_SEED_SALT);
    this.#seed = options.seed ?? 0;
    assertSeed(this.#seed);
    const w = options.weights;
    if (w !== undefined) {
      requireArg(Array.isArray(w) && w.length === n, 'weights', `must be an array of ${n} numbers (one per shard)`);
      for (let i = 0; i < n; i++) {
        const wi = w[i];
        requireArg(typeof wi === 'number' && Number.isFinite(wi) && wi > 0, `weights[${i}]`, 'must be a finite number > 0');
      }
      this.weights = Object.freeze(w.slice());
      // Scores use the weights divided by the largest: shares depend only on ratios, and a weight
      // of 1e308 over -ln(u) (as small as 1.2e-10) would overflow to Infinity, tie, and hand every
      // such key to the lowest name.
      let max = 0;
      for (let i = 0; i < n; i++) max = Math.max(max, w[i]!);
      this.#weights = w.every((x) => x === w[0]) ? undefined : Float64Array.from(w, (x) => x / max);
    } else {
      this.weights = undefined;
      this.#weights = undefined;
    }
  }

  shardIndexOf(hash: number): number {
    return this.#weights === undefined ? this.#unweighted(hash >>> 0) : this.#weighted(hash >>> 0, this.#weights);
  }

  shardOf(hash: number): string {
    return this.shards[this.shardIndexOf(hash)]!;
  }

  shardForKey(key: string | Uint8Array): string {
    return this.shards[this.shardIndexOf(hash32(key, this.#seed))]!;
  }

  #unweighted(h: number): number {
    const seeds = this.#shardSeeds;
    let best = 0;
    let bestScore = 0;
    for (let i = 0; i < seeds.length; i++) {
      // mix32 inlined and kept in int32: returning `>>> 0` values >= 2^31 from a call boxed them
      // as heap numbers, and the benchmark showed 21 ns per shard instead of ~2-6 (2026-11-22:
      // 1.7M string-key lookups/s at 100 shards, i.e. ~6 ns a shard with the key hash). Flipping the
      // sign bit (^ 0x80000000) makes signed comparison order match unsigned order.
      let x = h ^ seeds[i]!;
      x ^= x >>> 16;
      x = Math.imul(x, 0x85ebca6b);
      x ^= x >>> 13;
      x = Math.imul(x, 0xc2b2ae35);
      x ^= x >>> 16;
      const score = x ^ 0x80000000;
      if (i === 0 || score > bestScore || (score === bestScore && this.shards[i]! < this.shards[best]!)) {
        best = i;
        bestScore = score;
      }
    }
    return best;
  }

  #weighted(h: number, weights: Float64Array): number {
    const seeds = this.#shardSeeds;
    let best = 0;
    let bestScore = -Infinity;
    for (let i = 0; i < seeds.length; i++) {
      // u in (0, 1) strictly: ln(u) < 0, so the score is positive and finite.
      const u = (mix32(h ^ seeds[i]!) + 0.5) / TWO_POW_32;
      const score = -weights[i]! / Math.log(u);
      if (score > bestScore || (score === bestScore && this.shards[i]! < this.shards[best]!)) {
        best = i;
        bestScore = score;
      }
    }
    return best;
  }
}

export function createRendezvous(shards: readonly string[], options: RendezvousOptions = {}): RendezvousPlacement {
  return new RendezvousPlacement(shards, options);
}
