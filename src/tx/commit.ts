/**
 * Committing a transaction's read and write sets (transaction.ts).
 *
 * One shard (every row read and written on one shard — the common case): ONE local request,
 * through the shard's group commit: "no cross-shard transaction holds any of these rows" (lock-row
 * checks) + "every row read still has its version" (checks) + the writes. Atomic and durable like
 * any single write, and as cheap.
 *
 * Several shards: two-phase commit with durable intents.
 *  1. Prepare, on every shard written, in parallel: one local request inserting a lock row per row
 *     written (insert-if-absent: a row another transaction is committing refuses it) holding the
 *     write itself (the intent), plus checks of the rows read there that are also written. After
 *     it, the shard has durably promised to apply the writes when told.
 *  2. Validate, after every prepare: for each row read but not written, one check request per
 *     shard (version unchanged, no lock row). Validating after all locks are held is what makes
 *     two transactions that each read what the other writes unable to both commit.
 *  3. Decide, on the coordinator shard (the lowest shard written, or the one `tx.coordinateOn`
 *     names): ONE local request inserting the
 *     decision record `commit` (insert-if-absent) AND applying the coordinator's own writes and
 *     removing its lock rows. The transaction is committed exactly when this commits.
 *  4. Apply, on every other shard, in parallel: its writes + removal of its lock rows (each
 *     removal conditional on the lock row's version, so an intent is applied once, by the
 *     coordinator or by recovery, never twice). Then the decision record is deleted.
 * Anything failing before step 3 aborts: lock rows are removed (or left to recovery). Recovery
 * (recovery.ts) finishes or rolls back what a crashed coordinator left.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PowerplantError, ppError } from '../errors/index.js';
import { retry } from '../resilience/index.js';
import type { Store, StoreOp } from '../store/index.js';
import type { SystemTables } from './system.js';
import { checkOf, slot, type ReadEntry, type Tx, type WriteEntry } from './transaction.js';

/** What a committed transaction reports. */
export interface TxCommitInfo {
  /** Transaction id (cross-shard commits; '' for a one-shard commit). */
  readonly txId: string;
  /** Shard names written. */
  readonly shards: readonly string[];
  /** 'none' (read-only), 'local' (one shard, one request) or '2pc'. */
  readonly path: 'none' | 'local' | '2pc';
  /** Shards whose apply step did not complete (recovery finishes them); empty normally. */
  readonly pendingShards: readonly string[];
}

export interface CommitContext {
  readonly store: Store;
  readonly sys: SystemTables;
  readonly decisionRetainMs: number;
  /** Hook for fault tests: called between protocol steps with the step's name. */
  readonly onStep: ((step: string, txId: string) => Promise<void> | void) | undefined;
}

/** Lock-row key of a row: its canonical key, hashed when long (lock keys have the store's key bound). */
export function lockKeyOf(keyJson: string): string {
  return keyJson.length <= 256 ? keyJson : `h:${createHash('sha256').update(keyJson).digest('base64url')}`;
}

export function lockPk(store: Store, shard: number, physical: string, keyJson: string): { shard: string; tbl: string; key: string } {
  return { shard: store.shardName(shard), tbl: physical, key: lockKeyOf(keyJson) };
}

/** A failed condition is the transaction's conflict: abort (retryable). Anything else as it is. */
function asAbort(err: unknown, what: string): unknown {
  if (err instanceof PowerplantError && err.code === 'PP_ERR_CONFLICT') {
    return ppError('PP_ERR_TX_ABORTED', { message: `transaction aborted: ${what} (${err.message})`, cause: err, data: { reason: 'conflict' } });
  }
  return err;
}

function byShard<T extends { shard: number }>(items: Iterable<T>): Map<number, T[]> {
  const m = new Map<number, T[]>();
  for (const it of items) {
    let g = m.get(it.shard);
    if (g === undefined) m.set(it.shard, (g = []));
    g.push(it);
  }
  return m;
}

export async function commitTx(ctx: CommitContext, tx: Tx): Promise<TxCommitInfo> {
  const { store, sys } = ctx;
  const reads = [...tx.reads.entries()];
  const writes = [...tx.writes.values()];
  const lockFree = (shard: number, physical: string, keyJson: string): StoreOp => sys.locks.checkOp(lockPk(store, shard, physical, keyJson), 0);

  if (writes.length === 0) {
    // A single read is atomic by itself; several are validated (versions unchanged, no lock).
    if (reads.length <= 1) return { txId: '', shards: [], path: 'none', pendingShards: [] };
    await Promise.all(
      [...byShard(reads.map(([, r]) => r))].map(async ([, rs]) => {
        const ops = rs.flatMap((r) => [checkOf(r.handle, r.key, r.version), lockFree(r.shard, r.physical, r.keyJson)]);
        await store.atomic(ops).catch((e: unknown) => {
          throw asAbort(e, 'a row it read changed');
        });
      }),
    );
    return { txId: '', shards: [], path: 'none', pendingShards: [] };
  }

  const writeShards = [...new Set(writes.map((w) => w.shard))].sort((a, b) => a - b);
  const single = writeShards.length === 1 && reads.every(([, r]) => r.shard === writeShards[0]);
  if (single) {
    const ops: StoreOp[] = [];
    const touched = new Set<string>();
    for (const [s, r] of reads) {
      ops.push(checkOf(r.handle, r.key, r.version), lockFree(r.shard, r.physical, r.keyJson));
      touched.add(s);
    }
    for (const [s, w] of tx.writes) if (!touched.has(s)) ops.push(lockFree(w.shard, w.physical, w.keyJson));
    for (const w of writes) ops.push(w.op);
    await store.atomic(ops).catch((e: unknown) => {
      throw asAbort(e, 'a row it read changed or is being committed by another transaction');
    });
    return { txId: '', shards: [store.shardName(writeShards[0]!)], path: 'local', pendingShards: [] };
  }
  return twoPhase(ctx, tx, writeShards);
}

async function twoPhase(ctx: CommitContext, tx: Tx, writeShards: readonly number[]): Promise<TxCommitInfo> {
  const { store, sys } = ctx;
  const txId = randomBytes(12).toString('base64url');
  const coord = tx.coordinator !== undefined && writeShards.includes(tx.coordinator) ? tx.coordinator : writeShards[0]!;
  const others = writeShards.filter((s) => s !== coord);
  const createdMs = Date.now();
  const writesBy = byShard(tx.writes.values());
  const step = async (name: string): Promise<void> => {
    if (ctx.onStep !== undefined) await ctx.onStep(name, txId);
  };

  // 1. prepare
  const lockVersions = new Map<number, { w: WriteEntry; version: number }[]>();
  await step('before-prepare');
  const prepared = await Promise.allSettled(
    writeShards.map(async (s) => {
      const ws = writesBy.get(s)!;
      const ops: StoreOp[] = [];
      for (const w of ws) {
        ops.push(sys.locks.writeOp({ op: 'insert', row: { ...lockPk(store, s, w.physical, w.keyJson), tx: txId, coord, createdMs, intent: store.encodeOp(w.op) } }));
      }
      for (const w of ws) {
        const r = tx.reads.get(slot(w.physical, w.keyJson));
        if (r !== undefined) ops.push(checkOf(r.handle, r.key, r.version));
      }
      const out = await store.atomic(ops);
      lockVersions.set(
        s,
        ws.map((w, i) => ({ w, version: out[i]!.version })),
      );
      await step(`prepared:${store.shardName(s)}`);
    }),
  );
  const abort = async (err: unknown, what: string): Promise<never> => {
    await Promise.allSettled([...lockVersions].map(([s, ls]) => releaseLocks(ctx, s, ls)));
    throw asAbort(err, what);
  };
  const failed = prepared.find((p) => p.status === 'rejected');
  if (failed !== undefined) return abort(failed.reason, 'a row it writes is being committed by another transaction, or changed');
  await step('after-prepare');

  // 2. validate the rows read and not written (after every lock is held)
  const readOnly: ReadEntry[] = [];
  for (const [s, r] of tx.reads) if (!tx.writes.has(s)) readOnly.push(r);
  try {
    await Promise.all(
      [...byShard(readOnly)].map(([, rs]) => store.atomic(rs.flatMap((r) => [checkOf(r.handle, r.key, r.version), sys.locks.checkOp(lockPk(store, r.shard, r.physical, r.keyJson), 0)]))),
    );
  } catch (err) {
    return abort(err, 'a row it read changed');
  }

  // 3. decide, and apply on the coordinator, in one local commit
  const participants = writeShards.map((s) => store.shardName(s));
  const applyOps = (s: number): StoreOp[] => {
    const ls = lockVersions.get(s)!;
    return [
      sys.log.writeOp({ op: 'upsert', row: { shard: store.shardName(s), tx: txId, participants, records: ls.length, committedMs: Date.now() }, ttlMs: ctx.decisionRetainMs }),
      ...ls.map((l) => l.w.op),
      ...ls.map((l) => sys.locks.writeOp({ op: 'delete', key: lockPk(store, s, l.w.physical, l.w.keyJson), version: l.version })),
    ];
  };
  await step('before-decision');
  try {
    await store.atomic([
      sys.decisions.writeOp({ op: 'insert', row: { shard: store.shardName(coord), tx: txId, outcome: 'commit', participants: [...writeShards], createdMs }, ttlMs: ctx.decisionRetainMs }),
      ...applyOps(coord),
    ]);
  } catch (err) {
    if (err instanceof PowerplantError && err.code === 'PP_ERR_CONFLICT') {
      // Recovery decided abort first (and may have removed our coordinator locks): we are fenced
      // out. Removing what is left is conditional on each lock row's version, so harmless.
      return abort(err, 'recovery aborted it before its decision');
    }
    // Outcome unknown (engine unavailable, timeout): recovery settles it from the decision record.
    throw err;
  }
  await step('after-decision');

  // 4. apply on the other shards
  const pending: string[] = [];
  await Promise.all(
    others.map(async (s) => {
      try {
        await retry(() => store.atomic(applyOps(s)), { attemptsMax: 3, baseDelayMs: 20 });
        await step(`applied:${store.shardName(s)}`);
      } catch (err) {
        // Already applied by recovery (its lock rows are gone): fine. Otherwise recovery applies it.
        if (!(err instanceof PowerplantError && err.code === 'PP_ERR_CONFLICT')) pending.push(store.shardName(s));
      }
    }),
  );
  if (pending.length === 0) {
    await sys.decisions.delete({ shard: store.shardName(coord), tx: txId }).catch(() => undefined);
  }
  return { txId, shards: participants, path: '2pc', pendingShards: pending };
}

/** Removes lock rows this transaction holds on a shard (each only if still its own version). */
async function releaseLocks(ctx: CommitContext, s: number, ls: readonly { w: WriteEntry; version: number }[]): Promise<void> {
  const { store, sys } = ctx;
  await store.atomic(ls.map((l) => sys.locks.writeOp({ op: 'delete', key: lockPk(store, s, l.w.physical, l.w.keyJson), version: l.version })));
}
