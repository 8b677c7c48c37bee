/**
 * Versioned partition map: a fixed slot space (DEFAULT_SLOT_COUNT slots) with an owner shard per
 * slot, and an epoch. Keys map to slots by hash (`slotOf`), slots to shards through this table;
 * moving data between shards is then a matter of moving whole slots, listed by a rebalancing plan.
 *
 * Immutable by design: every change returns a NEW map with `epoch + 1` and leaves the old one
 * intact, so a router can keep serving from the old map while the plan's slots migrate, and a
 * request stamped with an old epoch is detectable (PP_ERR_STALE_EPOCH) rather than silently routed.
 *
 * Storage: a Uint16Array of shard indices (2 bytes a slot: 32 KB for 16384 slots) plus the shard
 * names; a lookup is hash -> slot -> index -> name with no allocation.
 */
import { ppError, requireArg, invariant } from '../errors/index.js';
import { assertSlotCount, DEFAULT_SLOT_COUNT, hash32, slotOfHash } from './hash.js';
import { checkShards, type Placement, type PlacementFactory } from './placement.js';

export interface SlotMove {
  readonly slot: number;
  readonly from: string;
  readonly to: string;
}

export interface MoveSummary {
  readonly from: string;
  readonly to: string;
  readonly slots: number;
}

/** What changes between two maps: exactly the slots whose owner differs. */
export interface RebalancePlan {
  readonly fromEpoch: number;
  readonly toEpoch: number;
  readonly slotCount: number;
  readonly fromShards: readonly string[];
  readonly toShards: readonly string[];
  /** Slots whose owner changed, in slot order. */
  readonly moves: readonly SlotMove[];
  /** Moves grouped by (from, to), largest first (ties by names). */
  readonly summary: readonly MoveSummary[];
  /** moves.length / slotCount. */
  readonly movedFraction: number;
}

/** A map and the plan that leads to it from the previous one. */
export interface MapChange {
  readonly map: PartitionMap;
  readonly plan: RebalancePlan;
}

export interface PartitionMapOptions {
  /** Slot space size. Default DEFAULT_SLOT_COUNT. */
  readonly slotCount?: number;
  /** Starting epoch. Default 1. */
  readonly epoch?: number;
}

function checkEpoch(epoch: number): void {
  requireArg(Number.isSafeInteger(epoch) && epoch >= 0, 'epoch', 'must be a safe integer >= 0');
}

/** A map is itself a Placement (hash -> slot -> owner), so it can stand wherever one is expected. */
export class PartitionMap implements Placement {
  readonly name = 'map';
  readonly epoch: number;
  readonly slotCount: number;
  readonly shards: readonly string[];
  readonly #owners: Uint16Array;

  /** Use `PartitionMap.fromPlacement` or `PartitionMap.fromOwners`. */
  private constructor(shards: readonly string[], owners: Uint16Array, epoch: number) {
    this.shards = shards;
    this.#owners = owners;
    this.slotCount = owners.length;
    this.epoch = epoch;
  }

  /**
   * Builds a map by asking `placement` for the owner of each slot. A slot's representative hash is
   * its lowest hash (`slot · 2^32 / slotCount`, rounded up), i.e. the hash range `slotOfHash` maps
   * to that slot: so for strategies that read hash bits the map mirrors the placement's own layout.
   */
  static fromPlacement(placement: Placement, options: PartitionMapOptions = {}): PartitionMap {
    const slotCount = options.slotCount ?? DEFAULT_SLOT_COUNT;
    assertSlotCount(slotCount);
    const epoch = options.epoch ?? 1;
    checkEpoch(epoch);
    const shards = checkShards(placement.shards, 'placement.shards');
    const owners = new Uint16Array(slotCount);
    for (let slot = 0; slot < slotCount; slot++) {
      const h = slotRepresentativeHash(slot, slotCount);
      const i = placement.shardIndexOf(h);
      invariant(Number.isInteger(i) && i >= 0 && i < shards.length, 'placement returns a shard index in range');
      owners[slot] = i;
    }
    return new PartitionMap(shards, owners, epoch);
  }

  /** Builds a map from explicit owners (shard indices, one per slot), e.g. loaded from storage. */
  static fromOwners(shards: readonly string[], owners: ArrayLike<number>, options: { epoch?: number } = {}): PartitionMap {
    const names = checkShards(shards);
    requireArg(owners !== null && typeof owners === 'object' && typeof owners.length === 'number', 'owners', 'must be an array of shard indices');
    assertSlotCount(owners.length);
    const epoch = options.epoch ?? 1;
    checkEpoch(epoch);
    const table = new Uint16Array(owners.length);
    for (let i = 0; i < owners.length; i++) {
      const o = owners[i]!;
      requireArg(Number.isInteger(o) && o >= 0 && o < names.length, `owners[${i}]`, `must be a shard index in [0, ${names.length})`);
      table[i] = o;
    }
    return new PartitionMap(names, table, epoch);
  }

  /** Owner shard index of a slot. */
  ownerIndexOf(slot: number): number {
    requireArg(Number.isInteger(slot) && slot >= 0 && slot < this.slotCount, 'slot', `must be an integer in [0, ${this.slotCount})`);
    return this.#owners[slot]!;
  }

  /** Owner shard name of a slot. */
  ownerOf(slot: number): string {
    return this.shards[this.ownerIndexOf(slot)]!;
  }

  /** Owner shard index for a key hash (hash -> slot -> owner). Allocation-free. */
  shardIndexOf(hash: number): number {
    return this.#owners[slotOfHash(hash, this.slotCount)]!;
  }

  /** Shard for a key hash (hash -> slot -> owner). Allocation-free. */
  shardOf(hash: number): string {
    return this.shards[this.#owners[slotOfHash(hash, this.slotCount)]!]!;
  }

  /** Shard for a key. Allocation-free. */
  shardForKey(key: string | Uint8Array): string {
    return this.shards[this.#owners[slotOfHash(hash32(key), this.slotCount)]!]!;
  }

  /** A copy of the owner table (shard index per slot). */
  owners(): Uint16Array {
    return this.#owners.slice();
  }

  /** Slots owned per shard, index-aligned with `shards`. */
  slotCounts(): Uint32Array {
    const counts = new Uint32Array(this.shards.length);
    for (let s = 0; s < this.slotCount; s++) counts[this.#owners[s]!]!++;
    return counts;
  }

  /** Fails with PP_ERR_STALE_EPOCH unless `epoch` is this map's epoch. */
  assertEpoch(epoch: number): void {
    if (epoch !== this.epoch) {
      throw ppError('PP_ERR_STALE_EPOCH', { field: 'epoch', message: `epoch ${epoch} does not match the partition map's epoch ${this.epoch}`, data: { expected: this.epoch, got: epoch } });
    }
  }

  /** A new map (epoch + 1) whose owners come from `placement`. Same slot count. */
  withPlacement(placement: Placement): MapChange {
    const next = PartitionMap.fromPlacement(placement, { slotCount: this.slotCount, epoch: this.epoch + 1 });
    return { map: next, plan: planRebalance(this, next) };
  }

  /**
   * Adds a shard: `factory` builds the strategy over the new list (this map's shards + `shard`
   * appended), and the plan lists the slots that change owner. PP_ERR_DUPLICATE_SHARD if present.
   */
  addShard(shard: string, factory: PlacementFactory): MapChange {
    requireArg(typeof shard === 'string' && shard.length > 0, 'shard', 'must be a non-empty string');
    if (this.shards.includes(shard)) throw ppError('PP_ERR_DUPLICATE_SHARD', { field: 'shard', message: `shard: "${shard}" is already in the map` });
    return this.withPlacement(factory([...this.shards, shard]));
  }

  /**
   * Removes a shard: PP_ERR_UNKNOWN_SHARD if absent, PP_ERR_NO_SHARDS if it is the last one.
   */
  removeShard(shard: string, factory: PlacementFactory): MapChange {
    const i = this.#indexOfShard(shard);
    if (this.shards.length === 1) throw ppError('PP_ERR_NO_SHARDS', { field: 'shard', message: `shard: removing "${shard}" would leave no shards` });
    return this.withPlacement(factory(this.shards.filter((_, k) => k !== i)));
  }

  /**
   * Adds a shard by moving the fewest slots for perfect slot balance: the new shard takes slots
   * only from shards above the new target ⌈S/(N+1)⌉/⌊S/(N+1)⌋, so exactly max(0, ...) — in
   * practice ≈ S/(N+1) — slots move, all to the new shard. Independent of any placement: this is
   * the slot-table rebalancing Redis Cluster-style systems do.
   */
  addShardBalanced(shard: string): MapChange {
    requireArg(typeof shard === 'string' && shard.length > 0, 'shard', 'must be a non-empty string');
    if (this.shards.includes(shard)) throw ppError('PP_ERR_DUPLICATE_SHARD', { field: 'shard', message: `shard: "${shard}" is already in the map` });
    const shards = checkShards([...this.shards, shard]);
    const n = shards.length;
    const target = balancedTargets(this.slotCount, n);
    const counts = new Uint32Array(n);
    counts.set(this.slotCounts());
    const owners = this.#owners.slice();
    const newIndex = n - 1;
    // Walk slots from the top down; take a slot while its owner is above its target and the new
    // shard is below its own. Deterministic; touches each slot at most once.
    for (let s = this.slotCount - 1; s >= 0 && counts[newIndex]! < target[newIndex]!; s--) {
      const o = owners[s]!;
      if (counts[o]! > target[o]!) {
        owners[s] = newIndex;
        counts[o]!--;
        counts[newIndex]!++;
      }
    }
    const next = new PartitionMap(shards, owners, this.epoch + 1);
    return { map: next, plan: planRebalance(this, next) };
  }

  /**
   * Removes a shard moving only its slots, each to the currently least loaded remaining shard
   * (ties to the lower index), which keeps slot counts within one of each other if they were.
   */
  removeShardBalanced(shard: string): MapChange {
    const gone = this.#indexOfShard(shard);
    if (this.shards.length === 1) throw ppError('PP_ERR_NO_SHARDS', { field: 'shard', message: `shard: removing "${shard}" would leave no shards` });
    const shards = checkShards(this.shards.filter((_, k) => k !== gone));
    const n = shards.length;
    // Old index -> new index (indices after `gone` shift down by one).
    const remap = (i: number): number => (i < gone ? i : i - 1);
    const counts = new Uint32Array(n);
    const owners = new Uint16Array(this.slotCount);
    for (let s = 0; s < this.slotCount; s++) {
      const o = this.#owners[s]!;
      if (o !== gone) counts[remap(o)]!++;
    }
    for (let s = 0; s < this.slotCount; s++) {
      const o = this.#owners[s]!;
      if (o !== gone) {
        owners[s] = remap(o);
        continue;
      }
      let best = 0;
      for (let k = 1; k < n; k++) if (counts[k]! < counts[best]!) best = k;
      owners[s] = best;
      counts[best]!++;
    }
    const next = new PartitionMap(shards, owners, this.epoch + 1);
    return { map: next, plan: planRebalance(this, next) };
  }

  #indexOfShard(shard: string): number {
    requireArg(typeof shard === 'string' && shard.length > 0, 'shard', 'must be a non-empty string');
    const i = this.shards.indexOf(shard);
    if (i < 0) throw ppError('PP_ERR_UNKNOWN_SHARD', { field: 'shard', message: `shard: "${shard}" is not in the map` });
    return i;
  }
}

/** Lowest uint32 hash that `slotOfHash(h, slotCount)` maps to `slot`. */
export function slotRepresentativeHash(slot: number, slotCount: number): number {
  // ceil(slot * 2^32 / slotCount). slot * 2^32 is exact (a power-of-two multiple) but the division
  // rounds, so nudge by one where rounding crossed an integer; at most one step each way.
  let h = Math.ceil((slot * 4294967296) / slotCount);
  if (slotOfHash(h, slotCount) < slot) h++;
  if (h > 0 && slotOfHash(h - 1, slotCount) === slot) h--;
  invariant(slotOfHash(h, slotCount) === slot, 'representative hash maps back to its slot');
  return h;
}

/** Per-shard slot targets for perfect balance: the first S mod N shards get one extra. */
function balancedTargets(slotCount: number, n: number): Uint32Array {
  const t = new Uint32Array(n);
  const base = Math.floor(slotCount / n);
  const extra = slotCount % n;
  for (let i = 0; i < n; i++) t[i] = base + (i < extra ? 1 : 0);
  return t;
}

/**
 * The plan from `from` to `to`: exactly the slots whose owner NAME differs (indices may shift when
 * a shard is removed, names do not). Requires equal slot counts and `to.epoch > from.epoch`.
 */
export function planRebalance(from: PartitionMap, to: PartitionMap): RebalancePlan {
  requireArg(from.slotCount === to.slotCount, 'to.slotCount', `must equal from.slotCount (${from.slotCount})`);
  requireArg(to.epoch > from.epoch, 'to.epoch', `must be greater than from.epoch (${from.epoch})`);
  const fromOwners = from.owners();
  const toOwners = to.owners();
  const moves: SlotMove[] = [];
  const bucket = new Map<string, { from: string; to: string; slots: number }>();
  for (let s = 0; s < from.slotCount; s++) {
    const a = from.shards[fromOwners[s]!]!;
    const b = to.shards[toOwners[s]!]!;
    if (a === b) continue;
    moves.push({ slot: s, from: a, to: b });
    const k = JSON.stringify([a, b]);
    const entry = bucket.get(k);
    if (entry === undefined) bucket.set(k, { from: a, to: b, slots: 1 });
    else entry.slots++;
  }
  const summary = [...bucket.values()].sort(
    (x, y) => y.slots - x.slots || (x.from < y.from ? -1 : x.from > y.from ? 1 : x.to < y.to ? -1 : x.to > y.to ? 1 : 0),
  );
  return Object.freeze({
    fromEpoch: from.epoch,
    toEpoch: to.epoch,
    slotCount: from.slotCount,
    fromShards: from.shards,
    toShards: to.shards,
    moves: Object.freeze(moves),
    summary: Object.freeze(summary),
    movedFraction: moves.length / from.slotCount,
  });
}

/**
 * Applies a plan to the map it was made from and returns the target map (epoch = plan.toEpoch).
 * PP_ERR_STALE_EPOCH if `map.epoch !== plan.fromEpoch`; PP_ERR_INVALID_ARGUMENT if a move's
 * `from` does not own its slot (the plan is not for this map) or names an unknown shard.
 */
export function applyPlan(map: PartitionMap, plan: RebalancePlan): PartitionMap {
  map.assertEpoch(plan.fromEpoch);
  requireArg(plan.slotCount === map.slotCount, 'plan.slotCount', `must equal the map's slot count (${map.slotCount})`);
  const toShards = checkShards(plan.toShards, 'plan.toShards');
  const index = new Map<string, number>();
  toShards.forEach((s, i) => index.set(s, i));
  const owners = new Array<number>(map.slotCount);
  for (let s = 0; s < map.slotCount; s++) {
    const name = map.ownerOf(s);
    const i = index.get(name);
    owners[s] = i ?? -1; // -1: the owner left; a move must cover this slot
  }
  for (let m = 0; m < plan.moves.length; m++) {
    const mv = plan.moves[m]!;
    const field = `plan.moves[${m}]`;
    requireArg(Number.isInteger(mv.slot) && mv.slot >= 0 && mv.slot < map.slotCount, `${field}.slot`, 'out of range');
    requireArg(map.ownerOf(mv.slot) === mv.from, `${field}.from`, `slot ${mv.slot} is owned by "${map.ownerOf(mv.slot)}", not "${mv.from}"`);
    const to = index.get(mv.to);
    requireArg(to !== undefined, `${field}.to`, `"${mv.to}" is not in plan.toShards`);
    owners[mv.slot] = to;
  }
  for (let s = 0; s < owners.length; s++) {
    requireArg(owners[s]! >= 0, 'plan.moves', `slot ${s} is owned by a removed shard and no move covers it`);
  }
  return PartitionMap.fromOwners(toShards, owners, { epoch: plan.toEpoch });
}
