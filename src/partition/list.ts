/**
 * List partitioning: an explicit value -> partition table for a column with few, known values
 * (region, tenant tier, country). Each partition lives on a shard. A value in no list goes to the
 * default partition if there is one, otherwise lookup fails with PP_ERR_PARTITION_UNMAPPED, so a
 * row never lands somewhere nobody decided.
 *
 * Values are strings or finite numbers and match by identity (SameValueZero), so 1 and "1" are
 * different values. A value may appear in only one partition.
 */
import { ppError, requireArg } from '../errors/index.js';

export type ListValue = string | number;
/** Bound on mapped values (the table is a Map held in memory). */
export const LIST_VALUES_MAX = 1_000_000;

export interface ListPartitionSpec {
  readonly name: string;
  readonly shard: string;
  readonly values: readonly ListValue[];
}

export interface ListOptions {
  readonly partitions: readonly ListPartitionSpec[];
  /** Where unlisted values go; omitted: they are rejected. */
  readonly defaultPartition?: { readonly name: string; readonly shard: string };
  /** Column name, used in error messages. Default "value". */
  readonly column?: string;
}

export class ListPartitioner {
  readonly column: string;
  /** Partition names; index = partition index. The default partition, if any, is last. */
  readonly partitionNames: readonly string[];
  /** Shard of each partition, index-aligned with partitionNames. */
  readonly partitionShards: readonly string[];
  readonly hasDefault: boolean;
  readonly #indexOfValue: Map<ListValue, number>;

  constructor(options: ListOptions) {
    requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object');
    const { partitions, defaultPartition } = options;
    this.column = options.column ?? 'value';
    requireArg(Array.isArray(partitions), 'partitions', 'must be an array');
    if (partitions.length === 0 && defaultPartition === undefined) {
      throw ppError('PP_ERR_NO_SHARDS', { field: 'partitions', message: 'partitions: at least one partition (or a default) is required' });
    }
    const names: string[] = [];
    const shards: string[] = [];
    const seenNames = new Set<string>();
    const index = new Map<ListValue, number>();
    const addPartition = (name: unknown, shard: unknown, field: string): void => {
      requireArg(typeof name === 'string' && name.length > 0, `${field}.name`, 'must be a non-empty string');
      requireArg(!seenNames.has(name), `${field}.name`, `duplicate partition name "${name}"`);
      requireArg(typeof shard === 'string' && shard.length > 0, `${field}.shard`, 'must be a non-empty string');
      seenNames.add(name);
      names.push(name);
      shards.push(shard);
    };
    for (let p = 0; p < partitions.length; p++) {
      const spec = partitions[p]!;
      const field = `partitions[${p}]`;
      requireArg(typeof spec === 'object' && spec !== null, field, 'must be an object');
      addPartition(spec.name, spec.shard, field);
      requireArg(Array.isArray(spec.values) && spec.values.length > 0, `${field}.values`, 'must be a non-empty array');
      for (let v = 0; v < spec.values.length; v++) {
        const value = spec.values[v];
        const vf = `${field}.values[${v}]`;
        requireArg(typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value)), vf, 'must be a string or a finite number');
        const other = index.get(value);
        requireArg(other === undefined, vf, `value ${JSON.stringify(value)} is already in partition "${names[other ?? 0]}"`);
        requireArg(index.size < LIST_VALUES_MAX, vf, `at most ${LIST_VALUES_MAX} values`);
        index.set(value, p);
      }
    }
    if (defaultPartition !== undefined) addPartition(defaultPartition.name, defaultPartition.shard, 'defaultPartition');
    this.hasDefault = defaultPartition !== undefined;
    this.partitionNames = Object.freeze(names);
    this.partitionShards = Object.freeze(shards);
    this.#indexOfValue = index;
  }

  /** Partition index for a value; the default's if unlisted; PP_ERR_PARTITION_UNMAPPED if none. */
  partitionIndexOf(value: ListValue): number {
    const i = this.#indexOfValue.get(value);
    if (i !== undefined) return i;
    if (this.hasDefault) return this.partitionNames.length - 1;
    throw ppError('PP_ERR_PARTITION_UNMAPPED', {
      field: this.column,
      message: `${this.column}: no partition holds ${JSON.stringify(value)} and there is no default partition`,
    });
  }

  partitionOf(value: ListValue): string {
    return this.partitionNames[this.partitionIndexOf(value)]!;
  }

  shardOf(value: ListValue): string {
    return this.partitionShards[this.partitionIndexOf(value)]!;
  }
}

export function createList(options: ListOptions): ListPartitioner {
  return new ListPartitioner(options);
}
