/**
 * Powerplant's public entry.
 *
 * - The error catalogue and the runtime-level APIs a service author calls (`openStore`, …) are
 *   exported flat: `import { openStore, ppError } from 'powerplant'`.
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
  SubscribeOptions,
  Subscription,
} from './store/index.js';
