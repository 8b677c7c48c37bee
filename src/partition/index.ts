/**
 * Partitioning: the public entry of src/partition. Pure algorithms, no I/O.
 * See docs/partition.md for what each strategy is for and measured numbers.
 */
export { DEFAULT_SLOT_COUNT, SLOT_COUNT_MAX, hash32, mix32, slotOf, slotOfHash } from './hash.js';
export { SHARD_COUNT_MAX, checkShards, type Placement, type PlacementFactory } from './placement.js';
export { JumpPlacement, createJump, jumpHash, type JumpOptions } from './jump.js';
export { RendezvousPlacement, createRendezvous, type RendezvousOptions } from './rendezvous.js';
export { DEFAULT_VNODES, RING_POINTS_MAX, RingPlacement, createRing, type RingOptions } from './ring.js';
export { DEFAULT_MAGLEV_TABLE_SIZE, MAGLEV_TABLE_SIZE_MAX, MaglevPlacement, createMaglev, type MaglevOptions } from './maglev.js';
export {
  BoundedLoadAssigner,
  BoundedLoadPlacement,
  DEFAULT_BOUNDED_VNODES,
  DEFAULT_EPSILON,
  EPSILON_MAX,
  boundedCapacity,
  createBounded,
  type BoundedAssignerOptions,
  type BoundedLoadOptions,
} from './bounded.js';
export { STRATEGY_NAMES, createPlacement, placementFactory, type StrategyName, type StrategyOptions } from './strategies.js';
export { RANGE_BOUNDARIES_MAX, RangePartitioner, createRange, type RangeInfo, type RangeKey, type RangeOptions } from './range.js';
export { ListPartitioner, LIST_VALUES_MAX, createList, type ListOptions, type ListPartitionSpec, type ListValue } from './list.js';
export {
  PartitionMap,
  applyPlan,
  planRebalance,
  slotRepresentativeHash,
  type MapChange,
  type MoveSummary,
  type PartitionMapOptions,
  type RebalancePlan,
  type SlotMove,
} from './map.js';
export {
  REPORT_KEYS_MAX,
  coefficientOfVariationPct,
  hashKeys,
  keysPerShard,
  maxOverMean,
  movedShare,
  partitionReport,
  shardNames,
  type ReportOptions,
  type ReportRow,
} from './quality.js';
