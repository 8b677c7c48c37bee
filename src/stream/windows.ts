/**
 * Event-time windows, pure: assigners (tumbling, sliding, session), the keyed window state of one
 * task (one source partition) with its watermark, allowed lateness, firing and purging. No I/O and
 * no wall clock: the watermark advances only with the records themselves (bounded
 * out-of-orderness, per record), so the same records in the same order always give the same
 * results — which is what lets a job replay from its last checkpoint after a crash and write
 * exactly what an uninterrupted run writes.
 *
 * Semantics (docs/stream.md):
 *  - Watermark W = (highest event time seen) − outOfOrdernessMs; −Infinity before any record.
 *    A record is judged against W as it was BEFORE the record, then W advances with it.
 *  - A window [start, end) fires (emits its result) once W >= end. A record for a window with
 *    end + allowedLatenessMs <= W is late for it; a record late for every window it belongs to
 *    goes to the late side output. A record accepted into a window that already fired re-fires it
 *    at once (an updated result, the same (key, start)).
 *  - A window's state is dropped once W >= end + allowedLatenessMs.
 *  - Session windows: a record at t opens [t, t + gapMs) and merges with every open session of its
 *    key that overlaps it; a merged-away session that had fired is retracted.
 */
import { ppError, requireArg } from '../errors/index.js';

export type WindowSpec =
  | { readonly kind: 'tumbling'; readonly sizeMs: number; readonly offsetMs: number }
  | { readonly kind: 'sliding'; readonly sizeMs: number; readonly slideMs: number }
  | { readonly kind: 'session'; readonly gapMs: number };

/** Longest window (or session gap), in ms: 366 days. */
export const WINDOW_MS_MAX = 366 * 86_400_000;
/** Most windows one record may belong to (sizeMs / slideMs of a sliding window). */
export const WINDOWS_PER_RECORD_MAX = 1000;

function checkMs(v: unknown, field: string, min: number): void {
  requireArg(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= WINDOW_MS_MAX, field, `must be an integer in [${min}, ${WINDOW_MS_MAX}] ms`);
}

/** Fixed, non-overlapping windows of `sizeMs` (aligned to epoch + offsetMs). */
export function tumbling(sizeMs: number, offsetMs = 0): WindowSpec {
  checkMs(sizeMs, 'sizeMs', 1);
  requireArg(Number.isSafeInteger(offsetMs) && offsetMs >= 0 && offsetMs < sizeMs, 'offsetMs', 'must be an integer in [0, sizeMs)');
  return { kind: 'tumbling', sizeMs, offsetMs };
}

/** Hopping windows of `sizeMs` starting every `slideMs` (a record is in sizeMs / slideMs of them). */
export function sliding(sizeMs: number, slideMs: number): WindowSpec {
  checkMs(sizeMs, 'sizeMs', 1);
  checkMs(slideMs, 'slideMs', 1);
  requireArg(slideMs <= sizeMs && sizeMs % slideMs === 0, 'slideMs', 'must divide sizeMs');
  requireArg(sizeMs / slideMs <= WINDOWS_PER_RECORD_MAX, 'slideMs', `sizeMs / slideMs must be <= ${WINDOWS_PER_RECORD_MAX}`);
  return { kind: 'sliding', sizeMs, slideMs };
}

/** Per-key sessions that close after `gapMs` without a record. */
export function session(gapMs: number): WindowSpec {
  checkMs(gapMs, 'gapMs', 1);
  return { kind: 'session', gapMs };
}

function floorDiv(a: number, b: number): number {
  return Math.floor(a / b) * b;
}

/** Starts of the (aligned) windows containing `ts`, ascending. Sessions: not aligned. */
export function windowStarts(spec: WindowSpec, ts: number): number[] {
  if (spec.kind === 'tumbling') return [floorDiv(ts - spec.offsetMs, spec.sizeMs) + spec.offsetMs];
  if (spec.kind === 'sliding') {
    const last = floorDiv(ts, spec.slideMs);
    const out: number[] = [];
    for (let s = last - spec.sizeMs + spec.slideMs; s <= last; s += spec.slideMs) out.push(s);
    return out;
  }
  return [ts];
}

/** How a window's records are folded. `add` should return a new accumulator (not mutate), so a record over the state bound can be refused exactly. */
export interface Aggregator<V, A, R> {
  init(): A;
  add(acc: A, value: V): A;
  /** Sessions: combines two accumulators (required for session windows). */
  merge?(a: A, b: A): A;
  result(acc: A): R;
}

export interface WindowResult<K, R> {
  readonly key: K;
  readonly start: number;
  readonly end: number;
  readonly value: R;
  /** 'update': the window's (new) result; 'retract': a fired session merged into another, its row is gone. */
  readonly kind: 'update' | 'retract';
}

export interface WindowOptions {
  /** Watermark lag behind the highest event time seen, in ms. Default 0. */
  readonly outOfOrdernessMs?: number;
  /** How long after a window fired records may still update it, in ms. Default 0. */
  readonly allowedLatenessMs?: number;
  /** Open windows one key may hold (PP_ERR_STATE_TOO_LARGE beyond). Default 10000. */
  readonly windowsPerKeyMax?: number;
  /** Serialized bytes of one window's accumulator (estimated, JSON) (PP_ERR_STATE_TOO_LARGE beyond). Default 64 KiB. */
  readonly accBytesMax?: number;
}

export const WINDOW_DEFAULTS = { outOfOrdernessMs: 0, allowedLatenessMs: 0, windowsPerKeyMax: 10_000, accBytesMax: 64 * 1024 } as const;

/** One window of one key. */
export interface Win<A> {
  start: number;
  end: number;
  acc: A;
  fired: boolean;
}

/** A pending fire or purge (lazy: checked against the window when it comes due). */
interface Timer {
  readonly at: number;
  readonly key: string;
  readonly start: number;
  readonly end: number;
  readonly purge: boolean;
}

/** Min-heap of timers by `at` (then purge after fire, then key, for a deterministic order). */
class TimerHeap {
  readonly #a: Timer[] = [];
  get size(): number {
    return this.#a.length;
  }
  #less(x: Timer, y: Timer): boolean {
    if (x.at !== y.at) return x.at < y.at;
    if (x.purge !== y.purge) return !x.purge;
    if (x.key !== y.key) return x.key < y.key;
    return x.start < y.start;
  }
  push(t: Timer): void {
    const a = this.#a;
    a.push(t);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  peek(): Timer | undefined {
    return this.#a[0];
  }
  pop(): Timer | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.#less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.#less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** What one record did (for counters and the late side output). */
export type AddOutcome = 'ok' | 'late' | 'too-large';

/** Rough serialized size of a value, in bytes (numbers 8, strings their UTF-16 length). */
export function approxBytes(v: unknown, budget: number): number {
  let n = 0;
  const stack: unknown[] = [v];
  while (stack.length > 0 && n <= budget) {
    const x = stack.pop();
    if (x === null || x === undefined || typeof x === 'boolean') n += 4;
    else if (typeof x === 'number') n += 8;
    else if (typeof x === 'string') n += x.length + 2;
    else if (Array.isArray(x)) {
      n += 2;
      for (const e of x) stack.push(e);
    } else if (typeof x === 'object') {
      n += 2;
      for (const k of Object.keys(x)) {
        n += k.length + 3;
        stack.push((x as Record<string, unknown>)[k]);
      }
    } else n += 8;
  }
  return n;
}

/**
 * The keyed windows of one task. `add` folds a record in (and may emit: a late update re-fires),
 * then advances the watermark, firing and purging what came due; results go to `emit` in a
 * deterministic order. Keys are strings (the job serializes them). State changed since the last
 * `takeDirty` is tracked per key, for incremental checkpoints.
 */
export class KeyedWindows<V, A, R> {
  readonly spec: WindowSpec;
  readonly agg: Aggregator<V, A, R>;
  readonly outOfOrdernessMs: number;
  readonly allowedLatenessMs: number;
  readonly windowsPerKeyMax: number;
  readonly accBytesMax: number;
  readonly #keys = new Map<string, Win<A>[]>();
  readonly #timers = new TimerHeap();
  #dirty = new Set<string>();
  #maxTs = -Infinity;
  #windows = 0;
  /** Why the last add returned 'too-large' (for the dead letter). */
  lastError: Error | undefined;

  constructor(spec: WindowSpec, agg: Aggregator<V, A, R>, options: WindowOptions = {}) {
    this.spec = spec;
    this.agg = agg;
    const o = { ...WINDOW_DEFAULTS, ...options };
    requireArg(Number.isSafeInteger(o.outOfOrdernessMs) && o.outOfOrdernessMs >= 0 && o.outOfOrdernessMs <= WINDOW_MS_MAX, 'outOfOrdernessMs', `must be an integer in [0, ${WINDOW_MS_MAX}]`);
    requireArg(Number.isSafeInteger(o.allowedLatenessMs) && o.allowedLatenessMs >= 0 && o.allowedLatenessMs <= WINDOW_MS_MAX, 'allowedLatenessMs', `must be an integer in [0, ${WINDOW_MS_MAX}]`);
    requireArg(Number.isSafeInteger(o.windowsPerKeyMax) && o.windowsPerKeyMax >= 1 && o.windowsPerKeyMax <= 1_000_000, 'windowsPerKeyMax', 'must be an integer in [1, 1000000]');
    requireArg(Number.isSafeInteger(o.accBytesMax) && o.accBytesMax >= 8 && o.accBytesMax <= 64 * 1024 * 1024, 'accBytesMax', 'must be an integer in [8, 67108864]');
    requireArg(spec.kind !== 'session' || typeof agg.merge === 'function', 'aggregate.merge', 'session windows need an aggregator with merge');
    this.outOfOrdernessMs = o.outOfOrdernessMs;
    this.allowedLatenessMs = o.allowedLatenessMs;
    this.windowsPerKeyMax = o.windowsPerKeyMax;
    this.accBytesMax = o.accBytesMax;
  }

  /** The current watermark (−Infinity before any record). */
  get watermark(): number {
    return this.#maxTs - this.outOfOrdernessMs;
  }
  get maxEventTs(): number {
    return this.#maxTs;
  }
  /** Open windows over all keys. */
  get windowCount(): number {
    return this.#windows;
  }
  get keyCount(): number {
    return this.#keys.size;
  }

  #tooBig(acc: A): boolean {
    if (typeof acc !== 'object' || acc === null) return typeof acc === 'string' && acc.length > this.accBytesMax;
    return approxBytes(acc, this.accBytesMax) > this.accBytesMax;
  }

  #refuse(key: string, what: string): AddOutcome {
    this.lastError = ppError('PP_ERR_STATE_TOO_LARGE', { field: 'state', message: `key ${JSON.stringify(key.slice(0, 100))}: ${what}`, data: { key: key.slice(0, 100) } });
    return 'too-large';
  }

  /** Folds one record (event time `ts`) into the windows of `key`, then advances the watermark. */
  add(key: string, value: V, ts: number, emit: (r: WindowResult<string, R>) => void): AddOutcome {
    const out = this.spec.kind === 'session' ? this.#addSession(key, value, ts, emit) : this.#addAligned(key, value, ts, emit);
    if (ts > this.#maxTs) {
      this.#maxTs = ts;
      this.#advance(emit);
    }
    return out;
  }

  #addAligned(key: string, value: V, ts: number, emit: (r: WindowResult<string, R>) => void): AddOutcome {
    const W = this.watermark;
    const size = this.spec.kind === 'tumbling' ? this.spec.sizeMs : (this.spec as { sizeMs: number }).sizeMs;
    const starts = windowStarts(this.spec, ts);
    let list = this.#keys.get(key);
    let accepted = 0;
    for (const start of starts) {
      const end = start + size;
      if (end + this.allowedLatenessMs <= W) continue; // late for this window
      if (list === undefined) {
        list = [];
        this.#keys.set(key, list);
      }
      let w: Win<A> | undefined;
      for (let i = 0; i < list.length; i++) {
        if (list[i]!.start === start) {
          w = list[i];
          break;
        }
      }
      if (w === undefined) {
        if (list.length >= this.windowsPerKeyMax) return this.#refuse(key, `${list.length} open windows (windowsPerKeyMax ${this.windowsPerKeyMax})`);
        const acc = this.agg.add(this.agg.init(), value);
        if (this.#tooBig(acc)) return this.#refuse(key, `window accumulator over accBytesMax ${this.accBytesMax}`);
        w = { start, end, acc, fired: false };
        insertSorted(list, w);
        this.#windows++;
        if (W >= end) {
          // Complete already (a late record within lateness opened it): fire now, purge later.
          w.fired = true;
          emit({ key, start, end, value: this.agg.result(acc), kind: 'update' });
          this.#timers.push({ at: end + this.allowedLatenessMs, key, start, end, purge: true });
        } else this.#timers.push({ at: end, key, start, end, purge: false });
      } else {
        const acc = this.agg.add(w.acc, value);
        if (this.#tooBig(acc)) return this.#refuse(key, `window accumulator over accBytesMax ${this.accBytesMax}`);
        w.acc = acc;
        if (w.fired) emit({ key, start, end, value: this.agg.result(acc), kind: 'update' });
      }
      accepted++;
    }
    if (accepted > 0) this.#dirty.add(key);
    else if (list !== undefined && list.length === 0) this.#keys.delete(key);
    return accepted > 0 ? 'ok' : 'late';
  }

  #addSession(key: string, value: V, ts: number, emit: (r: WindowResult<string, R>) => void): AddOutcome {
    const W = this.watermark;
    const gap = (this.spec as { gapMs: number }).gapMs;
    const list = this.#keys.get(key) ?? [];
    let start = ts;
    let end = ts + gap;
    // Open sessions overlapping [ts, ts + gap), which the new record bridges into one.
    const hit: number[] = [];
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (s.start < end && ts < s.end) hit.push(i);
    }
    // Overlap with the first hit may extend the range into more sessions (they are disjoint and sorted, so hits are contiguous).
    for (const i of hit) {
      const s = list[i]!;
      if (s.start < start) start = s.start;
      if (s.end > end) end = s.end;
    }
    if (end + this.allowedLatenessMs <= W) return 'late';
    const merge = this.agg.merge!;
    let acc: A | undefined;
    for (const i of hit) acc = acc === undefined ? list[i]!.acc : merge(acc, list[i]!.acc);
    const next = this.agg.add(acc ?? this.agg.init(), value);
    if (this.#tooBig(next)) return this.#refuse(key, `session accumulator over accBytesMax ${this.accBytesMax}`);
    if (hit.length === 0 && list.length >= this.windowsPerKeyMax) return this.#refuse(key, `${list.length} open sessions (windowsPerKeyMax ${this.windowsPerKeyMax})`);
    let fired = false;
    for (let j = hit.length - 1; j >= 0; j--) {
      const s = list[hit[j]!]!;
      if (s.fired) {
        fired = true;
        if (s.start !== start) emit({ key, start: s.start, end: s.end, value: this.agg.result(s.acc), kind: 'retract' });
      }
      list.splice(hit[j]!, 1);
      this.#windows--;
    }
    const w: Win<A> = { start, end, acc: next, fired: false };
    insertSorted(list, w);
    this.#windows++;
    if (list.length === 1) this.#keys.set(key, list);
    this.#dirty.add(key);
    if (fired || W >= end) {
      // Already complete (a late record within lateness): fire now, purge later.
      w.fired = true;
      emit({ key, start, end, value: this.agg.result(next), kind: 'update' });
      this.#timers.push({ at: end + this.allowedLatenessMs, key, start, end, purge: true });
    } else this.#timers.push({ at: end, key, start, end, purge: false });
    return 'ok';
  }

  /** Fires and purges every timer due at the current watermark, in timer order. */
  #advance(emit: (r: WindowResult<string, R>) => void): void {
    const W = this.watermark;
    for (let t = this.#timers.peek(); t !== undefined && t.at <= W; t = this.#timers.peek()) {
      this.#timers.pop();
      const list = this.#keys.get(t.key);
      if (list === undefined) continue;
      let i = -1;
      for (let j = 0; j < list.length; j++) {
        if (list[j]!.start === t.start && list[j]!.end === t.end) {
          i = j;
          break;
        }
      }
      if (i < 0) continue; // merged away or already purged
      const w = list[i]!;
      if (!t.purge) {
        if (w.fired) continue;
        w.fired = true;
        emit({ key: t.key, start: w.start, end: w.end, value: this.agg.result(w.acc), kind: 'update' });
        this.#dirty.add(t.key);
        this.#timers.push({ at: w.end + this.allowedLatenessMs, key: t.key, start: w.start, end: w.end, purge: true });
        continue;
      }
      list.splice(i, 1);
      this.#windows--;
      this.#dirty.add(t.key);
      if (list.length === 0) this.#keys.delete(t.key);
    }
  }

  /** Keys whose windows changed since the last call, with their windows now (empty: no state left). */
  takeDirty(): [string, readonly Win<A>[]][] {
    const out: [string, readonly Win<A>[]][] = [];
    for (const k of this.#dirty) out.push([k, this.#keys.get(k) ?? []]);
    this.#dirty = new Set();
    return out;
  }

  /** Marks a key changed again (a checkpoint that failed puts its keys back). */
  markDirty(key: string): void {
    this.#dirty.add(key);
  }

  /** Drops every window of a key (its state was refused as too large); their timers lapse. */
  dropKey(key: string): void {
    const list = this.#keys.get(key);
    if (list === undefined) return;
    this.#windows -= list.length;
    this.#keys.delete(key);
    this.#dirty.add(key);
  }

  get dirtyCount(): number {
    return this.#dirty.size;
  }

  /** Restores one key's windows and the watermark position from a checkpoint (timers rebuilt). */
  restoreKey(key: string, wins: readonly Win<A>[]): void {
    if (wins.length === 0) return;
    const list = wins.map((w) => ({ ...w })).sort((a, b) => a.start - b.start);
    this.#keys.set(key, list);
    this.#windows += list.length;
    for (const w of list) {
      if (w.fired) this.#timers.push({ at: w.end + this.allowedLatenessMs, key, start: w.start, end: w.end, purge: true });
      else this.#timers.push({ at: w.end, key, start: w.start, end: w.end, purge: false });
    }
  }

  restoreMaxTs(maxTs: number): void {
    this.#maxTs = maxTs;
  }
}

function insertSorted<A>(list: Win<A>[], w: Win<A>): void {
  let i = list.length;
  while (i > 0 && list[i - 1]!.start > w.start) i--;
  list.splice(i, 0, w);
}

/**
 * The watermark of several inputs (the partitions of a topic, or two joined streams): the minimum
 * of the inputs' watermarks, leaving out inputs idle for `idleMs` (no record in that long, by the
 * injected clock) so one quiet partition does not hold every window back. With every input idle,
 * the highest watermark stands.
 */
export class WatermarkTracker {
  readonly idleMs: number;
  readonly #wm = new Map<number, { wm: number; lastMs: number }>();
  readonly #now: () => number;

  constructor(idleMs: number, now: () => number) {
    requireArg(Number.isSafeInteger(idleMs) && idleMs >= 1, 'idleMs', 'must be an integer >= 1');
    this.idleMs = idleMs;
    this.#now = now;
  }

  /** Input `id` advanced to `wm` (a watermark never goes back). */
  update(id: number, wm: number): void {
    const e = this.#wm.get(id);
    const now = this.#now();
    if (e === undefined) this.#wm.set(id, { wm, lastMs: now });
    else {
      if (wm > e.wm) e.wm = wm;
      e.lastMs = now;
    }
  }

  remove(id: number): void {
    this.#wm.delete(id);
  }

  /** min over active inputs; −Infinity with no inputs. */
  current(): number {
    const now = this.#now();
    let min = Infinity;
    let max = -Infinity;
    for (const e of this.#wm.values()) {
      if (e.wm > max) max = e.wm;
      if (now - e.lastMs >= this.idleMs) continue;
      if (e.wm < min) min = e.wm;
    }
    if (min === Infinity) return max;
    return min;
  }

  /** Inputs currently counted as idle. */
  idle(): number[] {
    const now = this.#now();
    return [...this.#wm].filter(([, e]) => now - e.lastMs >= this.idleMs).map(([id]) => id);
  }
}
