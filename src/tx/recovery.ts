/**
 * Recovery: finishes or rolls back cross-shard transactions whose coordinator stopped (crashed,
 * paused, partitioned) between its prepare and its last apply. Any node may run it, several at
 * once: every action is a conditional local request, so two recoverers (or a recoverer and a slow
 * coordinator) never apply an intent twice or disagree on an outcome.
 *
 * A lock row older than `staleMs` belongs to a transaction that should have finished by then.
 *  - On its coordinator shard: the decision `commit` is written in the same local commit that
 *    removes the coordinator's lock rows, so a coordinator lock row still there means nothing was
 *    decided. Recovery decides `abort` there (insert-if-absent) and removes those lock rows in one
 *    request. A coordinator arriving later finds the decision taken and aborts (it is fenced).
 *  - On another shard: the decision record says what to do. `commit`: apply the intents and remove
 *    the lock rows, one request, conditional on each lock row's version. `abort`: remove them. No
 *    record: nothing was decided, and recovery writes `abort` on the coordinator first
 *    (insert-if-absent; if that loses to a `commit`, the commit is applied).
 */
import { PowerplantError, ppError } from '../errors/index.js';
import type { Store, StoreOp } from '../store/index.js';
import type { DecisionRow, LockRow, SystemTables } from './system.js';

export interface RecoveryReport {
  /** Stale lock rows looked at. */
  readonly locks: number;
  /** Transactions recovery applied (the decision was commit). */
  readonly committed: number;
  /** Transactions recovery rolled back. */
  readonly aborted: number;
  /** Transactions it could not settle this time (their tables are not open here, an engine is down). */
  readonly skipped: number;
  /** Why, per skipped transaction (bounded). */
  readonly errors: readonly string[];
}

const ERRORS_KEPT_MAX = 20;

export interface RecoveryContext {
  readonly store: Store;
  readonly sys: SystemTables;
  readonly decisionRetainMs: number;
}

function isConflict(err: unknown): boolean {
  return err instanceof PowerplantError && err.code === 'PP_ERR_CONFLICT';
}

/** The transaction's lock rows on a shard, with their versions (what removing one is conditional on). */
async function locksOf(ctx: RecoveryContext, shard: string, tx: string): Promise<{ row: LockRow; version: number }[]> {
  const page = await ctx.sys.locks.query({ index: 'byTx', where: { shard, tx }, limit: ctx.store.limits.pageMax });
  return page.items.map((i) => ({ row: i.row, version: i.version }));
}

function lockDeletes(ctx: RecoveryContext, rows: readonly { row: LockRow; version: number }[]): StoreOp[] {
  return rows.map(({ row, version }) => ctx.sys.locks.writeOp({ op: 'delete', key: { shard: row.shard, tbl: row.tbl, key: row.key }, version }));
}

function abortRow(ctx: RecoveryContext, coordName: string, tx: string): StoreOp {
  return ctx.sys.decisions.writeOp({ op: 'insert', row: { shard: coordName, tx, outcome: 'abort', participants: [], createdMs: Date.now() }, ttlMs: ctx.decisionRetainMs });
}

/** Settles one transaction's lock rows on one shard; resolves what was done. */
async function settle(ctx: RecoveryContext, shardIndex: number, tx: string, coord: number): Promise<'committed' | 'aborted' | 'none'> {
  const { store, sys } = ctx;
  const shard = store.shardName(shardIndex);
  const coordName = store.shardName(coord);
  const locks = await locksOf(ctx, shard, tx);
  if (locks.length === 0) return 'none';
  if (shardIndex === coord) {
    try {
      await store.atomic([abortRow(ctx, coordName, tx), ...lockDeletes(ctx, locks)]);
      return 'aborted';
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    // A decision exists already (an abort recovery wrote from another shard) or the rows moved.
    const d = await sys.decisions.get({ shard: coordName, tx });
    const again = await locksOf(ctx, shard, tx);
    if (again.length === 0) return 'none';
    if (d?.row.outcome === 'commit') throw ppError('PP_ERR_INTERNAL', { message: `tx ${tx}: commit decided while coordinator locks remain on ${shard}` });
    await store.atomic(lockDeletes(ctx, again));
    return 'aborted';
  }
  let decision: DecisionRow | undefined = (await sys.decisions.get({ shard: coordName, tx }))?.row;
  if (decision === undefined) {
    try {
      await store.atomic([abortRow(ctx, coordName, tx)]);
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    decision = (await sys.decisions.get({ shard: coordName, tx }))?.row;
    if (decision === undefined) throw ppError('PP_ERR_UNAVAILABLE', { message: `tx ${tx}: its decision record on ${coordName} vanished` });
  }
  try {
    if (decision.outcome === 'commit') {
      const participants = decision.participants.map((p) => store.shardName(p));
      await store.atomic([
        sys.log.writeOp({ op: 'upsert', row: { shard, tx, participants, records: locks.length, committedMs: Date.now() }, ttlMs: ctx.decisionRetainMs }),
        ...locks.map((l) => store.decodeOp(l.row.intent)),
        ...lockDeletes(ctx, locks),
      ]);
      return 'committed';
    }
    await store.atomic(lockDeletes(ctx, locks));
    return 'aborted';
  } catch (err) {
    // Another recoverer (or the coordinator) settled these rows first.
    if (isConflict(err)) return 'none';
    throw err;
  }
}

/** One pass over every shard: settles transactions whose lock rows are older than `staleMs`. */
export async function recoverOnce(ctx: RecoveryContext, staleMs: number, locksMax = 1000): Promise<RecoveryReport> {
  const { store, sys } = ctx;
  let locks = 0;
  let committed = 0;
  let aborted = 0;
  let skipped = 0;
  const errors: string[] = [];
  for (let i = 0; i < store.shards.length; i++) {
    const shard = store.shardName(i);
    const page = await sys.locks.query({ index: 'byCreated', where: { shard }, range: { lt: Date.now() - staleMs }, limit: Math.min(locksMax, store.limits.pageMax) });
    locks += page.items.length;
    const txs = new Map<string, number>();
    for (const { row } of page.items) txs.set(row.tx, row.coord);
    for (const [tx, coord] of txs) {
      try {
        const r = await settle(ctx, i, tx, coord);
        if (r === 'committed') committed++;
        else if (r === 'aborted') aborted++;
      } catch (err) {
        skipped++;
        if (errors.length < ERRORS_KEPT_MAX) errors.push(`tx ${tx} on ${shard}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  return { locks, committed, aborted, skipped, errors };
}
