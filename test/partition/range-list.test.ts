import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { ListPartitioner, RangePartitioner, createRange } from '../../src/partition/index.js';

const isPartitionUnmapped = (err: unknown): boolean => isPowerplantError(err, 'PP_ERR_PARTITION_UNMAPPED');

/** Linear-scan reference: the number of boundaries <= key. */
function linearRange<K extends string | number>(boundaries: readonly K[], key: K): number {
  let i = 0;
  while (i < boundaries.length && boundaries[i]! <= key) i++;
  return i;
}

function sortedDistinct<K extends string | number>(xs: K[]): K[] {
  return [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const stringBoundaries = fc.array(fc.string({ maxLength: 6 }), { maxLength: 30 }).map(sortedDistinct);
const numberBoundaries = fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { maxLength: 30 }).map(sortedDistinct);

function owners(n: number): string[] {
  return Array.from({ length: n + 1 }, (_, i) => `s${i % 3}`);
}

describe('range partitioning', () => {
  it('lookup equals a linear scan (strings by code unit, and numbers)', () => {
    fc.assert(
      fc.property(stringBoundaries, fc.array(fc.string({ maxLength: 6 }), { maxLength: 40 }), (b, keys) => {
        const r = new RangePartitioner({ boundaries: b, shards: owners(b.length) });
        for (const k of [...keys, ...b]) {
          expect(r.rangeIndexOf(k)).toBe(linearRange(b, k));
          expect(r.shardOf(k)).toBe(r.shards[linearRange(b, k)]);
        }
      }),
    );
    fc.assert(
      fc.property(numberBoundaries, fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { maxLength: 40 }), (b, keys) => {
        const r = new RangePartitioner({ boundaries: b, shards: owners(b.length) });
        for (const k of [...keys, ...b]) expect(r.rangeIndexOf(k)).toBe(linearRange(b, k));
      }),
    );
  });

  it('split then merge round-trips, epochs increase, and lookups stay consistent', () => {
    fc.assert(
      fc.property(numberBoundaries, fc.nat(), fc.double({ noNaN: true, noDefaultInfinity: true }), (b, pick, at) => {
        const r = new RangePartitioner({ boundaries: b, shards: owners(b.length) });
        const i = r.rangeIndexOf(at);
        const { lower } = r.range(i);
        if (lower === at) return; // a boundary itself is not strictly inside its range
        const split = r.split(i, at, 'fresh');
        expect(split.epoch).toBe(r.epoch + 1);
        expect(split.rangeCount).toBe(r.rangeCount + 1);
        expect(split.shardOf(at)).toBe('fresh');
        expect(split.range(i).shard).toBe(r.range(i).shard);
        const merged = split.merge(i);
        expect(merged.epoch).toBe(r.epoch + 2);
        expect(merged.boundaries).toEqual(r.boundaries);
        expect(merged.shards).toEqual(r.shards);
        // Merging any adjacent pair removes exactly that boundary.
        if (r.rangeCount >= 2) {
          const j = pick % (r.rangeCount - 1);
          const m = r.merge(j);
          expect(m.boundaries).toEqual(r.boundaries.filter((_, k) => k !== j));
        }
      }),
    );
  });

  it('strings compare by UTF-16 code unit', () => {
    // U+FF5E (fullwidth tilde) sorts after U+1F600 by code point, but before it by code unit
    // (the emoji's high surrogate 0xD83D < 0xFF5E).
    const r = createRange({ boundaries: ['\u{1F600}', '\uff5e'], shards: ['low', 'mid', 'high'] });
    expect(r.shardOf('\uff5f')).toBe('high');
    expect(r.shardOf('\u{1F601}')).toBe('mid');
  });

  it('rejects unsorted, duplicate and mixed boundaries, bad owners and bad splits, naming the field', () => {
    expect(() => new RangePartitioner({ boundaries: ['b', 'a'], shards: ['x', 'y', 'z'] })).toThrow(
      expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'boundaries[1]' }),
    );
    expect(() => new RangePartitioner({ boundaries: [1, 1], shards: ['x', 'y', 'z'] })).toThrow(expect.objectContaining({ field: 'boundaries[1]' }));
    expect(() => new RangePartitioner({ boundaries: [1, 'a'] as Array<string | number>, shards: ['x', 'y', 'z'] })).toThrow(
      expect.objectContaining({ field: 'boundaries[1]' }),
    );
    expect(() => new RangePartitioner({ boundaries: [Number.NaN], shards: ['x', 'y'] })).toThrow(expect.objectContaining({ field: 'boundaries[0]' }));
    expect(() => new RangePartitioner({ boundaries: [1], shards: ['x'] })).toThrow(expect.objectContaining({ field: 'shards' }));
    expect(() => new RangePartitioner({ boundaries: [], shards: [] })).toThrow(expect.objectContaining({ code: 'PP_ERR_NO_SHARDS' }));
    const r = createRange({ boundaries: [10, 20], shards: ['a', 'b', 'c'] });
    expect(() => r.split(1, 20)).toThrow(expect.objectContaining({ field: 'atKey' }));
    expect(() => r.split(1, 10)).toThrow(expect.objectContaining({ field: 'atKey' }));
    expect(() => r.split(5, 15)).toThrow(expect.objectContaining({ field: 'rangeIndex' }));
    expect(() => r.merge(2)).toThrow(expect.objectContaining({ field: 'rangeIndex' }));
    expect(() => r.shardOf('x' as unknown as number)).toThrow(expect.objectContaining({ field: 'key' }));
    expect(r.reassign(1, 'z').shardOf(15)).toBe('z');
  });
});

describe('list partitioning', () => {
  const byRegion = new ListPartitioner({
    column: 'region',
    partitions: [
      { name: 'eu', shard: 'shard-eu', values: ['de', 'fr', 'it'] },
      { name: 'us', shard: 'shard-us', values: ['us', 'ca'] },
      { name: 'codes', shard: 'shard-eu', values: [1, 2] },
    ],
  });

  it('maps listed values to their partition and shard', () => {
    expect(byRegion.partitionOf('fr')).toBe('eu');
    expect(byRegion.shardOf('ca')).toBe('shard-us');
    expect(byRegion.partitionOf(2)).toBe('codes');
  });

  it('an unlisted value without a default fails with PP_ERR_PARTITION_UNMAPPED naming the column', () => {
    let err: unknown;
    try {
      byRegion.shardOf('jp');
    } catch (e) {
      err = e;
    }
    expect(isPartitionUnmapped(err)).toBe(true);
    expect((err as { field?: string }).field).toBe('region');
    // 1 and "1" are different values.
    expect(() => byRegion.shardOf('1')).toThrow(expect.objectContaining({ code: 'PP_ERR_PARTITION_UNMAPPED' }));
  });

  it('with a default, every value maps; listed values keep their partition', () => {
    const withDefault = new ListPartitioner({
      partitions: [{ name: 'eu', shard: 'a', values: ['de', 'fr'] }],
      defaultPartition: { name: 'rest', shard: 'b' },
    });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer()), (v) => {
        const expected = v === 'de' || v === 'fr' ? 'eu' : 'rest';
        expect(withDefault.partitionOf(v)).toBe(expected);
      }),
    );
  });

  it('rejects a value listed twice, empty lists and bad names, naming the field', () => {
    expect(
      () =>
        new ListPartitioner({
          partitions: [
            { name: 'a', shard: 's', values: ['x'] },
            { name: 'b', shard: 's', values: ['y', 'x'] },
          ],
        }),
    ).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'partitions[1].values[1]' }));
    expect(() => new ListPartitioner({ partitions: [{ name: 'a', shard: 's', values: [] }] })).toThrow(
      expect.objectContaining({ field: 'partitions[0].values' }),
    );
    expect(() => new ListPartitioner({ partitions: [{ name: '', shard: 's', values: [1] }] })).toThrow(
      expect.objectContaining({ field: 'partitions[0].name' }),
    );
    expect(() => new ListPartitioner({ partitions: [] })).toThrow(expect.objectContaining({ code: 'PP_ERR_NO_SHARDS' }));
    expect(() => new ListPartitioner({ partitions: [{ name: 'a', shard: 's', values: [Number.NaN] }] })).toThrow(
      expect.objectContaining({ field: 'partitions[0].values[0]' }),
    );
  });
});
