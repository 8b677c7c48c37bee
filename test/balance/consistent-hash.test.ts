import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConsistentHashBalancer, EndpointSet, type Endpoint } from '../../src/balance/index.js';
import { seededRandom } from '../../src/util/index.js';

function ring(n: number, opts: { loadFactor?: number; vnodesPerEndpoint?: number } = {}): ConsistentHashBalancer {
  const set = new EndpointSet({ clockMs: () => 0 });
  for (let i = 0; i < n; i++) set.add(`node-${i}`);
  return new ConsistentHashBalancer({ endpoints: set, random: seededRandom(7), vnodesPerEndpoint: 50, ...opts });
}

const keys = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 60 });

describe('consistent hash with bounded load', () => {
  it('is sticky: the same key maps to the same endpoint while the set is unchanged and nothing is in flight', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), keys, (n, ks) => {
        const b = ring(n);
        const first = ks.map((k) => b.pick(k));
        const again = ks.map((k) => b.pick(k));
        expect(again).toEqual(first);
        // Byte keys hash like their UTF-8 string.
        for (const k of ks) expect(b.pick(new TextEncoder().encode(k))).toBe(b.pick(k));
      }),
    );
  });

  it('spreads keys: every endpoint owns some of 10,000 keys and none more than 2x its share', () => {
    const b = ring(10, { vnodesPerEndpoint: 100 });
    const counts = new Map<string, number>();
    for (let k = 0; k < 10_000; k++) {
      const id = (b.pick(`user:${k}`) as Endpoint).id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(counts.size).toBe(10);
    for (const c of counts.values()) expect(c).toBeLessThan(2000);
  });

  it('removing an endpoint moves only the keys it owned; adding one moves keys only onto it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 15 }), fc.nat(), keys, (n, victim, ks) => {
        const b = ring(n);
        const before = new Map(ks.map((k) => [k, (b.pick(k) as Endpoint).id]));
        const gone = `node-${victim % n}`;
        b.endpoints.remove(gone);
        for (const k of ks) {
          const now = (b.pick(k) as Endpoint).id;
          if (before.get(k) !== gone) expect(now).toBe(before.get(k));
          else expect(now).not.toBe(gone);
        }
        const mid = new Map(ks.map((k) => [k, (b.pick(k) as Endpoint).id]));
        b.endpoints.add('newcomer');
        for (const k of ks) {
          const now = (b.pick(k) as Endpoint).id;
          if (now !== 'newcomer') expect(now).toBe(mid.get(k));
        }
      }),
    );
  });

  it('the bounded-load cap holds: no endpoint exceeds ceil((1+e)(total+1)/n) in flight, even for one hot key', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.constantFrom(0.1, 0.25, 1),
        fc.array(fc.tuple(fc.boolean(), fc.nat({ max: 5 })), { minLength: 1, maxLength: 300 }),
        (n, e, ops) => {
          const b = ring(n, { loadFactor: e });
          const set = b.endpoints;
          const open: Endpoint[] = [];
          for (const [start, k] of ops) {
            if (start || open.length === 0) {
              // Few distinct keys: hot keys that would all land on one or two endpoints without the cap.
              const cap = Math.ceil(((1 + e) * (set.totalInFlight + 1)) / n);
              const ep = b.pick(`hot-${k}`) as Endpoint;
              expect(ep.inFlight).toBeLessThan(cap);
              set.onStart(ep);
              open.push(ep);
            } else {
              set.onFinish(open.splice(k % open.length, 1)[0] as Endpoint, 1, true);
            }
            for (const ep of set.all()) expect(ep.inFlight).toBeLessThanOrEqual(Math.ceil(((1 + e) * set.totalInFlight) / n) + 1);
          }
        },
      ),
    );
  });

  it('stays sticky below the bound: a key returns to its home once its home is under the cap again', () => {
    const b = ring(4, { loadFactor: 0.25 });
    const home = b.pick('session-42') as Endpoint;
    b.endpoints.onStart(home); // home has 1, total 1: cap = ceil(1.25 * 2 / 4) = 1 -> full
    const spill = b.pick('session-42') as Endpoint;
    expect(spill).not.toBe(home);
    b.endpoints.onFinish(home, 1, true);
    expect(b.pick('session-42')).toBe(home);
  });

  it('weights: an endpoint with weight 3 owns about three times the keys of one with weight 1', () => {
    const set = new EndpointSet();
    set.add('big', { weight: 3 });
    set.add('small', { weight: 1 });
    const b = new ConsistentHashBalancer({ endpoints: set, vnodesPerEndpoint: 200 });
    let big = 0;
    for (let k = 0; k < 20_000; k++) if ((b.pick(`k${k}`) as Endpoint).id === 'big') big++;
    expect(big / 20_000).toBeGreaterThan(0.65);
    expect(big / 20_000).toBeLessThan(0.85);
  });
});
