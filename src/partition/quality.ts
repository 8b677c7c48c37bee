/**
 * Quality measures of a placement over a set of keys: balance (keys per shard, coefficient of
 * variation, max/mean) and movement (share of keys that change shard when one shard is added,
 * against the ideal 1/(N+1)). Pure functions over precomputed key hashes; used by
 * bench/partition.ts and by the CLI's `simulate` command, which prints the rows through util's
 * `formatTable`.
 */
import { requireArg } from '../errors/index.js';
import { hash32 } from './hash.js';
import type { Placement } from './placement.js';
import { createPlacement, STRATEGY_NAMES, type StrategyName, type StrategyOptions } from './strategies.js';

/** Bound on keys a report hashes (memory: 4 bytes a key for the hash array). */
export const REPORT_KEYS_MAX = 50_000_000;

/** Hashes keys into a Uint32Array once, so every strategy is measured on the same hashes. */
export function hashKeys(keys: readonly (string | Uint8Array)[], seed = 0): Uint32Array {
  requireArg(Array.isArray(keys), 'keys', 'must be an array');
  requireArg(keys.length <= REPORT_KEYS_MAX, 'keys', `at most ${REPORT_KEYS_MAX} keys`);
  const out = new Uint32Array(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = hash32(keys[i]!, seed);
  return out;
}

/** Keys per shard, index-aligned with `placement.shards`. */
export function keysPerShard(placement: Placement, hashes: Uint32Array): Uint32Array {
  const counts = new Uint32Array(placement.shards.length);
  for (let i = 0; i < hashes.length; i++) counts[placement.shardIndexOf(hashes[i]!)]!++;
  return counts;
}

/** Coefficient of variation of counts (population standard deviation / mean), in percent. */
export function coefficientOfVariationPct(counts: ArrayLike<number>): number {
  requireArg(counts.length > 0, 'counts', 'must not be empty');
  let sum = 0;
  for (let i = 0; i < counts.length; i++) sum += counts[i]!;
  const mean = sum / counts.length;
  if (mean === 0) return 0;
  let sq = 0;
  for (let i = 0; i < counts.length; i++) sq += (counts[i]! - mean) ** 2;
  return (Math.sqrt(sq / counts.length) / mean) * 100;
}

/** Largest count over the mean count (1 = perfect balance). */
export function maxOverMean(counts: ArrayLike<number>): number {
  requireArg(counts.length > 0, 'counts', 'must not be empty');
  let sum = 0;
  let max = 0;
  for (let i = 0; i < counts.length; i++) {
    sum += counts[i]!;
    if (counts[i]! > max) max = counts[i]!;
  }
  return sum === 0 ? 1 : max / (sum / counts.length);
}

/** Share of keys whose shard NAME differs between two placements (0..1). */
export function movedShare(before: Placement, after: Placement, hashes: Uint32Array): number {
  if (hashes.length === 0) return 0;
  let moved = 0;
  for (let i = 0; i < hashes.length; i++) {
    const h = hashes[i]!;
    if (before.shards[before.shardIndexOf(h)] !== after.shards[after.shardIndexOf(h)]) moved++;
  }
  return moved / hashes.length;
}

export interface ReportRow {
  readonly strategy: StrategyName;
  readonly shards: number;
  readonly keys: number;
  /** Coefficient of variation of keys per shard, percent. */
  readonly cvPct: number;
  readonly maxOverMean: number;
  /** Share of keys that move when shard N+1 is appended. */
  readonly movedShare: number;
  /** movedShare / (1/(N+1)); 1 = the minimum possible. */
  readonly movedOverIdeal: number;
}

export interface ReportOptions {
  /** Keys to place; or pass `hashes` directly. */
  readonly keys?: readonly (string | Uint8Array)[];
  /** Precomputed hash32 of the keys (takes precedence over `keys`). */
  readonly hashes?: Uint32Array;
  /** Shard counts to measure. Default [10, 100]. */
  readonly shardCounts?: readonly number[];
  /** Strategies to measure. Default all. */
  readonly strategies?: readonly StrategyName[];
  /** Per-strategy options (vnodes, table size, epsilon ...). */
  readonly options?: StrategyOptions;
  /** Shard names: `${prefix}${i}`. Default "shard-". */
  readonly shardPrefix?: string;
}

/** Shard names `${prefix}0 .. ${prefix}(n-1)`. */
export function shardNames(n: number, prefix = 'shard-'): string[] {
  requireArg(Number.isInteger(n) && n >= 1 && n <= 65535, 'shardCount', 'must be an integer in [1, 65535]');
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

/**
 * Measures each strategy at each shard count on the same keys. Cost: one pass over the keys per
 * (strategy, shard count) for balance and two for movement; rendezvous is O(N) per key, so at
 * 100 shards it dominates (see docs/partition.md for the measured time).
 */
export function partitionReport(options: ReportOptions): ReportRow[] {
  const hashes = options.hashes ?? hashKeys(options.keys ?? []);
  requireArg(hashes.length > 0, 'keys', 'must not be empty');
  const shardCounts = options.shardCounts ?? [10, 100];
  const strategies = options.strategies ?? STRATEGY_NAMES;
  for (let i = 0; i < strategies.length; i++) {
    requireArg(STRATEGY_NAMES.includes(strategies[i]!), `strategies[${i}]`, `must be one of ${STRATEGY_NAMES.join(', ')}`);
  }
  const prefix = options.shardPrefix ?? 'shard-';
  const rows: ReportRow[] = [];
  for (const n of shardCounts) {
    const names = shardNames(n, prefix);
    const grown = [...names, `${prefix}${n}`];
    for (const strategy of strategies) {
      const before = createPlacement(strategy, names, options.options);
      const after = createPlacement(strategy, grown, options.options);
      // One pass for both balance and movement (the report's cost is dominated by lookups).
      const counts = new Uint32Array(n);
      let movedKeys = 0;
      for (let i = 0; i < hashes.length; i++) {
        const h = hashes[i]!;
        const b = before.shardIndexOf(h);
        counts[b]!++;
        if (names[b] !== after.shards[after.shardIndexOf(h)]) movedKeys++;
      }
      const moved = movedKeys / hashes.length;
      rows.push({
        strategy,
        shards: n,
        keys: hashes.length,
        cvPct: coefficientOfVariationPct(counts),
        maxOverMean: maxOverMean(counts),
        movedShare: moved,
        movedOverIdeal: moved * (n + 1),
      });
    }
  }
  return rows;
}
