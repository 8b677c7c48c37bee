/**
 * Where a job keeps what it must not lose, in the store: one table per job holding, per source
 * partition, the checkpoint row (`#meta`: the next input offset, the highest event time, counters)
 * and one row per key with open windows; and one table of its dead letters. Both are partitioned by
 * the source partition, so a partition's checkpoint and state are on one shard and commit in one
 * local transaction with the sink rows there (docs/stream.md: what exactly-once means per shard).
 * The checkpoint row's version fences a job instance that lost its partition: its next checkpoint
 * expects a version the new owner has already moved past, and fails as a whole.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Store, Table } from '../store/index.js';

export const StateRow = Type.Object({
  part: Type.Integer({ minimum: 0 }),
  key: Type.String(),
  /** The checkpoint row: a MetaDoc; a key's row: `{ w: [[start, end, acc, fired], …] }`. */
  doc: Type.Object({}, { additionalProperties: true }),
});
export type StateRow = Static<typeof StateRow>;

export const DeadRow = Type.Object({
  part: Type.Integer({ minimum: 0 }),
  offset: Type.Integer({ minimum: 0 }),
  seq: Type.Integer({ minimum: 0 }),
  code: Type.String(),
  reason: Type.String(),
  ts: Type.Optional(Type.Number()),
  /** `{ v: <the value as far as it serializes> }`. */
  value: Type.Optional(Type.Object({ v: Type.Unknown() })),
});
export type DeadRow = Static<typeof DeadRow>;

/** The checkpoint row's key in the state table. */
export const META_KEY = '#meta';

export interface MetaDoc {
  /** Next input offset to read. */
  readonly offset: number;
  /** Highest event time seen (null: none). */
  readonly maxTs: number | null;
  /** Who wrote it last (diagnostics). */
  readonly owner: string;
  readonly records: number;
  readonly late: number;
  readonly dead: number;
  readonly checkpoints: number;
}

export interface JobTables {
  readonly state: Table<StateRow>;
  readonly dead: Table<DeadRow>;
}

/** Opens (creates on first use) the job's state and dead-letter tables. */
export async function openJobTables(store: Store, job: string): Promise<JobTables> {
  const [state, dead] = await Promise.all([
    store.table(`pp_stream_${job}`, { schema: StateRow, primaryKey: ['part', 'key'], partitionKey: ['part'] }),
    store.table(`pp_stream_${job}_dead`, { schema: DeadRow, primaryKey: ['part', 'offset', 'seq'], partitionKey: ['part'] }),
  ]);
  return { state, dead };
}

/** Every state row of one partition (paged), the checkpoint row apart. */
export async function loadPartition(t: JobTables, part: number): Promise<{ meta: { doc: MetaDoc; version: number } | undefined; rows: StateRow[] }> {
  const rows: StateRow[] = [];
  let meta: { doc: MetaDoc; version: number } | undefined;
  let cursor: string | undefined;
  do {
    const page = await t.state.query({ where: { part }, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const it of page.items) {
      if (it.row.key === META_KEY) meta = { doc: it.row.doc as unknown as MetaDoc, version: it.version };
      else rows.push(it.row);
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  return { meta, rows };
}
