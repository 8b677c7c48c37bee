/**
 * Group commit: concurrent write requests to one shard share one transaction, so N writers pay
 * for one fsync (SQLite) or one WAL flush and one round trip (PostgreSQL) instead of N.
 *
 * One committer per shard. Batches are applied one after another; an engine whose `commit` applies
 * the batch at once and only then waits for durability (SQLite: the statements run on the loop, the
 * WAL sync on the thread pool) declares `batchesInFlightMax` > 1, so the next batch is applied
 * while the previous one's sync runs, and one sync can cover several batches. A request waits at
 * most until the next flush: immediately after a batch leaves, or, when idle, after `waitMs` (0 =
 * the next event loop turn, which already gathers every request issued in the same tick). A batch holds at most
 * `batchMax` requests; at most `queueMax` wait, beyond which submit fails fast with
 * PP_ERR_OVERLOADED (retryable) instead of growing memory without bound.
 *
 * A request's promise settles only after `engine.commit` resolved, i.e. after its transaction is
 * durable. If the commit itself fails (engine down, connection lost, timeout), every request of
 * the batch is rejected with that error; none of them was acknowledged.
 *
 * `close()` stops accepting writes and lets the queued ones commit, for at most `drainTimeoutMs`;
 * then the writes not yet in a batch fail with PP_ERR_CLOSED (they were never sent) and close
 * waits only for the batch in flight, which the engine bounds (PostgreSQL: statement and query
 * timeouts; SQLite: synchronous, busy timeout). Nothing hangs, nothing is acknowledged unwritten.
 */
import { invariant, ppError, requireArg, type PowerplantError } from '../errors/index.js';
import type { RequestResult, ShardEngine, WriteRequest } from './engines/base.js';

export interface GroupCommitOptions {
  /** Requests per transaction. Default 256. */
  readonly batchMax?: number;
  /** Longest extra wait to fill a batch when idle, in ms. Default 0 (next event-loop turn). */
  readonly waitMs?: number;
  /** Requests waiting before PP_ERR_OVERLOADED. Default 10000. */
  readonly queueMax?: number;
  /** Longest `close()` lets queued writes commit before failing them with PP_ERR_CLOSED. Default 10000. */
  readonly drainTimeoutMs?: number;
}

export const GROUP_COMMIT_DEFAULTS = { batchMax: 256, waitMs: 0, queueMax: 10_000, drainTimeoutMs: 10_000 } as const;
export const BATCH_MAX_LIMIT = 10_000;
export const WAIT_MS_MAX = 1_000;

interface Pending {
  readonly req: WriteRequest;
  readonly resolve: (r: RequestResult) => void;
  readonly reject: (e: unknown) => void;
}

export interface CommitStats {
  batches: number;
  requests: number;
  /** Largest batch seen. */
  batchMaxSeen: number;
}

export class GroupCommitter {
  readonly #engine: ShardEngine;
  readonly #batchMax: number;
  readonly #waitMs: number;
  readonly #queueMax: number;
  readonly #drainTimeoutMs: number;
  #timer: NodeJS.Timeout | undefined;
  #queue: Pending[] = [];
  #inFlight = 0;
  readonly #inFlightMax: number;
  #scheduled = false;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  readonly stats: CommitStats = { batches: 0, requests: 0, batchMaxSeen: 0 };
  /** Called after each durable commit with the highest position it wrote (for feed wake-ups). */
  onCommitted: ((position: number) => void) | undefined;

  constructor(engine: ShardEngine, options: GroupCommitOptions = {}) {
    this.#engine = engine;
    this.#batchMax = options.batchMax ?? GROUP_COMMIT_DEFAULTS.batchMax;
    this.#waitMs = options.waitMs ?? GROUP_COMMIT_DEFAULTS.waitMs;
    this.#queueMax = options.queueMax ?? GROUP_COMMIT_DEFAULTS.queueMax;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? GROUP_COMMIT_DEFAULTS.drainTimeoutMs;
    this.#inFlightMax = engine.batchesInFlightMax ?? 1;
    requireArg(Number.isInteger(this.#drainTimeoutMs) && this.#drainTimeoutMs >= 0 && this.#drainTimeoutMs <= 600_000, 'groupCommit.drainTimeoutMs', 'must be an integer in [0, 600000]');
    requireArg(Number.isInteger(this.#batchMax) && this.#batchMax >= 1 && this.#batchMax <= BATCH_MAX_LIMIT, 'groupCommit.batchMax', `must be an integer in [1, ${BATCH_MAX_LIMIT}]`);
    requireArg(Number.isFinite(this.#waitMs) && this.#waitMs >= 0 && this.#waitMs <= WAIT_MS_MAX, 'groupCommit.waitMs', `must be in [0, ${WAIT_MS_MAX}]`);
    requireArg(Number.isInteger(this.#queueMax) && this.#queueMax >= this.#batchMax, 'groupCommit.queueMax', 'must be an integer >= batchMax');
  }

  get pending(): number {
    return this.#queue.length;
  }

  submit(req: WriteRequest): Promise<RequestResult> {
    if (this.#closed) return Promise.reject(ppError('PP_ERR_CLOSED', { message: `shard ${this.#engine.shard} is closed` }));
    if (this.#queue.length >= this.#queueMax) {
      return Promise.reject(ppError('PP_ERR_OVERLOADED', { message: `shard ${this.#engine.shard}: ${this.#queueMax} writes already waiting (groupCommit.queueMax)`, retryAfterMs: 10 }));
    }
    return new Promise<RequestResult>((resolve, reject) => {
      this.#queue.push({ req, resolve, reject });
      // A full batch does not wait out `waitMs`.
      if (this.#timer !== undefined && this.#queue.length >= this.#batchMax) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#scheduled = false;
      }
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#inFlight >= this.#inFlightMax || this.#scheduled) return;
    this.#scheduled = true;
    if (this.#waitMs === 0 || this.#queue.length >= this.#batchMax) setImmediate(this.#flush);
    else this.#timer = setTimeout(this.#flush, this.#waitMs);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    this.#timer = undefined;
    if (this.#inFlight >= this.#inFlightMax || this.#queue.length === 0) {
      this.#checkIdle();
      return;
    }
    const batch = this.#queue.length <= this.#batchMax ? this.#queue : this.#queue.slice(0, this.#batchMax);
    this.#queue = this.#queue.length <= this.#batchMax ? [] : this.#queue.slice(this.#batchMax);
    invariant(batch.length >= 1 && batch.length <= this.#batchMax, 'a batch holds 1..batchMax requests');
    this.#inFlight++;
    this.stats.batches++;
    this.stats.requests += batch.length;
    if (batch.length > this.stats.batchMaxSeen) this.stats.batchMaxSeen = batch.length;
    const reqs = batch.map((p) => p.req);
    let top = 0;
    // Whatever happens below, every request of the batch settles and the committer moves on.
    Promise.resolve()
      .then(() => this.#engine.commit(reqs, Date.now()))
      .then(
        (results) => {
          invariant(results.length === batch.length, 'one result per request');
          for (let i = 0; i < batch.length; i++) {
            const r = results[i]!;
            if (r.ok) for (const o of r.outcomes) if (o.position > top) top = o.position;
            batch[i]!.resolve(r);
          }
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err as PowerplantError);
        },
      )
      .catch((err: unknown) => {
        // Only an invariant failure lands here; a promise settles once, so resolved ones stay.
        for (const p of batch) p.reject(err);
      })
      .finally(() => {
        this.#done();
        if (top > 0) this.onCommitted?.(top);
      });
  };

  #done(): void {
    this.#inFlight--;
    if (this.#queue.length > 0) this.#schedule();
    else this.#checkIdle();
  }

  #checkIdle(): void {
    if (this.#inFlight > 0 || this.#queue.length > 0 || this.#scheduled) return;
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const f of w) f();
  }

  /**
   * Stops accepting writes; resolves when every accepted one has settled. Queued writes get
   * `drainTimeoutMs` to commit, then fail with PP_ERR_CLOSED; the batch in flight always settles.
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#inFlight === 0 && this.#queue.length === 0 && !this.#scheduled) return;
    const idle = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.#drainTimeoutMs)));
    const late = await Promise.race([idle.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      const dropped = this.#queue;
      this.#queue = [];
      for (const p of dropped) p.reject(ppError('PP_ERR_CLOSED', { message: `shard ${this.#engine.shard} closed before this write was sent; it was not written` }));
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#scheduled = false;
      }
      this.#checkIdle();
      await idle;
    }
  }
}
