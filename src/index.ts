/**
 * Powerplant's public entry.
 *
 * - The error catalogue and the runtime-level APIs a service author calls (`openStore`,
 *   `openQueue`, …) are exported flat: `import { openStore, ppError } from 'powerplant'`. Types whose
 *   names several folders share (`SubscribeOptions`) stay in their namespace (`store.`, `queue.`).
 * - The algorithmic building blocks are namespaces (`partition.createJump`,
 *   `balance.createBalancer`, `resilience.CircuitBreaker`), so names several folders share
 *   (`RandomSource`, `SubscribeOptions`) never collide.
 * - Every folder is also a subpath: `import { createJump } from 'powerplant/partition'`.
 */
export * from './errors/index.js';
export * as util from './util/index.js';
export * as partition from './partition/index.js';
export * as balance from './balance/index.js';
export * as resilience from './resilience/index.js';
export * as store from './store/index.js';
export { openStore, Store, Kv, Table, ChangeFeed } from './store/index.js';
export type {
  StoreOptions,
  TableSpec,
  Versioned,
  KeyOf,
  Query,
  Page,
  WriteResult,
  ChangeRecord,
  Positions,
} from './store/index.js';
export * as tx from './tx/index.js';
export { openTransactions, Transactions, Tx, defineWorkflow, openWorkflows, Workflows } from './tx/index.js';
export type { TransactionsOptions, RunOptions, WorkflowContext, WorkflowDef, WorkflowHandle, WorkflowStatus, StepOptions } from './tx/index.js';
export * as queue from './queue/index.js';
export { openQueue, Queue, createOutbox } from './queue/index.js';
export type { QueueOptions, TopicOptions, PublishOptions, PublishResult, Delivery } from './queue/index.js';
export * as stream from './stream/index.js';
export { createJob, tumbling, sliding, session } from './stream/index.js';
export * as transport from './transport/index.js';
export { createTransport } from './transport/index.js';
export type { Transport } from './transport/index.js';
export * as service from './service/index.js';
export { defineService, action, event, consumer, createNode, ServiceNode } from './service/index.js';
export type {
  ServiceRegistry,
  Context,
  CallOptions,
  NodeConfig,
  ParamsOf,
  ResultOf,
} from './service/index.js';
export * as gateway from './gateway/index.js';
export { createGateway, route, routeFor } from './gateway/index.js';
export type { Gateway, GatewayOptions, GatewayRoute } from './gateway/index.js';
export * as analytics from './analytics/index.js';
export { openAnalytics, Analytics } from './analytics/index.js';
export type { AnalyticsOptions, MirrorOptions, QueryResult } from './analytics/index.js';
export * as observe from './observe/index.js';
export { createLogger } from './observe/index.js';
export type { Logger } from './observe/index.js';
export * as cache from './cache/index.js';
export { createCache, Cache, readThroughKv, readThroughTable, invalidateFromFeed } from './cache/index.js';
export type { ReadThrough, CacheOptions } from './cache/index.js';
// The contracts of what `powerplant start <entry>` and `powerplant bench <entry>` load (types only:
// the CLI's code, runMix included, is reached through 'powerplant/cli' and the bin, not loaded here).
export type { AppModule, RunningApp, ServicesModule, StartContext, StartModule } from './cli/index.js';
export type {
  EndpointStats, LoadEndpoint, LoadMix, LoadPlan, LoadRequest, MixOptions, MixResult, RequestStats, SetupAnswer, SetupContext, SetupHttp,
} from './cli/index.js';
