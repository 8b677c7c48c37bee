import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PartitionMap,
  STRATEGY_NAMES,
  applyPlan,
  hash32,
  placementFactory,
  planRebalance,
  shardNames,
  slotOfHash,
  type MapChange,
  type RebalancePlan,
} from '../../src/partition/index.js';

const SLOTS = 1024;
const OPTS = { ring: { vnodes: 40 }, maglev: { tableSize: 2053 }, bounded: { vnodes: 40, slotCount: SLOTS } };
const strategyArb = fc.constantFrom(...STRATEGY_NAMES);

function build(strategy: (typeof STRATEGY_NAMES)[number], n: number): PartitionMap {
  return PartitionMap.fromPlacement(placementFactory(strategy, OPTS)(shardNames(n)), { slotCount: SLOTS });
}

function ownersByName(map: PartitionMap): string[] {
  return Array.from({ length: map.slotCount }, (_, s) => map.ownerOf(s));
}

/** The plan lists exactly the slots whose owner changed, and applying it reproduces `next`. */
function checkPlan(prev: PartitionMap, change: MapChange): void {
  const { map: next, plan } = change;
  expect(plan.fromEpoch).toBe(prev.epoch);
  expect(plan.toEpoch).toBe(next.epoch);
  expect(next.epoch).toBeGreaterThan(prev.epoch);
  const changed = [];
  for (let s = 0; s < prev.slotCount; s++) if (prev.ownerOf(s) !== next.ownerOf(s)) changed.push(s);
  expect(plan.moves.map((m) => m.slot)).toEqual(changed);
  for (const m of plan.moves) {
    expect(m.from).toBe(prev.ownerOf(m.slot));
    expect(m.to).toBe(next.ownerOf(m.slot));
  }
  expect(plan.summary.reduce((a, x) => a + x.slots, 0)).toBe(plan.moves.length);
  const applied = applyPlan(prev, plan);
  expect(applied.epoch).toBe(next.epoch);
  expect(applied.shards).toEqual(next.shards);
  expect(ownersByName(applied)).toEqual(ownersByName(next));
}

describe('PartitionMap', () => {
  it('maps every key through slot -> owner to a member of the shard list', () => {
    fc.assert(
      fc.property(strategyArb, fc.integer({ min: 1, max: 20 }), fc.array(fc.string(), { maxLength: 50 }), (strategy, n, keys) => {
        const map = build(strategy, n);
        for (const k of keys) {
          const owner = map.shardForKey(k);
          expect(map.shards).toContain(owner);
          expect(owner).toBe(map.ownerOf(slotOfHash(hash32(k), SLOTS)));
          expect(map.shardOf(hash32(k))).toBe(owner);
        }
        expect(map.slotCounts().reduce((a, b) => a + b, 0)).toBe(SLOTS);
        // A map is a Placement: rebuilding a map from it reproduces its owners.
        const again = PartitionMap.fromPlacement(map, { slotCount: SLOTS });
        expect(ownersByName(again)).toEqual(ownersByName(map));
      }),
      { numRuns: 60 },
    );
  });

  it('add/remove shard plans list exactly the changed slots; applying a plan yields the new map', () => {
    fc.assert(
      fc.property(strategyArb, fc.integer({ min: 1, max: 12 }), fc.nat(), (strategy, n, pick) => {
        const factory = placementFactory(strategy, OPTS);
        const m0 = build(strategy, n);
        const added = m0.addShard('new-shard', factory);
        checkPlan(m0, added);
        for (const mv of added.plan.moves) if (strategy !== 'maglev' && strategy !== 'bounded') expect(mv.to).toBe('new-shard');
        const victim = added.map.shards[pick % added.map.shards.length]!;
        const removed = added.map.removeShard(victim, factory);
        checkPlan(added.map, removed);
        expect(removed.map.shards).not.toContain(victim);
        if (strategy === 'rendezvous' || strategy === 'ring') for (const mv of removed.plan.moves) expect(mv.from).toBe(victim);
      }),
      { numRuns: 60 },
    );
  });

  it('balanced add/remove move the fewest slots and keep slot counts within one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.nat(), (n, pick) => {
        let map = build('jump', n);
        // Start from a perfectly balanced table so the "within one" claim applies.
        map = PartitionMap.fromOwners(map.shards, Array.from({ length: SLOTS }, (_, s) => s % n));
        const added = map.addShardBalanced('x');
        checkPlan(map, added);
        for (const mv of added.plan.moves) expect(mv.to).toBe('x');
        expect(added.plan.moves.length).toBe(Math.floor(SLOTS / (n + 1)));
        const counts = [...added.map.slotCounts()];
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        const victim = added.map.shards[pick % (n + 1)]!;
        const removed = added.map.removeShardBalanced(victim);
        checkPlan(added.map, removed);
        for (const mv of removed.plan.moves) expect(mv.from).toBe(victim);
        const after = [...removed.map.slotCounts()];
        expect(Math.max(...after) - Math.min(...after)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 60 },
    );
  });

  it('epochs strictly increase over any sequence of changes', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }), (ops) => {
        const factory = placementFactory('rendezvous');
        let map = PartitionMap.fromPlacement(factory(['s0', 's1']), { slotCount: 256 });
        let next = 2;
        for (const add of ops) {
          const before = map.epoch;
          if (add || map.shards.length === 1) map = map.addShard(`s${next++}`, factory).map;
          else map = map.removeShard(map.shards[0]!, factory).map;
          expect(map.epoch).toBe(before + 1);
        }
      }),
    );
  });

  it('typed errors: duplicate, unknown, last shard, stale epoch, foreign plan', () => {
    const factory = placementFactory('jump');
    const map = PartitionMap.fromPlacement(factory(['a', 'b']), { slotCount: 64 });
    expect(() => map.addShard('a', factory)).toThrow(expect.objectContaining({ code: 'PP_ERR_DUPLICATE_SHARD', field: 'shard' }));
    expect(() => map.addShardBalanced('b')).toThrow(expect.objectContaining({ code: 'PP_ERR_DUPLICATE_SHARD', field: 'shard' }));
    expect(() => map.removeShard('zz', factory)).toThrow(expect.objectContaining({ code: 'PP_ERR_UNKNOWN_SHARD', field: 'shard' }));
    expect(() => map.removeShardBalanced('zz')).toThrow(expect.objectContaining({ code: 'PP_ERR_UNKNOWN_SHARD', field: 'shard' }));
    const single = map.removeShard('b', factory).map;
    expect(() => single.removeShard('a', factory)).toThrow(expect.objectContaining({ code: 'PP_ERR_NO_SHARDS' }));
    expect(() => PartitionMap.fromPlacement(factory([]))).toThrow(expect.objectContaining({ code: 'PP_ERR_NO_SHARDS' }));

    const { map: next, plan } = map.addShard('c', factory);
    expect(() => applyPlan(next, plan)).toThrow(expect.objectContaining({ code: 'PP_ERR_STALE_EPOCH', field: 'epoch' }));
    const forged: RebalancePlan = { ...plan, moves: plan.moves.map((m) => ({ ...m, from: m.from === 'a' ? 'b' : 'a' })) };
    if (forged.moves.length > 0) expect(() => applyPlan(map, forged)).toThrow(expect.objectContaining({ field: 'plan.moves[0].from' }));
    expect(() => planRebalance(next, map)).toThrow(expect.objectContaining({ field: 'to.epoch' }));
    expect(() => PartitionMap.fromOwners(['a'], [0, 1])).toThrow(expect.objectContaining({ field: 'owners[1]' }));
    expect(() => map.ownerOf(64)).toThrow(expect.objectContaining({ field: 'slot' }));
  });

  it('a removed shard\'s slots must all be covered by the plan', () => {
    const factory = placementFactory('rendezvous');
    const map = PartitionMap.fromPlacement(factory(['a', 'b', 'c']), { slotCount: 128 });
    const { plan } = map.removeShard('b', factory);
    const truncated: RebalancePlan = { ...plan, moves: plan.moves.slice(1) };
    expect(() => applyPlan(map, truncated)).toThrow(expect.objectContaining({ field: 'plan.moves' }));
  });
});
