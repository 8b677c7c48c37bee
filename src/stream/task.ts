/**
 * One task = one source partition of a job on this node: the record path (decode, event time,
 * stateless steps, key, windows) and the checkpoint that makes it exactly-once. Everything a
 * record changes (window state, fired results, side records, the next input offset) stays in
 * memory until the next checkpoint, which turns it into store writes: grouped per shard, the other
 * shards' groups first, then ONE atomic request on the checkpoint row's shard with the state, the
 * offset and the results that live there. The checkpoint row is written with its expected version,
 * so an instance that lost the partition (its lease moved) fails as a whole and stops.
 */
import { hash32, jumpHash } from '../partition/index.js';
import { PowerplantError, isPowerplantError } from '../errors/index.js';
import type { Store, StoreOp } from '../store/index.js';
import type { KeyValue, Plan, Result, SideRecord, SourceMeta } from './dataflow.js';
import { META_KEY, type DeadRow, type JobTables, type MetaDoc } from './state.js';
import { KeyedWindows, type Win, type WindowResult } from './windows.js';

/** Longest key (UTF-16 code units) a keyBy may return. */
export const KEY_CHARS_MAX = 512;
/** Chars of a dead letter's reason kept. */
const REASON_CHARS_MAX = 1000;
/** Bytes (estimated) of a dead letter's value kept; larger values are stored as a note. */
const SIDE_VALUE_BYTES_MAX = 4096;
/** Side records for results a sink refused carry seq from here (the input record's own start at 0). */
const SINK_SEQ_BASE = 1_000_000;

/** What a task reports to its job. */
export interface TaskHost {
  readonly name: string;
  readonly member: string;
  readonly plan: Plan;
  readonly tables: JobTables;
  readonly store: Store;
  readonly partitions: number;
  readonly counters: JobCounters;
  report(err: unknown): void;
  /** After a checkpoint committed: the results and side records it wrote (for topic/callback sinks). */
  committed(t: Task, results: readonly Result<KeyValue, unknown>[], side: readonly SideRecord[], triggerMs: readonly number[]): void;
}

export interface JobCounters {
  recordsIn: number;
  /** Per step of the plan: values in and out. */
  stepIn: number[];
  stepOut: number[];
  windowed: number;
  results: number;
  late: number;
  dead: number;
  duplicates: number;
  checkpoints: number;
  checkpointFailures: number;
  fenced: number;
}

interface Pending {
  readonly r: WindowResult<string, unknown>;
  /** Append time of the record whose processing produced it (latency). */
  readonly triggerMs: number;
}

/** An internal key: 's' + a string key, 'n' + a number's decimal form (state keys never collide with `#meta`). */
export function encodeKey(k: KeyValue): string {
  return typeof k === 'string' ? `s${k}` : `n${String(k)}`;
}
export function decodeKey(s: string): KeyValue {
  return s.charCodeAt(0) === 110 /* n */ ? Number(s.slice(1)) : s.slice(1);
}

function sideValue(v: unknown): unknown {
  try {
    const s = JSON.stringify(v);
    if (s === undefined) return null;
    return s.length > SIDE_VALUE_BYTES_MAX ? { truncated: s.slice(0, 200) } : (JSON.parse(s) as unknown);
  } catch {
    return { unserializable: String(v).slice(0, 200) };
  }
}

export class Task {
  readonly part: number;
  readonly #host: TaskHost;
  readonly windows: KeyedWindows<unknown, unknown, unknown>;
  nextOffset: number;
  metaVersion: number;
  #meta: MetaDoc;
  #results = new Map<string, Pending>();
  #side: SideRecord[] = [];
  /** Records since the last checkpoint started. */
  pending = 0;
  fenced = false;
  #inFlight: Promise<void> | undefined;
  #waiters: (() => void)[] = [];
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  /** Current record's append time and offset (for results and side records it produces). */
  #curAppendMs = 0;
  #curOffset = 0;
  #curSeq = 0;

  constructor(host: TaskHost, part: number, startOffset: number, meta: MetaDoc | undefined, metaVersion: number) {
    this.#host = host;
    this.part = part;
    const p = host.plan;
    this.windows = new KeyedWindows(p.window!, p.aggregate!, p.windowOptions);
    this.nextOffset = startOffset;
    this.metaVersion = metaVersion;
    this.#meta = meta ?? { offset: startOffset, maxTs: null, owner: host.member, records: 0, late: 0, dead: 0, checkpoints: 0 };
    if (meta?.maxTs !== null && meta?.maxTs !== undefined) this.windows.restoreMaxTs(meta.maxTs);
  }

  restore(key: string, doc: unknown): void {
    const wins = ((doc as { w: [number, number, unknown, boolean][] }).w).map(([start, end, acc, fired]): Win<unknown> => ({ start, end, acc, fired }));
    this.windows.restoreKey(key, wins);
  }

  get checkpointing(): boolean {
    return this.#inFlight !== undefined;
  }
  /** A failed checkpoint waits for its retry. */
  get retrying(): boolean {
    return this.#retryTimer !== undefined;
  }
  get resultsPending(): number {
    return this.#results.size;
  }

  // ---- the record path --------------------------------------------------------------------------

  #sideRecord(code: string, reason: string, value: unknown, ts: number | undefined): void {
    const c = this.#host.counters;
    if (code === 'late') c.late++;
    else c.dead++;
    this.#side.push({ partition: this.part, offset: this.#curOffset, seq: this.#curSeq++, code, reason: reason.slice(0, REASON_CHARS_MAX), value: sideValue(value), ts });
  }

  readonly #emit = (r: WindowResult<string, unknown>): void => {
    this.#results.set(`${r.key}\u0000${r.start}`, { r, triggerMs: this.#curAppendMs });
  };

  /** One source record, synchronously. Returns false for a duplicate (below the checkpointed offset). */
  process(offset: number, meta: SourceMeta, read: () => unknown): boolean {
    if (offset < this.nextOffset) {
      this.#host.counters.duplicates++;
      return false;
    }
    const c = this.#host.counters;
    c.recordsIn++;
    this.nextOffset = offset + 1;
    this.pending++;
    this.#curOffset = offset;
    this.#curAppendMs = meta.appendedAtMs;
    this.#curSeq = 0;
    let value: unknown;
    try {
      value = read();
    } catch (err) {
      this.#sideRecord('PP_ERR_VALIDATION', `message: does not decode (${(err as Error).message})`, null, undefined);
      return true;
    }
    const p = this.#host.plan;
    let ts: number;
    try {
      ts = p.timestamp === undefined ? meta.appendedAtMs : p.timestamp(value, meta);
    } catch (err) {
      this.#sideRecord('PP_ERR_VALIDATION', `timestamp: the extractor threw (${(err as Error).message})`, value, undefined);
      return true;
    }
    if (typeof ts !== 'number' || !Number.isFinite(ts)) {
      this.#sideRecord('PP_ERR_VALIDATION', `timestamp: must be a finite number of epoch ms (got ${typeof ts === 'number' ? String(ts) : typeof ts})`, value, undefined);
      return true;
    }
    this.#step(0, value, ts);
    return true;
  }

  #step(i: number, v: unknown, ts: number): void {
    const p = this.#host.plan;
    const c = this.#host.counters;
    if (i === p.steps.length) {
      this.#keyed(v, ts);
      return;
    }
    const s = p.steps[i]!;
    c.stepIn[i]!++;
    let out: unknown;
    try {
      out = s.fn(v);
      if (s.kind === 'flatMap' && (out === null || typeof out !== 'object' || typeof (out as Iterable<unknown>)[Symbol.iterator] !== 'function')) throw new TypeError('must return an iterable');
    } catch (err) {
      this.#sideRecord(isPowerplantError(err) ? err.code : 'PP_ERR_VALIDATION', `${s.kind} (step ${i}): ${(err as Error)?.message ?? String(err)}`, v, ts);
      return;
    }
    if (s.kind === 'map') {
      c.stepOut[i]!++;
      this.#step(i + 1, out, ts);
    } else if (s.kind === 'filter') {
      if (out === true) {
        c.stepOut[i]!++;
        this.#step(i + 1, v, ts);
      }
    } else {
      let items: unknown[];
      try {
        items = [...(out as Iterable<unknown>)];
      } catch (err) {
        this.#sideRecord('PP_ERR_VALIDATION', `flatMap (step ${i}): ${(err as Error)?.message ?? String(err)}`, v, ts);
        return;
      }
      for (const o of items) {
        c.stepOut[i]!++;
        this.#step(i + 1, o, ts);
      }
    }
  }

  #keyed(v: unknown, ts: number): void {
    const p = this.#host.plan;
    let k: KeyValue;
    try {
      k = p.keyBy!(v);
    } catch (err) {
      this.#sideRecord('PP_ERR_VALIDATION', `keyBy: threw (${(err as Error)?.message ?? String(err)})`, v, ts);
      return;
    }
    if (!((typeof k === 'string' && k.length > 0 && k.length <= KEY_CHARS_MAX) || (typeof k === 'number' && Number.isFinite(k)))) {
      this.#sideRecord('PP_ERR_VALIDATION', `keyBy: the key must be a string of 1..${KEY_CHARS_MAX} chars or a finite number (got ${typeof k === 'string' ? `a string of ${k.length} chars` : typeof k})`, v, ts);
      return;
    }
    if (p.keyScope === 'source' && jumpHash(hash32(String(k)), this.#host.partitions) !== this.part) {
      this.#sideRecord(
        'PP_ERR_VALIDATION',
        `keyBy: key ${JSON.stringify(String(k).slice(0, 100))} belongs to partition ${jumpHash(hash32(String(k)), this.#host.partitions)}, the record is in ${this.part}: publish the source records with this key, or keyBy(…, { scope: 'partition' })`,
        v,
        ts,
      );
      return;
    }
    const key = encodeKey(k);
    this.#host.counters.windowed++;
    let out;
    try {
      out = this.windows.add(key, v, ts, this.#emit);
    } catch (err) {
      this.#sideRecord(isPowerplantError(err) ? err.code : 'PP_ERR_VALIDATION', `aggregate: threw (${(err as Error)?.message ?? String(err)})`, v, ts);
      return;
    }
    if (out === 'late') this.#sideRecord('late', `late: every window of this record closed (watermark ${this.windows.watermark}, allowedLatenessMs ${this.windows.allowedLatenessMs})`, v, ts);
    else if (out === 'too-large') this.#sideRecord('PP_ERR_STATE_TOO_LARGE', this.windows.lastError?.message ?? 'state too large', v, ts);
  }

  // ---- checkpoints ------------------------------------------------------------------------------

  /** Resolves once the checkpoint after the records so far committed (or the task stopped). */
  waitCheckpoint(): Promise<void> {
    return new Promise((r) => this.#waiters.push(r));
  }

  /** Starts a checkpoint unless one is running (which then runs again when done, if needed). */
  checkpoint(): Promise<void> {
    if (this.#inFlight !== undefined || this.fenced) return this.#inFlight ?? Promise.resolve();
    if (this.#retryTimer !== undefined) return Promise.resolve();
    if (this.pending === 0 && this.#results.size === 0 && this.#side.length === 0 && this.windows.dirtyCount === 0) {
      this.#wake();
      return Promise.resolve();
    }
    const p = this.#run().finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = p;
    return p;
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Stops the task (partition gone): waiters are released; nothing more is written. */
  stop(): void {
    this.fenced = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#wake();
  }

  async #run(): Promise<void> {
    const h = this.#host;
    const dirty = this.windows.takeDirty();
    const results = this.#results;
    this.#results = new Map();
    const side = this.#side;
    this.#side = [];
    const records = this.pending;
    this.pending = 0;
    const offset = this.nextOffset;
    const maxTs = this.windows.maxEventTs;
    const writes: StoreOp[] = [];
    const publicResults: Result<KeyValue, unknown>[] = [];
    const triggers: number[] = [];
    const sinkSide: SideRecord[] = [];
    const refuse = (code: string, reason: string, value: unknown): void => {
      h.counters.dead++;
      sinkSide.push({ partition: this.part, offset: Math.max(0, offset - 1), seq: SINK_SEQ_BASE + sinkSide.length, code, reason: reason.slice(0, REASON_CHARS_MAX), value: sideValue(value), ts: undefined });
    };
    for (const { r, triggerMs } of results.values()) {
      const pub: Result<KeyValue, unknown> = { key: decodeKey(r.key), start: r.start, end: r.end, value: r.value, kind: r.kind, partition: this.part };
      let ok = true;
      for (const s of h.plan.sinks) {
        if (s.kind !== 'table') continue;
        try {
          const row = s.row(pub);
          writes.push(r.kind === 'retract' ? s.table.writeOp({ op: 'delete', key: row }) : s.table.writeOp({ op: 'upsert', row }));
        } catch (err) {
          ok = false;
          refuse(isPowerplantError(err) ? err.code : 'PP_ERR_VALIDATION', `sink ${s.table.name}: ${(err as Error)?.message ?? String(err)}`, pub);
        }
      }
      if (ok) {
        publicResults.push(pub);
        triggers.push(triggerMs);
      }
    }
    for (const [key, wins] of dirty) {
      if (wins.length === 0) {
        writes.push(h.tables.state.writeOp({ op: 'delete', key: { part: this.part, key } }));
        continue;
      }
      try {
        writes.push(h.tables.state.writeOp({ op: 'upsert', row: { part: this.part, key, doc: { w: wins.map((w) => [w.start, w.end, w.acc, w.fired]) } } }));
      } catch (err) {
        // A key's windows together over the store's row bound: refused as the state bound it is.
        refuse('PP_ERR_STATE_TOO_LARGE', `state of key ${JSON.stringify(String(decodeKey(key)).slice(0, 100))}: ${(err as Error).message}; its windows were dropped`, null);
        this.windows.dropKey(key);
        writes.push(h.tables.state.writeOp({ op: 'delete', key: { part: this.part, key } }));
      }
    }
    const allSide = [...side, ...sinkSide];
    for (const s of allSide) {
      const row: DeadRow = { part: this.part, offset: s.offset, seq: s.seq, code: s.code, reason: s.reason, ...(s.ts === undefined ? {} : { ts: s.ts }), value: { v: s.value ?? null } };
      writes.push(h.tables.dead.writeOp({ op: 'upsert', row }));
    }
    const late = allSide.filter((s) => s.code === 'late');
    for (const s of h.plan.late) {
      if (s.kind !== 'table') continue;
      for (const l of late) {
        try {
          writes.push(s.table.writeOp({ op: 'upsert', row: s.row(l) }));
        } catch (err) {
          h.report(err);
        }
      }
    }
    const m = this.#meta;
    const doc: MetaDoc = {
      offset,
      maxTs: Number.isFinite(maxTs) ? maxTs : null,
      owner: h.member,
      records: m.records + records,
      late: m.late + side.filter((s) => s.code === 'late').length,
      dead: m.dead + side.length + sinkSide.length - side.filter((s) => s.code === 'late').length,
      checkpoints: m.checkpoints + 1,
    };
    const metaWrite = h.tables.state.writeOp({ op: 'upsert', row: { part: this.part, key: META_KEY, doc: { ...doc } }, version: this.metaVersion });
    const groups = new Map<number, StoreOp[]>();
    for (const w of writes) {
      let g = groups.get(w.shard);
      if (g === undefined) groups.set(w.shard, (g = []));
      g.push(w);
    }
    const home = groups.get(metaWrite.shard) ?? [];
    groups.delete(metaWrite.shard);
    try {
      // Other shards first: their rows are idempotent (upserts of deterministic values), so a
      // crash before the home request commits only means they are written again on replay.
      await Promise.all([...groups.values()].map((g) => h.store.atomic(g)));
      if (this.fenced) throw new StoppedError();
      const res = await h.store.atomic([...home, metaWrite]);
      this.metaVersion = res[res.length - 1]!.version;
      this.#meta = doc;
      this.#failures = 0;
      h.counters.checkpoints++;
      h.counters.results += publicResults.length;
      h.committed(this, publicResults, allSide, triggers);
      if (this.pending === 0) this.#wake();
    } catch (err) {
      if (err instanceof StoppedError) return;
      if (isPowerplantError(err, 'PP_ERR_CONFLICT') && !this.fenced) {
        // Another instance took the partition over (it replays from the last checkpoint).
        h.counters.fenced++;
        h.report(new PowerplantError('PP_ERR_FENCED', { message: `stream ${h.name}: partition ${this.part} was taken over by another instance; this one stops writing it` }));
        this.stop();
        return;
      }
      if (this.fenced) return;
      h.counters.checkpointFailures++;
      h.report(err);
      // Put everything back (newer results win) and try again after a backoff.
      for (const [key] of dirty) this.windows.markDirty(key);
      for (const [k, v] of results) if (!this.#results.has(k)) this.#results.set(k, v);
      this.#side = [...side, ...this.#side];
      this.pending += records;
      this.#failures++;
      const delayMs = Math.min(5000, 50 * 2 ** Math.min(this.#failures, 7));
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        void this.checkpoint();
      }, delayMs);
    }
  }

}

class StoppedError extends Error {}
