/**
 * The contract every key -> shard placement strategy meets, and the shard-list checks they share.
 *
 * A placement maps a 32-bit key hash (from `hash32`) to one shard of a fixed, named list. It is
 * immutable: a different shard list is a different placement (`create...(newShards)`), which is
 * what lets `PartitionMap` diff two of them into a rebalancing plan.
 */
import { ppError, requireArg } from '../errors/index.js';

/**
 * Upper bound on shards in one placement: shard indices are stored in Uint16Array tables
 * (partition maps, ring owners, Maglev lookup tables), so 65535 is the most they can name.
 */
export const SHARD_COUNT_MAX = 65535;

export interface Placement {
  /** The strategy's name, e.g. "jump" or "maglev". */
  readonly name: string;
  /** Shard names, index-aligned with `shardIndexOf`. Frozen. */
  readonly shards: readonly string[];
  /**
   * Index into `shards` for a key hash. `hash` is read as a uint32 (`hash >>> 0`); pass the
   * output of `hash32`. Allocation-free on every strategy.
   */
  shardIndexOf(hash: number): number;
  /** `shards[shardIndexOf(hash)]`. */
  shardOf(hash: number): string;
  /** Convenience: `shardOf(hash32(key))`. */
  shardForKey(key: string | Uint8Array): string;
}

/** Builds a placement of one strategy over a shard list; used to derive the next placement. */
export type PlacementFactory = (shards: readonly string[]) => Placement;

/**
 * Validates a shard list and returns a frozen copy: non-empty (PP_ERR_NO_SHARDS), at most
 * SHARD_COUNT_MAX, each a non-empty string, no duplicates (PP_ERR_DUPLICATE_SHARD).
 */
export function checkShards(shards: readonly string[], field = 'shards'): readonly string[] {
  requireArg(Array.isArray(shards), field, 'must be an array of shard names');
  if (shards.length === 0) throw ppError('PP_ERR_NO_SHARDS', { field, message: `${field}: at least one shard is required` });
  requireArg(shards.length <= SHARD_COUNT_MAX, field, `at most ${SHARD_COUNT_MAX} shards`);
  const seen = new Set<string>();
  for (let i = 0; i < shards.length; i++) {
    const s = shards[i];
    requireArg(typeof s === 'string' && s.length > 0, `${field}[${i}]`, 'must be a non-empty string');
    if (seen.has(s)) {
      throw ppError('PP_ERR_DUPLICATE_SHARD', { field: `${field}[${i}]`, message: `${field}[${i}]: duplicate shard "${s}"` });
    }
    seen.add(s);
  }
  return Object.freeze(shards.slice());
}
