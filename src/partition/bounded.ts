/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam, "Consistent Hashing with
 * Bounded Loads", SODA 2018): items walk a consistent-hash ring clockwise to the first shard whose
 * load is below a capacity of ⌈(1+ε)·mean⌉, so no shard ever holds more than that, while most
 * items still land where plain consistent hashing would put them.
 *
 * A placement cannot see the loads an arbitrary key lookup would add, so `BoundedLoadPlacement`
 * bounds load over the fixed SLOT space: slots 0..S-1 are assigned in order, each walking the ring
 * from its own point to the first shard below capacity; `shardOf(hash)` is then the owner of
 * `slotOfHash(hash)`. Guarantee: every shard owns at most `capacity` slots. Keys per shard then
 * follow slots per shard up to sampling noise (a shard's key count is a sum of its slots' keys).
 *
 * Capacity = max(⌊(1+ε)·mean⌋, ⌈mean⌉) with mean = S/N. That is never above Mirrokni's
 * ⌈(1+ε)·mean⌉ (so their bound holds), always feasible (N·capacity >= S), and keeps max/mean <= 1+ε
 * whenever (1+ε)·mean >= ⌈mean⌉, instead of overshooting 1+ε by up to 1/mean through the ceiling.
 *
 * `BoundedLoadAssigner` is the incremental form for a caller that does know loads (e.g. sticky
 * sessions): `assign(keyHash)` places one item under the current capacity and counts it;
 * `release(shardIndex)` uncounts one. The bound holds at every assignment; after releases a shard
 * may sit above the now smaller capacity until its items are released (nothing is moved behind the
 * caller's back).
 *
 * Movement: changing the shard list changes capacity and the overflow chains, so more than the
 * ideal 1/(N+1) moves (the paper bounds it by O(1/ε²) times ideal); measured in docs/partition.md.
 */
import { invariant, requireArg } from '../errors/index.js';
import { renamedOptions } from '../util/index.js';
import { assertSeed, assertSlotCount, DEFAULT_SLOT_COUNT, hash32, mix32, slotOfHash } from './hash.js';
import { checkShards, type Placement } from './placement.js';
import { RingPlacement } from './ring.js';

export const DEFAULT_EPSILON = 0.25;
/**
 * Points per shard on the underlying ring. Measured at 100 shards, 16384 slots, ε = 0.25:
 * 100 vnodes gave a key CV of 13% and 1.08× ideal movement, 1000 gave 8% and 1.03×, for 40 ms
 * more build time; the capacity only trims the top, the ring still decides the bottom.
 */
export const DEFAULT_BOUNDED_VNODES = 1000;
/** Bound on ε: beyond this the capacity no longer binds for any realistic N. */
export const EPSILON_MAX = 1000;

const SLOT_POINT_SALT = 0x7f4a7c15;

/** Capacity for `items` spread over `shardCount` with slack `epsilon` (see the module comment). */
export function boundedCapacity(items: number, shardCount: number, epsilon: number): number {
  const mean = items / shardCount;
  return Math.max(Math.floor((1 + epsilon) * mean), Math.ceil(mean));
}

export interface BoundedLoadOptions {
  /** Slack over the mean load, ε > 0. Default 0.25. */
  readonly epsilon?: number;
  /** Slot space size. Default DEFAULT_SLOT_COUNT. */
  readonly slotCount?: number;
  /** Virtual nodes per shard on the underlying ring. Default 1000. */
  readonly vnodes?: number;
  /** Seed for `shardForKey`'s hash32. Default 0. */
  readonly seed?: number;
}

function checkEpsilon(epsilon: number): void {
  requireArg(
    typeof epsilon === 'number' && Number.isFinite(epsilon) && epsilon > 0 && epsilon <= EPSILON_MAX,
    'epsilon',
    `must be a number in (0, ${EPSILON_MAX}]`,
  );
}

export class BoundedLoadPlacement implements Placement {
  readonly name = 'bounded';
  readonly shards: readonly string[];
  readonly epsilon: number;
  readonly slotCount: number;
  /** Most slots any shard may own. */
  readonly capacity: number;
  readonly #owners: Uint16Array;
  readonly #slotLoads: Uint32Array;
  readonly #seed: number;

  constructor(shards: readonly string[], options: BoundedLoadOptions = {}) {
    this.shards = checkShards(shards);
    this.epsilon = options.epsilon ?? DEFAULT_EPSILON;
    checkEpsilon(this.epsilon);
    this.slotCount = options.slotCount ?? DEFAULT_SLOT_COUNT;
    assertSlotCount(this.slotCount);
    this.#seed = options.seed ?? 0;
    assertSeed(this.#seed);
    const ring = new RingPlacement(this.shards, { vnodes: options.vnodes ?? DEFAULT_BOUNDED_VNODES });
    const n = this.shards.length;
    this.capacity = boundedCapacity(this.slotCount, n, this.epsilon);
    invariant(this.capacity * n >= this.slotCount, 'bounded capacity covers every slot');

    const owners = new Uint16Array(this.slotCount);
    const loads = new Uint32Array(n);
    const points = ring.pointCount;
    for (let slot = 0; slot < this.slotCount; slot++) {
      let p = ring.pointIndexOf(mix32((slot ^ SLOT_POINT_SALT) >>> 0));
      // Terminates: total capacity >= slotCount, so some shard is below capacity, and a full
      // lap visits every shard's points. Bounded by one lap as a guard.
      let steps = 0;
      while (loads[ring.ownerOfPoint(p)]! >= this.capacity) {
        p = p + 1 === points ? 0 : p + 1;
        invariant(++steps <= points, 'bounded-load walk finds a shard below capacity within one lap');
      }
      const owner = ring.ownerOfPoint(p);
      owners[slot] = owner;
      loads[owner]!++;
    }
    this.#owners = owners;
    this.#slotLoads = loads;
  }

  /** Slots owned by each shard (a copy), index-aligned with `shards`. */
  slotLoads(): Uint32Array {
    return this.#slotLoads.slice();
  }

  /** Owner shard index of a slot. */
  ownerOfSlot(slot: number): number {
    requireArg(Number.isInteger(slot) && slot >= 0 && slot < this.slotCount, 'slot', `must be an integer in [0, ${this.slotCount})`);
    return this.#owners[slot]!;
  }

  shardIndexOf(hash: number): number {
    return this.#owners[slotOfHash(hash, this.slotCount)]!;
  }

  shardOf(hash: number): string {
    return this.shards[this.#owners[slotOfHash(hash, this.slotCount)]!]!;
  }

  shardForKey(key: string | Uint8Array): string {
    return this.shards[this.#owners[slotOfHash(hash32(key, this.#seed), this.slotCount)]!]!;
  }
}

export function createBounded(shards: readonly string[], options: BoundedLoadOptions = {}): BoundedLoadPlacement {
  return new BoundedLoadPlacement(shards, options);
}

export interface BoundedAssignerOptions {
  /** Slack over the mean load, ε > 0. Default 0.25. */
  readonly epsilon?: number;
  /** Virtual nodes per shard on the ring. Default 1000. */
  readonly vnodes?: number;
  /** Most items tracked at once; `assign` beyond it throws. Default 2^31 - 1. */
  readonly itemsMax?: number;
  /** @deprecated use itemsMax */
  readonly maxItems?: number;
}

/**
 * Load-aware bounded-load consistent hashing for callers that track their items: each `assign`
 * counts one item on the chosen shard; `release` uncounts one. Allocation-free per operation.
 */
export class BoundedLoadAssigner {
  readonly shards: readonly string[];
  readonly epsilon: number;
  readonly itemsMax: number;
  readonly #ring: RingPlacement;
  readonly #loads: Uint32Array;
  #total = 0;

  constructor(shards: readonly string[], given: BoundedAssignerOptions = {}) {
    const options = renamedOptions(given, { itemsMax: 'maxItems' });
    this.shards = checkShards(shards);
    this.epsilon = options.epsilon ?? DEFAULT_EPSILON;
    checkEpsilon(this.epsilon);
    this.itemsMax = options.itemsMax ?? 0x7fffffff;
    requireArg(Number.isInteger(this.itemsMax) && this.itemsMax >= 1 && this.itemsMax <= 0x7fffffff, 'itemsMax', 'must be an integer in [1, 2^31)');
    this.#ring = new RingPlacement(this.shards, { vnodes: options.vnodes ?? DEFAULT_BOUNDED_VNODES });
    this.#loads = new Uint32Array(this.shards.length);
  }

  /** Items currently counted. */
  get total(): number {
    return this.#total;
  }

  /** The capacity the next `assign` will respect. */
  get capacity(): number {
    return boundedCapacity(this.#total + 1, this.shards.length, this.epsilon);
  }

  /** Items counted on a shard. */
  loadOf(shardIndex: number): number {
    requireArg(Number.isInteger(shardIndex) && shardIndex >= 0 && shardIndex < this.shards.length, 'shardIndex', 'out of range');
    return this.#loads[shardIndex]!;
  }

  /** Places one item with this key hash and counts it; returns its shard index. */
  assign(keyHash: number): number {
    requireArg(this.#total < this.itemsMax, 'itemsMax', `at most ${this.itemsMax} items may be assigned at once`);
    const cap = this.capacity;
    const ring = this.#ring;
    const points = ring.pointCount;
    let p = ring.pointIndexOf(keyHash);
    let steps = 0;
    while (this.#loads[ring.ownerOfPoint(p)]! >= cap) {
      p = p + 1 === points ? 0 : p + 1;
      invariant(++steps <= points, 'bounded-load walk finds a shard below capacity within one lap');
    }
    const owner = ring.ownerOfPoint(p);
    this.#loads[owner]!++;
    this.#total++;
    return owner;
  }

  /** Uncounts one item from a shard (the caller's item left). */
  release(shardIndex: number): void {
    requireArg(Number.isInteger(shardIndex) && shardIndex >= 0 && shardIndex < this.shards.length, 'shardIndex', 'out of range');
    requireArg(this.#loads[shardIndex]! > 0, 'shardIndex', 'shard has no assigned items to release');
    this.#loads[shardIndex]!--;
    this.#total--;
  }
}
