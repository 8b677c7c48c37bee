/**
 * Distributed transactions on the store: cross-shard transactions (optimistic reads, two-phase
 * commit with durable intents and a durable decision record, recovery), leases and locks with
 * fencing tokens, durable workflows, idempotency keys. The only public entry of src/tx; see
 * docs/tx.md.
 */
export { Transactions, openTransactions, type TransactionsOptions, type RunOptions, type TransactionStats } from './manager.js';
export { Tx } from './transaction.js';
export type { TxCommitInfo } from './commit.js';
export type { RecoveryReport } from './recovery.js';
export { defineWorkflow, openWorkflows, Workflows, type WorkflowDef, type WorkflowHandle, type WorkflowStatus, type WorkflowState, type WorkflowsOptions } from './workflow/engine.js';
export type { WorkflowContext, StepOptions } from './workflow/context.js';
export * from './locks/index.js';
export {
  IdempotencyKeys,
  openIdempotency,
  idempotentAction,
  fingerprintOf,
  IDEMPOTENCY_DEFAULTS,
  type IdempotencyGuard,
  type IdempotencyOptions,
  type IdempotentRequest,
  type IdempotentOutcome,
  type IdempotentActionOptions,
} from './idempotency.js';
