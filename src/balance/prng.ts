/**
 * A small seeded PRNG for tests and simulations: sfc32 (Chris Doty-Humphrey's Small Fast Counting
 * generator, PractRand-clean, period >= 2^32 thanks to the counter), state filled from the seed by
 * splitmix32. Not for anything security related.
 */
import { requireArg } from '../errors/index.js';

/** Returns a function yielding uniform floats in [0, 1), fully determined by `seed`. */
export function seededRandom(seed: number): () => number {
  requireArg(Number.isInteger(seed), 'seed', 'must be an integer');
  let s = seed >>> 0;
  const split = (): number => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}
