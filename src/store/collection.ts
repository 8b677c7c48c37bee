/**
 * What kv namespaces and tables share: the shard context, the write path into group commit, the
 * fan-out + ordered merge for reads that do not name a partition key, and limit checks.
 */
import { invariant, ppError, requireArg } from '../errors/index.js';
import type { CursorCodec } from './cursor.js';
import type { OpOutcome, RawRow, ScanPlan, ShardEngine, WriteOp } from './engines/base.js';
import type { GroupCommitter } from './group-commit.js';
import { compareSql, type SqlValue } from './schema.js';

export interface StoreLimits {
  /** Largest encoded kv value / table row, in bytes. */
  readonly valueBytesMax: number;
  /** Largest key (kv key or one primary-key string), in UTF-8 bytes. */
  readonly keyBytesMax: number;
  /** Largest page a query may ask for. */
  readonly pageMax: number;
  /** Most ops in one batch call (batch put/get, table.batch). */
  readonly batchOpsMax: number;
  /** Longest TTL, in ms. */
  readonly ttlMsMax: number;
}

export const DEFAULT_LIMITS: StoreLimits = {
  valueBytesMax: 1024 * 1024,
  keyBytesMax: 1024,
  pageMax: 1000,
  batchOpsMax: 1000,
  ttlMsMax: 10 * 365 * 24 * 3600 * 1000,
};

export const DEFAULT_PAGE = 100;

export interface ShardContext {
  readonly engines: readonly ShardEngine[];
  readonly committers: readonly GroupCommitter[];
  readonly limits: StoreLimits;
  /** Issues and checks page cursors with the store's secret. */
  readonly cursors: CursorCodec;
  /** Throws PP_ERR_CLOSED once the store is closed. */
  readonly checkOpen: () => void;
}

/** What a write resolves to: the row's new version and where it landed in the change feed. */
export interface WriteResult {
  readonly version: number;
  readonly shard: string;
  /** Change-feed position on that shard (0 if nothing was written, e.g. deleting a missing row). */
  readonly position: number;
}

/**
 * One write (or condition) built and validated by a table or kv handle, not yet submitted, with
 * the shard it belongs to. `store.atomic` submits several of one shard as one request; the tx
 * layer builds its prepares and commits from them.
 */
export interface StoreOp {
  readonly shard: number;
  readonly write: WriteOp;
}

/** Submits one atomic request to a shard's group committer; throws the request's typed error. */
export async function submit(ctx: ShardContext, shard: number, ops: readonly WriteOp[]): Promise<readonly OpOutcome[]> {
  ctx.checkOpen();
  const c = ctx.committers[shard];
  invariant(c !== undefined, 'shard index in range');
  const r = await c.submit({ ops });
  if (!r.ok) throw r.error;
  invariant(r.outcomes.length === ops.length, 'one outcome per op');
  return r.outcomes;
}

/**
 * Runs ops that may span shards: one atomic request per shard, all shards in parallel. Results in
 * input order. Each shard's part is all-or-nothing; across shards it is not (that needs two-phase
 * commit, see docs/store.md) — the first error is thrown after every part settled.
 */
export async function submitAcross(ctx: ShardContext, shardOf: readonly number[], ops: readonly WriteOp[]): Promise<WriteResult[]> {
  invariant(shardOf.length === ops.length, 'one shard per op');
  const groups = new Map<number, number[]>();
  for (let i = 0; i < ops.length; i++) {
    const s = shardOf[i]!;
    let g = groups.get(s);
    if (g === undefined) groups.set(s, (g = []));
    g.push(i);
  }
  const out = new Array<WriteResult>(ops.length);
  const settled = await Promise.allSettled(
    [...groups].map(async ([s, idx]) => {
      const outcomes = await submit(ctx, s, idx.map((i) => ops[i]!));
      const shard = ctx.engines[s]!.shard;
      idx.forEach((i, k) => {
        const o = outcomes[k]!;
        out[i] = { version: o.version, shard, position: o.position };
      });
    }),
  );
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  return out;
}

/** Raw-row comparator on sort columns; matches the engines' ORDER BY. */
export function rowComparator(order: readonly string[], desc: boolean): (a: RawRow, b: RawRow) => number {
  const sign = desc ? -1 : 1;
  return (a, b) => {
    for (let i = 0; i < order.length; i++) {
      const c = order[i]!;
      const r = compareSql(a[c] as SqlValue, b[c] as SqlValue);
      if (r !== 0) return r * sign;
    }
    return 0;
  };
}

/**
 * K-way merge of per-shard sorted lists (a binary heap of list heads), stopping at `limit`.
 * O(limit · log shards). Every list must already be sorted by `cmp` (each shard's ORDER BY).
 */
export function mergeSorted(lists: readonly RawRow[][], cmp: (a: RawRow, b: RawRow) => number, limit: number): RawRow[] {
  const heap: number[] = [];
  const pos = new Array<number>(lists.length).fill(0);
  const less = (x: number, y: number): boolean => cmp(lists[x]![pos[x]!]!, lists[y]![pos[y]!]!) < 0;
  const up = (i: number): void => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < lists.length; i++) {
    if (lists[i]!.length > 0) {
      heap.push(i);
      up(heap.length - 1);
    }
  }
  const out: RawRow[] = [];
  while (heap.length > 0 && out.length < limit) {
    const top = heap[0]!;
    const row = lists[top]![pos[top]!]!;
    if (out.length > 0) invariant(cmp(out[out.length - 1]!, row) <= 0, 'merged output is ordered');
    out.push(row);
    pos[top]!++;
    if (pos[top]! < lists[top]!.length) down(0);
    else {
      heap[0] = heap[heap.length - 1]!;
      heap.pop();
      if (heap.length > 0) down(0);
    }
  }
  return out;
}

/**
 * Runs a scan on the given shards in parallel and merges: at most `limit` rows plus whether more
 * exist. Each shard is asked for limit + 1 rows, so "more" is exact: if the shards together hold
 * more than `limit` matching rows after the cursor, at least limit + 1 come back.
 */
export async function scanShards(ctx: ShardContext, shards: readonly number[], plan: ScanPlan, limit: number, nowMs: number): Promise<{ rows: RawRow[]; more: boolean }> {
  invariant(plan.limit === limit + 1, 'each shard is asked for limit + 1 rows');
  if (shards.length === 1) {
    const rows = await ctx.engines[shards[0]!]!.scan(plan, nowMs);
    return rows.length > limit ? { rows: rows.slice(0, limit), more: true } : { rows, more: false };
  }
  const lists = await Promise.all(shards.map((s) => ctx.engines[s]!.scan(plan, nowMs)));
  const merged = mergeSorted(lists, rowComparator(plan.order, plan.desc), limit + 1);
  return merged.length > limit ? { rows: merged.slice(0, limit), more: true } : { rows: merged, more: false };
}

export function allShards(ctx: ShardContext): number[] {
  return ctx.engines.map((_, i) => i);
}

export function checkLimit(limit: unknown, pageMax: number): number {
  if (limit === undefined) return Math.min(DEFAULT_PAGE, pageMax);
  // The message is built only on failure: this runs on every query.
  if (!(Number.isInteger(limit) && (limit as number) >= 1 && (limit as number) <= pageMax)) requireArg(false, 'limit', `must be an integer in [1, ${pageMax}]`);
  return limit as number;
}

/** Absolute expiry for a TTL option; null when none. */
export function expiryOf(ttlMs: unknown, limits: StoreLimits, nowMs: number): number | null {
  if (ttlMs === undefined) return null;
  requireArg(Number.isInteger(ttlMs) && (ttlMs as number) > 0 && (ttlMs as number) <= limits.ttlMsMax, 'ttlMs', `must be an integer in [1, ${limits.ttlMsMax}]`);
  return nowMs + (ttlMs as number);
}

export function checkVersion(version: unknown): number | undefined {
  if (version === undefined) return undefined;
  requireArg(Number.isSafeInteger(version) && (version as number) >= 0, 'version', 'must be an integer >= 0 (0 = must not exist)');
  return version as number;
}

export function checkBatchSize(n: number, limits: StoreLimits, field: string): void {
  if (n > limits.batchOpsMax) {
    throw ppError('PP_ERR_TOO_LARGE', { field, message: `${field}: at most ${limits.batchOpsMax} operations per batch (limits.batchOpsMax)`, data: { max: limits.batchOpsMax, got: n } });
  }
}
