/**
 * Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
 * NSDI 2016): a lookup table of prime size M filled so each shard owns ⌊M/N⌋ or ⌈M/N⌉ entries.
 * Each shard walks its own permutation of the table (offset + j·skip mod M, from two hashes of its
 * name) and the shards take turns claiming their next free entry. Lookup is one modulo and one
 * array read: the fastest strategy here after jump, and the best balanced with a table.
 *
 * Trade-off: movement when the shard list changes is close to, but above, the minimum (the paper
 * reports a few percent extra; our measurement is in docs/partition.md), and the table must be
 * rebuilt (O(M log M) expected). M should be much larger than N (the paper suggests M > 100·N) for
 * the per-shard share to be within ~1%.
 */
import { requireArg } from '../errors/index.js';
import { assertSeed, hash32 } from './hash.js';
import { checkShards, type Placement } from './placement.js';

/** Default table size: a prime, 65537 = 2^16 + 1. */
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
/** Bound on the table size (2 bytes an entry: 32 MB). */
export const MAGLEV_TABLE_SIZE_MAX = 1 << 24;

const OFFSET_SALT = 0x2545f491;
const SKIP_SALT = 0x9e3779b9;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export interface MaglevOptions {
  /** Lookup table size; must be prime and >= the shard count. Default 65537. */
  readonly tableSize?: number;
  /** Seed for `shardForKey`'s hash32. Default 0. */
  readonly seed?: number;
}

export class MaglevPlacement implements Placement {
  readonly name = 'maglev';
  readonly shards: readonly string[];
  readonly tableSize: number;
  readonly #table: Uint16Array;
  readonly #seed: number;

  constructor(shards: readonly string[], options: MaglevOptions = {}) {
    this.shards = checkShards(shards);
    const n = this.shards.length;
    const m = options.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE;
    requireArg(
      Number.isInteger(m) && m >= 2 && m <= MAGLEV_TABLE_SIZE_MAX && isPrime(m),
      'tableSize',
      `must be a prime in [2, ${MAGLEV_TABLE_SIZE_MAX}]`,
    );
    requireArg(m >= n, 'tableSize', `must be >= the shard count (${n})`);
    this.tableSize = m;
    this.#seed = options.seed ?? 0;
    assertSeed(this.#seed);

    // position[i] walks shard i's permutation: offset, offset + skip, ... (mod m). skip in
    // [1, m-1] and m prime make every permutation visit every entry exactly once.
    const position = new Uint32Array(n);
    const skip = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const name = this.shards[i]!;
      position[i] = hash32(name, OFFSET_SALT) % m;
      skip[i] = (hash32(name, SKIP_SALT) % (m - 1)) + 1;
    }
    const empty = 0xffff; // never a shard index: SHARD_COUNT_MAX is 65535 (indices <= 65534)
    const table = new Uint16Array(m).fill(empty);
    let filled = 0;
    while (filled < m) {
      for (let i = 0; i < n && filled < m; i++) {
        let c = position[i]!;
        while (table[c] !== empty) c = (c + skip[i]!) % m;
        table[c] = i;
        position[i] = (c + skip[i]!) % m;
        filled++;
      }
    }
    this.#table = table;
  }

  shardIndexOf(hash: number): number {
    return this.#table[(hash >>> 0) % this.tableSize]!;
  }

  shardOf(hash: number): string {
    return this.shards[this.#table[(hash >>> 0) % this.tableSize]!]!;
  }

  shardForKey(key: string | Uint8Array): string {
    return this.shards[this.#table[hash32(key, this.#seed) % this.tableSize]!]!;
  }
}

export function createMaglev(shards: readonly string[], options: MaglevOptions = {}): MaglevPlacement {
  return new MaglevPlacement(shards, options);
}
