/**
 * W-TinyLFU (Einziger, Eytan, Friedman, Manes, "Adaptive Software Cache Management", 2018; the
 * policy of Caffeine): a small LRU admission WINDOW in front of a segmented-LRU MAIN space
 * (probation + protected, protected = 80% of main), a count-min sketch of recent frequencies
 * deciding whether the window's victim may enter main by evicting main's victim, and a hill
 * climber that moves capacity between window and main.
 *
 *  - New entries go to the window (LRU). When it overflows, its oldest entry (the candidate) goes
 *    to probation if main has room; otherwise it competes with probation's oldest (the victim):
 *    the more frequent in the sketch stays. A candidate with frequency <= 5 never beats an equal
 *    victim; a warmer tie is admitted with probability 1/128 (Caffeine's defence against an
 *    attacker who makes a victim look hot through hash collisions).
 *  - A hit in probation promotes to protected; protected overflow demotes its oldest back to
 *    probation. So one-hit wonders and scans pass through the window and probation without
 *    displacing the frequently used protected set: what makes W-TinyLFU beat LRU on traces with
 *    scans (the cache benchmark: Zipf with periodic scans).
 *  - Hill climbing: every 5 x maxEntries accesses the hit rate of the sample is compared with
 *    the previous one; the window grows or shrinks by a step (6.25% of capacity at first,
 *    decaying by 0.995 per sample, restarting after a hit-rate change >= 5 points) in the
 *    direction that improved it. Recency-skewed traces end with a large window (LRU-like),
 *    frequency-skewed ones with a small one. (The trajectory is sensitive to sampling noise:
 *    docs/cache.md shows hit ratios on traces and sizes beyond the benchmark's.)
 *
 * Hot path: the L1 hands hits over in batches (`hits`, its read buffer). A hit on a key whose
 * four sketch counters are all saturated skips the sketch (SATURATED flag, exact until the next
 * aging), so the common hit — a hot key in protected — is a byte read and one list move.
 */
import { invariant } from '../../errors/index.js';
import { CountMinSketch } from '../sketch.js';
import { SlotLists, type Policy } from './base.js';

// A slot's state word (state[slot]): the segment in bits 0-1, SATURATED in bit 2.
const WINDOW = 0;
const PROBATION = 1;
const PROTECTED = 2;
const NONE = 3;
const SEGMENT = 3;
/**
 * The slot's four sketch counters were all at the maximum when last incremented, and the sketch
 * has not aged since: incrementing them again is a no-op, so a hit skips the sketch's cache line.
 * Exact, not an approximation: only aging lowers counters, and aging clears every flag.
 */
const SATURATED = 4;

const STEP_PERCENT = 0.0625;
const STEP_DECAY = 0.995;
const RESTART_THRESHOLD = 0.05;
const PROTECTED_SHARE = 0.8;
/** Candidates at or below this frequency never win a tie (Caffeine's admission rule). */
const WARM_FREQUENCY = 5;

export interface WTinyLfuOptions {
  /** Initial window share of capacity, in (0, 1). Default 0.01 (Caffeine's). */
  initialWindowShare?: number;
  /** Turn the hill climber off (tests, fixed-window comparisons). Default true. */
  adaptive?: boolean;
  /** Sketch aging period (counted increments), as a multiple of maxEntries. Default 20. */
  sampleFactor?: number;
  /** Accesses per hill-climbing sample, as a multiple of maxEntries. Default 5. */
  climbFactor?: number;
  /** Step decay per sample. Default 0.995. */
  stepDecay?: number;
}

export class WTinyLfuPolicy implements Policy {
  readonly name = 'wtinylfu' as const;
  readonly usesHash = true;
  readonly sketch: CountMinSketch;
  private readonly lists: SlotLists;
  /** Per slot: the key hash (read only for sketch increments and admission contests). */
  private readonly hashes: Int32Array;
  /** Per slot: segment and SATURATED flag, one byte (10 KB for 10,000 entries: stays in the CPU's L1). */
  private readonly state: Uint8Array;
  private readonly maxEntries: number;
  private readonly adaptive: boolean;
  private readonly sampleSize: number;
  private readonly stepDecay: number;

  windowMax: number;
  mainMax: number;
  protectedMax: number;
  windowCount = 0;
  probationCount = 0;
  protectedCount = 0;

  private hitsInSample = 0;
  private missesInSample = 0;
  private previousHitRate = 0;
  private stepSize: number;
  /** Fractional part of adjustments not applied yet (steps are fractions of capacity). */
  private pendingAdjustment = 0;
  private rng = 0x2545f491;
  /** `sketch.agings` when the SATURATED flags were last cleared. */
  private agingsSeen = 0;

  constructor(maxEntries: number, capacity: number, options: WTinyLfuOptions = {}) {
    const share = options.initialWindowShare ?? 0.01;
    invariant(share > 0 && share < 1, 'wtinylfu: initial window share in (0, 1)');
    this.maxEntries = maxEntries;
    this.adaptive = options.adaptive ?? true;
    // Defaults tuned on bench/cache.ts's seeded traces (1M accesses; differences to LRU in points):
    // Caffeine's 10/10/0.98 gave zipf-scans@10k +4.82, recency-loop@1k -4.88, zipf-0.8@1k +9.86;
    // 20/5/0.995 gives +5.14, -1.77, +9.79 — a longer sketch memory (aging every 20x capacity)
    // helps frequency traces, a faster, slower-decaying climber lets recency traces grow the window.
    const sampleFactor = options.sampleFactor ?? 20;
    this.sketch = new CountMinSketch(maxEntries, sampleFactor);
    this.sampleSize = Math.max(16, Math.round((options.climbFactor ?? 5) * maxEntries));
    this.stepDecay = options.stepDecay ?? STEP_DECAY;
    this.lists = new SlotLists(capacity, 3);
    this.hashes = new Int32Array(capacity);
    this.state = new Uint8Array(capacity).fill(NONE);
    this.windowMax = Math.min(maxEntries, Math.max(1, Math.round(share * maxEntries)));
    this.mainMax = maxEntries - this.windowMax;
    this.protectedMax = Math.floor(PROTECTED_SHARE * this.mainMax);
    this.stepSize = -STEP_PERCENT * maxEntries;
  }

  get size(): number {
    return this.windowCount + this.probationCount + this.protectedCount;
  }

  insert(slot: number, hash: number): number {
    this.hashes[slot] = hash;
    this.state[slot] = WINDOW;
    this.lists.append(WINDOW, slot);
    this.windowCount++;
    if (this.windowCount <= this.windowMax) return -1;
    // The window overflowed: its oldest entry is the candidate for main.
    const candidate = this.lists.oldest(WINDOW);
    this.lists.unlink(candidate);
    this.windowCount--;
    if (this.probationCount + this.protectedCount < this.mainMax) {
      this.toProbation(candidate);
      return -1;
    }
    let victim = this.lists.oldest(PROBATION);
    if (victim < 0) victim = this.lists.oldest(PROTECTED);
    if (victim < 0 || !this.admit(candidate, victim)) {
      this.state[candidate] = NONE;
      return candidate;
    }
    this.unlinkResident(victim);
    this.toProbation(candidate);
    return victim;
  }

  hit(slot: number): void {
    const st = this.state[slot]!;
    if ((st & SATURATED) === 0) this.count(slot);
    if ((st & SEGMENT) === PROTECTED) this.lists.moveToEnd(PROTECTED, slot);
    else this.reorderOther(slot, st & SEGMENT);
    if (++this.hitsInSample + this.missesInSample >= this.sampleSize) this.climb();
  }

  /**
   * The L1's read buffer, drained: the same as `n` calls of `hit`, in order. Shaped for the
   * engine: the common case (a protected slot whose counters are saturated — most hits of a hot
   * key) is a byte read and one list move inlined here; increments and the other segments are
   * out-of-line methods. Measured on the get benchmark (number keys, CPU time): the list moves
   * are most of the policy's cost; keeping the rare paths out of the loop saved ~3%; skipping
   * moves of slots "near" the recent end (an approximation) and de-duplicating a batch's slots
   * were both slower and were dropped.
   */
  hits(slots: Int32Array, n: number): void {
    const state = this.state;
    const lists = this.lists;
    for (let i = 0; i < n; i++) {
      const slot = slots[i]!;
      const st = state[slot]!;
      if ((st & SATURATED) === 0) this.count(slot);
      if ((st & SEGMENT) === PROTECTED) lists.moveToEnd(PROTECTED, slot);
      else this.reorderOther(slot, st & SEGMENT);
    }
    this.hitsInSample += n;
    if (this.hitsInSample + this.missesInSample >= this.sampleSize) this.climb();
  }

  /** A hit's sketch increment (the slot's counters were not known saturated). */
  private count(slot: number): void {
    if (this.sketch.increment(this.hashes[slot]!)) this.state[slot] = this.state[slot]! | SATURATED;
    else if (this.sketch.agings !== this.agingsSeen) this.clearSaturated();
  }

  /** The sketch aged: every counter was halved, so no slot is known saturated any more. */
  private clearSaturated(): void {
    this.agingsSeen = this.sketch.agings;
    const state = this.state;
    const n = state.length;
    for (let i = 0; i < n; i++) state[i] = state[i]! & ~SATURATED;
  }

  /** A hit in the window (move to its recent end) or probation (promotion to protected). */
  private reorderOther(slot: number, segment: number): void {
    if (segment === WINDOW) {
      this.lists.moveToEnd(WINDOW, slot);
      return;
    }
    invariant(segment === PROBATION, 'wtinylfu: a hit on a resident slot');
    // Probation -> protected; the protected overflow goes back to probation's recent end.
    this.lists.moveToEnd(PROTECTED, slot);
    this.state[slot] = (this.state[slot]! & ~SEGMENT) | PROTECTED;
    this.probationCount--;
    this.protectedCount++;
    if (this.protectedCount > this.protectedMax) this.demoteProtected();
  }

  miss(hash: number): void {
    this.sketch.increment(hash);
    if (this.sketch.agings !== this.agingsSeen) this.clearSaturated();
    this.missesInSample++;
    if (this.hitsInSample + this.missesInSample >= this.sampleSize) this.climb();
  }

  remove(slot: number): void {
    invariant((this.state[slot]! & SEGMENT) !== NONE, 'wtinylfu: removed slot is resident');
    this.unlinkResident(slot);
  }

  evictOne(): number {
    const candidate = this.lists.oldest(WINDOW);
    let victim = this.lists.oldest(PROBATION);
    if (victim < 0) victim = this.lists.oldest(PROTECTED);
    if (candidate < 0 && victim < 0) return -1;
    if (victim < 0 || (candidate >= 0 && !this.admit(candidate, victim))) {
      this.unlinkResident(candidate);
      return candidate;
    }
    this.unlinkResident(victim);
    if (candidate >= 0) {
      // The candidate won its place: it leaves the window for probation (sizes stay within bounds).
      this.lists.unlink(candidate);
      this.windowCount--;
      this.toProbation(candidate);
    }
    return victim;
  }

  clear(): void {
    this.lists.reset(3);
    this.state.fill(NONE);
    this.windowCount = 0;
    this.probationCount = 0;
    this.protectedCount = 0;
    this.sketch.clear();
  }

  /** Frequency estimate of a resident slot (tests, introspection). */
  frequencyOf(slot: number): number {
    return this.sketch.estimate(this.hashes[slot]!);
  }

  /** The segment a resident slot is in (tests). */
  segmentOf(slot: number): 'window' | 'probation' | 'protected' | 'none' {
    const s = this.state[slot]! & SEGMENT;
    return s === WINDOW ? 'window' : s === PROBATION ? 'probation' : s === PROTECTED ? 'protected' : 'none';
  }

  private admit(candidate: number, victim: number): boolean {
    const cf = this.sketch.estimate(this.hashes[candidate]!);
    const vf = this.sketch.estimate(this.hashes[victim]!);
    if (cf > vf) return true;
    if (cf <= WARM_FREQUENCY) return false;
    // xorshift32: deterministic, allocation-free.
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x;
    return (x & 127) === 0;
  }

  private toProbation(slot: number): void {
    this.state[slot] = (this.state[slot]! & ~SEGMENT) | PROBATION;
    this.lists.append(PROBATION, slot);
    this.probationCount++;
  }

  private unlinkResident(slot: number): void {
    const s = this.state[slot]! & SEGMENT;
    this.lists.unlink(slot);
    if (s === WINDOW) this.windowCount--;
    else if (s === PROBATION) this.probationCount--;
    else this.protectedCount--;
    this.state[slot] = NONE;
  }

  private demoteProtected(): void {
    const d = this.lists.oldest(PROTECTED);
    this.lists.moveToEnd(PROBATION, d);
    this.state[d] = (this.state[d]! & ~SEGMENT) | PROBATION;
    this.protectedCount--;
    this.probationCount++;
  }

  /** One hill-climbing step at the end of a sample. */
  private climb(): void {
    const requests = this.hitsInSample + this.missesInSample;
    const hitRate = this.hitsInSample / requests;
    this.hitsInSample = 0;
    this.missesInSample = 0;
    if (!this.adaptive || this.maxEntries < 2) return;
    const change = hitRate - this.previousHitRate;
    const amount = change >= 0 ? this.stepSize : -this.stepSize;
    this.stepSize = Math.abs(change) >= RESTART_THRESHOLD ? STEP_PERCENT * this.maxEntries * (amount >= 0 ? 1 : -1) : this.stepDecay * amount;
    this.previousHitRate = hitRate;
    this.pendingAdjustment += amount;
    const whole = Math.trunc(this.pendingAdjustment);
    if (whole === 0) return;
    this.pendingAdjustment -= whole;
    if (whole > 0) this.growWindow(Math.min(whole, this.maxEntries - 1 - this.windowMax));
    else this.shrinkWindow(Math.min(-whole, this.windowMax - 1));
  }

  private setMainMax(): void {
    this.mainMax = this.maxEntries - this.windowMax;
    this.protectedMax = Math.floor(PROTECTED_SHARE * this.mainMax);
  }

  private growWindow(d: number): void {
    if (d <= 0) return;
    this.windowMax += d;
    this.setMainMax();
    // Main shrank: its oldest entries move to the window (nothing is evicted by resizing).
    while (this.probationCount + this.protectedCount > this.mainMax) {
      let s = this.lists.oldest(PROBATION);
      if (s < 0) s = this.lists.oldest(PROTECTED);
      this.unlinkResident(s);
      this.state[s] = (this.state[s]! & ~SEGMENT) | WINDOW;
      this.lists.append(WINDOW, s);
      this.windowCount++;
    }
    while (this.protectedCount > this.protectedMax) this.demoteProtected();
    this.checkBounds();
  }

  private shrinkWindow(d: number): void {
    if (d <= 0) return;
    this.windowMax -= d;
    this.setMainMax();
    while (this.windowCount > this.windowMax) {
      const s = this.lists.oldest(WINDOW);
      this.unlinkResident(s);
      this.toProbation(s);
    }
    this.checkBounds();
  }

  private checkBounds(): void {
    invariant(this.windowMax >= 1 && this.windowMax + this.mainMax === this.maxEntries, 'wtinylfu: window + main = maxEntries');
    invariant(this.windowCount <= this.windowMax && this.probationCount + this.protectedCount <= this.mainMax, 'wtinylfu: segments within bounds');
  }
}
