/**
 * The eviction-policy contract. A policy orders the L1's SLOTS (integers in [0, capacity)), never
 * keys or values: the L1 keeps keys, values and expiries in preallocated arrays indexed by slot,
 * and tells the policy what happened to a slot. Every method is allocation-free (the L1 get path
 * calls `hit` on every hit).
 *
 * One file per policy (lru.ts, wtinylfu.ts, lfu.ts); index.ts resolves a name to one.
 */

export type PolicyName = 'wtinylfu' | 'lru' | 'lfu';

export interface Policy {
  readonly name: PolicyName;
  /** Whether `miss` and `insert` need the key's hash (frequency-based policies). */
  readonly usesHash: boolean;
  /** Resident slots. */
  readonly size: number;
  /**
   * A new slot enters (its key was absent). Returns a resident slot to evict — already unlinked
   * from the policy, the caller frees it — or -1. The new slot may itself be returned (rejected
   * by admission). At most one slot is returned: `size <= entriesMax` holds after every insert.
   */
  insert(slot: number, hash: number): number;
  /** A hit on a resident slot (frequency policies kept the slot's hash at insert). */
  hit(slot: number): void;
  /**
   * `n` hits at once, oldest first: `slots[0..n)` (the L1's read buffer). Every slot is resident:
   * the L1 drains its buffer before any slot leaves the policy. Same effect as `n` calls of `hit`.
   */
  hits(slots: Int32Array, n: number): void;
  /** A lookup of a key that is not resident (frequency policies count it). */
  miss(hash: number): void;
  /** Unlinks a resident slot (delete, expiry, replacement by the caller). */
  remove(slot: number): void;
  /** Chooses, unlinks and returns one resident slot to evict (the byte bound), or -1 when empty. */
  evictOne(): number;
  clear(): void;
}

/**
 * Doubly linked lists of slots in ONE Int32Array, several lists sharing it (W-TinyLFU's window,
 * probation and protected segments). Each slot owns `stride` consecutive ints: prev, next, then
 * `stride - 2` ints the policy may use. List `j`'s sentinel is slot `capacity + j`: its next is
 * the least recently used slot, its prev the most recent. No node objects, so nothing is
 * allocated per operation and the GC never scans the lists (the node-lru-cache approach), and a
 * slot's prev and next share one cache line. (W-TinyLFU used to keep its key hash and segment in
 * the same line, stride 4; since hits on saturated keys skip the sketch, it keeps a one-byte
 * state per slot instead — 10 KB for 10,000 entries, CPU-cache resident — and the hash apart:
 * no faster on the get benchmark, half the list memory.)
 */
export class SlotLists {
  /** [prev, next, extra...] per slot, `stride` ints each. */
  readonly data: Int32Array;
  readonly capacity: number;
  readonly stride: number;

  constructor(capacity: number, lists: number, stride = 2) {
    this.capacity = capacity;
    this.stride = stride;
    this.data = new Int32Array((capacity + lists) * stride);
    this.reset(lists);
  }

  reset(lists: number): void {
    const d = this.data;
    const st = this.stride;
    for (let i = 0; i < this.capacity; i++) {
      d[i * st] = -1;
      d[i * st + 1] = -1;
    }
    for (let j = 0; j < lists; j++) {
      const s = this.capacity + j;
      d[s * st] = s;
      d[s * st + 1] = s;
    }
  }

  /** Appends `slot` as the most recent of list `list`. */
  append(list: number, slot: number): void {
    const d = this.data;
    const st = this.stride;
    const s = this.capacity + list;
    const last = d[s * st]!;
    d[last * st + 1] = slot;
    d[slot * st] = last;
    d[slot * st + 1] = s;
    d[s * st] = slot;
  }

  unlink(slot: number): void {
    const d = this.data;
    const st = this.stride;
    const p = d[slot * st]!;
    const n = d[slot * st + 1]!;
    d[p * st + 1] = n;
    d[n * st] = p;
    d[slot * st] = -1;
    d[slot * st + 1] = -1;
  }

  /** Moves a linked slot to the most recent end of `list` (its own or another). */
  moveToEnd(list: number, slot: number): void {
    const d = this.data;
    const st = this.stride;
    const s = this.capacity + list;
    const last = d[s * st]!;
    if (last === slot) return; // already the most recent: the common case for a hot key
    const p = d[slot * st]!;
    const n = d[slot * st + 1]!;
    d[p * st + 1] = n;
    d[n * st] = p;
    d[last * st + 1] = slot;
    d[slot * st] = last;
    d[slot * st + 1] = s;
    d[s * st] = slot;
  }

  /** The least recently used slot of `list`, or -1 when empty. */
  oldest(list: number): number {
    const s = this.capacity + list;
    const first = this.data[s * this.stride + 1]!;
    return first === s ? -1 : first;
  }

  linked(slot: number): boolean {
    return this.data[slot * this.stride + 1] !== -1;
  }
}
