/**
 * Columnar analytics: DuckDB tables kept in step with store tables by the change feed (mirrors),
 * SQL with bound parameters and limits over them, a typed builder, time/key partitions with
 * pruning shown by `explain`, and Parquet archives. The only public entry of src/analytics; see
 * docs/analytics.md.
 */
export { Analytics, openAnalytics, type AnalyticsOptions } from './analytics.js';
export { Mirror, type MirrorOptions, type MirrorLag, type MirrorStats } from './mirror.js';
export type { PartitionBy } from './layout.js';
export { Select, type AggSpec, type CompareOp, type BuiltQuery } from './builder.js';
export { QUERY_DEFAULTS, ROWS_MAX_LIMIT, TIMEOUT_MS_MAX, SQL_CHARS_MAX, type Params, type Scalar, type QueryOptions, type QueryResult, type QueryColumn, type QueryLimits } from './query.js';
export type { Explain, ExplainTable, ExplainScan } from './explain.js';
export type { ArchiveOptions, ArchiveResult } from './archive.js';
