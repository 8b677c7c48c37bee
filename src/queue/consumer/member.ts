/**
 * A consumer-group member: partition ownership (leases, rebalancing), per-key ordering, ack
 * deadlines, redelivery with backoff, dead letters and offset commits — the same code on every
 * engine, so both engines give the same semantics.
 *
 * Each owned partition has a Worker (worker.ts) that reads ahead into a window; the member admits
 * the window's records, runs the oldest unfinished record of each key (records without a key run
 * in any order), and commits each partition's first unfinished offset. Commits are periodic
 * (every heartbeat) and on release, so after a crash a group re-handles at most what was acked
 * since its last commit — at-least-once.
 *
 * Acks: a handler that resolves acks; one that throws (or rejects) fails the attempt; one that
 * is still running after `ackWaitMs` fails the attempt too (its signal is aborted, its slot freed
 * and the record redelivered). Only the current delivery of a record counts (see delivery.ts).
 */
import { invariant, ppError } from '../../errors/index.js';
import type { QueueEngine, ReadFrom, StoredRecord } from '../engines/base.js';
import { DeliveryImpl, type Delivery, type DeliveryOwner, type SettledBy } from './delivery.js';
import { DueHeap, Fifo, S_DEAD, S_DONE, S_DROPPED, S_QUEUED, S_READY, S_RUNNING, type Entry } from './entry.js';
import { backoffDelay, resolveSubscribeOptions, type Backoff, type SubscribeOptions } from './options.js';
import { Worker, type WorkerOwner } from './worker.js';

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

/** A record that failed deliveriesMax times and is finished: moved to `dlq`, or dropped (`dlq` false). */
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

let memberSeq = 0;

export class Member implements Subscription, WorkerOwner, DeliveryOwner {
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
  readonly #deliveriesMax: number;
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
    const o = resolveSubscribeOptions(topic, options);
    this.#host = host;
    this.topic = topic;
    this.group = o.group;
    this.member = `${process.pid.toString(36)}-${Date.now().toString(36)}-${(memberSeq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.#handler = o.handler;
    this.#concurrency = o.concurrency;
    this.#ackWaitMs = o.ackWaitMs;
    this.#deliveriesMax = o.deliveriesMax;
    this.#backoff = o.backoff;
    this.#dlq = o.deadLetter;
    this.#from = o.from;
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
  settle(e: Entry, gen: number, d: DeliveryImpl, err: unknown, by: SettledBy): boolean {
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
    if (e.attempts < this.#deliveriesMax) {
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
    return backoffDelay(this.#backoff, retryIndex);
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
