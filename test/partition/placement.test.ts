import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BoundedLoadAssigner,
  BoundedLoadPlacement,
  MaglevPlacement,
  RendezvousPlacement,
  RingPlacement,
  STRATEGY_NAMES,
  boundedCapacity,
  createPlacement,
  hash32,
  jumpHash,
  shardNames,
  type Placement,
  type StrategyName,
  type StrategyOptions,
} from '../../src/partition/index.js';

// Small tables keep property runs quick; the properties do not depend on the sizes.
const SMALL: StrategyOptions = { ring: { vnodes: 50 }, maglev: { tableSize: 4099 }, bounded: { vnodes: 50, slotCount: 2048 } };
const make = (s: StrategyName, shards: readonly string[], opts: StrategyOptions = SMALL): Placement => createPlacement(s, shards, opts);

const shardListArb = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 24 });
const hashesArb = fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 200 });
const strategyArb = fc.constantFrom(...STRATEGY_NAMES);
/** A fixed sample of realistic key hashes for movement bounds. */
const SAMPLE = Array.from({ length: 20_000 }, (_, i) => hash32(`user:${i}`));

function moves(before: Placement, after: Placement, hashes: readonly number[]): Array<{ from: string; to: string }> {
  const out: Array<{ from: string; to: string }> = [];
  for (const h of hashes) {
    const a = before.shardOf(h);
    const b = after.shardOf(h);
    if (a !== b) out.push({ from: a, to: b });
  }
  return out;
}

/** BigInt transcription of Lamping & Veach's C++ (the reference the 32-bit emulation must match). */
function jumpReference(key: bigint, buckets: number): number {
  let b = -1n;
  let j = 0n;
  const mask = (1n << 64n) - 1n;
  while (j < BigInt(buckets)) {
    b = j;
    key = (key * 2862933555777941757n + 1n) & mask;
    j = BigInt(Math.floor(Number(b + 1n) * (Number(1n << 31n) / Number((key >> 33n) + 1n))));
  }
  return Number(b);
}

describe('every placement strategy', () => {
  it('maps every hash to exactly one shard that is in the shard list, consistently by index and name', () => {
    fc.assert(
      fc.property(strategyArb, shardListArb, hashesArb, (strategy, shards, hashes) => {
        const p = make(strategy, shards);
        expect(p.shards).toEqual(shards);
        for (const h of hashes) {
          const i = p.shardIndexOf(h);
          expect(Number.isInteger(i) && i >= 0 && i < shards.length).toBe(true);
          expect(p.shardOf(h)).toBe(shards[i]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('is deterministic across calls and across instances; shardForKey = shardOf(hash32(key))', () => {
    fc.assert(
      fc.property(strategyArb, shardListArb, fc.array(fc.string(), { minLength: 1, maxLength: 50 }), (strategy, shards, keys) => {
        const a = make(strategy, shards);
        const b = make(strategy, shards);
        for (const k of keys) {
          const h = hash32(k);
          expect(a.shardOf(h)).toBe(a.shardOf(h));
          expect(b.shardOf(h)).toBe(a.shardOf(h));
          expect(a.shardForKey(k)).toBe(a.shardOf(h));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('uses every shard and stays roughly balanced on many keys (loose bound: max/mean < 1.5)', () => {
    for (const strategy of STRATEGY_NAMES) {
      const p = make(strategy, shardNames(10), {});
      const counts = new Array<number>(10).fill(0);
      for (const h of SAMPLE) counts[p.shardIndexOf(h)]!++;
      const mean = SAMPLE.length / 10;
      expect(Math.min(...counts), strategy).toBeGreaterThan(0);
      expect(Math.max(...counts) / mean, strategy).toBeLessThan(1.5);
    }
  });

  it('rejects empty, duplicate and non-string shard lists with typed errors naming the field', () => {
    for (const strategy of STRATEGY_NAMES) {
      expect(() => make(strategy, [])).toThrow(expect.objectContaining({ code: 'PP_ERR_NO_SHARDS', field: 'shards' }));
      expect(() => make(strategy, ['a', 'b', 'a'])).toThrow(expect.objectContaining({ code: 'PP_ERR_DUPLICATE_SHARD', field: 'shards[2]' }));
      expect(() => make(strategy, ['a', ''])).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'shards[1]' }));
    }
    expect(() => createPlacement('nope' as StrategyName, ['a'])).toThrow(expect.objectContaining({ field: 'strategy' }));
  });
});

describe('jump consistent hash', () => {
  it('equals the reference algorithm (64-bit LCG emulated with 32-bit halves)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 5000 }), (h, n) => {
        expect(jumpHash(h, n)).toBe(jumpReference(BigInt(h), n));
      }),
      { numRuns: 3000 },
    );
  });

  it('carries from the low to the high half when the low half wraps (the rare +1 overflow)', () => {
    // lo * MUL_LO + 1 = 2^32 exactly when lo = -MUL_LO^-1 mod 2^32: the first LCG step overflows.
    const mulLo = 0x87b0b0fdn;
    let inv = 1n;
    for (let i = 0; i < 5; i++) inv = (inv * (2n - mulLo * inv)) & 0xffffffffn; // Newton, 2-adic
    const h = Number((-inv) & 0xffffffffn);
    expect(Number((BigInt(h) * mulLo + 1n) & 0xffffffffn)).toBe(0);
    for (const n of [2, 10, 1000, 1 << 20]) expect(jumpHash(h, n)).toBe(jumpReference(BigInt(h), n));
  });

  it('adding a shard at the end moves keys only to the new shard', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), hashesArb, (n, hashes) => {
        const before = make('jump', shardNames(n));
        const after = make('jump', shardNames(n + 1));
        for (const m of moves(before, after, hashes)) expect(m.to).toBe(`shard-${n}`);
      }),
    );
  });

  it('moves about 1/(N+1) of the keys when one is added (loose bound 0.5x..1.5x)', () => {
    const moved = moves(make('jump', shardNames(20)), make('jump', shardNames(21)), SAMPLE).length / SAMPLE.length;
    expect(moved * 21).toBeGreaterThan(0.5);
    expect(moved * 21).toBeLessThan(1.5);
  });
});

describe('rendezvous (HRW)', () => {
  it('removing a shard moves only that shard\'s keys', () => {
    fc.assert(
      fc.property(shardListArb.filter((s) => s.length >= 2), fc.nat(), hashesArb, (shards, k, hashes) => {
        const gone = shards[k % shards.length]!;
        const before = make('rendezvous', shards);
        const after = make('rendezvous', shards.filter((s) => s !== gone));
        for (const m of moves(before, after, hashes)) expect(m.from).toBe(gone);
        for (const h of hashes) expect(after.shardOf(h)).not.toBe(gone);
      }),
    );
  });

  it('does not depend on the order of the shard list', () => {
    fc.assert(
      fc.property(shardListArb, hashesArb, (shards, hashes) => {
        const a = make('rendezvous', shards);
        const b = make('rendezvous', [...shards].reverse());
        for (const h of hashes) expect(b.shardOf(h)).toBe(a.shardOf(h));
      }),
    );
  });

  it('weights skew the share proportionally (loose bound) and validate', () => {
    const p = new RendezvousPlacement(['a', 'b', 'c'], { weights: [1, 1, 2] });
    const counts = { a: 0, b: 0, c: 0 } as Record<string, number>;
    for (const h of SAMPLE) counts[p.shardOf(h)]!++;
    expect(counts.c! / SAMPLE.length).toBeGreaterThan(0.45);
    expect(counts.c! / SAMPLE.length).toBeLessThan(0.55);
    expect(() => new RendezvousPlacement(['a', 'b'], { weights: [1, 0] })).toThrow(expect.objectContaining({ field: 'weights[1]' }));
    expect(() => new RendezvousPlacement(['a', 'b'], { weights: [1] })).toThrow(expect.objectContaining({ field: 'weights' }));
  });

  it('only weight ratios matter: huge weights do not overflow the scores into ties', () => {
    // Unnormalised, -2^1023 / ln(u) is Infinity whenever u > 1/e: a tie the lowest name won.
    const huge = new RendezvousPlacement(['a', 'b', 'c'], { weights: [2 ** 1023, 2 ** 1023, 2 ** 1022] });
    const counts = { a: 0, b: 0, c: 0 } as Record<string, number>;
    for (const h of SAMPLE) counts[huge.shardOf(h)]!++;
    expect(counts.a! / SAMPLE.length).toBeGreaterThan(0.35);
    expect(counts.b! / SAMPLE.length).toBeGreaterThan(0.35);
    expect(counts.c! / SAMPLE.length).toBeGreaterThan(0.15);
    // Same ratios, same placement (powers of two: the normalised weights are exactly equal).
    const big = new RendezvousPlacement(['a', 'b'], { weights: [2 ** 1023, 2 ** 1021] });
    const plain = new RendezvousPlacement(['a', 'b'], { weights: [4, 1] });
    for (const h of SAMPLE) expect(big.shardOf(h)).toBe(plain.shardOf(h));
  });
});

describe('ring with virtual nodes', () => {
  it('adding a shard moves keys only to it, and a limited share (loose bound < 2x ideal)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), (n) => {
        const before = new RingPlacement(shardNames(n), { vnodes: 200 });
        const after = new RingPlacement(shardNames(n + 1), { vnodes: 200 });
        const m = moves(before, after, SAMPLE);
        for (const x of m) expect(x.to).toBe(`shard-${n}`);
        expect(m.length / SAMPLE.length).toBeLessThan(2 / (n + 1));
      }),
      { numRuns: 10 },
    );
  });

  it('removing a shard moves only its keys', () => {
    const before = new RingPlacement(shardNames(8), { vnodes: 100 });
    const after = new RingPlacement(shardNames(8).filter((s) => s !== 'shard-3'), { vnodes: 100 });
    for (const m of moves(before, after, SAMPLE)) expect(m.from).toBe('shard-3');
  });

  it('validates vnodes', () => {
    expect(() => new RingPlacement(['a'], { vnodes: 0 })).toThrow(expect.objectContaining({ field: 'vnodes' }));
    expect(() => new RingPlacement(shardNames(2), { vnodes: 1 << 24 })).toThrow(expect.objectContaining({ field: 'vnodes' }));
  });
});

describe('maglev', () => {
  it('fills the table evenly: every shard owns floor or ceil of M/N entries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), (n) => {
        const m = 4099;
        const p = new MaglevPlacement(shardNames(n), { tableSize: m });
        const counts = new Array<number>(n).fill(0);
        // Hashes 0..M-1 index each table entry exactly once.
        for (let h = 0; h < m; h++) counts[p.shardIndexOf(h)]!++;
        for (const c of counts) {
          expect(c).toBeGreaterThanOrEqual(Math.floor(m / n));
          expect(c).toBeLessThanOrEqual(Math.ceil(m / n));
        }
      }),
      { numRuns: 20 },
    );
  });

  it('adding a shard moves a limited share (loose bound < 3x ideal)', () => {
    for (const n of [5, 20]) {
      const m = moves(make('maglev', shardNames(n), {}), make('maglev', shardNames(n + 1), {}), SAMPLE);
      expect(m.length / SAMPLE.length).toBeLessThan(3 / (n + 1));
    }
  });

  it('rejects a table size that is not a prime or is smaller than the shard count', () => {
    expect(() => new MaglevPlacement(['a'], { tableSize: 65536 })).toThrow(expect.objectContaining({ field: 'tableSize' }));
    expect(() => new MaglevPlacement(shardNames(5), { tableSize: 3 })).toThrow(expect.objectContaining({ field: 'tableSize' }));
  });
});

describe('consistent hashing with bounded loads', () => {
  it('no shard owns more than ceil((1+e) * mean) slots, for any shard count and epsilon', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.double({ min: 0.01, max: 3, noNaN: true }),
        fc.integer({ min: 64, max: 4096 }),
        (n, epsilon, slotCount) => {
          const p = new BoundedLoadPlacement(shardNames(n), { epsilon, slotCount, vnodes: 20 });
          const loads = p.slotLoads();
          const total = loads.reduce((a, b) => a + b, 0);
          expect(total).toBe(slotCount);
          const bound = Math.ceil((1 + epsilon) * (slotCount / n));
          expect(Math.max(...loads)).toBeLessThanOrEqual(bound);
          expect(Math.max(...loads)).toBeLessThanOrEqual(p.capacity);
          // shardOf agrees with the slot table.
          for (let s = 0; s < slotCount; s += 37) {
            expect(p.shardIndexOf(Math.ceil((s * 2 ** 32) / slotCount))).toBe(p.ownerOfSlot(s));
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('capacity never exceeds ceil((1+e)*mean) and always covers every item', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 5000 }), fc.double({ min: 0.001, max: 10, noNaN: true }), (items, n, e) => {
        const cap = boundedCapacity(items, n, e);
        expect(cap).toBeLessThanOrEqual(Math.ceil((1 + e) * (items / n)));
        expect(cap * n).toBeGreaterThanOrEqual(items);
      }),
    );
  });

  it('the incremental assigner keeps every load <= ceil((1+e) * mean) at every step', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.double({ min: 0.05, max: 2, noNaN: true }), hashesArb, (n, epsilon, hashes) => {
        const a = new BoundedLoadAssigner(shardNames(n), { epsilon, vnodes: 20 });
        for (const h of hashes) {
          a.assign(h);
          const bound = Math.ceil((1 + epsilon) * (a.total / n));
          for (let i = 0; i < n; i++) expect(a.loadOf(i)).toBeLessThanOrEqual(bound);
        }
        expect(a.total).toBe(hashes.length);
      }),
      { numRuns: 60 },
    );
  });

  it('assigner release uncounts, and rejects releasing an empty shard', () => {
    const a = new BoundedLoadAssigner(['a', 'b'], { itemsMax: 2 });
    const i = a.assign(123);
    a.assign(456);
    expect(() => a.assign(789)).toThrow(expect.objectContaining({ field: 'itemsMax' }));
    a.release(i);
    expect(a.total).toBe(1);
    const empty = a.loadOf(0) === 0 ? 0 : 1;
    expect(() => a.release(empty)).toThrow(expect.objectContaining({ field: 'shardIndex' }));
  });

  it('rejects a bad epsilon naming the field', () => {
    for (const epsilon of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new BoundedLoadPlacement(['a'], { epsilon })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'epsilon' }));
    }
  });
});
