/**
 * Range partitioning: sorted, distinct boundaries cut the key space into contiguous ranges, each
 * owned by a shard. Suits ordered scans (time series, alphabetical keys) that hash placement
 * scatters; the cost is hot ranges, which `split` and `merge` address.
 *
 * With boundaries b0 < b1 < ... < b(k-1) there are k+1 ranges:
 *   range 0 = (-inf, b0), range i = [b(i-1), b(i)), range k = [b(k-1), +inf).
 * Keys are all strings (compared by UTF-16 code unit, i.e. JavaScript's `<`, the same order as
 * sorting code-unit arrays) or all finite numbers; a partitioner never mixes the two.
 *
 * Immutable: `split` and `merge` return a new partitioner with `epoch + 1`, so a reader holding
 * the old one keeps a consistent view and stale writers can be detected by epoch.
 */
import { ppError, requireArg } from '../errors/index.js';

export type RangeKey = string | number;
/** Bound on boundaries per partitioner (lookups are O(log k); the bound caps memory and copies). */
export const RANGE_BOUNDARIES_MAX = 1_000_000;

export interface RangeInfo<K extends RangeKey> {
  readonly index: number;
  /** Inclusive lower bound; undefined = unbounded below. */
  readonly lower: K | undefined;
  /** Exclusive upper bound; undefined = unbounded above. */
  readonly upper: K | undefined;
  readonly shard: string;
}

export interface RangeOptions<K extends RangeKey> {
  /** Strictly increasing split points. May be empty (one range holds everything). */
  readonly boundaries: readonly K[];
  /** Owner of each range: boundaries.length + 1 shard names. */
  readonly shards: readonly string[];
  /** Starting epoch. Default 1. */
  readonly epoch?: number;
}

function kindOf(k: unknown): 'string' | 'number' | undefined {
  if (typeof k === 'string') return 'string';
  if (typeof k === 'number' && Number.isFinite(k)) return 'number';
  return undefined;
}

export class RangePartitioner<K extends RangeKey> {
  readonly boundaries: readonly K[];
  readonly shards: readonly string[];
  readonly epoch: number;
  /** 'string' or 'number'; undefined while there are no boundaries (any key kind is accepted). */
  readonly keyKind: 'string' | 'number' | undefined;

  constructor(options: RangeOptions<K>) {
    const { boundaries, shards } = options;
    requireArg(Array.isArray(boundaries), 'boundaries', 'must be an array');
    requireArg(boundaries.length <= RANGE_BOUNDARIES_MAX, 'boundaries', `at most ${RANGE_BOUNDARIES_MAX} boundaries`);
    requireArg(Array.isArray(shards), 'shards', 'must be an array of shard names');
    if (shards.length === 0) throw ppError('PP_ERR_NO_SHARDS', { field: 'shards', message: 'shards: at least one range owner is required' });
    requireArg(shards.length === boundaries.length + 1, 'shards', `must name one owner per range: ${boundaries.length + 1} expected, got ${shards.length}`);
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i];
      requireArg(typeof s === 'string' && s.length > 0, `shards[${i}]`, 'must be a non-empty string');
    }
    const kind = boundaries.length > 0 ? kindOf(boundaries[0]) : undefined;
    for (let i = 0; i < boundaries.length; i++) {
      const b = boundaries[i];
      requireArg(kindOf(b) !== undefined, `boundaries[${i}]`, 'must be a string or a finite number');
      requireArg(kindOf(b) === kind, `boundaries[${i}]`, `must be a ${kind} like boundaries[0]`);
      if (i > 0) requireArg(boundaries[i - 1]! < b!, `boundaries[${i}]`, 'boundaries must be strictly increasing (sorted and distinct)');
    }
    const epoch = options.epoch ?? 1;
    requireArg(Number.isSafeInteger(epoch) && epoch >= 0, 'epoch', 'must be a safe integer >= 0');
    this.boundaries = Object.freeze(boundaries.slice());
    this.shards = Object.freeze(shards.slice());
    this.epoch = epoch;
    this.keyKind = kind;
  }

  /** Number of ranges (boundaries + 1). */
  get rangeCount(): number {
    return this.shards.length;
  }

  #checkKey(key: K, field: string): void {
    const kind = kindOf(key);
    requireArg(kind !== undefined, field, 'must be a string or a finite number');
    requireArg(this.keyKind === undefined || kind === this.keyKind, field, `must be a ${this.keyKind} (this partitioner's key kind)`);
  }

  /** Index of the range holding `key`: the number of boundaries <= key. O(log k), no allocation. */
  rangeIndexOf(key: K): number {
    this.#checkKey(key, 'key');
    const b = this.boundaries;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Shard owning `key`. */
  shardOf(key: K): string {
    return this.shards[this.rangeIndexOf(key)]!;
  }

  /** Bounds and owner of a range. */
  range(index: number): RangeInfo<K> {
    this.#checkIndex(index, 'rangeIndex', this.rangeCount);
    return {
      index,
      lower: index === 0 ? undefined : this.boundaries[index - 1],
      upper: index === this.boundaries.length ? undefined : this.boundaries[index],
      shard: this.shards[index]!,
    };
  }

  #checkIndex(index: number, field: string, count: number): void {
    requireArg(Number.isInteger(index) && index >= 0 && index < count, field, `must be an integer in [0, ${count})`);
  }

  /**
   * Splits range `rangeIndex` at `atKey` (strictly inside it): the lower part keeps the owner, the
   * upper part [atKey, upper) goes to `shard` (default: the same owner). Returns a new partitioner.
   */
  split(rangeIndex: number, atKey: K, shard?: string): RangePartitioner<K> {
    this.#checkIndex(rangeIndex, 'rangeIndex', this.rangeCount);
    this.#checkKey(atKey, 'atKey');
    const { lower, upper } = this.range(rangeIndex);
    requireArg(
      (lower === undefined || lower < atKey) && (upper === undefined || atKey < upper),
      'atKey',
      `must lie strictly inside range ${rangeIndex} (${String(lower ?? '-inf')} .. ${String(upper ?? '+inf')})`,
    );
    const owner = shard ?? this.shards[rangeIndex]!;
    const boundaries = this.boundaries.slice();
    boundaries.splice(rangeIndex, 0, atKey);
    const shards = this.shards.slice();
    shards.splice(rangeIndex + 1, 0, owner);
    return new RangePartitioner<K>({ boundaries, shards, epoch: this.epoch + 1 });
  }

  /**
   * Merges range `rangeIndex` with its right neighbour (removes boundary `rangeIndex`). The merged
   * range is owned by `shard` (default: the owner of `rangeIndex`). Returns a new partitioner.
   */
  merge(rangeIndex: number, shard?: string): RangePartitioner<K> {
    requireArg(this.rangeCount >= 2, 'rangeIndex', 'a single range has no neighbour to merge with');
    this.#checkIndex(rangeIndex, 'rangeIndex', this.rangeCount - 1);
    const owner = shard ?? this.shards[rangeIndex]!;
    const boundaries = this.boundaries.slice();
    boundaries.splice(rangeIndex, 1);
    const shards = this.shards.slice();
    shards.splice(rangeIndex, 2, owner);
    return new RangePartitioner<K>({ boundaries, shards, epoch: this.epoch + 1 });
  }

  /** Reassigns one range to another shard (e.g. to move a hot range). */
  reassign(rangeIndex: number, shard: string): RangePartitioner<K> {
    this.#checkIndex(rangeIndex, 'rangeIndex', this.rangeCount);
    const shards = this.shards.slice();
    shards[rangeIndex] = shard;
    return new RangePartitioner<K>({ boundaries: this.boundaries, shards, epoch: this.epoch + 1 });
  }
}

/**
 * Builds a range partitioner, typed by key kind (`new RangePartitioner(...)` would infer literal
 * types from the boundaries; name the kind there: `new RangePartitioner<string>(...)`).
 */
export function createRange(options: RangeOptions<string>): RangePartitioner<string>;
export function createRange(options: RangeOptions<number>): RangePartitioner<number>;
export function createRange<K extends RangeKey>(options: RangeOptions<K>): RangePartitioner<K> {
  return new RangePartitioner<K>(options);
}
