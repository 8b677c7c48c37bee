/**
 * One owned partition of a member. The worker reads ahead (at most `readAheadMax` records) and
 * admits records into a window ordered by offset. Records with the same key form a chain (the
 * member runs only the oldest unfinished one of a key, so a key's records are handled in order
 * even across failures and redeliveries; a failing record blocks its key, not the partition).
 * Records without a key have no order. The committed offset is the first unfinished record of
 * the window: every record below it was handled (acked, or dead-lettered).
 */
import { invariant } from '../../errors/index.js';
import { ATTEMPTS_STORED_MAX, type PartitionReader, type StoredAttempts, type StoredRecord } from '../engines/base.js';
import { Entry, Fifo, S_DONE, S_DROPPED, S_RUNNING, type DueHeap } from './entry.js';

const FETCH_MAX = 256;
const FETCH_WAIT_MS = 1000;

/** What a worker needs from its member (the member implements it). */
export interface WorkerOwner {
  readonly readAheadMax: number;
  readonly heap: DueHeap;
  readonly counters: { skipped: number; inFlight: number };
  /** Records skipped by the readers of partitions this member no longer holds. */
  readonly skippedBase: number;
  admit(e: Entry): void;
  pump(): void;
  report(err: unknown): void;
}

export class Worker {
  readonly member: WorkerOwner;
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
  /** This member's lease on the partition lasts at least until then (renewal start + session), epoch ms. */
  leaseUntilMs = 0;
  /** Delivery counts stored by the previous owner, by offset, until their records are read again. */
  restored: Map<number, number> | undefined;
  /** The delivery counts last stored, as JSON (to skip storing an unchanged list). */
  storedAttempts = '[]';
  #spaceWaiter: (() => void) | undefined;
  readonly loop: Promise<void>;

  constructor(member: WorkerOwner, partition: number, reader: PartitionReader, startOffset: number, stored: number | undefined, attempts: StoredAttempts) {
    this.member = member;
    this.partition = partition;
    this.reader = reader;
    this.nextOffset = startOffset;
    this.storedOffset = stored;
    if (attempts.length > 0) {
      this.restored = new Map(attempts.filter(([offset]) => offset >= startOffset).map(([offset, n]) => [offset, n] as const));
      this.storedAttempts = JSON.stringify(attempts);
    }
    this.loop = this.#fetchLoop();
  }

  /**
   * The delivery counts to store with the next commit (unfinished records that were delivered,
   * plus restored ones not read again yet, in offset order) and their JSON, or undefined when they
   * did not change since `storedAttempts` (which the member sets once the commit succeeded).
   */
  attemptsToStore(): { list: StoredAttempts; json: string } | undefined {
    const out: [number, number][] = [];
    const r = this.restored;
    if (r !== undefined) for (const [offset, n] of r) if (offset >= this.nextOffset && out.length < ATTEMPTS_STORED_MAX) out.push([offset, n]);
    const w = this.window;
    for (let i = 0; i < w.length && out.length < ATTEMPTS_STORED_MAX; i++) {
      const e = w.at(i)!;
      if (e.attempts > 0 && e.state !== S_DONE && e.state !== S_DROPPED) out.push([e.rec.offset, e.attempts]);
    }
    out.sort((a, b) => a[0] - b[0]);
    const json = JSON.stringify(out);
    return json === this.storedAttempts ? undefined : { list: out, json };
  }

  /** Admits a record read from the partition, with the delivery count a previous owner stored for it. */
  restoredAttempts(offset: number): number {
    const r = this.restored;
    if (r === undefined) return 0;
    const n = r.get(offset) ?? 0;
    r.delete(offset);
    if (r.size === 0) this.restored = undefined;
    return n;
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
