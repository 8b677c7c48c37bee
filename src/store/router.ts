/**
 * Which shard holds a row: the partition key through src/partition.
 *
 *  - hash (default): a versioned slot map (`PartitionMap`, 16384 slots, epoch) built from a
 *    placement strategy (jump by default) over the shard names; key -> xxHash32 -> slot -> shard.
 *    The slot map is what a future rebalancer moves (the plan moves slots, not keys).
 *  - range: sorted boundaries on a single partition-key column (`RangePartitioner`).
 *  - list: explicit value -> shard lists on a single partition-key column (`ListPartitioner`).
 *
 * A request that carries the whole partition key goes to one shard; anything else fans out.
 */
import { ppError, requireArg } from '../errors/index.js';
import {
  PartitionMap,
  createList,
  createPlacement,
  type ListOptions,
  type ListPartitioner,
  RangePartitioner,
  type StrategyName,
} from '../partition/index.js';
import type { SqlValue, TableDef } from './schema.js';

export type PartitionConfig =
  | { readonly kind: 'hash'; readonly strategy?: StrategyName; readonly slotCount?: number }
  | { readonly kind: 'range'; readonly boundaries: readonly (string | number)[]; readonly shards: readonly string[] }
  | ({ readonly kind: 'list' } & ListOptions);

/** A router's placement as status tools show it. */
export type PartitionDescription =
  | { readonly kind: 'hash'; readonly epoch: number; readonly slotCount: number; readonly owned: Readonly<Record<string, number>> }
  | { readonly kind: 'range' | 'list'; readonly shards: readonly string[] };

export class Router {
  readonly shards: readonly string[];
  readonly #index: ReadonlyMap<string, number>;
  readonly #map: PartitionMap | undefined;
  readonly #range: RangePartitioner<string | number> | undefined;
  readonly #list: ListPartitioner | undefined;

  constructor(shards: readonly string[], config: PartitionConfig, def: TableDef) {
    this.shards = shards;
    this.#index = new Map(shards.map((s, i) => [s, i]));
    const known = (s: string, field: string): void => {
      if (!this.#index.has(s)) throw ppError('PP_ERR_UNKNOWN_SHARD', { field, message: `${field}: unknown shard "${s}" (shards: ${shards.join(', ')})` });
    };
    switch (config.kind) {
      case 'hash':
        this.#map = PartitionMap.fromPlacement(createPlacement(config.strategy ?? 'jump', shards), config.slotCount === undefined ? {} : { slotCount: config.slotCount });
        break;
      case 'range':
        requireArg(def.partitionKey.length === 1, 'partitionKey', 'range partitioning needs a single partition-key column');
        this.#range = new RangePartitioner<string | number>({ boundaries: config.boundaries, shards: config.shards });
        config.shards.forEach((s, i) => known(s, `partitioning.shards[${i}]`));
        break;
      case 'list':
        requireArg(def.partitionKey.length === 1, 'partitionKey', 'list partitioning needs a single partition-key column');
        this.#list = createList({ ...config, column: config.column ?? def.partitionKey[0]! });
        this.#list.partitionShards.forEach((s, i) => known(s, `partitioning.partitions[${i}].shard`));
        break;
      default:
        requireArg(false, 'partitioning.kind', 'must be hash, range or list');
    }
  }

  /** What the router does, for status pages: the kind, and how many slots / ranges / values each shard owns. */
  describe(): PartitionDescription {
    if (this.#map !== undefined) {
      const owned: Record<string, number> = Object.fromEntries(this.shards.map((s) => [s, 0]));
      for (let slot = 0; slot < this.#map.slotCount; slot++) owned[this.#map.ownerOf(slot)]! += 1;
      return { kind: 'hash', epoch: this.#map.epoch, slotCount: this.#map.slotCount, owned };
    }
    return { kind: this.#range !== undefined ? 'range' : 'list', shards: [...new Set(this.#range !== undefined ? this.#range.shards : this.#list!.partitionShards)] };
  }

  /** Shard index for partition-key values (in `partitionKey` order). */
  shardIndexOf(values: readonly SqlValue[]): number {
    if (this.#map !== undefined) return this.#index.get(this.#map.shardForKey(hashKey(values)))!;
    const v = values[0];
    if (typeof v !== 'string' && typeof v !== 'number') {
      throw ppError('PP_ERR_VALIDATION', { message: 'range/list partition keys are strings or numbers' });
    }
    const name = this.#range !== undefined ? this.#range.shardOf(v) : this.#list!.shardOf(v);
    return this.#index.get(name)!;
  }
}

/**
 * The bytes hashed for a partition key. One string column (kv keys, ids) is hashed as is, without
 * building anything; numbers as their decimal text; several columns joined by NUL (strings never
 * contain NUL, so the join is unambiguous).
 */
export function hashKey(values: readonly SqlValue[]): string | Uint8Array {
  if (values.length === 1) {
    const v = values[0]!;
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    if (v !== null) return v;
  }
  let s = '';
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (i > 0) s += '\0';
    s += Buffer.isBuffer(v) ? v.toString('hex') : String(v);
  }
  return s;
}
