/**
 * xxHash32 of strings and byte arrays, and the fixed slot space keys are mapped into.
 *
 * Written from the xxHash specification (Yann Collet, "xxHash fast digest algorithm", version
 * 0.1.1): four 32-bit accumulators consume 16-byte stripes, the rest is folded in 4-byte lanes
 * then single bytes, and an avalanche step finishes. Outputs are the canonical XXH32 values, so a
 * key hashes the same here as in any other xxHash32 implementation (Go, Rust, Python ...), which
 * matters when another process must agree on where a key lives.
 *
 * Strings hash as their UTF-8 bytes, exactly as `hash32(new TextEncoder().encode(s))` would, but
 * without encoding into a buffer: code points are turned into UTF-8 inside the hash loop and fed
 * into the lanes as packed little-endian words. No allocation per key (the partition benchmark
 * hashes 1,000,000 `user:<n>` keys per run; a TextEncoder per key costs ~3x the whole hash).
 */
import { requireArg } from '../errors/index.js';

const PRIME32_1 = 0x9e3779b1;
const PRIME32_2 = 0x85ebca77;
const PRIME32_3 = 0xc2b2ae3d;
const PRIME32_4 = 0x27d4eb2f;
const PRIME32_5 = 0x165667b1;

/** Default size of the slot space (same order as Redis Cluster's 16384 hash slots). */
export const DEFAULT_SLOT_COUNT = 16384;
/** Upper bound on a slot space: slot tables are preallocated, so this bounds their memory. */
export const SLOT_COUNT_MAX = 1 << 24;

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** One stripe round: acc = rotl(acc + lane * P2, 13) * P1 (all mod 2^32). */
function round32(acc: number, lane: number): number {
  return Math.imul(rotl32((acc + Math.imul(lane, PRIME32_2)) | 0, 13), PRIME32_1);
}

/**
 * The final mix. Returns the hash as an INT32 (same bits as the uint32): an int32 is a small
 * integer to V8 and crosses a call boundary unboxed, whereas a uint32 >= 2^31 returned from a
 * function that is not inlined is boxed in a fresh heap number, one allocation per key (measured:
 * 10 scavenges per 5M hashes before, none after). `hash32` converts with `>>> 0` in a wrapper small
 * enough to be inlined into its caller.
 */
function avalanche32(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, PRIME32_2);
  h ^= h >>> 13;
  h = Math.imul(h, PRIME32_3);
  return h ^ (h >>> 16);
}

/** Checks a hash seed: an integer in [0, 2^32) (PP_ERR_INVALID_ARGUMENT naming `seed`). */
export function assertSeed(seed: number): void {
  requireArg(seed >>> 0 === seed, 'seed', 'must be an integer in [0, 2^32)');
}

/** xxHash32 of a byte array, as an int32 (see avalanche32). */
function hashBytes(b: Uint8Array, seed: number): number {
  const len = b.length;
  let i = 0;
  let acc: number;
  if (len >= 16) {
    let v1 = (seed + PRIME32_1 + PRIME32_2) | 0;
    let v2 = (seed + PRIME32_2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - PRIME32_1) | 0;
    const limit = len - 16;
    while (i <= limit) {
      v1 = round32(v1, b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
      v2 = round32(v2, b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24));
      v3 = round32(v3, b[i + 8]! | (b[i + 9]! << 8) | (b[i + 10]! << 16) | (b[i + 11]! << 24));
      v4 = round32(v4, b[i + 12]! | (b[i + 13]! << 8) | (b[i + 14]! << 16) | (b[i + 15]! << 24));
      i += 16;
    }
    acc = (rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18)) | 0;
  } else {
    acc = (seed + PRIME32_5) | 0;
  }
  // The length is added mod 2^32 (the spec's "input length, truncated to 32 bits").
  acc = (acc + len) | 0;
  while (i + 4 <= len) {
    const lane = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    acc = Math.imul(rotl32((acc + Math.imul(lane, PRIME32_3)) | 0, 17), PRIME32_4);
    i += 4;
  }
  while (i < len) {
    acc = Math.imul(rotl32((acc + Math.imul(b[i]!, PRIME32_5)) | 0, 11), PRIME32_1);
    i++;
  }
  return avalanche32(acc);
}

/**
 * xxHash32 of the UTF-8 encoding of `s`, streaming: each code point becomes 1-4 UTF-8 bytes packed
 * little-endian into one int (`packed`, `count` bytes), which is OR-ed into the lane being built.
 * A completed lane is parked in l0..l2 until four lanes make a stripe; the spec consumes every
 * complete 16-byte stripe in the stripe loop, so a stripe is consumed as soon as it is complete.
 * What is left at the end (up to 3 lanes and up to 3 bytes) is the spec's tail. Returns an int32
 * (see avalanche32).
 */
function hashString(s: string, seed: number): number {
  const n = s.length;
  let v1 = (seed + PRIME32_1 + PRIME32_2) | 0;
  let v2 = (seed + PRIME32_2) | 0;
  let v3 = seed | 0;
  let v4 = (seed - PRIME32_1) | 0;
  let sawStripe = false;
  let l0 = 0;
  let l1 = 0;
  let l2 = 0;
  let lanesHeld = 0; // complete lanes parked in l0..l2 (0..3)
  let cur = 0; // lane under construction, little-endian
  let curBytes = 0; // bytes in `cur` (0..3 between code points)
  let totalBytes = 0;
  for (let i = 0; i < n; i++) {
    let lane = 0;
    const c = s.charCodeAt(i);
    // ASCII fast path: on a lane boundary, four ASCII chars are one whole lane. Keys are mostly
    // ASCII; measured ~1.5x (3.7 -> 5.6 M hashes/s) on 45-char keys, no clear change on short
    // "user:<n>" keys (~15 M/s; the shared 2-core machine is noisy to ±20%).
    let ascii4 = false;
    if (curBytes === 0 && i + 3 < n) {
      const c1 = s.charCodeAt(i + 1);
      const c2 = s.charCodeAt(i + 2);
      const c3 = s.charCodeAt(i + 3);
      ascii4 = (c | c1 | c2 | c3) < 0x80;
      lane = c | (c1 << 8) | (c2 << 16) | (c3 << 24);
    }
    if (ascii4) {
      totalBytes += 4;
      i += 3;
    } else {
      let packed: number;
      let count: number;
      if (c < 0x80) {
        packed = c;
        count = 1;
      } else if (c < 0x800) {
        packed = (0xc0 | (c >>> 6)) | ((0x80 | (c & 0x3f)) << 8);
        count = 2;
      } else if (c < 0xd800 || c > 0xdfff) {
        packed = (0xe0 | (c >>> 12)) | ((0x80 | ((c >>> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
        count = 3;
      } else {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          packed =
            (0xf0 | (cp >>> 18)) |
            ((0x80 | ((cp >>> 12) & 0x3f)) << 8) |
            ((0x80 | ((cp >>> 6) & 0x3f)) << 16) |
            ((0x80 | (cp & 0x3f)) << 24);
          count = 4;
          i++;
        } else {
          // A lone surrogate encodes as U+FFFD (EF BF BD), as TextEncoder and Buffer do.
          packed = 0xef | (0xbf << 8) | (0xbd << 16);
          count = 3;
        }
      }
      totalBytes += count;
      const shiftBits = curBytes << 3;
      cur |= packed << shiftBits; // bits shifted past 32 are the overflow handled below
      curBytes += count;
      if (curBytes < 4) continue;
      lane = cur;
      curBytes -= 4;
      // shiftBits > 0 whenever bytes overflow (count <= 4), so the shift below is 8..24.
      cur = curBytes === 0 ? 0 : packed >>> (32 - shiftBits);
    }
    // A complete lane: park it, or consume the stripe it completes.
    if (lanesHeld === 3) {
      v1 = round32(v1, l0);
      v2 = round32(v2, l1);
      v3 = round32(v3, l2);
      v4 = round32(v4, lane);
      lanesHeld = 0;
      sawStripe = true;
    } else if (lanesHeld === 0) {
      l0 = lane;
      lanesHeld = 1;
    } else if (lanesHeld === 1) {
      l1 = lane;
      lanesHeld = 2;
    } else {
      l2 = lane;
      lanesHeld = 3;
    }
  }
  let acc = sawStripe
    ? (rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18)) | 0
    : (seed + PRIME32_5) | 0;
  acc = (acc + totalBytes) | 0;
  if (lanesHeld > 0) acc = Math.imul(rotl32((acc + Math.imul(l0, PRIME32_3)) | 0, 17), PRIME32_4);
  if (lanesHeld > 1) acc = Math.imul(rotl32((acc + Math.imul(l1, PRIME32_3)) | 0, 17), PRIME32_4);
  if (lanesHeld > 2) acc = Math.imul(rotl32((acc + Math.imul(l2, PRIME32_3)) | 0, 17), PRIME32_4);
  for (let k = 0; k < curBytes; k++) {
    acc = Math.imul(rotl32((acc + Math.imul((cur >>> (k << 3)) & 0xff, PRIME32_5)) | 0, 11), PRIME32_1);
  }
  return avalanche32(acc);
}

/**
 * xxHash32 of `key` (a string hashes as its UTF-8 bytes). Returns a uint32.
 * Allocation-free for both kinds of key.
 */
export function hash32(key: string | Uint8Array, seed = 0): number {
  if (seed !== 0) assertSeed(seed);
  if (typeof key === 'string') return hashString(key, seed) >>> 0;
  requireArg(key instanceof Uint8Array, 'key', 'must be a string or a Uint8Array');
  return hashBytes(key, seed) >>> 0;
}

/**
 * A 32-bit bijective mixer (MurmurHash3's fmix32). Used to derive independent-looking values from
 * one hash (rendezvous scores, slot points) without hashing bytes again. Being a bijection, two
 * different inputs never collide, which rendezvous relies on to have no ties.
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function assertSlotCount(slotCount: number): void {
  requireArg(
    Number.isInteger(slotCount) && slotCount >= 1 && slotCount <= SLOT_COUNT_MAX,
    'slotCount',
    `must be an integer in [1, ${SLOT_COUNT_MAX}]`,
  );
}

/**
 * The slot of a key hash. The high bits pick the slot (multiply-shift, `floor(h * n / 2^32)`):
 * uniform to within one part in 2^32/n for any slot count (no modulo bias worth the name), and
 * cheaper than `%` on a uint32 that is not a small integer to the engine.
 */
export function slotOfHash(hash: number, slotCount: number = DEFAULT_SLOT_COUNT): number {
  const h = hash >>> 0;
  // h * n can reach 2^56, past the 2^53 doubles hold exactly; split h into 16-bit halves so
  // each partial product stays below 2^40 and the floor is exact.
  const hi = (h >>> 16) * slotCount;
  const lo = (h & 0xffff) * slotCount;
  return Math.floor((hi + Math.floor(lo / 65536)) / 65536);
}

/** The slot (0..slotCount-1) a key lives in. `slotCount` defaults to DEFAULT_SLOT_COUNT. */
export function slotOf(key: string | Uint8Array, slotCount: number = DEFAULT_SLOT_COUNT): number {
  if (slotCount !== DEFAULT_SLOT_COUNT) assertSlotCount(slotCount);
  return slotOfHash(hash32(key), slotCount);
}

export { assertSlotCount };
