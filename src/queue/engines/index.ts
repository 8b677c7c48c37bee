/**
 * Resolves an engine URL to a queue engine (Moleculer-style: the config string picks the family):
 *   file:<dir>             -> the embedded segmented log under <dir> (default file:./data/queue)
 *   nats://host:port[,..]  -> NATS JetStream; `?ns=<name>` picks the namespace (stream/bucket prefix)
 */
import { requireArg } from '../../errors/index.js';
import type { EngineLimits, QueueEngine } from './base.js';
import { JetStreamEngine, type JetStreamOptions } from './jetstream.js';
import { LogEngine, type LogOptions } from './log/index.js';

export type {
  AppendResult,
  CommitEntry,
  EngineLimits,
  GroupStore,
  OutRecord,
  PartitionBounds,
  PartitionReader,
  QueueEngine,
  ReadFrom,
  RecoveryEvent,
  StoredRecord,
  TopicConfig,
  TopicRetention,
} from './base.js';
export { LogEngine, LOG_DEFAULTS, type LogOptions } from './log/index.js';
export { JetStreamEngine, JETSTREAM_DEFAULTS, type JetStreamOptions } from './jetstream.js';

export interface EngineOptions {
  readonly log?: LogOptions;
  readonly jetstream?: JetStreamOptions;
}

export function createEngine(url: string, limits: EngineLimits, options: EngineOptions = {}): QueueEngine {
  requireArg(typeof url === 'string' && url.length > 0, 'engine', 'must be a URL (file:<dir> or nats://host:port)');
  if (url.startsWith('file:')) {
    const dir = url.slice('file:'.length);
    requireArg(dir.length > 0, 'engine', 'file:<dir> needs a directory');
    return new LogEngine(dir, limits, options.log);
  }
  if (url.startsWith('nats://')) {
    const u = new URL(url);
    const ns = u.searchParams.get('ns') ?? options.jetstream?.namespace;
    return new JetStreamEngine(`${u.hostname}:${u.port || '4222'}`, limits, { ...options.jetstream, ...(ns === null || ns === undefined ? {} : { namespace: ns }) });
  }
  requireArg(false, 'engine', `unknown queue engine URL "${url.replace(/\/\/[^@]*@/, '//***@')}" (file:<dir> or nats://host:port)`);
}
