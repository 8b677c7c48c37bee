/**
 * Where workflows live in the store. A workflow row, its step rows and its signals share one
 * partition key value (the workflow id), so they sit on one shard and a step's checkpoint commits
 * in the same local request as the workflow-row check (and, when the step's own writes are on that
 * shard too, with them). The lease (who runs it, until when) is a kv entry keyed by the id, on the
 * same shard: renewing it does not touch the workflow row, so renewals never conflict with steps.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Kv, Store, Table } from '../../store/index.js';

export const WorkflowSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  /** running | completed | failed | compensated | cancelled */
  state: Type.String(),
  /** JSON of {"v": input}. */
  input: Type.String(),
  /** JSON of {"v": output} once completed. */
  output: Type.Optional(Type.String()),
  /** JSON of {"code", "message"} once failed / compensated / cancelled. */
  error: Type.Optional(Type.String()),
  /** Bumped by every takeover: a step commits only under the fence it started with. */
  fence: Type.Integer(),
  owner: Type.String(),
  /** Parent workflow id (child workflows). */
  parent: Type.Optional(Type.String()),
  /** Set by `cancel`: the owner stops at its next step and compensates. */
  cancelRequested: Type.Optional(Type.Boolean()),
  createdMs: Type.Integer(),
  updatedMs: Type.Integer(),
});
export type WorkflowRow = Static<typeof WorkflowSchema>;

export const StepSchema = Type.Object({
  wf: Type.String(),
  seq: Type.Integer(),
  name: Type.String(),
  /** step | sleep | signal | child | compensate */
  kind: Type.String(),
  /** done | failed */
  state: Type.String(),
  /** JSON of {"v": output}. */
  output: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
  attempts: Type.Integer(),
  startedMs: Type.Integer(),
  endedMs: Type.Integer(),
});
export type StepRow = Static<typeof StepSchema>;

export const SignalSchema = Type.Object({
  wf: Type.String(),
  name: Type.String(),
  payload: Type.String(),
  sentMs: Type.Integer(),
});
export type SignalRow = Static<typeof SignalSchema>;

export interface Lease {
  readonly owner: string;
  readonly fence: number;
  readonly untilMs: number;
}

export interface WorkflowTables {
  readonly workflows: Table<WorkflowRow>;
  readonly steps: Table<StepRow>;
  readonly signals: Table<SignalRow>;
  readonly leases: Kv<Lease>;
}

export async function openWorkflowTables(store: Store): Promise<WorkflowTables> {
  const [workflows, steps, signals, leases] = await Promise.all([
    store.table('pptx_wf', { schema: WorkflowSchema, primaryKey: ['id'], indexes: { byState: ['state', 'createdMs'], byName: ['name', 'createdMs'] } }),
    store.table('pptx_wfstep', { schema: StepSchema, primaryKey: ['wf', 'seq'], partitionKey: ['wf'] }),
    store.table('pptx_wfsignal', { schema: SignalSchema, primaryKey: ['wf', 'name'], partitionKey: ['wf'] }),
    store.kv<Lease>('pptx_wflease'),
  ]);
  return { workflows, steps, signals, leases };
}

/** Values are kept as JSON of {"v": value} so `undefined` survives (as an absent "v"). */
export function encodeValue(v: unknown, field: string): string {
  try {
    return JSON.stringify({ v });
  } catch (err) {
    throw Object.assign(new TypeError(`${field}: not JSON-serializable (${err instanceof Error ? err.message : String(err)})`), { field });
  }
}

export function decodeValue(s: string | undefined): unknown {
  if (s === undefined) return undefined;
  return (JSON.parse(s) as { v?: unknown }).v;
}
