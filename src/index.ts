/**
 * Powerplant's public entry.
 *
 * - The error catalogue and the runtime-level APIs a service author calls (`openStore`,
 *   `openQueue`, …) are exported flat: `import { openStore, ppError } from 'powerplant'`. Types whose
 *   names several folders share (`SubscribeOptions`) stay in their namespace (`store.`, `queue.`).
 * - The algorithmic building blocks are namespaces (`partition.createJump`,
 *   `balance.createBalancer`, `resilience.CircuitBreaker`), so names several folders share
 *   (`formatTable`, `RandomSource`) never collide.
 * - Every folder is also a subpath: `import { createJump } from 'powerplant/partition'`.
 */
export * from './errors/index.js';
export * as partition from './partition/index.js';
export * as balance from './balance/index.js';
export * as resilience from './resilience/index.js';
export * as store from './store/index.js';
export { openStore, Store, Kv, Table, ChangeFeed } from './store/index.js';
export type {
  StoreOptions,
  TableSpec,
  Versioned,
  Query,
  Page,
  WriteResult,
  ChangeRecord,
  Positions,
} from './store/index.js';
export * as queue from './queue/index.js';
export { openQueue, Queue, createOutbox } from './queue/index.js';
export type { QueueOptions, TopicOptions, PublishOptions, PublishResult, Delivery } from './queue/index.js';
