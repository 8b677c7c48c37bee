/**
 * W-TinyLFU (Einziger, Eytan, Friedman, Manes, "Adaptive Software Cache Management", 2018; the
 * policy of Caffeine): a small LRU admission WINDOW in front of a segmented-LRU MAIN space
 * (probation + protected, protected = 80% of main), a count-min sketch of recent frequencies
 * deciding whether the window's victim may enter main by evicting main's victim, and an
 * adaptation that moves capacity between window and main (gradient ascent on ghost hits, below).
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
 *  - Window adaptation from GHOSTS (ARC's idea — Megiddo & Modha, "ARC: A Self-Tuning, Low
 *    Overhead Replacement Cache", 2003 — applied to W-TinyLFU's window/main split): the hashes of
 *    recently rejected window candidates and of recently evicted main victims are kept in two
 *    small direct-mapped tables, each stamped with its own eviction clock. A miss on a key in the
 *    window ghost at most H window departures old is a hit that a window larger by H would have
 *    had; a miss in the main ghost at most H main evictions old, one that a main larger by H
 *    would have had (H = 1/8 of capacity). Every entriesMax accesses the window moves by the
 *    difference of the two counts, toward the side that would have hit more: an estimate of
 *    the hit-rate derivative at the current split, measured on the trace itself, not inferred
 *    from comparing the hit rates of consecutive samples (the hill climber this replaced, whose
 *    decisions drowned in sampling noise: docs/cache.md). Per-period work is O(1) plus the
 *    entries moved; per miss, two table reads; hits are not involved.
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

const PROTECTED_SHARE = 0.8;
/** Candidates at or below this frequency never win a tie (Caffeine's admission rule). */
const WARM_FREQUENCY = 5;
/** Ghost kinds (index of the ghost table and its clock). */
const GHOST_WINDOW = 0;
const GHOST_MAIN = 1;

export interface WTinyLfuOptions {
  /** Initial window share of capacity, in (0, 1). Default 0.01 (Caffeine's). */
  initialWindowShare?: number;
  /** Adapt the window size (off: tests, fixed-window comparisons). Default true. */
  adaptive?: boolean;
  /** Sketch aging period (counted increments), as a multiple of entriesMax. Default 20. */
  sampleFactor?: number;
  /** Accesses per adaptation period, as a multiple of entriesMax. Default 1. */
  adaptPeriod?: number;
  /** Ghost horizon H, as a share of entriesMax (the capacity change whose effect is estimated). Default 0.125. */
  ghostHorizon?: number;
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
  private readonly entriesMax: number;
  private readonly adaptive: boolean;
  private readonly sampleSize: number;

  windowMax: number;
  mainMax: number;
  protectedMax: number;
  windowCount = 0;
  probationCount = 0;
  protectedCount = 0;

  private hitsInSample = 0;
  private missesInSample = 0;
  /**
   * The ghosts: two direct-mapped tables of `ghostSize` entries (window's, then main's), a key
   * hash and the departure time + 1 (0 = empty) on the table's own clock. Sized 4H, so an entry
   * usually survives H later departures; collisions cost both tables alike.
   */
  private readonly ghostHash: Int32Array;
  private readonly ghostTime: Int32Array;
  private readonly ghostMask: number;
  private readonly ghostHorizon: number;
  /** Departures from the window (admitted or rejected) and evictions from main. */
  private windowClock = 0;
  private mainClock = 0;
  /** Ghost hits within the horizon in the current period: [window, main]. */
  private windowGhostHits = 0;
  private mainGhostHits = 0;
  private rng = 0x2545f491;
  /** `sketch.agings` when the SATURATED flags were last cleared. */
  private agingsSeen = 0;

  constructor(entriesMax: number, capacity: number, options: WTinyLfuOptions = {}) {
    const share = options.initialWindowShare ?? 0.01;
    invariant(share > 0 && share < 1, 'wtinylfu: initial window share in (0, 1)');
    this.entriesMax = entriesMax;
    this.adaptive = options.adaptive ?? true;
    // Sketch aging every 20x capacity (Caffeine: 10x): with 10x even a fixed 1% window gave only
    // +4.87 over LRU on zipf-scans at 10,000 entries (the benchmark's floor is +5); a longer
    // memory helps frequency traces. The ghost constants (period 1x, horizon 1/8 of capacity) sit
    // in the middle of the range where all of docs/cache.md's 55 cases behave (see there).
    const sampleFactor = options.sampleFactor ?? 20;
    this.sketch = new CountMinSketch(entriesMax, sampleFactor);
    this.sampleSize = Math.max(16, Math.round((options.adaptPeriod ?? 1) * entriesMax));
    const horizonShare = options.ghostHorizon ?? 0.125;
    invariant(horizonShare > 0 && horizonShare <= 1, 'wtinylfu: ghost horizon in (0, 1]');
    this.ghostHorizon = Math.max(1, Math.round(horizonShare * entriesMax));
    let g = 16;
    while (g < 4 * this.ghostHorizon) g *= 2;
    this.ghostMask = g - 1;
    const tables = this.adaptive ? 2 * g : 0;
    this.ghostHash = new Int32Array(tables);
    this.ghostTime = new Int32Array(tables);
    this.lists = new SlotLists(capacity, 3);
    this.hashes = new Int32Array(capacity);
    this.state = new Uint8Array(capacity).fill(NONE);
    this.windowMax = Math.min(entriesMax, Math.max(1, Math.round(share * entriesMax)));
    this.mainMax = entriesMax - this.windowMax;
    this.protectedMax = Math.floor(PROTECTED_SHARE * this.mainMax);
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
    this.windowClock++;
    if (this.probationCount + this.protectedCount < this.mainMax) {
      this.toProbation(candidate);
      return -1;
    }
    let victim = this.lists.oldest(PROBATION);
    if (victim < 0) victim = this.lists.oldest(PROTECTED);
    if (victim < 0 || !this.admit(candidate, victim)) {
      this.state[candidate] = NONE;
      this.ghostAdd(GHOST_WINDOW, this.hashes[candidate]!);
      return candidate;
    }
    this.unlinkResident(victim);
    this.mainClock++;
    this.ghostAdd(GHOST_MAIN, this.hashes[victim]!);
    this.toProbation(candidate);
    return victim;
  }

  hit(slot: number): void {
    const st = this.state[slot]!;
    if ((st & SATURATED) === 0) this.count(slot);
    if ((st & SEGMENT) === PROTECTED) this.lists.moveToEnd(PROTECTED, slot);
    else this.reorderOther(slot, st & SEGMENT);
    if (++this.hitsInSample + this.missesInSample >= this.sampleSize) this.adapt();
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
    if (this.hitsInSample + this.missesInSample >= this.sampleSize) this.adapt();
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
    if (this.adaptive) this.ghostLookup(hash);
    this.sketch.increment(hash);
    if (this.sketch.agings !== this.agingsSeen) this.clearSaturated();
    this.missesInSample++;
    if (this.hitsInSample + this.missesInSample >= this.sampleSize) this.adapt();
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
      this.windowClock++;
      this.ghostAdd(GHOST_WINDOW, this.hashes[candidate]!);
      return candidate;
    }
    this.unlinkResident(victim);
    this.mainClock++;
    this.ghostAdd(GHOST_MAIN, this.hashes[victim]!);
    if (candidate >= 0) {
      // The candidate won its place: it leaves the window for probation (sizes stay within bounds).
      this.lists.unlink(candidate);
      this.windowCount--;
      this.windowClock++;
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
    this.ghostTime.fill(0);
    this.windowGhostHits = 0;
    this.mainGhostHits = 0;
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

  /** Remembers a key that left the cache: a rejected window candidate or an evicted main victim. */
  private ghostAdd(kind: number, hash: number): void {
    if (!this.adaptive) return;
    const i = (kind === GHOST_WINDOW ? 0 : this.ghostMask + 1) + (hash & this.ghostMask);
    this.ghostHash[i] = hash;
    this.ghostTime[i] = (kind === GHOST_WINDOW ? this.windowClock : this.mainClock) + 1;
  }

  /** A miss: was the key a ghost within the horizon (a hit a larger window or main would have had)? */
  private ghostLookup(hash: number): void {
    hash |= 0; // as stored in the Int32Array (hashes are unsigned)
    const j = hash & this.ghostMask;
    const w = this.ghostTime[j]!;
    if (w !== 0 && this.ghostHash[j] === hash) {
      this.ghostTime[j] = 0;
      if (((this.windowClock + 1 - w) | 0) <= this.ghostHorizon) this.windowGhostHits++;
    }
    const k = this.ghostMask + 1 + j;
    const m = this.ghostTime[k]!;
    if (m !== 0 && this.ghostHash[k] === hash) {
      this.ghostTime[k] = 0;
      if (((this.mainClock + 1 - m) | 0) <= this.ghostHorizon) this.mainGhostHits++;
    }
  }

  /**
   * End of an adaptation period: the window moves by (window ghost hits − main ghost hits)
   * entries, toward the side that would have hit more (one entry per net ghost hit, as ARC).
   */
  private adapt(): void {
    this.hitsInSample = 0;
    this.missesInSample = 0;
    if (!this.adaptive || this.entriesMax < 2) return;
    const net = this.windowGhostHits - this.mainGhostHits;
    this.windowGhostHits = 0;
    this.mainGhostHits = 0;
    if (net > 0) this.growWindow(Math.min(net, this.entriesMax - 1 - this.windowMax));
    else if (net < 0) this.shrinkWindow(Math.min(-net, this.windowMax - 1));
  }

  private setMainMax(): void {
    this.mainMax = this.entriesMax - this.windowMax;
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
    invariant(this.windowMax >= 1 && this.windowMax + this.mainMax === this.entriesMax, 'wtinylfu: window + main = entriesMax');
    invariant(this.windowCount <= this.windowMax && this.probationCount + this.protectedCount <= this.mainMax, 'wtinylfu: segments within bounds');
  }
}
