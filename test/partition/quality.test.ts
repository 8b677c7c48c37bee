import { describe, expect, it } from 'vitest';
import {
  coefficientOfVariationPct,
  createPlacement,
  hashKeys,
  keysPerShard,
  maxOverMean,
  movedShare,
  partitionReport,
  shardNames,
} from '../../src/partition/index.js';

describe('quality measures', () => {
  it('CV and max/mean on known counts', () => {
    expect(coefficientOfVariationPct([10, 10, 10])).toBe(0);
    expect(coefficientOfVariationPct([0, 20])).toBeCloseTo(100, 10);
    expect(maxOverMean([5, 10, 15])).toBeCloseTo(1.5, 10);
    expect(maxOverMean([0, 0])).toBe(1);
  });

  it('keysPerShard counts every key once; movedShare is 0 for identical placements', () => {
    const hashes = hashKeys(Array.from({ length: 5000 }, (_, i) => `k${i}`));
    const p = createPlacement('jump', shardNames(7));
    expect(keysPerShard(p, hashes).reduce((a, b) => a + b, 0)).toBe(5000);
    expect(movedShare(p, createPlacement('jump', shardNames(7)), hashes)).toBe(0);
    expect(movedShare(p, createPlacement('jump', shardNames(8)), hashes)).toBeGreaterThan(0);
  });

  it('the report has one row per (shard count, strategy) with sane values', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `user:${i}`);
    const rows = partitionReport({ keys, shardCounts: [4, 16], options: { ring: { vnodes: 100 }, bounded: { vnodes: 100 } } });
    expect(rows).toHaveLength(10);
    for (const r of rows) {
      expect(r.keys).toBe(20_000);
      expect(r.cvPct).toBeGreaterThanOrEqual(0);
      expect(r.maxOverMean).toBeGreaterThanOrEqual(1);
      expect(r.movedOverIdeal).toBeCloseTo(r.movedShare * (r.shards + 1), 10);
      // Loose: every strategy here moves between 0.5x and 3x the minimum.
      expect(r.movedOverIdeal).toBeGreaterThan(0.5);
      expect(r.movedOverIdeal).toBeLessThan(3);
    }
    const jump = rows.find((r) => r.strategy === 'jump' && r.shards === 16)!;
    expect(jump.movedOverIdeal).toBeLessThan(1.2);
    expect(() => partitionReport({ keys: [] })).toThrow(expect.objectContaining({ field: 'keys' }));
    expect(() => partitionReport({ keys, strategies: ['nope' as 'jump'] })).toThrow(expect.objectContaining({ field: 'strategies[0]' }));
  });
});
