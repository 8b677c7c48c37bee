/**
 * A small seeded PRNG: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, PractRand-clean,
 * period >= 2^32 thanks to the counter), state filled from the seed by splitmix32, and a Zipf
 * sampler over it. The balancers' default random source; the seeded one of the tests, simulations,
 * load mixes and benches. Not for anything security related.
 */
import { requireArg } from '../errors/index.js';

/**
 * The generator as a class: state in four int32 fields (small integers to V8, so updating them
 * allocates nothing) and a `next()` small enough to be inlined where it is called.
 */
export class Sfc32 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is read as a uint32. */
  constructor(seed: number) {
    let s = seed >>> 0;
    const split = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return z ^ (z >>> 16);
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
  }

  /**
   * The next 32 random bits as an int32. An int32 is returned unboxed even when the call is not
   * inlined; a double result would then cost a heap number, so hot callers scale it themselves.
   */
  nextInt32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    return (this.nextInt32() >>> 0) / 4294967296;
  }
}

/** Returns a function yielding uniform floats in [0, 1), fully determined by `seed`. */
export function seededRandom(seed: number): () => number {
  requireArg(Number.isInteger(seed), 'seed', 'must be an integer');
  const g = new Sfc32(seed);
  return () => g.next();
}

/**
 * Zipf-distributed ranks 0..n-1 (rank r has weight 1/(r+1)^exponent) from uniform draws: the
 * cumulative distribution once, then a binary search per draw. Load generators and cache traces.
 */
export class ZipfSampler {
  private readonly cdf: Float64Array;

  constructor(n: number, exponent: number) {
    requireArg(n >= 1, 'n', 'must be at least 1');
    this.cdf = new Float64Array(n);
    let acc = 0;
    for (let r = 0; r < n; r++) {
      acc += 1 / (r + 1) ** exponent;
      this.cdf[r] = acc;
    }
    for (let r = 0; r < n; r++) this.cdf[r]! /= acc;
  }

  /** The rank for a uniform u in [0, 1). */
  rank(u: number): number {
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
