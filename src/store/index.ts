/**
 * The state layer: key-value namespaces and tables on SQLite (embedded default) or PostgreSQL
 * shards, partitioned through src/partition, with group commit and a change feed (transactional
 * outbox). The only public entry of src/store; see docs/store.md.
 */
export { Store, openStore, type StoreOptions, type TableSpec, type SweepOptions, type StoreStats, type StoreDescription } from './store.js';
export { Kv, type KvEntry, type KvPutEntry, type KvPutOptions, type KvScanItem, type KvScanOptions } from './kv.js';
export { Table, type Versioned, type TableWriteOptions, type KeyOf, type Query, type RangeBounds, type Page, type TableOp } from './table.js';
export { DEFAULT_LIMITS, type StoreLimits, type WriteResult, type StoreOp } from './collection.js';
export { ChangeFeed, type ChangeRecord, type Positions, type SubscribeOptions, type Subscription } from './feed.js';
export { GROUP_COMMIT_DEFAULTS, type GroupCommitOptions } from './group-commit.js';
export type { PartitionConfig, PartitionDescription } from './router.js';
export type { TableOptions, ColumnType } from './schema.js';
export {
  createEngines,
  SqliteShard,
  PostgresShard,
  type EngineOptions,
  type SqliteOptions,
  type PostgresOptions,
  type PostgresWriteStats,
  type ShardEngine,
  type Migration,
  type OpOutcome,
} from './engines/index.js';
