/**
 * L1: the in-process cache. Bounded by entries (`entriesMax`) and bytes (`bytesMax`), per-entry
 * TTL, eviction by a selectable policy (W-TinyLFU by default, LRU, LFU).
 *
 * Layout (the node-lru-cache approach): every entry lives in a SLOT, an index into preallocated
 * parallel arrays — keys and values in plain arrays, expiry, freshness, size, hash and flags in
 * typed arrays — and `map` maps a key to its slot. Slots are recycled through a free stack. The
 * policy orders slots in typed-array linked lists (policies/base.ts). So a get is one Map lookup,
 * one expiry comparison and the policy's O(1) bookkeeping, and allocates nothing; a set
 * allocates only when the Map grows.
 *
 * Hits are BUFFERED (Caffeine's read buffer, single-threaded): a hit on a live entry writes its
 * slot into a fixed ring of READ_BUFFER_SIZE slots (1 KB) and returns; the policy sees the batch
 * when the ring is full, and before anything can leave it — every set, delete and expiry drains
 * the ring first, and so does reading `policy`. So eviction and admission always decide on every
 * hit so far, in order: nothing is dropped (Caffeine drops reads when its buffer is full because
 * another thread drains it; here the thread that fills the ring drains it), and the hit path is a
 * Map lookup, the expiry check and one typed-array write, with no call into the policy. Expiry
 * is checked before a hit is recorded, so an expired entry is never returned.
 *
 * What the benchmark showed (bench/cache.ts, 2-core shared machine): the clock read is skipped
 * for entries without a TTL (`expiresAt = Infinity`); the key hash the frequency sketch needs is
 * computed once at insert and kept by the policy, so a hit does no string hashing; with the read
 * buffer and the policy's batch path (`Policy.hits`) a W-TinyLFU get went from ~0.6 to ~0.9-1.0
 * of lru-cache's.
 *
 * The tiered `Cache` (cache.ts) uses the slot-level accessors (`lookup`, `staleAtOf`, ...) to
 * read an entry's metadata without allocating an entry object.
 */
import { invariant, ppError, requireArg } from '../errors/index.js';
import type { Clock } from '../resilience/index.js';
import { renamedOptions } from '../util/index.js';
import { createPolicy, type Policy, type PolicyName, type PolicyOptions } from './policies/index.js';
import { hashKey } from './sketch.js';
import { measureValue } from './size.js';

export type CacheKey = string | number;

/** Largest entriesMax accepted: slots are preallocated (about 60 bytes each plus the sketch). */
export const L1_ENTRIES_MAX = 1 << 24;
export const DEFAULT_L1_ENTRIES_MAX = 10_000;
/** Hits buffered before the policy sees them (the read buffer: 256 slots, 1 KB per cache). */
export const READ_BUFFER_SIZE = 256;

/** Entry flags. */
export const FLAG_NEGATIVE = 1;

export interface L1Options extends PolicyOptions {
  /** Default 'wtinylfu'. */
  policy?: PolicyName;
  /** Default 10,000. */
  entriesMax?: number;
  /** Total bytes of the values held (as `sizeOf` measures them). Default Infinity (no byte bound). */
  bytesMax?: number;
  /** Bytes of a value, when bytesMax is finite and `set` is not told. Default `measureValue`. */
  sizeOf?: (value: unknown) => number;
  /** Epoch-ms clock for TTLs. Default `Date.now` (L2 entries carry epoch times across nodes). */
  clock?: Clock;
  /** Called when an entry that carries tags leaves (evicted, expired, deleted, replaced). */
  onTaggedRemove?: (key: CacheKey, tags: readonly string[]) => void;
  /** @deprecated use entriesMax */
  maxEntries?: number;
  /** @deprecated use bytesMax */
  maxBytes?: number;
}

export interface L1Stats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  evictions: number;
  expirations: number;
}

export const wallClock: Clock = { now: () => Date.now() };

export class L1Cache<K extends CacheKey = CacheKey, V = unknown> {
  readonly entriesMax: number;
  readonly bytesMax: number;
  readonly clock: Clock;
  private readonly pol: Policy;
  private readonly capacity: number;
  private readonly map = new Map<K, number>();
  private readonly keys: (K | undefined)[];
  private readonly values: unknown[];
  private readonly tags: (readonly string[] | undefined)[];
  private readonly expiresAt: Float64Array;
  private readonly staleAt: Float64Array;
  private readonly computeMs: Float32Array;
  private readonly sizes: Float64Array;
  private readonly flags: Uint8Array;
  private readonly free: Int32Array;
  private freeTop: number;
  private readonly hashing: boolean;
  private readonly sizeOf: (value: unknown) => number;
  private readonly onTaggedRemove: ((key: CacheKey, tags: readonly string[]) => void) | undefined;
  private bytesHeld = 0;
  /** Resident entries with a finite expiry: while 0, gets skip the expiry read (one cache line). */
  private ttlEntries = 0;
  /** Hits not yet applied to the policy (slots, oldest first); see `get`. */
  private readonly readBuf: Int32Array;
  private readCount = 0;
  private hitCount = 0;
  private missCount = 0;
  private evictionCount = 0;
  private expirationCount = 0;

  constructor(given: L1Options = {}) {
    const options = renamedOptions(given, { entriesMax: 'maxEntries', bytesMax: 'maxBytes' });
    const entriesMax = options.entriesMax ?? DEFAULT_L1_ENTRIES_MAX;
    const bytesMax = options.bytesMax ?? Infinity;
    requireArg(Number.isInteger(entriesMax) && entriesMax >= 1 && entriesMax <= L1_ENTRIES_MAX, 'entriesMax', `must be an integer in [1, ${L1_ENTRIES_MAX}]`);
    requireArg(bytesMax === Infinity || (Number.isFinite(bytesMax) && bytesMax >= 1), 'bytesMax', 'must be a number >= 1 or Infinity');
    this.entriesMax = entriesMax;
    this.bytesMax = bytesMax;
    // One slot more than entriesMax: a new entry is placed before the policy picks what leaves.
    this.capacity = entriesMax + 1;
    this.pol = createPolicy(options.policy ?? 'wtinylfu', entriesMax, this.capacity, options);
    this.hashing = this.pol.usesHash;
    this.readBuf = new Int32Array(READ_BUFFER_SIZE);
    this.clock = options.clock ?? wallClock;
    this.sizeOf = options.sizeOf ?? measureValue;
    this.onTaggedRemove = options.onTaggedRemove;
    this.keys = new Array<K | undefined>(this.capacity).fill(undefined);
    this.values = new Array<unknown>(this.capacity).fill(undefined);
    this.tags = new Array<readonly string[] | undefined>(this.capacity).fill(undefined);
    this.expiresAt = new Float64Array(this.capacity);
    this.staleAt = new Float64Array(this.capacity);
    this.computeMs = new Float32Array(this.capacity);
    this.sizes = new Float64Array(this.capacity);
    this.flags = new Uint8Array(this.capacity);
    this.free = new Int32Array(this.capacity);
    for (let i = 0; i < this.capacity; i++) this.free[i] = this.capacity - 1 - i;
    this.freeTop = this.capacity;
  }

  get size(): number {
    return this.map.size;
  }

  /** The eviction policy, with every buffered hit applied (introspection and tests). */
  get policy(): Policy {
    this.drainReads();
    return this.pol;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /**
   * The value, or undefined when absent or expired. Counts a hit or a miss. Allocation-free; a
   * hit is recorded in the read buffer (see the file comment), a miss goes to the policy at once.
   */
  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) {
      this.missCount++;
      if (this.hashing) this.pol.miss(hashKey(key));
      return undefined;
    }
    if (this.ttlEntries !== 0) {
      const exp = this.expiresAt[slot]!;
      if (exp !== Infinity && this.clock.now() >= exp) {
        this.expire(slot, key);
        return undefined;
      }
    }
    this.readBuf[this.readCount] = slot;
    if (++this.readCount === READ_BUFFER_SIZE) this.drainReads();
    return this.values[slot] as V;
  }

  /** The value without touching the policy or counters (undefined when absent or expired). */
  peek(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    const exp = this.expiresAt[slot]!;
    if (exp !== Infinity && this.clock.now() >= exp) return undefined;
    return this.values[slot] as V;
  }

  has(key: K): boolean {
    const slot = this.map.get(key);
    if (slot === undefined) return false;
    const exp = this.expiresAt[slot]!;
    return exp === Infinity || this.clock.now() < exp;
  }

  /**
   * Stores `value` for `ttlMs` (Infinity = no expiry). `sizeBytes` overrides the measured size.
   * Throws PP_ERR_TOO_LARGE when one value exceeds bytesMax, PP_ERR_UNSERIALIZABLE when the
   * byte bound must measure a value that cannot be serialized.
   */
  set(key: K, value: V, ttlMs = Infinity, sizeBytes = -1): void {
    requireArg(ttlMs > 0, 'ttlMs', 'must be > 0');
    const exp = ttlMs === Infinity ? Infinity : this.clock.now() + ttlMs;
    this.setEntry(key, value, exp, exp, sizeBytes, 0, 0, undefined);
  }

  /**
   * The full form the tiered cache uses: fresh until `staleAtMs`, kept until `expiresAtMs`
   * (>= staleAtMs; the gap is the grace period), `computeMs` for early refresh, flags, tags.
   */
  setEntry(key: K, value: unknown, staleAtMs: number, expiresAtMs: number, sizeBytes: number, flags: number, computeMs: number, tags: readonly string[] | undefined): void {
    invariant(expiresAtMs >= staleAtMs, 'l1: hard expiry at or after freshness');
    let size = sizeBytes;
    if (size < 0) size = this.bytesMax === Infinity ? 0 : this.sizeOf(value);
    if (size > this.bytesMax) {
      throw ppError('PP_ERR_TOO_LARGE', { field: 'value', message: `value: ${size} bytes exceed the L1 bytesMax ${this.bytesMax}`, data: { sizeBytes: size, bytesMax: this.bytesMax } });
    }
    this.drainReads();
    let slot = this.map.get(key);
    if (slot !== undefined) {
      // Replace in place: the slot keeps its place in the policy, counted as an access.
      const oldTags = this.tags[slot];
      if (oldTags !== undefined && this.onTaggedRemove !== undefined) this.onTaggedRemove(key, oldTags);
      this.bytesHeld += size - this.sizes[slot]!;
      this.pol.hit(slot);
    } else {
      invariant(this.freeTop > 0, 'l1: a free slot exists before insert');
      slot = this.free[--this.freeTop]!;
      this.keys[slot] = key;
      this.map.set(key, slot);
      this.bytesHeld += size;
      const h = this.hashing ? hashKey(key) : 0;
      this.writeSlot(slot, true, value, staleAtMs, expiresAtMs, size, flags, computeMs, tags);
      const victim = this.pol.insert(slot, h);
      if (victim >= 0) this.evict(victim);
      this.enforceBytes();
      invariant(this.map.size === this.pol.size && this.map.size <= this.entriesMax, 'l1: entries within entriesMax and known to the policy');
      return;
    }
    this.writeSlot(slot, false, value, staleAtMs, expiresAtMs, size, flags, computeMs, tags);
    this.enforceBytes();
  }

  delete(key: K): boolean {
    const slot = this.map.get(key);
    if (slot === undefined) return false;
    this.drainReads();
    this.pol.remove(slot);
    this.freeSlot(slot, key);
    return true;
  }

  clear(): void {
    if (this.onTaggedRemove !== undefined) {
      for (const [key, slot] of this.map) {
        const t = this.tags[slot];
        if (t !== undefined) this.onTaggedRemove(key, t);
      }
    }
    this.map.clear();
    this.hitCount += this.readCount; // buffered hits are counted, but their slots are gone
    this.readCount = 0;
    this.pol.clear();
    this.keys.fill(undefined);
    this.values.fill(undefined);
    this.tags.fill(undefined);
    for (let i = 0; i < this.capacity; i++) this.free[i] = this.capacity - 1 - i;
    this.freeTop = this.capacity;
    this.bytesHeld = 0;
    this.ttlEntries = 0;
  }

  /** Removes every expired entry (O(entries); expired entries otherwise leave on access or eviction). */
  purgeExpired(): number {
    const now = this.clock.now();
    let n = 0;
    for (const [key, slot] of this.map) {
      if (now >= this.expiresAt[slot]!) {
        this.expire(slot, key);
        n++;
      }
    }
    return n;
  }

  keysSnapshot(): K[] {
    return [...this.map.keys()];
  }

  stats(): L1Stats {
    return { entries: this.map.size, bytes: this.bytesHeld, hits: this.hitCount + this.readCount, misses: this.missCount, evictions: this.evictionCount, expirations: this.expirationCount };
  }

  // ---- slot-level access for the tiered cache (no entry objects) ------------------------------

  /** The live slot of `key` (counted as a hit, policy updated) or -1 (a miss; expired entries leave). */
  lookup(key: K): number {
    const slot = this.map.get(key);
    if (slot === undefined) {
      this.missCount++;
      if (this.hashing) this.pol.miss(hashKey(key));
      return -1;
    }
    const exp = this.expiresAt[slot]!;
    if (exp !== Infinity && this.clock.now() >= exp) {
      this.expire(slot, key);
      return -1;
    }
    this.readBuf[this.readCount] = slot;
    if (++this.readCount === READ_BUFFER_SIZE) this.drainReads();
    return slot;
  }

  /** The slot of `key` without counting or touching the policy; -1 when absent (expired or not). */
  slotOf(key: K): number {
    const slot = this.map.get(key);
    return slot === undefined ? -1 : slot;
  }

  valueAt(slot: number): unknown {
    return this.values[slot];
  }

  staleAtOf(slot: number): number {
    return this.staleAt[slot]!;
  }

  expiresAtOf(slot: number): number {
    return this.expiresAt[slot]!;
  }

  computeMsOf(slot: number): number {
    return this.computeMs[slot]!;
  }

  flagsOf(slot: number): number {
    return this.flags[slot]!;
  }

  tagsOf(slot: number): readonly string[] | undefined {
    return this.tags[slot];
  }

  /** Moves a slot's freshness (fail-safe backs off a failing loader); capped by its hard expiry. */
  setStaleAt(slot: number, staleAtMs: number): void {
    this.staleAt[slot] = Math.min(staleAtMs, this.expiresAt[slot]!);
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Applies the buffered hits to the policy. Called before any slot can leave it. */
  private drainReads(): void {
    const n = this.readCount;
    if (n === 0) return;
    this.readCount = 0;
    this.hitCount += n;
    this.pol.hits(this.readBuf, n);
  }

  /** Writes a slot's fields; `fresh` when the slot was free (its old expiry is not counted). */
  private writeSlot(slot: number, fresh: boolean, value: unknown, staleAtMs: number, expiresAtMs: number, size: number, flags: number, computeMs: number, tags: readonly string[] | undefined): void {
    if (!fresh && this.expiresAt[slot] !== Infinity) this.ttlEntries--;
    if (expiresAtMs !== Infinity) this.ttlEntries++;
    this.values[slot] = value;
    this.staleAt[slot] = staleAtMs;
    this.expiresAt[slot] = expiresAtMs;
    this.sizes[slot] = size;
    this.flags[slot] = flags;
    this.computeMs[slot] = computeMs;
    this.tags[slot] = tags;
  }

  private enforceBytes(): void {
    while (this.bytesHeld > this.bytesMax) {
      const victim = this.pol.evictOne();
      invariant(victim >= 0, 'l1: an entry to evict while over bytesMax');
      this.evict(victim);
    }
  }

  private evict(slot: number): void {
    this.evictionCount++;
    this.freeSlot(slot, this.keys[slot] as K);
  }

  private expire(slot: number, key: K): void {
    this.expirationCount++;
    this.missCount++;
    this.drainReads();
    this.pol.remove(slot);
    this.freeSlot(slot, key);
  }

  /** Frees a slot the policy no longer holds. */
  private freeSlot(slot: number, key: K): void {
    this.map.delete(key);
    const t = this.tags[slot];
    if (t !== undefined && this.onTaggedRemove !== undefined) this.onTaggedRemove(key, t);
    this.bytesHeld -= this.sizes[slot]!;
    if (this.expiresAt[slot] !== Infinity) this.ttlEntries--;
    this.keys[slot] = undefined;
    this.values[slot] = undefined;
    this.tags[slot] = undefined;
    this.free[this.freeTop++] = slot;
    invariant(this.freeTop <= this.capacity, 'l1: free stack within capacity');
  }
}
