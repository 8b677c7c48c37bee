/**
 * A consumer-group member: partition ownership (leases, rebalancing), per-key ordering, ack
 * deadlines, redelivery with backoff, dead letters and offset commits — the same code on every
 * engine, so both engines give the same semantics.
 *
 * Per owned partition a worker reads ahead (at most `readAheadMax` records) and admits records
 * into a window ordered by offset. Records with the same key form a chain: only the oldest
 * unfinished one of a key may run, so a key's records are handled in order even across failures
 * and redeliveries (a failing record blocks its key, not the partition). Records without a key
 * have no order. The committed offset is the first unfinished record of the window: every record
 * below it was handled (acked, or dead-lettered). Commits are periodic (every heartbeat) and on
 * release, so after a crash a group re-handles at most what was acked since its last commit —
 * at-least-once.
 *
 * Acks: a handler that resolves acks; one that throws (or rejects) fails the attempt; one that
 * is still running after `ackWaitMs` fails the attempt too (its signal is aborted, its slot freed
 * and the record redelivered). Each delivery carries a generation: an ack or a failure for an
 * older delivery (after ackWait, after redelivery, after the partition moved to another member)
 * is rejected and counted in `lateAcks`, never counted twice.
 */
import { invariant, ppError, requireArg } from '../errors/index.js';
import { backoffDelayMs } from '../resilience/index.js';
import { ENCODING_BYTES, type PartitionReader, type QueueEngine, type ReadFrom, type StoredRecord } from './engines/base.js';
import { decodePayload } from './codec.js';

export type Backoff = { readonly baseDelayMs: number; readonly maxDelayMs: number } | readonly number[];

export interface Delivery<T = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | undefined;
  readonly id: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** Append time, epoch ms. */
  readonly timestampMs: number;
  /** 1 on the first delivery, 2 on the first redelivery, ... */
  readonly attempt: number;
  /** The message: bytes as published for a Uint8Array, else the decoded msgpack value. */
  readonly value: T;
  /** Aborted when this delivery's ackWait passes (the record is redelivered). */
  readonly signal: AbortSignal;
  /** Acks now (the handler's return is then ignored). False when this delivery is no longer current. */
  ack(): boolean;
  /** Fails this attempt now (redelivery with backoff, or dead letter). False when no longer current. */
  nak(reason?: unknown): boolean;
}

export interface SubscribeOptions<T = unknown> {
  /** Consumer group: each group gets every message; members of a group share partitions. */
  readonly group: string;
  /** Resolves = ack; throws/rejects = failure (redelivered with backoff, then dead-lettered). */
  readonly handler: (msg: Delivery<T>) => unknown;
  /** Handlers running at once in this member. Default 16, max 10000. */
  readonly concurrency?: number;
  /** A delivery not settled within this is failed and redelivered, in ms. Default 30000. */
  readonly ackWaitMs?: number;
  /** Deliveries of one record before it is dead-lettered. Default 5, max 1000. */
  readonly maxDeliver?: number;
  /** Delay before a redelivery: exponential with full jitter, or a list (last entry repeats). Default {100, 30000}. */
  readonly backoff?: Backoff;
  /** Topic receiving records that failed maxDeliver times (created when missing); false = drop them (reported via onError). Default `<topic>-dlq`. */
  readonly deadLetter?: string | false;
  /** Where a group without a committed offset starts. Default 'earliest'. */
  readonly from?: ReadFrom;
  /** Records read ahead per partition (window bound). Default 1024, max 100000. */
  readonly readAheadMax?: number;
  /** Membership heartbeat, lease renewal and offset commit period, in ms. Default 500. */
  readonly heartbeatMs?: number;
  /** A member silent this long loses its partitions, in ms. Default 10000; >= 3 heartbeats. */
  readonly sessionTimeoutMs?: number;
  /** Errors that do not stop the subscription (dead letters dropped, commit failures, engine errors). */
  readonly onError?: (err: unknown) => void;
}

export interface SubscriptionStats {
  delivered: number;
  acked: number;
  failed: number;
  redelivered: number;
  deadLettered: number;
  /** Acks/failures reported for a delivery that was no longer current: rejected, not counted. */
  lateAcks: number;
  /** Handlers still running past ackWait (their slot was freed). */
  abandoned: number;
  /** Records skipped because retention removed them before this group read them. */
  skipped: number;
  inFlight: number;
  rebalances: number;
}

export interface Subscription {
  readonly topic: string;
  readonly group: string;
  readonly member: string;
  /** Partitions this member holds now. */
  partitions(): number[];
  stats(): Readonly<SubscriptionStats>;
  /** Stops fetching, waits (up to ackWaitMs) for running handlers, commits and leaves the group. */
  close(): Promise<void>;
}

/** A record that failed maxDeliver times and is finished: moved to `dlq`, or dropped (`dlq` false). */
export interface DeadLettered {
  readonly topic: string;
  readonly group: string;
  readonly rec: StoredRecord;
  readonly attempts: number;
  readonly reason: string;
  readonly dlq: string | false;
}

/** What the consumer needs from the queue (dead letters go through the normal publish path). */
export interface ConsumerHost {
  readonly engine: QueueEngine;
  deadLetter(topic: string, rec: StoredRecord, meta: { reason: string; attempts: number; group: string; dlq: string }): Promise<void>;
  /** Every dead-lettered record, once (the queue logs and counts it). */
  deadLettered(d: DeadLettered): void;
  partitionsOf(topic: string): Promise<number>;
}

export const SUBSCRIBE_DEFAULTS = {
  concurrency: 16,
  ackWaitMs: 30_000,
  maxDeliver: 5,
  backoff: { baseDelayMs: 100, maxDelayMs: 30_000 },
  readAheadMax: 1024,
  heartbeatMs: 500,
  sessionTimeoutMs: 10_000,
} as const;

const GROUP_RE = /^[A-Za-z0-9_-]{1,100}$/;
const FETCH_MAX = 256;
const FETCH_WAIT_MS = 1000;

const S_QUEUED = 0; // admitted, waiting for its key, its due time, or a slot
const S_READY = 1; // in the ready queue
const S_RUNNING = 2;
const S_DEAD = 3; // being dead-lettered
const S_DONE = 4;
const S_DROPPED = 5; // partition lost or closed

class Entry {
  readonly rec: StoredRecord;
  readonly worker: Worker;
  state = S_QUEUED;
  attempts = 0;
  gen = 0;
  dueMs = 0;
  deadlineMs = 0;
  blocked = false;
  chainNext: Entry | undefined;
  delivery: DeliveryImpl | undefined;
  heapIndex = -1;

  constructor(rec: StoredRecord, worker: Worker) {
    this.rec = rec;
    this.worker = worker;
  }
}

class DeliveryImpl implements Delivery<unknown> {
  readonly #member: Member;
  readonly #entry: Entry;
  readonly #gen: number;
  readonly attempt: number;
  #value: unknown;
  #decoded = false;
  #ctl: AbortController | undefined;
  #abortReason: Error | undefined;
  settled = false;

  constructor(member: Member, entry: Entry, gen: number) {
    this.#member = member;
    this.#entry = entry;
    this.#gen = gen;
    this.attempt = entry.attempts;
  }

  get topic(): string {
    return this.#member.topic;
  }
  get partition(): number {
    return this.#entry.rec.partition;
  }
  get offset(): number {
    return this.#entry.rec.offset;
  }
  get key(): string | undefined {
    return this.#entry.rec.key;
  }
  get id(): string | undefined {
    return this.#entry.rec.id;
  }
  get headers(): Readonly<Record<string, string>> {
    return this.#entry.rec.headers ?? EMPTY_HEADERS;
  }
  get timestampMs(): number {
    return this.#entry.rec.timestampMs;
  }
  /** Decoded on first access: a handler that only forwards bytes pays nothing. */
  get value(): unknown {
    if (!this.#decoded) {
      const r = this.#entry.rec;
      this.#value = r.encoding === ENCODING_BYTES ? r.payload : decodePayload(r.payload);
      this.#decoded = true;
    }
    return this.#value;
  }
  /** Created on first access, so deliveries that never look at it allocate no controller. */
  get signal(): AbortSignal {
    if (this.#ctl === undefined) {
      this.#ctl = new AbortController();
      if (this.#abortReason !== undefined) this.#ctl.abort(this.#abortReason);
    }
    return this.#ctl.signal;
  }
  abort(reason: string): void {
    this.#abortReason = ppError('PP_ERR_TIMEOUT', { message: reason });
    this.#ctl?.abort(this.#abortReason);
  }
  ack(): boolean {
    return this.#member.settle(this.#entry, this.#gen, this, undefined, 'explicit');
  }
  nak(reason?: unknown): boolean {
    return this.#member.settle(this.#entry, this.#gen, this, reason ?? new Error('nak'), 'explicit');
  }
}

const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** A min-heap of entries by dueMs (delays and backoffs), with removal by index. */
class DueHeap {
  readonly #a: Entry[] = [];
  get size(): number {
    return this.#a.length;
  }
  peek(): Entry | undefined {
    return this.#a[0];
  }
  push(e: Entry): void {
    e.heapIndex = this.#a.length;
    this.#a.push(e);
    this.#up(e.heapIndex);
  }
  pop(): Entry | undefined {
    const a = this.#a;
    const top = a[0];
    if (top === undefined) return undefined;
    this.#removeAt(0);
    return top;
  }
  remove(e: Entry): void {
    if (e.heapIndex >= 0) this.#removeAt(e.heapIndex);
  }
  #removeAt(i: number): void {
    const a = this.#a;
    const e = a[i]!;
    const last = a.pop()!;
    e.heapIndex = -1;
    if (i < a.length) {
      a[i] = last;
      last.heapIndex = i;
      this.#down(i);
      this.#up(i);
    }
  }
  #up(i: number): void {
    const a = this.#a;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.dueMs <= a[i]!.dueMs) break;
      this.#swap(i, p);
      i = p;
    }
  }
  #down(i: number): void {
    const a = this.#a;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.dueMs < a[m]!.dueMs) m = l;
      if (r < a.length && a[r]!.dueMs < a[m]!.dueMs) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }
  #swap(i: number, j: number): void {
    const a = this.#a;
    const x = a[i]!;
    const y = a[j]!;
    a[i] = y;
    a[j] = x;
    x.heapIndex = j;
    y.heapIndex = i;
  }
}

/** A FIFO over an array with a moving head (no shift(), compacted when half is dead space). */
class Fifo<T> {
  #a: T[] = [];
  #head = 0;
  get length(): number {
    return this.#a.length - this.#head;
  }
  push(x: T): void {
    this.#a.push(x);
  }
  peek(): T | undefined {
    return this.#a[this.#head];
  }
  shift(): T | undefined {
    if (this.#head >= this.#a.length) return undefined;
    const x = this.#a[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#a.length) {
      this.#a = this.#a.slice(this.#head);
      this.#head = 0;
    }
    return x;
  }
  clear(): void {
    this.#a = [];
    this.#head = 0;
  }
}

/** One owned partition: its reader, its window of admitted records, its key chains. */
class Worker {
  readonly member: Member;
  readonly partition: number;
  readonly reader: PartitionReader;
  /** Admitted records in offset order; the front is the first unfinished one. */
  readonly window = new Fifo<Entry>();
  readonly keyTails = new Map<string, Entry>();
  /** Offset after the last record read (the committed offset when the window is empty). */
  nextOffset: number;
  /** Last committed offset stored (to skip no-op commits). */
  storedOffset: number | undefined;
  running = 0;
  stopped = false;
  releasing = false;
  releaseDeadlineMs = 0;
  #spaceWaiter: (() => void) | undefined;
  readonly loop: Promise<void>;

  constructor(member: Member, partition: number, reader: PartitionReader, startOffset: number, stored: number | undefined) {
    this.member = member;
    this.partition = partition;
    this.reader = reader;
    this.nextOffset = startOffset;
    this.storedOffset = stored;
    this.loop = this.#fetchLoop();
  }

  /** Committed offset: first unfinished record, else one past the last read. */
  committed(): number {
    const w = this.window;
    while (w.length > 0 && w.peek()!.state === S_DONE) w.shift();
    const head = w.peek();
    return head === undefined ? this.nextOffset : head.rec.offset;
  }

  signalSpace(): void {
    const w = this.#spaceWaiter;
    this.#spaceWaiter = undefined;
    w?.();
  }

  async #fetchLoop(): Promise<void> {
    const m = this.member;
    while (!this.stopped && !this.releasing) {
      const room = m.readAheadMax - this.window.length;
      if (room <= 0) {
        // Finished records leave the window from the front only; wait for the front to move.
        this.committed();
        if (m.readAheadMax - this.window.length <= 0) {
          await new Promise<void>((r) => (this.#spaceWaiter = r));
        }
        continue;
      }
      let recs: readonly StoredRecord[];
      try {
        recs = await this.reader.next(Math.min(room, FETCH_MAX), FETCH_WAIT_MS);
      } catch (err) {
        if (this.stopped) return;
        m.report(err);
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (this.stopped || this.releasing) return;
      for (const rec of recs) {
        invariant(rec.offset >= this.nextOffset, 'a partition reader moves forward');
        this.nextOffset = rec.offset + 1;
        m.admit(new Entry(rec, this));
      }
      m.counters.skipped = m.skippedBase + this.reader.skipped;
      m.pump();
    }
  }

  /** Drops every unfinished record (partition lost or closed): their late acks are rejected. */
  drop(): void {
    this.stopped = true;
    this.signalSpace();
    for (;;) {
      const e = this.window.shift();
      if (e === undefined) break;
      if (e.state === S_RUNNING) this.member.counters.inFlight--;
      if (e.state !== S_DONE) {
        e.state = S_DROPPED;
        e.gen++;
        this.member.heap.remove(e);
      }
    }
    this.keyTails.clear();
  }
}

let memberSeq = 0;

export class Member implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly member: string;
  readonly readAheadMax: number;
  readonly heap = new DueHeap();
  readonly counters: SubscriptionStats = { delivered: 0, acked: 0, failed: 0, redelivered: 0, deadLettered: 0, lateAcks: 0, abandoned: 0, skipped: 0, inFlight: 0, rebalances: 0 };
  skippedBase = 0;
  readonly #host: ConsumerHost;
  readonly #handler: (msg: Delivery<unknown>) => unknown;
  readonly #concurrency: number;
  readonly #ackWaitMs: number;
  readonly #maxDeliver: number;
  readonly #backoff: Backoff;
  readonly #dlq: string | false;
  readonly #from: ReadFrom;
  readonly #heartbeatMs: number;
  readonly #sessionMs: number;
  readonly #onError: ((err: unknown) => void) | undefined;
  readonly #workers = new Map<number, Worker>();
  readonly #ready = new Fifo<Entry>();
  /** Running deliveries in start order; ackWait is constant, so deadlines are in order too. */
  readonly #deadlines = new Fifo<Entry>();
  readonly #deadlineGens = new Fifo<number>();
  #partitionCount = 0;
  #dueTimer: NodeJS.Timeout | undefined;
  #dueAtMs = Infinity;
  #ackTimer: NodeJS.Timeout | undefined;
  #hbTimer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #tickAgain = false;
  #closed = false;
  #idle: (() => void) | undefined;

  constructor(host: ConsumerHost, topic: string, options: SubscribeOptions<unknown>) {
    requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object');
    requireArg(typeof options.group === 'string' && GROUP_RE.test(options.group), 'group', 'must match [A-Za-z0-9_-]{1,100}');
    requireArg(typeof options.handler === 'function', 'handler', 'must be a function');
    const o = { ...SUBSCRIBE_DEFAULTS, ...options };
    requireArg(Number.isInteger(o.concurrency) && o.concurrency >= 1 && o.concurrency <= 10_000, 'concurrency', 'must be an integer in [1, 10000]');
    requireArg(Number.isInteger(o.ackWaitMs) && o.ackWaitMs >= 10 && o.ackWaitMs <= 86_400_000, 'ackWaitMs', 'must be an integer in [10, 86400000]');
    requireArg(Number.isInteger(o.maxDeliver) && o.maxDeliver >= 1 && o.maxDeliver <= 1000, 'maxDeliver', 'must be an integer in [1, 1000]');
    requireArg(Number.isInteger(o.readAheadMax) && o.readAheadMax >= 1 && o.readAheadMax <= 100_000, 'readAheadMax', 'must be an integer in [1, 100000]');
    requireArg(Number.isInteger(o.heartbeatMs) && o.heartbeatMs >= 10 && o.heartbeatMs <= 60_000, 'heartbeatMs', 'must be an integer in [10, 60000]');
    requireArg(Number.isInteger(o.sessionTimeoutMs) && o.sessionTimeoutMs >= 3 * o.heartbeatMs, 'sessionTimeoutMs', 'must be an integer >= 3 * heartbeatMs');
    checkBackoff(o.backoff);
    requireArg(o.deadLetter === undefined || o.deadLetter === false || (typeof o.deadLetter === 'string' && o.deadLetter !== topic), 'deadLetter', 'must be a topic name other than the topic itself, or false');
    this.#host = host;
    this.topic = topic;
    this.group = o.group;
    this.member = `${process.pid.toString(36)}-${Date.now().toString(36)}-${(memberSeq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.#handler = o.handler;
    this.#concurrency = o.concurrency;
    this.#ackWaitMs = o.ackWaitMs;
    this.#maxDeliver = o.maxDeliver;
    this.#backoff = o.backoff;
    this.#dlq = o.deadLetter ?? `${topic}-dlq`;
    this.#from = o.from ?? 'earliest';
    this.readAheadMax = o.readAheadMax;
    this.#heartbeatMs = o.heartbeatMs;
    this.#sessionMs = o.sessionTimeoutMs;
    this.#onError = o.onError;
  }

  async start(): Promise<void> {
    this.#partitionCount = await this.#host.partitionsOf(this.topic);
    await this.#tick();
    this.#hbTimer = setInterval(() => this.requestTick(), this.#heartbeatMs);
    this.#ackTimer = setInterval(() => this.#checkDeadlines(), Math.max(5, Math.min(1000, this.#ackWaitMs >> 2)));
  }

  report(err: unknown): void {
    try {
      this.#onError?.(err);
    } catch {
      // an error hook that throws must not stop the consumer
    }
  }

  partitions(): number[] {
    return [...this.#workers.keys()].filter((p) => !this.#workers.get(p)!.releasing).sort((a, b) => a - b);
  }

  // ---- membership and rebalancing ---------------------------------------------------------------

  requestTick(): void {
    if (this.#closed) return;
    if (this.#ticking !== undefined) {
      this.#tickAgain = true;
      return;
    }
    this.#ticking = this.#tick()
      .catch((err: unknown) => this.report(err))
      .finally(() => {
        this.#ticking = undefined;
        if (this.#tickAgain) {
          this.#tickAgain = false;
          this.requestTick();
        }
      });
  }

  /** Heartbeat; commit + renew leases; release what is no longer ours; claim what is. */
  async #tick(): Promise<void> {
    const g = this.#host.engine.groups;
    await g.join(this.topic, this.group, this.member, this.#sessionMs);
    const members = await g.members(this.topic, this.group);
    const rank = members.indexOf(this.member);
    const n = members.length;
    const now = Date.now();
    const entries: { partition: number; committed: number | undefined; release: boolean }[] = [];
    for (const [p, w] of this.#workers) {
      const desired = rank >= 0 && p % n === rank;
      if (!desired && !w.releasing) {
        // Graceful hand-off: stop fetching, let running handlers finish (bounded by ackWait).
        w.releasing = true;
        w.releaseDeadlineMs = now + this.#ackWaitMs;
        this.counters.rebalances++;
      }
      const release = w.releasing && (w.running === 0 || now >= w.releaseDeadlineMs);
      const c = w.committed();
      entries.push({ partition: p, committed: c === w.storedOffset ? undefined : c, release });
    }
    if (entries.length > 0) {
      const lost = await g.commit(this.topic, this.group, this.member, this.#sessionMs, entries);
      for (const e of entries) {
        const w = this.#workers.get(e.partition);
        if (w === undefined) continue;
        if (lost.includes(e.partition)) {
          this.report(ppError('PP_ERR_CONFLICT', { message: `partition ${e.partition} of ${this.topic} was taken over by another member of ${this.group}` }));
          await this.#removeWorker(w);
          continue;
        }
        if (e.committed !== undefined) w.storedOffset = e.committed;
        if (e.release) await this.#removeWorker(w);
      }
    }
    if (this.#closed || rank < 0) return;
    for (let p = rank; p < this.#partitionCount; p += n) {
      if (this.#workers.has(p)) continue;
      const got = await g.claim(this.topic, this.group, p, this.member, this.#sessionMs);
      if (got === undefined) continue; // still held by its previous owner: retried next tick
      if (this.#closed) {
        await g.commit(this.topic, this.group, this.member, this.#sessionMs, [{ partition: p, committed: undefined, release: true }]);
        return;
      }
      const from: ReadFrom = got.committed === undefined ? this.#from : { offset: got.committed };
      const reader = await this.#host.engine.openReader(this.topic, p, from);
      const start = got.committed ?? (await this.#startOffset(p, from));
      this.#workers.set(p, new Worker(this, p, reader, start, got.committed));
    }
  }

  async #startOffset(p: number, from: ReadFrom): Promise<number> {
    const e = this.#host.engine;
    if (from === 'earliest') return (await e.bounds(this.topic, p)).first;
    if (from === 'latest') return (await e.bounds(this.topic, p)).next;
    if ('offset' in from) return from.offset;
    return e.offsetForTime(this.topic, p, from.timeMs);
  }

  async #removeWorker(w: Worker): Promise<void> {
    this.skippedBase += w.reader.skipped;
    w.drop();
    this.#workers.delete(w.partition);
    await w.reader.close();
    this.#idle?.();
  }

  // ---- dispatch ---------------------------------------------------------------------------------

  admit(e: Entry): void {
    const w = e.worker;
    w.window.push(e);
    const key = e.rec.key;
    if (key !== undefined) {
      const tail = w.keyTails.get(key);
      if (tail !== undefined && tail.state !== S_DONE && tail.state !== S_DROPPED) {
        tail.chainNext = e;
        e.blocked = true;
      }
      w.keyTails.set(key, e);
    }
    e.dueMs = e.rec.deliverAtMs;
    if (!e.blocked) this.#makeEligible(e);
  }

  /** Not blocked by its key: ready now, or on the timer heap until due. */
  #makeEligible(e: Entry): void {
    if (e.dueMs > Date.now()) {
      e.state = S_QUEUED;
      this.heap.push(e);
      this.#armDue();
    } else {
      e.state = S_READY;
      this.#ready.push(e);
    }
  }

  #armDue(): void {
    const top = this.heap.peek();
    if (top === undefined || top.dueMs >= this.#dueAtMs) return;
    if (this.#dueTimer !== undefined) clearTimeout(this.#dueTimer);
    this.#dueAtMs = top.dueMs;
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = undefined;
      this.#dueAtMs = Infinity;
      const now = Date.now();
      for (let e = this.heap.peek(); e !== undefined && e.dueMs <= now; e = this.heap.peek()) {
        this.heap.pop();
        if (e.state === S_QUEUED) {
          e.state = S_READY;
          this.#ready.push(e);
        }
      }
      this.#armDue();
      this.pump();
    }, Math.max(0, top.dueMs - Date.now()));
  }

  pump(): void {
    while (this.counters.inFlight < this.#concurrency && this.#ready.length > 0) {
      const e = this.#ready.shift()!;
      // A releasing partition starts nothing new: its records go to the next owner.
      if (e.state !== S_READY || e.worker.stopped || e.worker.releasing) continue;
      this.#run(e);
    }
  }

  #run(e: Entry): void {
    const w = e.worker;
    e.state = S_RUNNING;
    e.attempts++;
    const gen = ++e.gen;
    e.deadlineMs = Date.now() + this.#ackWaitMs;
    w.running++;
    this.counters.inFlight++;
    this.counters.delivered++;
    if (e.attempts > 1) this.counters.redelivered++;
    this.#deadlines.push(e);
    this.#deadlineGens.push(gen);
    const d = new DeliveryImpl(this, e, gen);
    e.delivery = d;
    let r: unknown;
    try {
      r = this.#handler(d);
    } catch (err) {
      this.settle(e, gen, d, err ?? new Error('handler threw'), 'return');
      return;
    }
    if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function') {
      (r as PromiseLike<unknown>).then(
        () => this.settle(e, gen, d, undefined, 'return'),
        (err: unknown) => this.settle(e, gen, d, err ?? new Error('handler rejected'), 'return'),
      );
    } else this.settle(e, gen, d, undefined, 'return');
  }

  /**
   * Settles delivery `gen` of `e`. Only the current delivery of a running record counts; anything
   * else (a second settle, a handler returning after ackWait or after the partition moved) is a
   * late ack: rejected and counted once.
   */
  settle(e: Entry, gen: number, d: DeliveryImpl, err: unknown, by: 'return' | 'explicit' | 'timeout'): boolean {
    if (d.settled) {
      // The handler returned after an explicit ack()/nak(): expected, not late. A second explicit call is.
      if (by === 'explicit') this.counters.lateAcks++;
      return false;
    }
    // A timeout settles the record, not the delivery: the handler's eventual return is a late ack.
    if (by !== 'timeout') d.settled = true;
    if (e.gen !== gen || e.state !== S_RUNNING) {
      this.counters.lateAcks++;
      return false;
    }
    const w = e.worker;
    w.running--;
    this.counters.inFlight--;
    e.delivery = undefined;
    if (err === undefined) {
      this.counters.acked++;
      this.#finish(e);
    } else this.#fail(e, err);
    if (w.releasing && w.running === 0) this.requestTick();
    this.pump();
    return true;
  }

  #fail(e: Entry, err: unknown): void {
    this.counters.failed++;
    if (e.attempts < this.#maxDeliver) {
      e.state = S_QUEUED;
      e.dueMs = Date.now() + this.#delayFor(e.attempts - 1);
      this.heap.push(e);
      this.#armDue();
      return;
    }
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    if (this.#dlq === false) {
      this.report(ppError('PP_ERR_RETRIES_EXHAUSTED', { message: `record ${this.topic}/${e.rec.partition}/${e.rec.offset} failed ${e.attempts} times and was dropped: ${reason}` }));
      this.counters.deadLettered++;
      this.#host.deadLettered({ topic: this.topic, group: this.group, rec: e.rec, attempts: e.attempts, reason, dlq: false });
      this.#finish(e);
      return;
    }
    e.state = S_DEAD;
    this.#sendDead(e, reason, this.#dlq, 0);
  }

  /** Publishes to the dead-letter topic; the record finishes only once that publish is durable. */
  #sendDead(e: Entry, reason: string, dlq: string, tries: number): void {
    const gen = e.gen;
    this.#host.deadLetter(this.topic, e.rec, { reason, attempts: e.attempts, group: this.group, dlq }).then(
      () => {
        if (e.gen !== gen || e.state !== S_DEAD) return;
        this.counters.deadLettered++;
        this.#host.deadLettered({ topic: this.topic, group: this.group, rec: e.rec, attempts: e.attempts, reason, dlq });
        this.#finish(e);
        this.pump();
      },
      (err: unknown) => {
        this.report(err);
        if (e.gen !== gen || e.state !== S_DEAD || this.#closed) return;
        // Keep the record (and its key) blocked; try again after a backoff.
        setTimeout(() => this.#sendDead(e, reason, dlq, tries + 1), this.#delayFor(tries)).unref();
      },
    );
  }

  #delayFor(retryIndex: number): number {
    const b = this.#backoff;
    if (Array.isArray(b)) return (b as readonly number[])[Math.min(retryIndex, b.length - 1)]!;
    const x = b as { baseDelayMs: number; maxDelayMs: number };
    return backoffDelayMs(retryIndex, x.baseDelayMs, x.maxDelayMs);
  }

  #finish(e: Entry): void {
    const w = e.worker;
    e.state = S_DONE;
    const key = e.rec.key;
    if (key !== undefined && w.keyTails.get(key) === e) w.keyTails.delete(key);
    const next = e.chainNext;
    e.chainNext = undefined;
    if (next !== undefined && next.state === S_QUEUED && next.blocked) {
      next.blocked = false;
      this.#makeEligible(next);
    }
    if (w.window.peek() === e) {
      w.committed();
      w.signalSpace();
    }
  }

  /** ackWait: the oldest running deliveries first; a passed deadline fails the attempt. */
  #checkDeadlines(): void {
    const now = Date.now();
    while (this.#deadlines.length > 0) {
      const e = this.#deadlines.peek()!;
      const gen = this.#deadlineGens.peek()!;
      if (e.gen === gen && e.state === S_RUNNING) {
        if (e.deadlineMs > now) break;
        const d = e.delivery;
        invariant(d !== undefined, 'a running record has a delivery');
        this.counters.abandoned++;
        d.abort(`ackWait ${this.#ackWaitMs} ms passed`);
        this.settle(e, gen, d, ppError('PP_ERR_TIMEOUT', { message: `ackWait ${this.#ackWaitMs} ms passed` }), 'timeout');
      }
      this.#deadlines.shift();
      this.#deadlineGens.shift();
    }
  }

  // ---- close ------------------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#hbTimer !== undefined) clearInterval(this.#hbTimer);
    for (const w of this.#workers.values()) {
      w.releasing = true;
      w.signalSpace();
    }
    await this.#ticking;
    // Let running handlers finish (bounded by ackWait), then commit what they acked.
    const deadline = Date.now() + this.#ackWaitMs;
    while (this.counters.inFlight > 0 && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.#idle = r;
        setTimeout(r, 20);
      });
    }
    if (this.#ackTimer !== undefined) clearInterval(this.#ackTimer);
    if (this.#dueTimer !== undefined) clearTimeout(this.#dueTimer);
    const g = this.#host.engine.groups;
    const entries = [...this.#workers.values()].map((w) => ({ partition: w.partition, committed: w.committed(), release: true }));
    try {
      if (entries.length > 0) await g.commit(this.topic, this.group, this.member, this.#sessionMs, entries);
    } catch (err) {
      this.report(err);
    }
    const workers = [...this.#workers.values()];
    for (const w of workers) await this.#removeWorker(w);
    await Promise.allSettled(workers.map((w) => w.loop));
    try {
      await g.leave(this.topic, this.group, this.member);
    } catch (err) {
      this.report(err);
    }
  }

  stats(): Readonly<SubscriptionStats> {
    return { ...this.counters };
  }
}

function checkBackoff(b: unknown): void {
  if (Array.isArray(b)) {
    requireArg(b.length >= 1 && b.length <= 100 && b.every((x) => Number.isFinite(x) && x >= 0 && x <= 86_400_000), 'backoff', 'a list must hold 1..100 delays in [0, 86400000] ms');
    return;
  }
  const x = b as { baseDelayMs?: unknown; maxDelayMs?: unknown } | null;
  requireArg(
    typeof x === 'object' && x !== null && typeof x.baseDelayMs === 'number' && typeof x.maxDelayMs === 'number' && x.baseDelayMs >= 0 && x.maxDelayMs >= x.baseDelayMs && x.maxDelayMs <= 86_400_000,
    'backoff',
    'must be { baseDelayMs, maxDelayMs } with 0 <= base <= max <= 86400000, or a list of delays',
  );
}
