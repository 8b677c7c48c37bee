/**
 * What a workflow function sees: `ctx.step`, `ctx.sleep`, `ctx.waitForSignal`, `ctx.child`.
 *
 * Execution is replay. Every call is numbered in call order (its `seq`); the first time it runs
 * its result is checkpointed as step row `seq`; when the workflow runs again (after a crash, on
 * another node) a call whose row exists returns the recorded result without running, so the
 * function deterministically walks back to where it stopped and goes on from there. A recorded
 * row whose name is not the call's name means the code changed under a running workflow:
 * PP_ERR_NONDETERMINISM.
 *
 * A step's checkpoint commits in the same transaction as the step's own store writes (the `tx`
 * it receives) and a check that the workflow row still has the version this run started with
 * (the fence: a takeover by another node bumps it, and a step of the old run then fails with
 * PP_ERR_FENCED instead of committing). A step therefore takes effect exactly once.
 */
import { PowerplantError, ppError } from '../../errors/index.js';
import { backoffDelayMs } from '../../resilience/index.js';
import type { Tx } from '../transaction.js';
import type { Transactions } from '../manager.js';
import { decodeValue, encodeValue, type StepRow, type WorkflowRow, type WorkflowTables } from './tables.js';

export interface StepOptions<R> {
  /** Attempts after the first for a retryable error (see `retryable`). Default 3. */
  readonly retries?: number;
  /** Backoff base and cap, ms (full jitter). Default 50 / 2000. */
  readonly backoffMs?: number;
  readonly backoffMaxMs?: number;
  /** Longest one attempt may take (PP_ERR_TIMEOUT, retryable). Default 30000. */
  readonly timeoutMs?: number;
  /** Which errors are retried; default: a PowerplantError marked retryable, or any non-Powerplant error. */
  readonly retryable?: (err: unknown) => boolean;
  /** Conflict retries of the step's transaction (a hot row written by many workflows). Default 10. */
  readonly txRetries?: number;
  /** Undoes the step when a later step fails or the workflow is cancelled; runs once, as its own step. */
  readonly compensate?: (output: R, tx: Tx) => Promise<void> | void;
}

export interface WorkflowContext {
  readonly id: string;
  /** How many times the workflow was taken over by a node (0 on its first run). */
  readonly takeovers: number;
  step<R>(name: string, fn: (tx: Tx) => Promise<R> | R, options?: StepOptions<R>): Promise<R>;
  /** A durable sleep: after a restart it waits only what is left. */
  sleep(ms: number): Promise<void>;
  /** Waits for `signal(id, name, payload)`; resolves the payload, or undefined after `timeoutMs`. */
  waitForSignal<P = unknown>(name: string, options?: { timeoutMs?: number }): Promise<P | undefined>;
  /** Runs a child workflow (id `${parent id}/${seq}` unless given) and resolves its result. */
  child<I, O>(def: { readonly name: string }, input: I, options?: { id?: string }): Promise<O>;
}

/** The engine's side of a run: everything the context needs that is not the workflow's own. */
export interface RunEnv {
  readonly txs: Transactions;
  readonly tables: WorkflowTables;
  readonly pollMs: number;
  /** Starts (idempotently) and awaits a child workflow. */
  readonly runChild: (name: string, id: string, input: unknown, parent: string) => Promise<unknown>;
  /** False once this run lost its lease (renewal found another owner): steps then stop. */
  readonly stillOwner: () => boolean;
  readonly deadlineMs: number | undefined;
}

interface Compensation {
  readonly name: string;
  readonly output: unknown;
  readonly fn: (output: unknown, tx: Tx) => Promise<void> | void;
}

export function errorJson(err: unknown): string {
  if (err instanceof PowerplantError) {
    return JSON.stringify({ code: err.code, message: err.message, ...(err.field === undefined ? {} : { field: err.field }), ...(err.data === undefined ? {} : { data: err.data }) });
  }
  return JSON.stringify({ code: 'PP_ERR_STEP_FAILED', message: err instanceof Error ? err.message : String(err) });
}

export function errorOf(json: string | undefined, fallback: string): PowerplantError {
  if (json === undefined) return ppError('PP_ERR_STEP_FAILED', { message: fallback });
  const e = JSON.parse(json) as { code: string; message: string; field?: string; data?: Record<string, unknown> };
  try {
    return new PowerplantError(e.code as never, { message: e.message, ...(e.field === undefined ? {} : { field: e.field }), ...(e.data === undefined ? {} : { data: e.data }) });
  } catch {
    return ppError('PP_ERR_STEP_FAILED', { message: e.message });
  }
}

function defaultRetryable(err: unknown): boolean {
  return err instanceof PowerplantError ? err.retryable : true;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Context implements WorkflowContext {
  readonly id: string;
  readonly takeovers: number;
  readonly compensations: Compensation[] = [];
  #seq = 0;
  /** Compensating: a cancel request no longer stops steps (the compensations are what it asked for). */
  #compensating = false;
  /** The workflow row's version this run commits under (changes only with our own writes). */
  #version: number;
  readonly #fence: number;
  readonly #history: Map<number, StepRow>;
  readonly #env: RunEnv;

  constructor(row: WorkflowRow, version: number, history: readonly StepRow[], env: RunEnv) {
    this.id = row.id;
    this.#fence = row.fence;
    this.takeovers = row.fence - 1;
    this.#version = version;
    this.#history = new Map(history.map((h) => [h.seq, h]));
    this.#env = env;
  }

  get version(): number {
    return this.#version;
  }

  /** The recorded row of call `seq`, checked against the call's name. */
  #replayed(seq: number, name: string, kind: string): StepRow | undefined {
    const h = this.#history.get(seq);
    if (h !== undefined && (h.name !== name || h.kind !== kind)) {
      throw ppError('PP_ERR_NONDETERMINISM', { message: `workflow ${this.id}: call #${seq} is ${kind} "${name}" but the recorded history has ${h.kind} "${h.name}" there`, data: { seq, expected: h.name, got: name } });
    }
    return h;
  }

  /**
   * Checks the fence inside a step's transaction: the workflow row must be the version this run
   * holds. A first attempt only states it (no read); a retry reads the row to tell a takeover or a
   * cancel (typed errors) from an ordinary conflict on the step's own rows.
   */
  async #guard(tx: Tx, attempt: number): Promise<void> {
    const { workflows } = this.#env.tables;
    if (!this.#env.stillOwner()) throw ppError('PP_ERR_FENCED', { message: `workflow ${this.id}: this node lost its lease` });
    if (this.#env.deadlineMs !== undefined && Date.now() > this.#env.deadlineMs) throw ppError('PP_ERR_TIMEOUT', { message: `workflow ${this.id} ran past its timeoutMs` });
    if (attempt === 0) {
      tx.expect(workflows, this.id, this.#version);
      return;
    }
    const w = await tx.get(workflows, this.id);
    if (w === undefined || w.row.fence !== this.#fence) throw ppError('PP_ERR_FENCED', { message: `workflow ${this.id} was taken over by another node (fence ${w?.row.fence ?? '?'} > ${this.#fence})` });
    this.#version = w.version;
    if (w.row.cancelRequested === true && !this.#compensating) throw ppError('PP_ERR_CANCELLED', { message: `workflow ${this.id} was cancelled` });
  }

  /** Commits `fn`'s writes with checkpoint row `seq` in one transaction; resolves fn's result. */
  async #checkpoint<R>(seq: number, name: string, kind: string, fn: (tx: Tx) => Promise<R> | R, attempts: number, startedMs: number, timeoutMs: number, txRetries = 10): Promise<R> {
    let attempt = 0;
    const { result } = await this.#env.txs.execute(
      async (tx) => {
        await this.#guard(tx, attempt++);
        const out = await fn(tx);
        const key = { wf: this.id, seq };
        tx.upsert(this.#env.tables.steps, { ...key, name, kind, state: 'done', output: encodeValue(out, `step "${name}" result`), attempts, startedMs, endedMs: Date.now() });
        // The checkpoint's shard decides the step's transaction: a visible checkpoint means the
        // whole step committed (its writes on other shards follow, by the coordinator or recovery).
        tx.coordinateOn(this.#env.tables.steps, key);
        return out;
      },
      { timeoutMs, retries: txRetries },
    );
    return result;
  }

  async #record(seq: number, name: string, kind: string, state: 'failed', error: unknown, attempts: number, startedMs: number): Promise<void> {
    let attempt = 0;
    await this.#env.txs.run(async (tx) => {
      await this.#guard(tx, attempt++);
      tx.upsert(this.#env.tables.steps, { wf: this.id, seq, name, kind, state, error: errorJson(error), attempts, startedMs, endedMs: Date.now() });
    });
  }

  /** A completed (or replayed) step: its compensation joins the stack. */
  #done<R>(name: string, out: R, options: StepOptions<R>): void {
    if (options.compensate !== undefined) this.compensations.push({ name, output: out, fn: options.compensate as Compensation['fn'] });
  }

  async step<R>(name: string, fn: (tx: Tx) => Promise<R> | R, options: StepOptions<R> = {}): Promise<R> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw ppError('PP_ERR_INVALID_ARGUMENT', { field: 'name', message: 'name: a step needs a name of 1..200 characters' });
    const seq = this.#seq++;
    const h = this.#replayed(seq, name, 'step');
    if (h !== undefined) {
      if (h.state === 'failed') throw errorOf(h.error, `step "${name}" failed`);
      const out = decodeValue(h.output) as R;
      this.#done(name, out, options);
      return out;
    }
    const retries = options.retries ?? 3;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const retryable = options.retryable ?? defaultRetryable;
    const startedMs = Date.now();
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        // The previous attempt's outcome may be unknown (an engine timed out or dropped the
        // connection after the commit was sent): if its checkpoint exists, it committed.
        const done = await this.#env.tables.steps.get({ wf: this.id, seq });
        if (done !== undefined && done.row.state === 'done') {
          const out = decodeValue(done.row.output) as R;
          this.#done(name, out, options);
          return out;
        }
      }
      try {
        const out = await this.#checkpoint(seq, name, 'step', fn, attempt + 1, startedMs, timeoutMs, options.txRetries);
        this.#done(name, out, options);
        return out;
      } catch (err) {
        const code = err instanceof PowerplantError ? err.code : undefined;
        if (code === 'PP_ERR_FENCED' || code === 'PP_ERR_CANCELLED' || code === 'PP_ERR_NONDETERMINISM') throw err;
        if (code !== 'PP_ERR_TIMEOUT' && code !== 'PP_ERR_TX_ABORTED' && !retryable(err)) {
          // A typed error the step chose (a decline, a conflict, bad input) is the workflow's error
          // as it is; anything else is PP_ERR_STEP_FAILED naming the step.
          const failure = err instanceof PowerplantError ? err : ppError('PP_ERR_STEP_FAILED', { message: `step "${name}" failed: ${err instanceof Error ? err.message : String(err)}`, cause: err, data: { step: name, attempts: attempt + 1 } });
          await this.#record(seq, name, 'step', 'failed', failure, attempt + 1, startedMs);
          throw failure;
        }
        if (attempt >= retries) {
          const failure = ppError('PP_ERR_STEP_FAILED', { message: `step "${name}" failed after ${attempt + 1} attempts: ${err instanceof Error ? err.message : String(err)}`, cause: err, data: { step: name, attempts: attempt + 1, lastCode: code ?? null } });
          await this.#record(seq, name, 'step', 'failed', failure, attempt + 1, startedMs);
          throw failure;
        }
        await sleep(backoffDelayMs(attempt, options.backoffMs ?? 50, options.backoffMaxMs ?? 2000));
      }
    }
  }

  async sleep(ms: number): Promise<void> {
    if (!(Number.isInteger(ms) && ms >= 0 && ms <= 30 * 24 * 3600 * 1000)) throw ppError('PP_ERR_INVALID_ARGUMENT', { field: 'ms', message: 'ms: must be an integer in [0, 30 days]' });
    const seq = this.#seq++;
    const h = this.#replayed(seq, 'sleep', 'sleep');
    const wakeAt = h !== undefined ? (decodeValue(h.output) as number) : await this.#checkpoint(seq, 'sleep', 'sleep', () => Date.now() + ms, 1, Date.now(), 30_000);
    while (Date.now() < wakeAt) {
      if (!this.#env.stillOwner()) throw ppError('PP_ERR_FENCED', { message: `workflow ${this.id}: this node lost its lease` });
      await sleep(Math.min(wakeAt - Date.now(), this.#env.pollMs));
    }
  }

  async waitForSignal<P = unknown>(name: string, options: { timeoutMs?: number } = {}): Promise<P | undefined> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw ppError('PP_ERR_INVALID_ARGUMENT', { field: 'name', message: 'name: a signal needs a name of 1..200 characters' });
    const timeoutMs = options.timeoutMs ?? 24 * 3600 * 1000;
    const seq = this.#seq++;
    const h = this.#replayed(seq, name, 'signal');
    if (h !== undefined) return decodeValue(h.output) as P | undefined;
    // The wait's deadline is checkpointed first (as the call after this one would not be), so a
    // restarted run waits only what is left.
    const untilSeq = this.#seq++;
    const hu = this.#replayed(untilSeq, `${name}:until`, 'sleep');
    const until = hu !== undefined ? (decodeValue(hu.output) as number) : await this.#checkpoint(untilSeq, `${name}:until`, 'sleep', () => Date.now() + timeoutMs, 1, Date.now(), 30_000);
    const { signals } = this.#env.tables;
    for (;;) {
      const s = await signals.get({ wf: this.id, name });
      if (s !== undefined || Date.now() >= until) {
        const payload = s === undefined ? undefined : decodeValue(s.row.payload);
        return (await this.#checkpoint(seq, name, 'signal', () => payload, 1, Date.now(), 30_000)) as P | undefined;
      }
      if (!this.#env.stillOwner()) throw ppError('PP_ERR_FENCED', { message: `workflow ${this.id}: this node lost its lease` });
      await sleep(Math.min(this.#env.pollMs, Math.max(1, until - Date.now())));
    }
  }

  async child<I, O>(def: { readonly name: string }, input: I, options: { id?: string } = {}): Promise<O> {
    const seq = this.#seq++;
    const childId = options.id ?? `${this.id}/${seq}`;
    const h = this.#replayed(seq, def.name, 'child');
    if (h !== undefined) {
      if (h.state === 'failed') throw errorOf(h.error, `child workflow ${childId} failed`);
      return decodeValue(h.output) as O;
    }
    const startedMs = Date.now();
    let out: unknown;
    try {
      out = await this.#env.runChild(def.name, childId, input, this.id);
    } catch (err) {
      if (err instanceof PowerplantError && (err.code === 'PP_ERR_FENCED' || err.code === 'PP_ERR_CLOSED')) throw err;
      await this.#record(seq, def.name, 'child', 'failed', err, 1, startedMs);
      throw err;
    }
    return (await this.#checkpoint(seq, def.name, 'child', () => out, 1, startedMs, 30_000)) as O;
  }

  /** Runs the compensations of completed steps, newest first, each once (checkpointed). */
  async compensate(): Promise<void> {
    this.#compensating = true;
    for (let i = this.compensations.length - 1; i >= 0; i--) {
      const c = this.compensations[i]!;
      const seq = this.#seq++;
      const name = `compensate:${c.name}`;
      if (this.#replayed(seq, name, 'compensate') !== undefined) continue;
      for (let attempt = 0; ; attempt++) {
        try {
          await this.#checkpoint(seq, name, 'compensate', (tx) => c.fn(c.output, tx), attempt + 1, Date.now(), 30_000);
          break;
        } catch (err) {
          if (err instanceof PowerplantError && err.code === 'PP_ERR_FENCED') throw err;
          // A compensation must finish: retried with backoff (bounded per attempt by its timeout).
          if (attempt >= 20) throw err;
          await sleep(backoffDelayMs(attempt, 50, 2000));
        }
      }
    }
  }
}
