/**
 * A stream job: a dataflow (dataflow.ts) run over a queue topic by the instances of a service.
 * The job joins a consumer group on its source topic (the queue's consumer: leases, rebalancing),
 * so the topic's partitions are spread over every instance running the job and move when one
 * joins or dies. It keeps its input offsets itself, in the store, with its state and results:
 * when it takes a partition over (`onAssign`) it loads that partition's checkpoint and state,
 * fences the previous owner, and reads on from the checkpointed offset — whatever the group's own
 * committed offset says. Records are acked as soon as they are folded into memory; what makes the
 * results exactly-once is the checkpoint (task.ts), not the ack.
 */
import { requireArg } from '../errors/index.js';
import type { CounterSeries, Logger, MetricsRegistry } from '../observe/index.js';
import type { Delivery, Queue, Subscription } from '../queue/index.js';
import type { Store } from '../store/index.js';
import { Stream, type Draft, type KeyValue, type Plan, type Result, type SideRecord, type SourceOptions } from './dataflow.js';
import { META_KEY, loadPartition, openJobTables, type JobTables, type MetaDoc } from './state.js';
import { Task, type JobCounters, type TaskHost } from './task.js';
import { WatermarkTracker } from './windows.js';

export interface JobOptions {
  readonly store: Store;
  readonly queue: Queue;
  /** A checkpoint of each partition with new records at least this often, in ms. Default 200. */
  readonly checkpointIntervalMs?: number;
  /** A partition checkpoints as soon as it has this many records since its last one. Default 20000. */
  readonly checkpointRecordsMax?: number;
  /** Records a partition may hold uncheckpointed while a checkpoint is running before consumption waits for it (backpressure). Default 100000. */
  readonly pendingRecordsMax?: number;
  /** Source records read ahead per partition (the queue's readAheadMax). Default 4096. */
  readonly readAheadMax?: number;
  /** A partition without records this long does not hold the job's watermark back, in ms. Default 10000. */
  readonly idleMs?: number;
  /** Queue membership heartbeat, in ms (see the queue's subscribe). Default 500. */
  readonly heartbeatMs?: number;
  /** Queue session timeout: how long a dead instance's partitions wait before another takes them, in ms. Default 3000. */
  readonly sessionTimeoutMs?: number;
  /** Errors that do not stop the job (failed checkpoints, which are retried; fencing; sink callbacks). */
  readonly onError?: (err: unknown) => void;
  /** Per result committed: ms from the append of the record that produced it to its commit (for benches and SLOs). */
  readonly onResultLatencyMs?: (ms: number) => void;
  readonly logger?: Logger;
  readonly metrics?: MetricsRegistry;
}

export const JOB_DEFAULTS = { checkpointIntervalMs: 200, checkpointRecordsMax: 20_000, pendingRecordsMax: 100_000, readAheadMax: 4096, idleMs: 10_000, heartbeatMs: 500, sessionTimeoutMs: 3000 } as const;

/**
 * A partition checkpoints once this many results and changed keys are waiting, whatever its record
 * count: one checkpoint's writes on a shard are one atomic request, bounded by the store's
 * `limits.atomicOpsMax` (default 100,000), so a watermark jump that fires many windows does not grow it.
 */
export const CHECKPOINT_WRITES_MAX = 20_000;

/** A job's tables are `pp_stream_<job>` and `pp_stream_<job>_dead`: the name fits the store's 48-character table names. */
const JOB_NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,32}$/;

export interface PartitionStatus {
  readonly partition: number;
  readonly nextOffset: number;
  /** Records in the partition not read by this job yet. */
  readonly lagRecords: number;
  readonly watermark: number | null;
  readonly openWindows: number;
  readonly keys: number;
  readonly checkpointing: boolean;
}

export interface JobStatus {
  readonly job: string;
  readonly topic: string;
  readonly running: boolean;
  readonly member: string;
  readonly partitions: readonly PartitionStatus[];
  /** The job's watermark: min over partitions that are not idle. */
  readonly watermark: number | null;
  /** Wall clock − watermark, in ms (how far event time lags). */
  readonly watermarkDelayMs: number | null;
  readonly counters: Readonly<JobCounters>;
  readonly operators: readonly { readonly name: string; readonly in: number; readonly out: number }[];
}

interface Instruments {
  readonly jobs: Set<Job>;
  readonly records: (job: string, op: string, dir: string) => CounterSeries;
}
const instrumented = new WeakMap<MetricsRegistry, Instruments>();

function instrumentsOf(m: MetricsRegistry): Instruments {
  let i = instrumented.get(m);
  if (i !== undefined) return i;
  const jobs = new Set<Job>();
  const c = m.counter('pp_stream_records_total', 'Records through each operator of a stream job (dir in|out).', ['job', 'operator', 'dir']);
  m.gauge('pp_stream_lag_records', 'Source records not yet read by the job on this node (owned partitions).', ['job'], () => [...jobs].map((j) => [[j.name], j.lagCached] as const));
  m.gauge('pp_stream_watermark_delay_ms', 'Wall clock minus the job watermark on this node, in ms.', ['job'], () => [...jobs].map((j) => [[j.name], j.watermarkDelayMs() ?? 0] as const));
  m.gauge('pp_stream_side_records', 'Late and dead-lettered records of the job on this node since it started.', ['job', 'kind'], () => [...jobs].flatMap((j) => [[[j.name, 'late'], j.counters.late] as const, [[j.name, 'dead'], j.counters.dead] as const]));
  i = { jobs, records: (job, op, dir) => c.labels(job, op, dir) };
  instrumented.set(m, i);
  return i;
}

let memberSeq = 0;

export class Job implements TaskHost {
  readonly name: string;
  readonly store: Store;
  readonly queue: Queue;
  readonly member = `${process.pid.toString(36)}-${Date.now().toString(36)}-${(memberSeq++).toString(36)}`;
  readonly counters: JobCounters = { recordsIn: 0, stepIn: [], stepOut: [], windowed: 0, results: 0, late: 0, dead: 0, duplicates: 0, checkpoints: 0, checkpointFailures: 0, fenced: 0 };
  readonly #o: Required<Omit<JobOptions, 'store' | 'queue' | 'onError' | 'onResultLatencyMs' | 'logger' | 'metrics'>>;
  readonly #options: JobOptions;
  readonly #draft: Draft;
  readonly #tasks = new Map<number, Task>();
  readonly #finals = new Set<Promise<void>>();
  readonly #wm: WatermarkTracker;
  #plan: Plan | undefined;
  #tables: JobTables | undefined;
  #sub: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #partitions = 0;
  #started = false;
  #stopped = false;
  #instruments: Instruments | undefined;
  /** Lag computed by the last status() (the metrics gauge reads it). */
  lagCached = 0;

  constructor(name: string, options: JobOptions) {
    requireArg(typeof name === 'string' && JOB_NAME_RE.test(name), 'name', `must match ${JOB_NAME_RE.source}`);
    requireArg(typeof options === 'object' && options !== null && options.store !== undefined && options.queue !== undefined, 'options', 'must name the store and the queue');
    this.name = name;
    this.store = options.store;
    this.queue = options.queue;
    this.#options = options;
    const o = { ...JOB_DEFAULTS, ...stripUndefined(options) } as typeof JOB_DEFAULTS;
    const int = (v: number, field: string, min: number, max: number): void => requireArg(Number.isSafeInteger(v) && v >= min && v <= max, field, `must be an integer in [${min}, ${max}]`);
    int(o.checkpointIntervalMs, 'checkpointIntervalMs', 5, 600_000);
    int(o.checkpointRecordsMax, 'checkpointRecordsMax', 1, 10_000_000);
    int(o.pendingRecordsMax, 'pendingRecordsMax', o.checkpointRecordsMax, 100_000_000);
    int(o.readAheadMax, 'readAheadMax', 1, 100_000);
    int(o.idleMs, 'idleMs', 1, 86_400_000);
    this.#o = { checkpointIntervalMs: o.checkpointIntervalMs, checkpointRecordsMax: o.checkpointRecordsMax, pendingRecordsMax: o.pendingRecordsMax, readAheadMax: o.readAheadMax, idleMs: o.idleMs, heartbeatMs: o.heartbeatMs, sessionTimeoutMs: o.sessionTimeoutMs };
    this.#wm = new WatermarkTracker(o.idleMs, Date.now);
    this.#draft = { plan: undefined, sealed: () => this.#started };
  }

  /** The job's source: a queue topic whose messages are `T`. */
  from<T>(topic: string, options: SourceOptions<T> = {}): Stream<T> {
    requireArg(!this.#started, 'job', 'the dataflow cannot change once the job started');
    requireArg(this.#draft.plan === undefined, 'from', 'a job has one source');
    requireArg(typeof topic === 'string' && /^[A-Za-z0-9_-]{1,100}$/.test(topic), 'topic', 'must match [A-Za-z0-9_-]{1,100}');
    requireArg(options.timestamp === undefined || typeof options.timestamp === 'function', 'timestamp', 'must be a function');
    const plan: Plan = { topic, timestamp: options.timestamp as Plan['timestamp'], steps: [], keyBy: undefined, keyScope: 'source', window: undefined, windowOptions: {}, aggregate: undefined, sinks: [], late: [] };
    this.#draft.plan = plan;
    return new Stream<T>(this.#draft, plan);
  }

  get plan(): Plan {
    return this.#plan!;
  }
  get tables(): JobTables {
    return this.#tables!;
  }
  get partitions(): number {
    return this.#partitions;
  }

  report(err: unknown): void {
    this.#options.logger?.warn({ job: this.name, err: (err as Error)?.message ?? String(err) }, 'stream: job error (the job keeps running)');
    try {
      this.#options.onError?.(err);
    } catch {
      // an error hook that throws must not stop the job
    }
  }

  /** Validates the dataflow, opens its tables and joins the source's consumer group. */
  async start(): Promise<void> {
    requireArg(!this.#started, 'job', 'already started');
    const plan = this.#draft.plan;
    requireArg(plan !== undefined, 'from', 'the job has no source (job.from(topic)…)');
    requireArg(plan.keyBy !== undefined && plan.window !== undefined && plan.aggregate !== undefined, 'dataflow', 'must end in keyBy(…).window(…).aggregate(…) (or reduce / count)');
    requireArg(plan.sinks.length > 0, 'dataflow', 'has no sink (toTable, toTopic or toCallback)');
    this.#started = true;
    this.#plan = plan;
    this.counters.stepIn = plan.steps.map(() => 0);
    this.counters.stepOut = plan.steps.map(() => 0);
    this.#tables = await openJobTables(this.store, this.name);
    this.#partitions = await this.queue.partitionsOf(plan.topic);
    if (this.#options.metrics !== undefined) {
      this.#instruments = instrumentsOf(this.#options.metrics);
      this.#instruments.jobs.add(this);
    }
    this.#timer = setInterval(() => this.#tick(), this.#o.checkpointIntervalMs);
    this.#sub = await this.queue.subscribe(plan.topic, {
      group: `stream-${this.name}`,
      handler: (d) => this.#onRecord(d),
      onAssign: (p) => this.#assign(p),
      onRelease: (p) => this.#release(p),
      onError: (err) => this.report(err),
      order: 'partition',
      concurrency: 64,
      ackWaitMs: 120_000,
      readAheadMax: this.#o.readAheadMax,
      heartbeatMs: this.#o.heartbeatMs,
      sessionTimeoutMs: this.#o.sessionTimeoutMs,
      deadLetter: false,
      // The consumer gives a record up after deliveriesMax deliveries (counted across restarts
      // for records unfinished at a commit: ours are only those waiting on backpressure). A job
      // must see every record, so the bound is the highest the queue allows.
      deliveriesMax: 1000,
    });
  }

  /** Loads partition `p`'s checkpoint and state, fences its previous owner, and says where to read from. */
  async #assign(p: number): Promise<number> {
    const t = this.#tables!;
    const { meta, rows } = await loadPartition(t, p);
    const start = meta?.doc.offset ?? (await this.queue.bounds(this.plan.topic, p)).first;
    const doc: MetaDoc = meta?.doc ?? { offset: start, maxTs: null, owner: this.member, records: 0, late: 0, dead: 0, checkpoints: 0 };
    // The fence: a version the previous owner's next checkpoint does not expect.
    const w = await t.state.upsert({ part: p, key: META_KEY, doc: { ...doc, owner: this.member } }, { version: meta?.version ?? 0 });
    const task = new Task(this, p, start, meta?.doc, w.version);
    for (const r of rows) task.restore(r.key, r.doc);
    this.#tasks.get(p)?.stop();
    this.#tasks.set(p, task);
    return start;
  }

  /** Partition `p` is no longer ours: one last checkpoint (fenced if another instance was faster), then drop it. */
  #release(p: number): void {
    const t = this.#tasks.get(p);
    if (t === undefined) return;
    this.#tasks.delete(p);
    this.#wm.remove(p);
    const f = t.checkpoint().then(() => t.stop());
    this.#finals.add(f);
    void f.finally(() => this.#finals.delete(f));
  }

  #onRecord(d: Delivery<unknown>): void | Promise<void> {
    const t = this.#tasks.get(d.partition);
    if (t === undefined || t.fenced) return; // not ours (any more): its next owner replays it
    const meta = { partition: d.partition, offset: d.offset, key: d.key, appendedAtMs: d.timestampMs };
    t.process(d.offset, meta, () => d.value);
    const wm = t.windows.watermark;
    if (wm > -Infinity) this.#wm.update(d.partition, wm);
    if (t.pending >= this.#o.checkpointRecordsMax || t.resultsPending + t.windows.dirtyCount >= CHECKPOINT_WRITES_MAX) {
      if (!t.checkpointing) void t.checkpoint();
      // Backpressure: the store is behind; hold consumption until the running checkpoint lands.
      else if (t.pending >= this.#o.pendingRecordsMax) return t.waitCheckpoint();
    }
  }

  #tick(): void {
    for (const t of this.#tasks.values()) void t.checkpoint();
  }

  committed(t: Task, results: readonly Result<KeyValue, unknown>[], side: readonly SideRecord[], triggerMs: readonly number[]): void {
    const now = Date.now();
    const lat = this.#options.onResultLatencyMs;
    if (lat !== undefined) for (const ms of triggerMs) lat(now - ms);
    const ins = this.#instruments;
    if (ins !== undefined) this.#count(ins, results.length);
    for (const s of this.plan.sinks) {
      if (s.kind === 'table') continue;
      for (const r of results) this.#deliver(s, r, t);
    }
    const late = side.filter((x) => x.code === 'late');
    if (late.length > 0) for (const s of this.plan.late) if (s.kind !== 'table') for (const r of late) this.#deliver(s, r, t);
  }

  #counted = { recordsIn: 0, results: 0, stepIn: [] as number[], stepOut: [] as number[] };
  #count(ins: Instruments, _n: number): void {
    const c = this.counters;
    const k = this.#counted;
    const name = this.name;
    if (c.recordsIn > k.recordsIn) ins.records(name, 'source', 'out').inc(c.recordsIn - k.recordsIn);
    c.stepIn.forEach((v, i) => {
      const prev = k.stepIn[i] ?? 0;
      if (v > prev) ins.records(name, `${i}:${this.plan.steps[i]!.kind}`, 'in').inc(v - prev);
      const o = c.stepOut[i]!;
      const po = k.stepOut[i] ?? 0;
      if (o > po) ins.records(name, `${i}:${this.plan.steps[i]!.kind}`, 'out').inc(o - po);
    });
    if (c.results > k.results) ins.records(name, 'window', 'out').inc(c.results - k.results);
    this.#counted = { recordsIn: c.recordsIn, results: c.results, stepIn: [...c.stepIn], stepOut: [...c.stepOut] };
  }

  #deliver(s: Plan['sinks'][number] | Plan['late'][number], r: unknown, _t: Task): void {
    try {
      if (s.kind === 'callback') {
        const out = (s.fn as (x: unknown) => unknown)(r);
        if (out !== null && typeof out === 'object' && typeof (out as Promise<void>).then === 'function') (out as Promise<void>).catch((err: unknown) => this.report(err));
      } else if (s.kind === 'topic') {
        const m = (s.message as (x: unknown) => { key?: string; value: unknown })(r);
        const x = r as { key?: unknown; start?: unknown; partition: number; offset?: number; seq?: number };
        const id = x.start !== undefined ? `stream:${this.name}:${String(x.key)}:${String(x.start)}:${hashOf(m.value)}` : `stream:${this.name}:late:${x.partition}:${x.offset}:${x.seq}`;
        this.queue.publish(s.topic, m.value, { ...(m.key === undefined ? {} : { key: m.key }), id: id.slice(0, 250) }).catch((err: unknown) => this.report(err));
      }
    } catch (err) {
      this.report(err);
    }
  }

  /** The job's watermark on this node (min over its partitions that are not idle). */
  watermark(): number | null {
    const w = this.#wm.current();
    return Number.isFinite(w) ? w : null;
  }
  watermarkDelayMs(): number | null {
    const w = this.watermark();
    return w === null ? null : Date.now() - w;
  }

  /** Partitions this instance runs now. */
  owned(): number[] {
    return [...this.#tasks.keys()].sort((a, b) => a - b);
  }

  async status(): Promise<JobStatus> {
    const parts: PartitionStatus[] = [];
    let lag = 0;
    for (const [p, t] of [...this.#tasks].sort((a, b) => a[0] - b[0])) {
      let lagRecords = 0;
      try {
        lagRecords = Math.max(0, (await this.queue.bounds(this.plan.topic, p)).next - t.nextOffset);
      } catch {
        // the queue is closing
      }
      lag += lagRecords;
      const wm = t.windows.watermark;
      parts.push({ partition: p, nextOffset: t.nextOffset, lagRecords, watermark: Number.isFinite(wm) ? wm : null, openWindows: t.windows.windowCount, keys: t.windows.keyCount, checkpointing: t.checkpointing });
    }
    this.lagCached = lag;
    const c = this.counters;
    return {
      job: this.name,
      topic: this.#plan?.topic ?? '',
      running: this.#started && !this.#stopped,
      member: this.member,
      partitions: parts,
      watermark: this.watermark(),
      watermarkDelayMs: this.watermarkDelayMs(),
      counters: { ...c, stepIn: [...c.stepIn], stepOut: [...c.stepOut] },
      operators: [
        { name: 'source', in: c.recordsIn, out: c.recordsIn },
        ...(this.#plan?.steps ?? []).map((s, i) => ({ name: `${i}:${s.kind}`, in: c.stepIn[i] ?? 0, out: c.stepOut[i] ?? 0 })),
        { name: 'window', in: c.windowed, out: c.results },
      ],
    };
  }

  /**
   * Checkpoints every partition now and waits until each has nothing left to write (a failed
   * checkpoint is retried with its backoff), at most `timeoutMs`. Resolves whether every
   * partition this instance still runs is fully checkpointed.
   */
  async flush(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const done = await Promise.all(
      [...this.#tasks.values()].map(async (t) => {
        while (!t.fenced && (t.pending > 0 || t.resultsPending > 0 || t.checkpointing || t.retrying)) {
          if (Date.now() > deadline) return false;
          await t.checkpoint();
          if (t.retrying) await new Promise((r) => setTimeout(r, 10));
        }
        return !t.fenced;
      }),
    );
    return done.every(Boolean);
  }

  /** Leaves the group (each partition checkpoints once more and is released), then stops. */
  async stop(): Promise<void> {
    if (!this.#started || this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush().catch((err: unknown) => this.report(err));
    await this.#sub?.close();
    await Promise.allSettled([...this.#finals]);
    for (const t of this.#tasks.values()) t.stop();
    this.#tasks.clear();
    this.#instruments?.jobs.delete(this);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** FNV-1a of a value's JSON (a result's dedup id for topic sinks). */
function hashOf(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? '';
  } catch {
    s = String(v);
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

/** A stream job named `name` (its consumer group, tables and metrics carry the name). */
export function createJob(name: string, options: JobOptions): Job {
  return new Job(name, options);
}
