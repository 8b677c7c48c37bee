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
 * Progress under busy handlers: the dispatcher runs handlers for at most DISPATCH_SLICE_MS at a
 * time, then yields to the event loop (setImmediate), so timers and I/O — heartbeats, lease
 * renewals, commit round trips — run even when handlers are synchronous or the reads never leave
 * the microtask queue; and between two handler calls it starts the heartbeat (commit + renewal)
 * as soon as it is due, instead of waiting for a timer a busy loop would starve. A member that
 * finds its lease lapsed (a handler, or anything else, held the event loop past it) starts no
 * handler until its next commit has either renewed the lease or dropped the partitions another
 * member took over; the lapse is reported (stats().leaseLapses, onError, the queue's log and
 * metrics).
 *
 * Acks: a handler that resolves acks; one that throws (or rejects) fails the attempt; one that
 * is still running after `ackWaitMs` fails the attempt too (its signal is aborted, its slot freed
 * and the record redelivered). Only the current delivery of a record counts (see delivery.ts).
 */
import { invariant, ppError, requireArg } from '../../errors/index.js';
import type { CommitEntry, QueueEngine, ReadFrom, StoredRecord } from '../engines/base.js';
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
  /** Offset commits stored (each also renews the leases). */
  commits: number;
  /** Times this member found its lease lapsed (the event loop was held past sessionTimeoutMs). */
  leaseLapses: number;
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

/** A member found its lease lapsed: the event loop was held past sessionTimeoutMs since its last renewal. */
export interface LeaseLapse {
  readonly topic: string;
  readonly group: string;
  readonly member: string;
  /** Partitions held when it was noticed (another member may have taken them over meanwhile). */
  readonly partitions: readonly number[];
  readonly sessionTimeoutMs: number;
  /** Since the last lease renewal started, in ms. */
  readonly sinceRenewalMs: number;
  /** The handler call that held the event loop past the lease, when one did, and for how long. */
  readonly record?: { readonly partition: number; readonly offset: number; readonly key: string | undefined; readonly blockedMs: number };
}

/** What the consumer needs from the queue (dead letters go through the normal publish path). */
export interface ConsumerHost {
  readonly engine: QueueEngine;
  deadLetter(topic: string, rec: StoredRecord, meta: { reason: string; attempts: number; group: string; dlq: string }): Promise<void>;
  /** Every dead-lettered record, once (the queue logs and counts it). */
  deadLettered(d: DeadLettered): void;
  partitionsOf(topic: string): Promise<number>;
  /** A lease lapse, once per lapse (the queue logs and counts it). */
  leaseLapsed(l: LeaseLapse): void;
}

/**
 * Longest the dispatcher runs handlers back to back before it yields to the event loop, in ms.
 * With synchronous handlers one slice runs many of them; the yield (one setImmediate per slice)
 * lets heartbeats, lease renewals and commit round trips through within a slice plus one handler.
 */
export const DISPATCH_SLICE_MS = 20;

let memberSeq = 0;

/** The chain key of every record under order 'partition' (a Map key no record key can equal: record keys are non-empty). */
const PARTITION_CHAIN = '';

export class Member implements Subscription, WorkerOwner, DeliveryOwner {
  readonly topic: string;
  readonly group: string;
  readonly member: string;
  readonly readAheadMax: number;
  readonly heap = new DueHeap();
  readonly counters: SubscriptionStats = { delivered: 0, acked: 0, failed: 0, redelivered: 0, deadLettered: 0, lateAcks: 0, abandoned: 0, skipped: 0, inFlight: 0, rebalances: 0, commits: 0, leaseLapses: 0 };
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
  readonly #onAssign: ((partition: number) => Promise<number | undefined> | number | undefined) | undefined;
  readonly #onRelease: ((partition: number) => void) | undefined;
  /** order 'partition': every record of a partition is one chain (handled one at a time, in offset order). */
  readonly #partitionOrder: boolean;
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
  /** When the next heartbeat (commit + renewal) is due, epoch ms. */
  #commitDueMs = 0;
  /** The earliest lease deadline of the partitions held (conservative: renewal start + session). */
  #leaseUntilMs = Infinity;
  /** A lapse was noticed: no handler starts until a commit renewed the leases (or dropped them). */
  #lapsed = false;
  /** Dispatch slices: pump() is not re-entrant; a slice ends at #sliceEndMs or at the next check phase. */
  #pumping = false;
  #sliceOpen = false;
  #sliceEndMs = 0;
  /** The slice ran out with work left: resumed by #endSlice. */
  #yielded = false;

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
    this.#onAssign = o.onAssign;
    this.#onRelease = o.onRelease;
    this.#partitionOrder = o.order === 'partition';
  }

  async start(): Promise<void> {
    this.#partitionCount = await this.#host.partitionsOf(this.topic);
    await this.#startTick();
    // One heartbeat after the last tick began (every tick re-arms it): a tick the dispatcher
    // started between handler calls takes the beat, the timer does not add one.
    this.#hbTimer = setTimeout(() => this.requestTick(), this.#heartbeatMs);
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
    void this.#startTick().catch((err: unknown) => this.report(err));
  }

  /** Runs one tick now (the caller checked none is running); `#ticking` settles when it ends. */
  #startTick(): Promise<void> {
    const t = this.#tick();
    this.#ticking = t
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        this.#ticking = undefined;
        if (this.#tickAgain) {
          this.#tickAgain = false;
          this.requestTick();
        }
      });
    return t;
  }

  /**
   * Heartbeat: commit + renew leases (beside the membership heartbeat, so a busy member's commit
   * waits for nothing else), then the membership; release what is no longer ours, claim what is.
   */
  async #tick(): Promise<void> {
    const g = this.#host.engine.groups;
    const startMs = Date.now();
    this.#commitDueMs = startMs + this.#heartbeatMs;
    this.#hbTimer?.refresh();
    const first = await Promise.allSettled([g.join(this.topic, this.group, this.member, this.#sessionMs), this.#commit(startMs)]);
    for (const r of first) if (r.status === 'rejected') throw r.reason;
    const members = await g.members(this.topic, this.group);
    const rank = members.indexOf(this.member);
    const n = members.length;
    const now = Date.now();
    let releasable = false;
    for (const [p, w] of this.#workers) {
      const desired = rank >= 0 && p % n === rank;
      if (!desired && !w.releasing) {
        // Graceful hand-off: stop fetching, let running handlers finish (bounded by ackWait).
        w.releasing = true;
        w.releaseDeadlineMs = now + this.#ackWaitMs;
        this.counters.rebalances++;
      }
      if (w.releasing && (w.running === 0 || now >= w.releaseDeadlineMs)) releasable = true;
    }
    if (releasable) await this.#commit(now);
    if (this.#closed || rank < 0) return;
    const claims: Promise<void>[] = [];
    for (let p = rank; p < this.#partitionCount; p += n) if (!this.#workers.has(p)) claims.push(this.#claim(p));
    // In parallel: a member taking over several partitions is served after one claim's round trips.
    for (const r of await Promise.allSettled(claims)) if (r.status === 'rejected') this.report(r.reason);
  }

  /** Stores every held partition's committed offset, renews their leases, releases those drained. */
  async #commit(startMs: number): Promise<void> {
    if (this.#workers.size === 0) return;
    // The event loop was away past the lease (a long GC, a blocking call outside a handler).
    if (startMs >= this.#leaseUntilMs) this.#lapse(startMs, undefined, 0);
    const workers = [...this.#workers.values()];
    const attempts = workers.map((w) => w.attemptsToStore());
    const entries: CommitEntry[] = workers.map((w, i) => {
      const c = w.committed();
      const a = attempts[i];
      return { partition: w.partition, committed: c === w.storedOffset ? undefined : c, release: w.releasing && (w.running === 0 || startMs >= w.releaseDeadlineMs), ...(a === undefined ? {} : { attempts: a.list }) };
    });
    const lost = await this.#host.engine.groups.commit(this.topic, this.group, this.member, this.#sessionMs, entries);
    this.counters.commits++;
    for (let i = 0; i < workers.length; i++) {
      const w = workers[i]!;
      const e = entries[i]!;
      if (this.#workers.get(w.partition) !== w) continue;
      if (lost.includes(e.partition)) {
        this.report(ppError('PP_ERR_CONFLICT', { message: `partition ${e.partition} of ${this.topic} was taken over by another member of ${this.group}` }));
        await this.#removeWorker(w);
        continue;
      }
      if (e.committed !== undefined) w.storedOffset = e.committed;
      const a = attempts[i];
      if (a !== undefined) w.storedAttempts = a.json;
      if (e.release) await this.#removeWorker(w);
      else w.leaseUntilMs = startMs + this.#sessionMs;
    }
    this.#leasesChanged();
  }

  /** Takes partition `p` when its lease is free and starts its worker. */
  async #claim(p: number): Promise<void> {
    const g = this.#host.engine.groups;
    const startMs = Date.now();
    const got = await g.claim(this.topic, this.group, p, this.member, this.#sessionMs);
    if (got === undefined) return; // still held by its previous owner: retried next tick
    if (this.#closed) {
      await g.commit(this.topic, this.group, this.member, this.#sessionMs, [{ partition: p, committed: undefined, release: true }]);
      return;
    }
    let own: number | undefined;
    if (this.#onAssign !== undefined) {
      try {
        own = await this.#onAssign(p);
        requireArg(own === undefined || (Number.isSafeInteger(own) && own >= 0), 'onAssign', `must resolve to an offset >= 0 or undefined (got ${String(own)})`);
      } catch (err) {
        await g.commit(this.topic, this.group, this.member, this.#sessionMs, [{ partition: p, committed: undefined, release: true }]).catch(() => undefined);
        throw err;
      }
      if (this.#closed) {
        await g.commit(this.topic, this.group, this.member, this.#sessionMs, [{ partition: p, committed: undefined, release: true }]);
        this.#released(p);
        return;
      }
    }
    const at = own ?? got.committed;
    const from: ReadFrom = at === undefined ? this.#from : { offset: at };
    const reader = await this.#host.engine.openReader(this.topic, p, from);
    const start = at ?? (await this.#startOffset(p, from));
    const w = new Worker(this, p, reader, start, got.committed, got.attempts);
    w.leaseUntilMs = startMs + this.#sessionMs;
    this.#workers.set(p, w);
    this.#leasesChanged();
  }

  /** Recomputes the earliest lease deadline; a lapse ends once every lease held is current again. */
  #leasesChanged(): void {
    let min = Infinity;
    for (const w of this.#workers.values()) if (w.leaseUntilMs < min) min = w.leaseUntilMs;
    this.#leaseUntilMs = min;
    if (this.#lapsed && Date.now() < min) {
      this.#lapsed = false;
      this.pump();
    }
  }

  /** The lease lapsed: report it once, start nothing until the next commit settles who holds what. */
  #lapse(now: number, e: Entry | undefined, blockedMs: number): void {
    if (this.#lapsed) return;
    this.#lapsed = true;
    this.counters.leaseLapses++;
    const sinceRenewalMs = now - (this.#leaseUntilMs - this.#sessionMs);
    const record = e === undefined ? undefined : { partition: e.rec.partition, offset: e.rec.offset, key: e.rec.key, blockedMs };
    const partitions = this.partitions();
    try {
      this.#host.leaseLapsed({ topic: this.topic, group: this.group, member: this.member, partitions, sessionTimeoutMs: this.#sessionMs, sinceRenewalMs, ...(record === undefined ? {} : { record }) });
    } catch {
      // reporting must not stop the consumer
    }
    const cause = record === undefined ? 'the event loop was held' : `the handler of ${this.topic}/${record.partition}/${record.offset} blocked the event loop for ${blockedMs} ms`;
    this.report(
      ppError('PP_ERR_TIMEOUT', {
        message: `${this.group}: the lease of partitions [${partitions.join(', ')}] of ${this.topic} lapsed (${sinceRenewalMs} ms since its renewal, sessionTimeoutMs ${this.#sessionMs}): ${cause}; another member may take them over`,
      }),
    );
    this.requestTick();
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
    this.#released(w.partition);
    this.#idle?.();
  }

  #released(p: number): void {
    try {
      this.#onRelease?.(p);
    } catch (err) {
      this.report(err);
    }
  }

  // ---- dispatch ---------------------------------------------------------------------------------

  admit(e: Entry): void {
    const w = e.worker;
    w.window.push(e);
    // Delivered before by a member that crashed or released the partition: the count goes on.
    if (w.restored !== undefined) e.attempts = w.restoredAttempts(e.rec.offset);
    const key = this.#partitionOrder ? PARTITION_CHAIN : e.rec.key;
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

  /**
   * Starts ready records while slots are free, for at most one dispatch slice; then yields to the
   * event loop (resumed by #endSlice). Not re-entrant: a synchronous handler settles inside
   * #run, and this loop, not a nested call, starts the next record.
   */
  pump(): void {
    if (this.#pumping || this.#yielded || this.#lapsed) return;
    this.#pumping = true;
    try {
      let now = Date.now();
      if (!this.#sliceOpen) {
        this.#sliceOpen = true;
        this.#sliceEndMs = now + DISPATCH_SLICE_MS;
        setImmediate(this.#endSlice);
      }
      while (this.counters.inFlight < this.#concurrency && this.#ready.length > 0) {
        if (now >= this.#sliceEndMs) {
          this.#yielded = true;
          return;
        }
        if (now >= this.#leaseUntilMs) {
          this.#lapse(now, undefined, 0);
          return;
        }
        // The heartbeat is due: start it here, between two handler calls (its I/O completes
        // while the next slices yield), not only from its timer.
        if (now >= this.#commitDueMs && this.#ticking === undefined) this.requestTick();
        const e = this.#ready.shift()!;
        // A releasing partition starts nothing new: its records go to the next owner.
        if (e.state !== S_READY || e.worker.stopped || e.worker.releasing) continue;
        if (e.attempts >= this.#deliveriesMax) {
          // Delivered deliveriesMax times by a member that stopped before the last one settled.
          this.#fail(e, new Error(`delivered ${e.attempts} times (deliveriesMax ${this.#deliveriesMax}); the consumer stopped before the last delivery was settled`));
          continue;
        }
        this.#run(e, now);
        const after = Date.now();
        if (after >= this.#leaseUntilMs) {
          this.#lapse(after, e, after - now);
          return;
        }
        now = after;
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** Check phase after a slice started: the next pump opens a new slice; a yielded one resumes. */
  readonly #endSlice = (): void => {
    this.#sliceOpen = false;
    if (this.#yielded) {
      this.#yielded = false;
      this.pump();
    }
  };

  #run(e: Entry, now: number): void {
    const w = e.worker;
    e.state = S_RUNNING;
    e.attempts++;
    const gen = ++e.gen;
    e.deadlineMs = now + this.#ackWaitMs;
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
    const key = this.#partitionOrder ? PARTITION_CHAIN : e.rec.key;
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
    if (this.#hbTimer !== undefined) clearTimeout(this.#hbTimer);
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
    const entries: CommitEntry[] = [...this.#workers.values()].map((w) => {
      const a = w.attemptsToStore();
      return { partition: w.partition, committed: w.committed(), release: true, ...(a === undefined ? {} : { attempts: a.list }) };
    });
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
