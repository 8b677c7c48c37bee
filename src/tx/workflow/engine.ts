/**
 * Durable workflows: `defineWorkflow` + `openWorkflows(store, txs)`.
 *
 *   const checkout = defineWorkflow({ name: 'checkout', async run(ctx, order: Order) {
 *     const hold = await ctx.step('reserve', (tx) => reserve(tx, order), { compensate: (h, tx) => release(tx, h) });
 *     const auth = await ctx.step('authorize', () => payments.authorize(order), { retries: 5 });
 *     await ctx.step('write-order', (tx) => tx.insert(orders, { ... }));
 *     return { orderId: order.id };
 *   } });
 *   const wf = await openWorkflows(store, txs);  wf.register(checkout);
 *   const h = await wf.start(checkout, order, { id: order.id });   // the id is an idempotency key
 *   await h.result();
 *
 * Ownership: the node that starts a workflow holds its lease (a kv entry, renewed every leaseMs/3)
 * and runs it. A node that finds a running workflow whose lease lapsed (its owner crashed or
 * stalled) takes it over in one transaction that bumps the workflow's fence, then replays it
 * (context.ts); the old owner's next step fails its fence check and it stops. A workflow whose
 * step fails (not retryable, or out of retries) runs the compensations of its completed steps,
 * newest first, and ends `compensated` (or `failed` when there were none); `cancel` does the same
 * at the next step, ending `cancelled`.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { PowerplantError, ppError, requireArg } from '../../errors/index.js';
import type { Store } from '../../store/index.js';
import type { Transactions } from '../manager.js';
import { Context, errorJson, errorOf, type WorkflowContext } from './context.js';
import { decodeValue, encodeValue, openWorkflowTables, type StepRow, type WorkflowRow, type WorkflowTables } from './tables.js';

export interface WorkflowDef<I = unknown, O = unknown> {
  readonly name: string;
  readonly run: (ctx: WorkflowContext, input: I) => Promise<O>;
  /** Longest the whole workflow may run, from its start; past it the next step fails and it compensates. */
  readonly timeoutMs?: number;
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/;

export function defineWorkflow<I, O>(def: WorkflowDef<I, O>): WorkflowDef<I, O> {
  requireArg(typeof def === 'object' && def !== null, 'workflow', 'must be an object');
  requireArg(typeof def.name === 'string' && NAME_RE.test(def.name), 'name', `must match ${NAME_RE.source}`);
  requireArg(typeof def.run === 'function', 'run', 'must be a function (ctx, input) => …');
  requireArg(def.timeoutMs === undefined || (Number.isInteger(def.timeoutMs) && def.timeoutMs > 0), 'timeoutMs', 'must be a positive integer');
  return Object.freeze({ ...def });
}

export type WorkflowState = 'running' | 'completed' | 'failed' | 'compensated' | 'cancelled';
const TERMINAL = new Set<string>(['completed', 'failed', 'compensated', 'cancelled']);

export interface WorkflowStatus {
  readonly id: string;
  readonly name: string;
  readonly state: WorkflowState;
  readonly owner: string;
  readonly takeovers: number;
  readonly parent: string | undefined;
  readonly createdMs: number;
  readonly updatedMs: number;
  readonly output?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  readonly cancelRequested: boolean;
  /** The history: every checkpointed call, in order. */
  readonly steps: readonly { readonly seq: number; readonly name: string; readonly kind: string; readonly state: string; readonly attempts: number; readonly startedMs: number; readonly endedMs: number; readonly error?: string }[];
}

export interface WorkflowHandle<O> {
  readonly id: string;
  /** Whether this `start` created the workflow (false: the id existed, nothing new was started). */
  readonly created: boolean;
  /** Resolves the output once completed; rejects with the workflow's error otherwise. */
  result(options?: { timeoutMs?: number }): Promise<O>;
  status(): Promise<WorkflowStatus>;
}

export interface WorkflowsOptions {
  /** This node's name in leases and status. Default `<hostname>:<pid>:<random>`. */
  readonly owner?: string;
  /** Lease length; a workflow whose owner stops renewing is taken over after it. Default 5000. */
  readonly leaseMs?: number;
  /** Poll interval for signals, sleeps and results of workflows run elsewhere. Default 100. */
  readonly pollMs?: number;
  /** Interval of the takeover pass (0 = none; call `recover()`). Default 1000. */
  readonly recoverIntervalMs?: number;
  /** Workflows run at once by this node; more wait their turn. Default 1000. */
  readonly concurrency?: number;
}

interface Terminal {
  readonly state: WorkflowState;
  readonly output?: unknown;
  readonly error?: PowerplantError;
}

interface LocalRun {
  readonly fence: number;
  lost: boolean;
  done: Promise<Terminal | undefined>;
}

export class Workflows {
  readonly owner: string;
  readonly tables: WorkflowTables;
  readonly #txs: Transactions;
  readonly #defs = new Map<string, WorkflowDef>();
  readonly #local = new Map<string, LocalRun>();
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #concurrency: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  #renewTimer: NodeJS.Timeout | undefined;
  #recoverTimer: NodeJS.Timeout | undefined;
  #recovering: Promise<number> | undefined;
  #closed = false;

  /** Use `openWorkflows`. */
  constructor(txs: Transactions, tables: WorkflowTables, options: WorkflowsOptions) {
    this.#txs = txs;
    this.tables = tables;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    requireArg(typeof this.owner === 'string' && this.owner.length >= 1 && this.owner.length <= 200, 'owner', 'must be 1..200 characters');
    this.#leaseMs = options.leaseMs ?? 5000;
    requireArg(Number.isInteger(this.#leaseMs) && this.#leaseMs >= 30, 'leaseMs', 'must be an integer >= 30');
    this.#pollMs = options.pollMs ?? 100;
    requireArg(Number.isInteger(this.#pollMs) && this.#pollMs >= 1, 'pollMs', 'must be a positive integer');
    this.#concurrency = options.concurrency ?? 1000;
    requireArg(Number.isInteger(this.#concurrency) && this.#concurrency >= 1, 'concurrency', 'must be a positive integer');
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(10, Math.floor(this.#leaseMs / 3)));
    this.#renewTimer.unref();
    const every = options.recoverIntervalMs ?? 1000;
    requireArg(Number.isInteger(every) && every >= 0, 'recoverIntervalMs', 'must be an integer >= 0');
    if (every > 0) {
      this.#recoverTimer = setInterval(() => void this.recover().catch(() => undefined), every);
      this.#recoverTimer.unref();
    }
  }

  /** Makes definitions runnable on this node (starting, taking over, children). */
  register(...defs: WorkflowDef<never, unknown>[]): this {
    for (const d of defs) {
      requireArg(typeof d?.name === 'string' && typeof d.run === 'function', 'workflow', 'must come from defineWorkflow');
      const prev = this.#defs.get(d.name);
      requireArg(prev === undefined || prev === d, 'workflow', `a different workflow named "${d.name}" is already registered`);
      this.#defs.set(d.name, d as WorkflowDef);
    }
    return this;
  }

  #checkOpen(): void {
    if (this.#closed) throw ppError('PP_ERR_CLOSED', { message: 'workflows are closed' });
  }

  /**
   * Starts a workflow and runs it on this node. The id (default a random UUID) is an idempotency
   * key: starting an id that exists does not run it again, it returns the existing workflow's
   * handle (PP_ERR_CONFLICT if that id belongs to a different workflow).
   */
  async start<I, O>(def: WorkflowDef<I, O>, input: I, options: { id?: string; parent?: string } = {}): Promise<WorkflowHandle<O>> {
    this.#checkOpen();
    requireArg(typeof def?.name === 'string' && typeof def.run === 'function', 'workflow', 'must come from defineWorkflow');
    if (!this.#defs.has(def.name)) this.register(def as WorkflowDef<never, unknown>);
    const id = options.id ?? randomUUID();
    requireArg(typeof id === 'string' && id.length >= 1 && id.length <= 200 && !id.includes('\u0000'), 'id', 'must be 1..200 characters without NUL');
    let enc: string;
    try {
      enc = encodeValue(input, 'input');
    } catch (err) {
      throw ppError('PP_ERR_VALIDATION', { field: 'input', message: err instanceof Error ? err.message : String(err) });
    }
    const now = Date.now();
    const { workflows, leases } = this.tables;
    try {
      await this.#txs.run(async (tx) => {
        await tx.insert(workflows, { id, name: def.name, state: 'running', input: enc, fence: 1, owner: this.owner, createdMs: now, updatedMs: now, ...(options.parent === undefined ? {} : { parent: options.parent }) });
        tx.put(leases, id, { owner: this.owner, fence: 1, untilMs: now + this.#leaseMs });
      });
    } catch (err) {
      if (!(err instanceof PowerplantError && err.code === 'PP_ERR_CONFLICT')) throw err;
      const existing = await workflows.get(id);
      if (existing !== undefined && existing.row.name !== def.name) {
        throw ppError('PP_ERR_CONFLICT', { field: 'id', message: `id: ${id} is already a "${existing.row.name}" workflow`, data: { id, name: existing.row.name } });
      }
      return this.#handle<O>(id, false);
    }
    this.#launch(id, 1);
    return this.#handle<O>(id, true);
  }

  #handle<O>(id: string, created: boolean): WorkflowHandle<O> {
    return { id, created, result: (o) => this.result<O>(id, o), status: () => this.status(id) };
  }

  /** The workflow's state alone (one point read), undefined for an unknown id. */
  async state(id: string): Promise<WorkflowState | undefined> {
    return (await this.tables.workflows.get(id))?.row.state as WorkflowState | undefined;
  }

  /** Waits for a workflow's end; resolves its output or rejects with its error. */
  async result<O>(id: string, options: { timeoutMs?: number } = {}): Promise<O> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    requireArg(Number.isInteger(timeoutMs) && timeoutMs >= 1, 'timeoutMs', 'must be a positive integer');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const local = this.#local.get(id);
      const t = local !== undefined ? await local.done : undefined;
      if (t !== undefined) return this.#settle<O>(t);
      const w = await this.tables.workflows.get(id);
      if (w === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'id', message: `no workflow ${id}` });
      if (TERMINAL.has(w.row.state)) return this.#settle<O>(terminalOf(w.row));
      if (Date.now() >= deadline) throw ppError('PP_ERR_TIMEOUT', { message: `workflow ${id} still running after ${timeoutMs} ms` });
      await new Promise((r) => setTimeout(r, Math.min(this.#pollMs, Math.max(1, deadline - Date.now()))));
    }
  }

  #settle<O>(t: Terminal): O {
    if (t.state === 'completed') return t.output as O;
    throw t.error ?? ppError('PP_ERR_STEP_FAILED', { message: `workflow ended ${t.state}` });
  }

  /** The workflow's state and history; PP_ERR_NOT_FOUND for an unknown id. */
  async status(id: string): Promise<WorkflowStatus> {
    requireArg(typeof id === 'string' && id.length >= 1, 'id', 'must be a non-empty string');
    const w = await this.tables.workflows.get(id);
    if (w === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'id', message: `no workflow ${id}` });
    const steps = await this.#history(id);
    const r = w.row;
    const error = r.error === undefined ? undefined : (JSON.parse(r.error) as { code: string; message: string });
    return {
      id: r.id,
      name: r.name,
      state: r.state as WorkflowState,
      owner: r.owner,
      takeovers: r.fence - 1,
      parent: r.parent,
      createdMs: r.createdMs,
      updatedMs: r.updatedMs,
      cancelRequested: r.cancelRequested === true,
      ...(r.output === undefined ? {} : { output: decodeValue(r.output) }),
      ...(error === undefined ? {} : { error: { code: error.code, message: error.message } }),
      steps: steps.map((s) => ({ seq: s.seq, name: s.name, kind: s.kind, state: s.state, attempts: s.attempts, startedMs: s.startedMs, endedMs: s.endedMs, ...(s.error === undefined ? {} : { error: s.error }) })),
    };
  }

  /** Workflows by state (default running), oldest first; for status pages. */
  async list(options: { state?: WorkflowState; limit?: number } = {}): Promise<{ id: string; name: string; state: string; owner: string; createdMs: number; updatedMs: number }[]> {
    const page = await this.tables.workflows.query({ index: 'byState', where: { state: options.state ?? 'running' }, limit: options.limit ?? 100 });
    return page.items.map(({ row: r }) => ({ id: r.id, name: r.name, state: r.state, owner: r.owner, createdMs: r.createdMs, updatedMs: r.updatedMs }));
  }

  /** Counts per state (fan-out over shards), for status pages. */
  async counts(): Promise<Record<WorkflowState, number>> {
    const states: WorkflowState[] = ['running', 'completed', 'failed', 'compensated', 'cancelled'];
    const n = await Promise.all(states.map((state) => this.tables.workflows.count({ index: 'byState', where: { state } })));
    return Object.fromEntries(states.map((s, i) => [s, n[i]!])) as Record<WorkflowState, number>;
  }

  /** Delivers a signal (first delivery wins; later ones with the same name are ignored). */
  async signal(id: string, name: string, payload?: unknown): Promise<void> {
    this.#checkOpen();
    requireArg(typeof name === 'string' && name.length >= 1 && name.length <= 200, 'name', 'must be 1..200 characters');
    const w = await this.tables.workflows.get(id);
    if (w === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'id', message: `no workflow ${id}` });
    await this.tables.signals.insert({ wf: id, name, payload: encodeValue(payload, 'payload'), sentMs: Date.now() }).catch((err: unknown) => {
      if (!(err instanceof PowerplantError && err.code === 'PP_ERR_CONFLICT')) throw err;
    });
  }

  /** Asks a running workflow to stop: at its next step it compensates and ends `cancelled`. */
  async cancel(id: string): Promise<void> {
    this.#checkOpen();
    await this.#txs.run(async (tx) => {
      const w = await tx.get(this.tables.workflows, id);
      if (w === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'id', message: `no workflow ${id}` });
      if (TERMINAL.has(w.row.state)) return;
      await tx.update(this.tables.workflows, id, { cancelRequested: true, updatedMs: Date.now() });
    });
  }

  async #history(id: string): Promise<StepRow[]> {
    const out: StepRow[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.tables.steps.query({ where: { wf: id }, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      for (const i of page.items) out.push(i.row);
      cursor = page.cursor;
    } while (cursor !== undefined);
    return out;
  }

  async #slot(): Promise<void> {
    if (this.#running < this.#concurrency) {
      this.#running++;
      return;
    }
    await new Promise<void>((r) => this.#waiting.push(r));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#running--;
  }

  #launch(id: string, fence: number): void {
    const run: LocalRun = { fence, lost: false, done: Promise.resolve(undefined) };
    run.done = (async () => {
      await this.#slot();
      try {
        return await this.#execute(id, run);
      } finally {
        this.#release();
      }
    })().catch(() => undefined);
    this.#local.set(id, run);
    void run.done.finally(() => {
      if (this.#local.get(id) === run) this.#local.delete(id);
    });
  }

  async #execute(id: string, run: LocalRun): Promise<Terminal | undefined> {
    const w = await this.tables.workflows.get(id);
    if (w === undefined || w.row.state !== 'running' || w.row.fence !== run.fence) return undefined;
    const def = this.#defs.get(w.row.name);
    if (def === undefined) return undefined;
    const history = await this.#history(id);
    const ctx = new Context(w.row, w.version, history, {
      txs: this.#txs,
      tables: this.tables,
      pollMs: this.#pollMs,
      runChild: (name, childId, input, parent) => this.#runChild(name, childId, input, parent),
      stillOwner: () => !run.lost && !this.#closed,
      deadlineMs: def.timeoutMs === undefined ? undefined : w.row.createdMs + def.timeoutMs,
    });
    let out: unknown;
    let failure: unknown;
    try {
      out = await def.run(ctx, decodeValue(w.row.input) as never);
    } catch (err) {
      failure = err;
    }
    if (failure === undefined) return this.#finish(id, run, { state: 'completed', output: out });
    if (stops(failure)) return undefined;
    if (failure instanceof PowerplantError && failure.code === 'PP_ERR_NONDETERMINISM') return this.#finish(id, run, { state: 'failed', error: failure });
    const cancelled = failure instanceof PowerplantError && failure.code === 'PP_ERR_CANCELLED';
    try {
      await ctx.compensate();
    } catch (err) {
      if (stops(err)) return undefined;
      return this.#finish(id, run, { state: 'failed', error: asPp(err) });
    }
    return this.#finish(id, run, { state: cancelled ? 'cancelled' : ctx.compensations.length > 0 ? 'compensated' : 'failed', error: asPp(failure) });
  }

  async #finish(id: string, run: LocalRun, t: Terminal): Promise<Terminal | undefined> {
    const { workflows, leases } = this.tables;
    try {
      await this.#txs.run(async (tx) => {
        const w = await tx.get(workflows, id);
        if (w === undefined || w.row.fence !== run.fence) throw ppError('PP_ERR_FENCED', { message: `workflow ${id} was taken over` });
        await tx.update(workflows, id, {
          state: t.state,
          updatedMs: Date.now(),
          ...(t.state === 'completed' ? { output: encodeValue(t.output, 'output') } : {}),
          ...(t.error === undefined ? {} : { error: errorJson(t.error) }),
        });
        tx.delete(leases, id);
      });
    } catch (err) {
      if (stops(err)) return undefined;
      throw err;
    }
    return t;
  }

  async #runChild(name: string, id: string, input: unknown, parent: string): Promise<unknown> {
    const def = this.#defs.get(name);
    if (def === undefined) throw ppError('PP_ERR_NOT_FOUND', { message: `workflow "${name}" is not registered on this node` });
    await this.start(def, input, { id, parent });
    return this.result(id, { timeoutMs: 24 * 3600 * 1000 });
  }

  /** Renews the leases of the workflows this node runs; marks a run lost when another node owns it. */
  async #renew(): Promise<void> {
    const { leases } = this.tables;
    await Promise.allSettled(
      [...this.#local].map(async ([id, run]) => {
        const l = await leases.get(id);
        // No lease: the run is finishing (its end deletes it). Another owner or fence: taken over.
        if (l === undefined) return;
        if (l.value.owner !== this.owner || l.value.fence !== run.fence) {
          run.lost = true;
          return;
        }
        await leases.cas(id, l.version, { ...l.value, untilMs: Date.now() + this.#leaseMs });
      }),
    );
  }

  /**
   * One takeover pass: running workflows (of names registered here) whose lease lapsed are taken
   * over (fence bumped in one transaction) and resumed on this node. Resolves how many.
   */
  recover(): Promise<number> {
    if (this.#recovering !== undefined) return this.#recovering;
    const p = this.#recoverOnce();
    this.#recovering = p;
    const clear = (): void => {
      this.#recovering = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  async #recoverOnce(): Promise<number> {
    if (this.#closed) return 0;
    const { workflows, leases } = this.tables;
    let taken = 0;
    const page = await workflows.query({ index: 'byState', where: { state: 'running' }, limit: 200 });
    for (const { row } of page.items) {
      if (this.#local.has(row.id) || !this.#defs.has(row.name)) continue;
      const l = await leases.get(row.id);
      if (l !== undefined && l.value.untilMs > Date.now()) continue;
      let fence = 0;
      try {
        await this.#txs.run(async (tx) => {
          const w = await tx.get(workflows, row.id);
          if (w === undefined || w.row.state !== 'running') throw ppError('PP_ERR_CONFLICT', { message: 'no longer running' });
          const lease = await tx.get(leases, row.id);
          if (lease !== undefined && lease.value.untilMs > Date.now()) throw ppError('PP_ERR_CONFLICT', { message: 'lease renewed' });
          fence = w.row.fence + 1;
          await tx.update(workflows, row.id, { fence, owner: this.owner, updatedMs: Date.now() });
          tx.put(leases, row.id, { owner: this.owner, fence, untilMs: Date.now() + this.#leaseMs });
        }, { retries: 2 });
      } catch {
        continue;
      }
      taken++;
      this.#launch(row.id, fence);
    }
    return taken;
  }

  /** Workflows this node is running now. */
  get runningHere(): number {
    return this.#local.size;
  }

  /** Stops renewing and taking over. Runs in progress stop at their next step (their leases lapse). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#renewTimer);
    clearInterval(this.#recoverTimer);
    await this.#recovering?.catch(() => undefined);
  }
}

function stops(err: unknown): boolean {
  return err instanceof PowerplantError && (err.code === 'PP_ERR_FENCED' || err.code === 'PP_ERR_CLOSED');
}

function asPp(err: unknown): PowerplantError {
  return err instanceof PowerplantError ? err : ppError('PP_ERR_STEP_FAILED', { message: err instanceof Error ? err.message : String(err) });
}

function terminalOf(r: WorkflowRow): Terminal {
  if (r.state === 'completed') return { state: 'completed', output: decodeValue(r.output) };
  return { state: r.state as WorkflowState, error: errorOf(r.error, `workflow ${r.id} ended ${r.state}`) };
}

/** Opens workflows on a store (creates their tables) using the given transactions. */
export async function openWorkflows(store: Store, txs: Transactions, options: WorkflowsOptions = {}): Promise<Workflows> {
  requireArg(txs.store === store, 'txs', 'must be the transactions of the same store');
  const tables = await openWorkflowTables(store);
  return new Workflows(txs, tables, options);
}
