/**
 * Least frequently used, approximated by sampling (the way Redis's allkeys-lfu works): each slot
 * has an exact access count; eviction looks at `sample` consecutive resident slots from a random
 * start in a dense array of residents and evicts the least frequent (ties: the least recently
 * touched). Counts are halved every 10 x entriesMax accesses so old popularity fades.
 *
 * Why sampled rather than exact O(1) LFU (frequency buckets): exact LFU needs a list node per
 * distinct count, allocated and freed as counts change; sampling needs two typed arrays and is
 * within a few points of exact LFU on skewed traces (Redis's measurements), and pure LFU is the
 * weakest of the three policies on recency anyway. A slot whose count is strictly above every
 * other resident's is never evicted while another slot is resident (samples are distinct slots).
 */
import { invariant } from '../../errors/index.js';
import type { Policy } from './base.js';

export interface LfuOptions {
  /** Resident slots examined per eviction. Default 16. */
  sample?: number;
  /** Accesses between halvings, as a multiple of entriesMax. Default 10. */
  agingFactor?: number;
}

export class LfuPolicy implements Policy {
  readonly name = 'lfu' as const;
  readonly usesHash = false;
  private readonly counts: Uint32Array;
  private readonly touched: Float64Array;
  /** Resident slots packed at the front; `pos[slot]` is a slot's index here (-1 when not resident). */
  private readonly dense: Int32Array;
  private readonly pos: Int32Array;
  private readonly entriesMax: number;
  private readonly sample: number;
  private readonly agingPeriod: number;
  private accesses = 0;
  private tick = 0;
  private rng = 0x9e3779b9;
  size = 0;

  constructor(entriesMax: number, capacity: number, options: LfuOptions = {}) {
    this.entriesMax = entriesMax;
    this.sample = options.sample ?? 16;
    invariant(Number.isInteger(this.sample) && this.sample >= 1, 'lfu: sample >= 1');
    this.agingPeriod = Math.max(16, (options.agingFactor ?? 10) * entriesMax);
    this.counts = new Uint32Array(capacity);
    this.touched = new Float64Array(capacity);
    this.dense = new Int32Array(capacity);
    this.pos = new Int32Array(capacity).fill(-1);
  }

  insert(slot: number): number {
    // Choose the victim among the EXISTING residents before adding: a newcomer (count 1) would
    // otherwise be the least frequent and never get in.
    let victim = -1;
    if (this.size + 1 > this.entriesMax) victim = this.evictOne();
    this.pos[slot] = this.size;
    this.dense[this.size++] = slot;
    this.counts[slot] = 1;
    this.touched[slot] = ++this.tick;
    this.access();
    return victim;
  }

  hit(slot: number): void {
    const c = this.counts[slot]!;
    if (c < 0xffffffff) this.counts[slot] = c + 1;
    this.touched[slot] = ++this.tick;
    this.access();
  }

  hits(slots: Int32Array, n: number): void {
    for (let i = 0; i < n; i++) this.hit(slots[i]!);
  }

  miss(): void {
    this.access();
  }

  remove(slot: number): void {
    const i = this.pos[slot]!;
    invariant(i >= 0, 'lfu: removed slot is resident');
    const last = this.dense[--this.size]!;
    this.dense[i] = last;
    this.pos[last] = i;
    this.pos[slot] = -1;
  }

  evictOne(): number {
    const n = this.size;
    if (n === 0) return -1;
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x;
    const start = (x >>> 0) % n;
    const k = Math.min(this.sample, n);
    let best = -1;
    for (let j = 0; j < k; j++) {
      const s = this.dense[(start + j) % n]!;
      if (best < 0 || this.counts[s]! < this.counts[best]! || (this.counts[s] === this.counts[best] && this.touched[s]! < this.touched[best]!)) best = s;
    }
    this.remove(best);
    return best;
  }

  clear(): void {
    for (let i = 0; i < this.size; i++) this.pos[this.dense[i]!] = -1;
    this.size = 0;
  }

  countOf(slot: number): number {
    return this.counts[slot]!;
  }

  private access(): void {
    if (++this.accesses < this.agingPeriod) return;
    this.accesses = 0;
    for (let i = 0; i < this.size; i++) {
      const s = this.dense[i]!;
      this.counts[s] = this.counts[s]! >>> 1;
    }
  }
}
