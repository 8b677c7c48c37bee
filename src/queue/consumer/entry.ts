/**
 * The dispatch data structures of a member: an Entry is one admitted record with its delivery
 * state; a DueHeap orders the entries waiting for a time (delays, backoffs); a Fifo is the ready
 * queue, a partition's window and the ackWait deadline list. Neither structure allocates per
 * operation (the Fifo compacts its array once half of it is dead space).
 */
import type { StoredRecord } from '../engines/base.js';
import type { DeliveryImpl } from './delivery.js';
import type { Worker } from './worker.js';

export const S_QUEUED = 0; // admitted, waiting for its key, its due time, or a slot
export const S_READY = 1; // in the ready queue
export const S_RUNNING = 2;
export const S_DEAD = 3; // being dead-lettered
export const S_DONE = 4;
export const S_DROPPED = 5; // partition lost or closed

export class Entry {
  readonly rec: StoredRecord;
  readonly worker: Worker;
  state = S_QUEUED;
  attempts = 0;
  /** Bumped on every delivery and on drop: a settle for an older generation is a late ack. */
  gen = 0;
  dueMs = 0;
  deadlineMs = 0;
  /** Waiting for an older record of the same key to finish. */
  blocked = false;
  /** The next record of the same key (unblocked when this one finishes). */
  chainNext: Entry | undefined;
  delivery: DeliveryImpl | undefined;
  heapIndex = -1;

  constructor(rec: StoredRecord, worker: Worker) {
    this.rec = rec;
    this.worker = worker;
  }
}

/** A min-heap of entries by dueMs (delays and backoffs), with removal by index. */
export class DueHeap {
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
export class Fifo<T> {
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
  /** The i-th element from the front (0 = peek()). */
  at(i: number): T | undefined {
    return this.#a[this.#head + i];
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
