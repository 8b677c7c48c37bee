/**
 * L1 and the eviction policies: pure logic, no I/O. Properties checked with fast-check against a
 * model (bounds never exceeded, a get returns the last value set unless evicted or expired, TTL
 * honoured with an injected clock), the sketch never under-counting before aging, and the
 * behaviours that distinguish the policies.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import type { LfuPolicy} from '../../src/cache/index.js';
import { CountMinSketch, L1Cache, POLICY_NAMES, SKETCH_COUNTER_MAX, WTinyLfuPolicy, hashKey, measureValue, type PolicyName } from '../../src/cache/index.js';
import { FakeClock } from '../resilience/fake-clock.js';

type Op =
  | { kind: 'set'; key: string | number; value: number; ttlMs: number; size: number }
  | { kind: 'get'; key: string | number }
  | { kind: 'delete'; key: string | number }
  | { kind: 'tick'; ms: number };

/** Seeded PRNG (mulberry32): the traces of the adaptation tests are the same on every run. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const keyArb = fc.oneof(fc.integer({ min: 0, max: 40 }).map((n) => `k${n}`), fc.integer({ min: 0, max: 20 }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: keyArb, value: fc.integer(), ttlMs: fc.oneof(fc.constant(Infinity), fc.integer({ min: 1, max: 50 })), size: fc.integer({ min: 1, max: 30 }) }),
  fc.record({ kind: fc.constant('get' as const), key: keyArb }),
  fc.record({ kind: fc.constant('delete' as const), key: keyArb }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 30 }) }),
);

describe('L1Cache (every policy)', () => {
  for (const policy of POLICY_NAMES) {
    it(`${policy}: bounds hold, gets agree with a model, TTL honoured (property)`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 30, max: 200 }), fc.array(opArb, { maxLength: 300 }), (entriesMax, bytesMax, ops) => {
          const clock = new FakeClock(1_000);
          const c = new L1Cache<string | number, number>({ policy, entriesMax, bytesMax, clock });
          // The model: what was last set and when it expires. An entry may be missing from the
          // cache (evicted) but must never hold another value or outlive its TTL.
          const model = new Map<string | number, { value: number; expiresAtMs: number }>();
          for (const op of ops) {
            if (op.kind === 'set') {
              c.set(op.key, op.value, op.ttlMs, op.size);
              model.set(op.key, { value: op.value, expiresAtMs: clock.now() + op.ttlMs });
            } else if (op.kind === 'get') {
              const got = c.get(op.key);
              const m = model.get(op.key);
              if (got !== undefined) {
                expect(m).toBeDefined();
                expect(got).toBe(m!.value);
                expect(clock.now()).toBeLessThan(m!.expiresAtMs);
              }
              if (m !== undefined && clock.now() >= m.expiresAtMs) expect(got).toBeUndefined();
            } else if (op.kind === 'delete') {
              c.delete(op.key);
              model.delete(op.key);
              expect(c.peek(op.key)).toBeUndefined();
            } else {
              clock.advance(op.ms);
            }
            expect(c.size).toBeLessThanOrEqual(entriesMax);
            expect(c.bytes).toBeLessThanOrEqual(bytesMax);
            expect(c.policy.size).toBe(c.size);
          }
        }),
        { numRuns: 150 },
      );
    });

    it(`${policy}: the most recent insert is present right after it (with room for it)`, () => {
      const c = new L1Cache<number, number>({ policy, entriesMax: 3 });
      for (let i = 0; i < 50; i++) {
        c.set(i, i);
        // W-TinyLFU admits every new entry into its window; LRU and LFU evict something else.
        expect(c.peek(i)).toBe(i);
      }
    });
  }

  it('rejects a value larger than bytesMax with PP_ERR_TOO_LARGE and leaves the cache as it was', () => {
    const c = new L1Cache<string, string>({ entriesMax: 10, bytesMax: 100 });
    c.set('a', 'x');
    let err: unknown;
    try {
      c.set('b', 'y'.repeat(200));
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_TOO_LARGE')).toBe(true);
    expect(c.peek('a')).toBe('x');
    expect(c.has('b')).toBe(false);
  });

  it('measures values for the byte bound and refuses functions, symbols and cycles (PP_ERR_UNSERIALIZABLE, field = path)', () => {
    expect(measureValue('abc')).toBe(22);
    expect(measureValue({ a: [1, 2] })).toBeGreaterThan(16);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    for (const [bad, field] of [[{ f: () => 1 }, 'value.f'], [[Symbol('s')], 'value.0'], [cyclic, 'value.self']] as const) {
      let err: unknown;
      try {
        measureValue(bad);
      } catch (e) {
        err = e;
      }
      expect(isPowerplantError(err, 'PP_ERR_UNSERIALIZABLE')).toBe(true);
      expect((err as { field: string }).field).toBe(field);
    }
    const shared = { x: 1 };
    expect(() => measureValue({ a: shared, b: shared })).not.toThrow();
  });

  for (const policy of POLICY_NAMES) {
    it(`${policy}: buffered hits reach the policy before it picks a victim (the read buffer is drained on writes)`, () => {
      const c = new L1Cache<string, number>({ policy, entriesMax: 3, wtinylfu: { adaptive: false } });
      c.set('a', 1);
      c.set('b', 2);
      c.set('c', 3);
      // Make 'a' the most used and most recent; those hits sit in the read buffer until the set.
      for (let i = 0; i < 5; i++) expect(c.get('a')).toBe(1);
      expect(c.stats().hits).toBe(5);
      c.set('d', 4);
      c.set('e', 5);
      expect(c.peek('a')).toBe(1);
      expect(c.size).toBe(3);
    });
  }

  it('an expired entry is never returned, also while earlier hits on it are still buffered', () => {
    const clock = new FakeClock(1_000);
    const c = new L1Cache<string, number>({ entriesMax: 10, clock });
    c.set('k', 1, 100);
    for (let i = 0; i < 3; i++) expect(c.get('k')).toBe(1);
    clock.advance(99);
    expect(c.lookup('k')).toBeGreaterThanOrEqual(0);
    clock.advance(1);
    expect(c.get('k')).toBeUndefined();
    expect(c.lookup('k')).toBe(-1);
    const st = c.stats();
    expect(st.hits).toBe(4);
    expect(st.expirations).toBe(1);
    expect(c.policy.size).toBe(0);
  });

  it('a get allocates nothing on the hot path (heap stays flat over 200k hits)', () => {
    // Not a timing: a sanity check that hits do not build garbage (allocation would show up as
    // tens of MB over 200k gets). GC can still run, so the bound is generous.
    const c = new L1Cache<string, number>({ entriesMax: 1000 });
    const keys = Array.from({ length: 1000 }, (_, i) => `key:${i}`);
    for (const k of keys) c.set(k, 1);
    let s = 0;
    for (let i = 0; i < 20_000; i++) s += c.get(keys[i % 1000]!) ?? 0;
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200_000; i++) s += c.get(keys[i % 1000]!) ?? 0;
    const grown = process.memoryUsage().heapUsed - before;
    expect(s).toBe(220_000);
    expect(grown).toBeLessThan(4 * 1024 * 1024);
  });
});

describe('CountMinSketch', () => {
  it('never under-counts before aging (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 400 }), (keys) => {
        const sk = new CountMinSketch(64, 1000);
        const truth = new Map<number, number>();
        for (const k of keys) {
          sk.increment(hashKey(k));
          truth.set(k, (truth.get(k) ?? 0) + 1);
        }
        expect(sk.agings).toBe(0);
        for (const [k, n] of truth) expect(sk.estimate(hashKey(k))).toBeGreaterThanOrEqual(Math.min(n, SKETCH_COUNTER_MAX));
      }),
    );
  });

  it('increment reports saturation exactly when all four counters are at the maximum', () => {
    const sk = new CountMinSketch(1024, 1000);
    const h = hashKey('k');
    for (let i = 1; i <= 30; i++) {
      const saturated = sk.increment(h);
      // No other key touches the sketch, so the minimum over the four counters is the count.
      expect(saturated).toBe(Math.min(i, SKETCH_COUNTER_MAX) === SKETCH_COUNTER_MAX);
    }
  });

  it('halves counters after sampleSize counted increments (aging)', () => {
    const sk = new CountMinSketch(16, 1);
    const h = hashKey('hot');
    for (let i = 0; i < 15; i++) sk.increment(h);
    expect(sk.estimate(h)).toBe(15);
    let other = 0;
    while (sk.agings === 0) sk.increment(hashKey(`cold${other++}`));
    expect(sk.estimate(h)).toBeLessThanOrEqual(8);
  });
});

describe('policy behaviour', () => {
  it('W-TinyLFU keeps a frequently used set through a one-pass scan that evicts it under LRU', () => {
    const run = (policy: PolicyName): number => {
      const c = new L1Cache<string, number>({ policy, entriesMax: 100, wtinylfu: { adaptive: false } });
      const hot = Array.from({ length: 50 }, (_, i) => `hot${i}`);
      for (let r = 0; r < 20; r++) for (const k of hot) if (c.get(k) === undefined) c.set(k, 1);
      for (let i = 0; i < 1000; i++) if (c.get(`scan${i}`) === undefined) c.set(`scan${i}`, 1);
      return hot.filter((k) => c.peek(k) !== undefined).length;
    };
    expect(run('wtinylfu')).toBeGreaterThanOrEqual(45);
    expect(run('lru')).toBe(0);
  });

  it('W-TinyLFU promotes a probation hit to protected and keeps segments within bounds', () => {
    const p = new WTinyLfuPolicy(100, 101, { adaptive: false });
    for (let s = 0; s < 100; s++) expect(p.insert(s, hashKey(s))).toBe(-1);
    // 1 slot of window, the rest went to probation in insertion order.
    expect(p.windowCount).toBe(1);
    expect(p.segmentOf(5)).toBe('probation');
    p.hit(5);
    expect(p.segmentOf(5)).toBe('protected');
    expect(p.windowCount + p.probationCount + p.protectedCount).toBe(100);
  });

  it('W-TinyLFU window adaptation keeps window + main = entriesMax (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 500, maxLength: 3000 }), (trace) => {
        const c = new L1Cache<number, number>({ policy: 'wtinylfu', entriesMax: 50, wtinylfu: { sampleFactor: 1 } });
        for (const k of trace) if (c.get(k) === undefined) c.set(k, k);
        const p = c.policy as WTinyLfuPolicy;
        expect(p.windowMax + p.mainMax).toBe(50);
        expect(p.windowMax).toBeGreaterThanOrEqual(1);
        expect(p.windowCount).toBeLessThanOrEqual(p.windowMax);
        expect(p.probationCount + p.protectedCount).toBeLessThanOrEqual(p.mainMax);
        expect(c.size).toBeLessThanOrEqual(50);
      }),
      { numRuns: 40 },
    );
  });

  it('W-TinyLFU grows the window on a recency-skewed trace (and a fixed window does not)', () => {
    // A loop over 1,500 keys interleaved half the time with re-references at an exponential
    // stack distance (mean 50): recency pays, frequency does not. Seeded, so deterministic.
    const rnd = seeded(1);
    const trace: number[] = [];
    let loop = 0;
    for (let i = 0; i < 60_000; i++) {
      if (i > 0 && rnd() < 0.5) trace.push(trace[i - Math.min(i, 1 + Math.floor(-50 * Math.log(1 - rnd())))]!);
      else {
        trace.push(loop);
        loop = (loop + 1) % 1500;
      }
    }
    const run = (adaptive: boolean): { hits: number; windowMax: number } => {
      const c = new L1Cache<number, number>({ policy: 'wtinylfu', entriesMax: 100, wtinylfu: { adaptive } });
      let hits = 0;
      for (const k of trace) if (c.get(k) === undefined) c.set(k, k);
      else hits++;
      return { hits, windowMax: (c.policy as WTinyLfuPolicy).windowMax };
    };
    const adaptive = run(true);
    const fixed = run(false);
    expect(fixed.windowMax).toBe(1);
    expect(adaptive.windowMax).toBeGreaterThanOrEqual(40);
    expect(adaptive.hits).toBeGreaterThan(2 * fixed.hits);
  });

  it('W-TinyLFU shrinks a large window on a frequency-skewed trace', () => {
    // Zipf(1.0) over 2,000 keys, cache of 100 starting with half of it as window: frequency pays,
    // so the main ghost (evicted main victims asked for again) outweighs the window ghost.
    const rnd = seeded(2);
    const n = 2000;
    const cdf: number[] = [];
    let acc = 0;
    for (let i = 1; i <= n; i++) cdf.push((acc += 1 / i));
    const trace: number[] = [];
    for (let i = 0; i < 100_000; i++) {
      const u = rnd() * acc;
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const m = (lo + hi) >> 1;
        if (cdf[m]! < u) lo = m + 1;
        else hi = m;
      }
      trace.push(lo);
    }
    const run = (adaptive: boolean): { hits: number; windowMax: number } => {
      const c = new L1Cache<number, number>({ policy: 'wtinylfu', entriesMax: 100, wtinylfu: { adaptive, initialWindowShare: 0.5 } });
      let hits = 0;
      for (const k of trace) if (c.get(k) === undefined) c.set(k, k);
      else hits++;
      return { hits, windowMax: (c.policy as WTinyLfuPolicy).windowMax };
    };
    const adaptive = run(true);
    const fixed = run(false);
    expect(fixed.windowMax).toBe(50);
    expect(adaptive.windowMax).toBeLessThanOrEqual(10);
    expect(adaptive.hits).toBeGreaterThan(fixed.hits);
  });

  it('W-TinyLFU grows the window by one per net window-ghost hit within the horizon, and ignores older ghosts', () => {
    // Cache of 100 (window 1, horizon 13 departures): 99 hot keys in main, so every new key
    // loses its admission contest and becomes a window ghost.
    const run = (gap: number): number => {
      const c = new L1Cache<string, number>({ policy: 'wtinylfu', entriesMax: 100 });
      for (let i = 0; i < 100; i++) c.set(`hot${i}`, i);
      for (let r = 0; r < 10; r++) for (let i = 0; i < 99; i++) c.get(`hot${i}`);
      expect(c.get('x')).toBeUndefined();
      c.set('x', 1); // x enters the window
      for (let i = 0; i <= gap; i++) c.set(`new${i}`, i); // x is rejected, then `gap` more departures
      expect(c.peek('x')).toBeUndefined();
      expect(c.get('x')).toBeUndefined(); // a miss on a window ghost `gap + 1` departures old
      for (let r = 0; r < 3; r++) for (let i = 0; i < 99; i++) c.get(`hot${i}`); // end the period
      return (c.policy as WTinyLfuPolicy).windowMax;
    };
    expect(run(0)).toBe(2);
    expect(run(13)).toBe(2);
    expect(run(14)).toBe(1);
    expect(run(40)).toBe(1);
  });

  it('W-TinyLFU counts hits again after the sketch ages (saturated slots skip increments only until then)', () => {
    const p = new WTinyLfuPolicy(100, 101, { adaptive: false, sampleFactor: 1 });
    expect(p.insert(0, hashKey('hot'))).toBe(-1);
    for (let i = 0; i < 20; i++) p.hit(0);
    expect(p.frequencyOf(0)).toBe(SKETCH_COUNTER_MAX);
    // Age the sketch with misses of other keys.
    const agings = p.sketch.agings;
    for (let i = 0; p.sketch.agings === agings; i++) p.miss(hashKey(`cold${i}`));
    const halved = p.frequencyOf(0);
    expect(halved).toBeLessThan(SKETCH_COUNTER_MAX);
    p.hit(0);
    p.hit(0);
    // Had the slot stayed flagged saturated, these hits would not have been counted.
    expect(p.frequencyOf(0)).toBe(Math.min(SKETCH_COUNTER_MAX, halved + 2));
  });

  it('LFU never evicts a slot strictly more frequent than every other resident', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 200 }), (newKeys) => {
        const c = new L1Cache<number, number>({ policy: 'lfu', entriesMax: 8 });
        c.set(0, 0);
        for (let i = 0; i < 5_000; i++) c.get(0);
        for (const k of newKeys) {
          if (c.get(k) === undefined) c.set(k, k);
          c.get(0);
        }
        expect(c.peek(0)).toBe(0);
        expect((c.policy as LfuPolicy).size).toBe(c.size);
      }),
      { numRuns: 50 },
    );
  });
});
