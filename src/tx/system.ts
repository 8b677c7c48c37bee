/**
 * The transaction layer's own tables, on every shard of the store. Each row carries the shard it
 * belongs to in its `shard` column, list-partitioned on it, so a lock row lives on the same shard
 * as the row it locks and a prepare (lock rows + checks) is ONE local request there.
 *
 *  - `pptx_lock`: one row per key a cross-shard transaction is committing (the durable prepare):
 *    who holds it, its coordinator shard, when, and the write to apply (an encoded op, see
 *    `store.encodeOp`). While it exists no other transaction commits that key.
 *  - `pptx_decision`: the coordinator's durable decision (`commit` / `abort`), written insert-if-
 *    absent, so a coordinator and a recovery process racing on one transaction agree on one
 *    outcome; kept `decisionRetainMs` (TTL) once written.
 *  - `pptx_log`: one row per shard a cross-shard transaction applied there, written in the same
 *    local commit as the transaction's rows and ahead of them, so the change feed can hand a
 *    transaction's records over as one (see `TxFeed`).
 *
 * Names starting with `pptx_` are reserved for this layer.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { PartitionConfig, Store, Table } from '../store/index.js';

export const LockSchema = Type.Object({
  shard: Type.String(),
  /** Physical table of the locked row (`t_<name>` / `kv_<ns>`). */
  tbl: Type.String(),
  /** The locked row's canonical key (`keyJson`). */
  key: Type.String(),
  tx: Type.String(),
  /** Coordinator shard index: where the decision record lives. */
  coord: Type.Integer(),
  createdMs: Type.Integer(),
  /** The write to apply on commit (store.encodeOp). */
  intent: Type.Uint8Array(),
});
export type LockRow = Static<typeof LockSchema>;

export const DecisionSchema = Type.Object({
  shard: Type.String(),
  tx: Type.String(),
  /** 'commit' or 'abort'. */
  outcome: Type.String(),
  /** Shard indexes holding the transaction's writes. */
  participants: Type.Array(Type.Integer()),
  createdMs: Type.Integer(),
});
export type DecisionRow = Static<typeof DecisionSchema>;

export const LogSchema = Type.Object({
  shard: Type.String(),
  tx: Type.String(),
  /** Every shard (name) the transaction wrote to, in shard order. */
  participants: Type.Array(Type.String()),
  /** Change records the transaction wrote on this shard after this row's own. */
  records: Type.Integer(),
  committedMs: Type.Integer(),
});
export type LogRow = Static<typeof LogSchema>;

export interface SystemTables {
  readonly locks: Table<LockRow>;
  readonly decisions: Table<DecisionRow>;
  readonly log: Table<LogRow>;
}

/** Each shard's rows on that shard. */
export function perShard(store: Store): PartitionConfig {
  return { kind: 'list', partitions: store.shards.map((s) => ({ name: s, shard: s, values: [s] })) };
}

export async function openSystemTables(store: Store): Promise<SystemTables> {
  const partitioning = perShard(store);
  const [locks, decisions, log] = await Promise.all([
    store.table('pptx_lock', { schema: LockSchema, primaryKey: ['shard', 'tbl', 'key'], partitionKey: ['shard'], indexes: { byCreated: ['shard', 'createdMs'], byTx: ['shard', 'tx'] }, partitioning }),
    store.table('pptx_decision', { schema: DecisionSchema, primaryKey: ['shard', 'tx'], partitionKey: ['shard'], partitioning }),
    store.table('pptx_log', { schema: LogSchema, primaryKey: ['shard', 'tx'], partitionKey: ['shard'], partitioning }),
  ]);
  return { locks, decisions, log };
}
