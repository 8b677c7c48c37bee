/**
 * Stream processing: keyed dataflows over queue topics with event-time windows (tumbling,
 * sliding, session), watermarks, allowed lateness and a late side output, keyed state and
 * checkpoints that commit the input offsets, the state and the sink rows in one atomic store
 * request per shard; a job's partitions are spread over the instances running it by the queue's
 * consumer group. The only public entry of src/stream; see docs/stream.md.
 */
export { Job, createJob, JOB_DEFAULTS, type JobOptions, type JobStatus, type PartitionStatus } from './job.js';
export {
  Stream,
  KeyedStream,
  WindowedStream,
  Results,
  aggregators,
  joinAggregator,
  JOIN_PAIRS_MAX,
  type JoinResult,
  type KeyByOptions,
  type KeyValue,
  type Result,
  type SideRecord,
  type Sink,
  type SourceMeta,
  type SourceOptions,
} from './dataflow.js';
export {
  KeyedWindows,
  WatermarkTracker,
  WINDOW_DEFAULTS,
  WINDOW_MS_MAX,
  WINDOWS_PER_RECORD_MAX,
  approxBytes,
  session,
  sliding,
  tumbling,
  windowStarts,
  type AddOutcome,
  type Aggregator,
  type Win,
  type WindowOptions,
  type WindowResult,
  type WindowSpec,
} from './windows.js';
export { KEY_CHARS_MAX } from './task.js';
export { DeadRow, StateRow, META_KEY, type MetaDoc } from './state.js';
