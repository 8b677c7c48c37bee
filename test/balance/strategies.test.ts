import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { BALANCER_NAMES, EndpointSet, createBalancer, type Balancer, type BalancerName, type Endpoint } from '../../src/balance/index.js';
import { seededRandom } from '../../src/util/index.js';

function setOf(ids: readonly string[], weights?: readonly number[]): EndpointSet {
  const set = new EndpointSet({ clockMs: () => 0 });
  ids.forEach((id, i) => set.add(id, { weight: weights?.[i] ?? 1 }));
  return set;
}

function make(name: BalancerName, set: EndpointSet, seed = 1): Balancer {
  return createBalancer(name, { endpoints: set, random: seededRandom(seed) });
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `e${i}`);

describe('smooth weighted round-robin', () => {
  it('weights {a:5, b:1, c:1} give the nginx order a a b a c a a, then repeat', () => {
    const b = make('weighted-round-robin', setOf(['a', 'b', 'c'], [5, 1, 1]));
    const seq = Array.from({ length: 14 }, () => b.pick()?.id).join(' ');
    expect(seq).toBe('a a b a c a a a a b a c a a');
  });

  it('over one cycle (sum of weights picks) each endpoint is picked exactly weight times', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 12 }), (weights) => {
        const b = make('weighted-round-robin', setOf(ids(weights.length), weights));
        const total = weights.reduce((a, w) => a + w, 0);
        const counts = new Map<string, number>();
        for (let k = 0; k < total; k++) {
          const id = b.pick()?.id as string;
          counts.set(id, (counts.get(id) ?? 0) + 1);
        }
        weights.forEach((w, i) => expect(counts.get(`e${i}`) ?? 0).toBe(w));
      }),
    );
  });

  it('a weight change takes effect: shares follow the new weights over the following cycles', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 2, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 50 }),
        (before, after, warm) => {
          const set = setOf(ids(before.length), before);
          const b = make('weighted-round-robin', set);
          for (let k = 0; k < warm; k++) b.pick();
          const next = after.slice(0, before.length);
          next.forEach((w, i) => set.setWeight(`e${i}`, w));
          const total = next.reduce((a, w) => a + w, 0);
          const cycles = 20;
          const counts = new Array<number>(next.length).fill(0);
          for (let k = 0; k < total * cycles; k++) {
            const ep = b.pick() as Endpoint;
            counts[ep.index] = (counts[ep.index] as number) + 1;
          }
          // Carried-over current weights shift the phase, not the rate: the error stays bounded by
          // the number of endpoints instead of growing with the number of cycles.
          next.forEach((w, i) => expect(Math.abs((counts[i] as number) - w * cycles)).toBeLessThanOrEqual(next.length));
        },
      ),
    );
  });
});

describe('round-robin', () => {
  it('visits each endpoint exactly once per cycle', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 5 }), (n, cycles) => {
        const b = make('round-robin', setOf(ids(n)));
        for (let c = 0; c < cycles; c++) {
          const seen = new Set<string>();
          for (let k = 0; k < n; k++) seen.add(b.pick()?.id as string);
          expect(seen.size).toBe(n);
        }
      }),
    );
  });
});

describe('every strategy', () => {
  it.each(BALANCER_NAMES)('%s: empty set -> undefined; pickOrThrow raises PP_ERR_NO_ENDPOINT', (name) => {
    const b = make(name, new EndpointSet());
    expect(b.pick('k')).toBeUndefined();
    let err: unknown;
    try {
      b.pickOrThrow('k');
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_NO_ENDPOINT')).toBe(true);
  });

  it.each(BALANCER_NAMES)('%s: never returns a removed or excluded endpoint while another exists', (name) => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 12 }),
        fc.array(fc.tuple(fc.constantFrom('pick', 'remove', 'add', 'weight', 'start', 'finish'), fc.nat(), fc.nat({ max: 3 })), { maxLength: 80 }),
        fc.integer(),
        (n, ops, seed) => {
          const set = setOf(ids(n));
          const b = make(name, set, seed);
          const removed = new Set<Endpoint>();
          const started: Endpoint[] = [];
          let next = n;
          for (const [op, x, y] of ops) {
            const list = set.all();
            if (op === 'remove' && list.length > 1) {
              const ep = list[x % list.length] as Endpoint;
              set.remove(ep.id);
              removed.add(ep);
            } else if (op === 'add') {
              set.add(`e${next++}`, { weight: 1 + y });
            } else if (op === 'weight' && list.length > 0) {
              set.setWeight((list[x % list.length] as Endpoint).id, 1 + y);
            } else if (op === 'start' && list.length > 0) {
              const ep = list[x % list.length] as Endpoint;
              set.onStart(ep);
              started.push(ep);
            } else if (op === 'finish' && started.length > 0) {
              set.onFinish(started.splice(x % started.length, 1)[0] as Endpoint, 1 + y, y !== 0);
            } else if (op === 'pick') {
              const key = `k${x}`;
              const ep = b.pick(key);
              expect(ep).toBeDefined();
              expect(removed.has(ep as Endpoint)).toBe(false);
              expect(set.get((ep as Endpoint).id)).toBe(ep);
              // Excluding one endpoint (the retry case) or a set of all but one (by id).
              const ex = b.pick(key, ep);
              if (list.length > 1) expect(ex).toBeDefined();
              else expect(ex).toBeUndefined();
              expect(ex).not.toBe(ep);
              const keep = list[y % list.length] as Endpoint;
              const others = new Set(list.filter((e) => e !== keep).map((e) => e.id));
              expect(b.pick(key, others)).toBe(keep);
              expect(b.pick(key, new Set(list))).toBeUndefined();
            }
          }
          expect(set.totalInFlight).toBe(set.all().reduce((a, e) => a + e.inFlight, 0));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('least outstanding', () => {
  it('picks an endpoint with the minimum in-flight count (equal weights)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 6 }), { minLength: 1, maxLength: 20 }), fc.nat({ max: 40 }), (inflight, rotate) => {
        const set = setOf(ids(inflight.length));
        const b = make('least-outstanding', set);
        for (let k = 0; k < rotate; k++) b.pick();
        inflight.forEach((f, i) => {
          for (let k = 0; k < f; k++) set.onStart(set.all()[i] as Endpoint);
        });
        const min = Math.min(...inflight);
        expect(b.pick()?.inFlight).toBe(min);
      }),
    );
  });

  it('breaks ties among idle endpoints in turn, not always towards the first', () => {
    const b = make('least-outstanding', setOf(ids(4)));
    const seen = new Set(Array.from({ length: 4 }, () => b.pick()?.id));
    expect(seen.size).toBe(4);
  });
});

describe('p2c', () => {
  it('with two endpoints always picks the one with the lower ewma^(1/4) * (inFlight + 1)', () => {
    fc.assert(
      fc.property(fc.tuple(fc.integer({ min: 1, max: 500 }), fc.nat({ max: 8 })), fc.tuple(fc.integer({ min: 1, max: 500 }), fc.nat({ max: 8 })), fc.integer(), ([la, fa], [lb, fb], seed) => {
        const set = setOf(['a', 'b']);
        const [a, b] = set.all() as [Endpoint, Endpoint];
        // One finished call each sets the EWMA to that latency (first sample).
        set.onStart(a);
        set.onFinish(a, la, true);
        set.onStart(b);
        set.onFinish(b, lb, true);
        for (let k = 0; k < fa; k++) set.onStart(a);
        for (let k = 0; k < fb; k++) set.onStart(b);
        const ca = la ** 0.25 * (fa + 1);
        const cb = lb ** 0.25 * (fb + 1);
        fc.pre(ca !== cb);
        const p = make('p2c', set, seed);
        for (let k = 0; k < 5; k++) expect(p.pick()).toBe(ca < cb ? a : b);
      }),
    );
  });

  it('never picks the endpoint that is strictly costliest of all (it loses every pair it is in)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 2, maxLength: 10 }), fc.integer(), (lat, seed) => {
        const set = setOf(ids(lat.length));
        lat.forEach((l, i) => {
          const ep = set.all()[i] as Endpoint;
          set.onStart(ep);
          set.onFinish(ep, l, true);
        });
        const max = Math.max(...lat);
        fc.pre(lat.filter((l) => l === max).length === 1);
        const worst = set.all()[lat.indexOf(max)];
        const p = make('p2c', set, seed);
        for (let k = 0; k < 50; k++) expect(p.pick()).not.toBe(worst);
      }),
    );
  });

  it('in-flight outweighs a latency gap: a 16x faster endpoint with 8 calls out loses to one with 3', () => {
    // Finagle's ewma * (inFlight + 1) would pick the fast one (1 * 9 < 16 * 4) and keep filling it
    // past its concurrency; ours: 16^(1/4) * 4 = 8 < 1 * 9.
    const set = setOf(['fast', 'slow']);
    const fast = set.get('fast') as Endpoint;
    const slow = set.get('slow') as Endpoint;
    set.onStart(fast);
    set.onFinish(fast, 1, true);
    set.onStart(slow);
    set.onFinish(slow, 16, true);
    for (let k = 0; k < 8; k++) set.onStart(fast);
    for (let k = 0; k < 3; k++) set.onStart(slow);
    const p = make('p2c', set);
    for (let k = 0; k < 5; k++) expect(p.pick()).toBe(slow);
    set.onStart(slow);
    set.onStart(slow); // now fast costs 1 * 9 = 9, slow 2 * 6 = 12
    expect(p.pick()).toBe(fast);
  });

  it('at equal in-flight the lower latency wins', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 }), fc.nat({ max: 20 }), fc.integer(), (la, lb, f, seed) => {
        fc.pre(la !== lb);
        const set = setOf(['a', 'b']);
        const [a, b] = set.all() as [Endpoint, Endpoint];
        for (const [ep, l] of [[a, la], [b, lb]] as const) {
          set.onStart(ep);
          set.onFinish(ep, l, true);
          for (let k = 0; k < f; k++) set.onStart(ep);
        }
        expect(make('p2c', set, seed).pick()).toBe(la < lb ? a : b);
      }),
    );
  });

  it('a newcomer with no latency known gets one call at a time until it answers', () => {
    const set = setOf(['a', 'b']);
    const p = make('p2c', set);
    const a = set.get('a') as Endpoint;
    const b = set.get('b') as Endpoint;
    set.onStart(b);
    set.onFinish(b, 50, true); // b is known: 50 ms
    set.onStart(a); // a: unknown latency, one call out
    expect(p.pick()).toBe(b);
  });
});

describe('endpoint set', () => {
  it('EWMA: first sample sets it, a higher sample replaces it, a lower one decays towards it in time', () => {
    let now = 0;
    const set = new EndpointSet({ clockMs: () => now, ewmaDecayMs: 100 });
    const ep = set.add('a');
    set.onStart(ep);
    set.onFinish(ep, 10, true);
    expect(ep.latencyEwmaMs).toBe(10);
    set.onStart(ep);
    set.onFinish(ep, 40, true);
    expect(ep.latencyEwmaMs).toBe(40);
    now = 100; // one time constant: weight of the new sample 1 - e^-1
    set.onStart(ep);
    set.onFinish(ep, 0, true);
    expect(ep.latencyEwmaMs).toBeCloseTo(40 * Math.exp(-1), 9);
    set.onStart(ep);
    const before = ep.latencyEwmaMs;
    set.onFinish(ep, 1, false); // failure: max(1, ewma) * 4
    expect(ep.latencyEwmaMs).toBeCloseTo(before * 4, 9);
    expect(ep.failures).toBe(1);
  });

  it('rejects bad input with PP_ERR_INVALID_ARGUMENT naming the field', () => {
    const set = new EndpointSet();
    set.add('a');
    for (const f of [() => set.add('a'), () => set.add(''), () => set.add('b', { weight: 0 }), () => set.setWeight('a', Number.NaN)]) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(isPowerplantError(err, 'PP_ERR_INVALID_ARGUMENT')).toBe(true);
    }
    expect(() => set.setWeight('zz', 1)).toThrow(/no endpoint/);
  });

  it('a call finishing on a removed endpoint does not corrupt the totals', () => {
    const set = setOf(['a', 'b']);
    const a = set.get('a') as Endpoint;
    set.onStart(a);
    set.onStart(set.get('b') as Endpoint);
    set.remove('a');
    expect(set.totalInFlight).toBe(1);
    set.onFinish(a, 5, true);
    expect(set.totalInFlight).toBe(1);
    expect(a.index).toBe(-1);
  });
});
