/**
 * The message queue: durable partitioned topics, consumer groups with per-key ordering, acks,
 * redelivery with backoff, dead letters, delays, dedup by id, retention and replay — on the
 * embedded segmented log (`file:<dir>`, default) or NATS JetStream (`nats://…`). The only public
 * entry of src/queue; see docs/queue.md.
 */
export {
  Queue,
  openQueue,
  DEFAULT_QUEUE_LIMITS,
  DEAD_LETTER_HEADERS,
  READ_STALL_MS,
  type QueueOptions,
  type QueueInstruments,
  type QueueLimits,
  type TopicOptions,
  type PublishOptions,
  type PublishResult,
  type QueueMessage,
} from './queue.js';
export { DISPATCH_SLICE_MS, SUBSCRIBE_DEFAULTS, type Backoff, type DeadLettered, type Delivery, type LeaseLapse, type SubscribeOptions, type Subscription, type SubscriptionStats } from './consumer/index.js';
export { createOutbox, type Outbox, type OutboxOptions, type OutboxRoute, type OutboxMessage } from './outbox.js';
export {
  createEngine,
  LogEngine,
  LOG_DEFAULTS,
  JetStreamEngine,
  JETSTREAM_DEFAULTS,
  type EngineOptions,
  type LogOptions,
  type JetStreamOptions,
  type QueueEngine,
  type ReadFrom,
  type RecoveryEvent,
  type TopicConfig,
  type TopicRetention,
} from './engines/index.js';
