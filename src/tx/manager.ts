/**
 * `openTransactions(store)`: runs transaction functions with retries on conflict, and recovery in
 * the background. See commit.ts for the protocol and docs/tx.md for the guarantees.
 *
 *   const txs = await openTransactions(store);
 *   await txs.run(async (tx) => {
 *     const from = await tx.get(wallets, 'ann');
 *     const to = await tx.get(wallets, 'bob');
 *     await tx.update(wallets, 'ann', { balance: from!.row.balance - 10 });
 *     await tx.update(wallets, 'bob', { balance: to!.row.balance + 10 });
 *   });
 */
import { PowerplantError, ppError, requireArg } from '../errors/index.js';
import { backoffDelayMs } from '../resilience/index.js';
import type { Store } from '../store/index.js';
import { commitTx, lockPk, type CommitContext, type TxCommitInfo } from './commit.js';
import { recoverOnce, type RecoveryReport } from './recovery.js';
import { openSystemTables, type SystemTables } from './system.js';
import { Tx } from './transaction.js';

export interface TransactionsOptions {
  /** Recovery pass interval in ms; 0 = no background recovery (call `recover()`). Default 1000. */
  readonly recoverIntervalMs?: number;
  /**
   * A lock row older than this is an abandoned transaction's: recovery settles it. Must exceed
   * the longest commit (a coordinator slower than this is fenced out and aborts). Default 10000.
   */
  readonly staleMs?: number;
  /** How long decision and log records are kept. Default 24 h. */
  readonly decisionRetainMs?: number;
  /** Default per-run options. */
  readonly defaults?: RunOptions;
  /** Fault-test hook: awaited between the steps of a cross-shard commit. */
  readonly onStep?: (step: string, txId: string) => Promise<void> | void;
}

export interface RunOptions {
  /** Attempts after a conflict abort (PP_ERR_TX_ABORTED). Default 10. */
  readonly retries?: number;
  /** Longest one attempt may take, function and commit. Default 5000. */
  readonly timeoutMs?: number;
  /** Most rows one transaction may touch. Default a third of the store's batchOpsMax. */
  readonly keysMax?: number;
}

export interface TransactionStats {
  readonly committed: { readonly none: number; readonly local: number; readonly twoPc: number };
  /** Attempts aborted by a conflict (each retried or reported). */
  readonly aborts: number;
  /** Runs that failed (after retries, or with an error of the function). */
  readonly failed: number;
  readonly recovery: { readonly passes: number; readonly committed: number; readonly aborted: number; readonly skipped: number; readonly lastErrors: readonly string[] };
}

export class Transactions {
  readonly store: Store;
  readonly #ctx: CommitContext;
  readonly #staleMs: number;
  readonly #defaults: Required<RunOptions>;
  #timer: NodeJS.Timeout | undefined;
  #recovering: Promise<RecoveryReport> | undefined;
  #closed = false;
  readonly #stats = { committed: { none: 0, local: 0, twoPc: 0 }, aborts: 0, failed: 0, recovery: { passes: 0, committed: 0, aborted: 0, skipped: 0, lastErrors: [] as readonly string[] } };

  /** Use `openTransactions`. */
  constructor(store: Store, sys: SystemTables, options: TransactionsOptions) {
    this.store = store;
    const decisionRetainMs = options.decisionRetainMs ?? 24 * 3600 * 1000;
    requireArg(Number.isInteger(decisionRetainMs) && decisionRetainMs >= 60_000, 'decisionRetainMs', 'must be an integer >= 60000');
    this.#staleMs = options.staleMs ?? 10_000;
    requireArg(Number.isInteger(this.#staleMs) && this.#staleMs >= 10, 'staleMs', 'must be an integer >= 10');
    this.#ctx = { store, sys, decisionRetainMs, onStep: options.onStep };
    const d = options.defaults ?? {};
    this.#defaults = { retries: d.retries ?? 10, timeoutMs: d.timeoutMs ?? 5000, keysMax: d.keysMax ?? Math.floor(store.limits.batchOpsMax / 3) };
    checkRunOptions(this.#defaults, store);
    const interval = options.recoverIntervalMs ?? 1000;
    requireArg(Number.isInteger(interval) && interval >= 0, 'recoverIntervalMs', 'must be an integer >= 0');
    if (interval > 0) {
      this.#timer = setInterval(() => {
        if (this.#recovering === undefined) void this.recover().catch(() => undefined);
      }, interval);
      this.#timer.unref();
    }
  }

  /**
   * Runs `fn` as a transaction and resolves its result once committed. A conflict (a row read
   * changed, a row is being committed by another transaction) aborts the attempt and runs `fn`
   * again, up to `retries` times, with jittered backoff; then PP_ERR_TX_ABORTED. An error thrown by
   * `fn` aborts without retrying: nothing of the attempt was written. `fn` may run several
   * times: keep side effects outside it (or make them idempotent).
   */
  async run<R>(fn: (tx: Tx) => Promise<R> | R, options: RunOptions = {}): Promise<R> {
    return (await this.execute(fn, options)).result;
  }

  /** `run`, also resolving how it committed (path, shards, transaction id). */
  async execute<R>(fn: (tx: Tx) => Promise<R> | R, options: RunOptions = {}): Promise<{ result: R; info: TxCommitInfo; attempts: number }> {
    if (this.#closed) throw ppError('PP_ERR_CLOSED', { message: 'transactions are closed' });
    requireArg(typeof fn === 'function', 'fn', 'must be a function (tx) => …');
    const o = { ...this.#defaults, ...options };
    checkRunOptions(o, this.store);
    for (let attempt = 0; ; attempt++) {
      const tx = new Tx({ keysMax: o.keysMax, deadlineMs: Date.now() + o.timeoutMs }, this.#isLocked);
      try {
        const result = await fn(tx);
        tx.end();
        const info = await commitTx(this.#ctx, tx);
        this.#stats.committed[info.path === '2pc' ? 'twoPc' : info.path]++;
        return { result, info, attempts: attempt + 1 };
      } catch (err) {
        tx.end();
        const abort = err instanceof PowerplantError && err.code === 'PP_ERR_TX_ABORTED';
        if (abort) this.#stats.aborts++;
        const timedOut = abort && (err.data as { reason?: string } | undefined)?.reason === 'timeout';
        if (!abort || timedOut || attempt >= o.retries) {
          this.#stats.failed++;
          throw err;
        }
        await new Promise((r) => setTimeout(r, backoffDelayMs(attempt, 2, 200)));
      }
    }
  }

  readonly #isLocked = async (shard: number, physical: string, keyJson: string): Promise<boolean> =>
    (await this.#ctx.sys.locks.get(lockPk(this.store, shard, physical, keyJson))) !== undefined;

  /** One recovery pass now (the background timer runs the same). */
  recover(): Promise<RecoveryReport> {
    if (this.#recovering !== undefined) return this.#recovering;
    const p = recoverOnce(this.#ctx, this.#staleMs).then((r) => {
      const s = this.#stats.recovery;
      s.passes++;
      s.committed += r.committed;
      s.aborted += r.aborted;
      s.skipped += r.skipped;
      if (r.errors.length > 0) s.lastErrors = r.errors;
      return r;
    });
    this.#recovering = p;
    const clear = (): void => {
      this.#recovering = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /** Counters for status pages and tests. */
  stats(): TransactionStats {
    const s = this.#stats;
    return { committed: { ...s.committed }, aborts: s.aborts, failed: s.failed, recovery: { ...s.recovery } };
  }

  /** Stops background recovery (the store stays open: it is the caller's). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#recovering?.catch(() => undefined);
  }
}

function checkRunOptions(o: Required<RunOptions>, store: Store): void {
  requireArg(Number.isInteger(o.retries) && o.retries >= 0 && o.retries <= 1000, 'retries', 'must be an integer in [0, 1000]');
  requireArg(Number.isInteger(o.timeoutMs) && o.timeoutMs >= 1 && o.timeoutMs <= 600_000, 'timeoutMs', 'must be an integer in [1, 600000]');
  const max = Math.floor(store.limits.batchOpsMax / 3);
  requireArg(Number.isInteger(o.keysMax) && o.keysMax >= 1 && o.keysMax <= max, 'keysMax', `must be an integer in [1, ${max}] (a third of the store's batchOpsMax)`);
}

/** Opens the transaction layer on a store (creates its tables on every shard). */
export async function openTransactions(store: Store, options: TransactionsOptions = {}): Promise<Transactions> {
  const sys = await openSystemTables(store);
  return new Transactions(store, sys, options);
}
