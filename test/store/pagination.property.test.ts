/**
 * Cross-shard pagination, property-tested: for random data, queries (index, equality prefix,
 * range, order) and page sizes, walking cursor pages over a 4-shard store yields exactly the rows,
 * in exactly the order, of the same query on a single-shard reference store.
 * Also the pure pieces it relies on: code-point string order, prefix bounds, the k-way merge.
 */
import { Type } from '@sinclair/typebox';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Query, Store, Table } from '../../src/store/index.js';
import { mergeSorted, rowComparator } from '../../src/store/collection.js';
import { compareStrings, prefixUpperBound } from '../../src/store/schema.js';
import { needEngine } from '../helpers/engines.js';
import { postgresCase, sqliteCase, type EngineCase } from './helpers.js';

const Row = Type.Object({
  user: Type.String(),
  id: Type.Integer(),
  total: Type.Number(),
  status: Type.Optional(Type.String()),
});
type RowT = { user: string; id: number; total: number; status?: string };
const spec = { schema: Row, primaryKey: ['user', 'id'], partitionKey: ['user'], indexes: { byTotal: ['total'], byStatus: ['status', 'total'] } } as const;

// Strings chosen so UTF-16 order and code-point order disagree ('\uE000' vs an astral char).
const STR = ['a', 'b', 'ab', 'é', '\uE000', '😀', 'z'];
const arbRow = fc.record({
  user: fc.constantFrom(...STR),
  id: fc.integer({ min: -5, max: 30 }),
  total: fc.constantFrom(-1.5, 0, 1, 2, 2.5, 10),
  status: fc.option(fc.constantFrom(...STR), { nil: undefined }),
});
const arbQuery = fc.record({
  index: fc.constantFrom(undefined, 'byTotal', 'byStatus'),
  eqFirst: fc.boolean(),
  eqValue: fc.constantFrom(...STR),
  range: fc.option(fc.record({ gte: fc.constantFrom(-1, 0, 1, 2), lt: fc.constantFrom(2, 3, 11) }), { nil: undefined }),
  order: fc.constantFrom('asc' as const, 'desc' as const),
  limit: fc.integer({ min: 1, max: 7 }),
});

async function walk(t: Table<RowT>, q: Query<RowT>): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const p = await t.query({ ...q, ...(cursor === undefined ? {} : { cursor }) });
    expect(p.items.length).toBeLessThanOrEqual(q.limit ?? 100);
    out.push(...p.items.map((r) => `${r.row.user}/${r.row.id}`));
    cursor = p.cursor;
    if (cursor === undefined) return out;
  }
  throw new Error('pagination did not terminate');
}

const pgUp = await needEngine('postgres');
const cases: { engine: EngineCase; runs: number }[] = [{ engine: sqliteCase(), runs: 60 }, ...(pgUp ? [{ engine: postgresCase(), runs: 12 }] : [])];
afterAll(async () => {
  await Promise.all(cases.map((c) => c.engine.cleanup()));
});

describe.each(cases)('cross-shard cursor pagination: $engine.name', ({ engine, runs }) => {
  it('4 shards page exactly like a single-shard reference', async () => {
    const sharded: Store = await engine.open({ shards: 4 });
    const single: Store = await engine.open({ shards: 1 });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(arbRow, { minLength: 0, maxLength: 40, selector: (r) => `${r.user}/${r.id}` }), fc.array(arbQuery, { minLength: 1, maxLength: 4 }), async (rows, queries) => {
        const name = `p${n++}`;
        const a = (await sharded.table(name, spec)) as unknown as Table<RowT>;
        const b = (await single.table(name, spec)) as unknown as Table<RowT>;
        if (rows.length > 0) {
          await a.batch(rows.map((row) => ({ op: 'insert' as const, row })));
          await b.batch(rows.map((row) => ({ op: 'insert' as const, row })));
        }
        for (const g of queries) {
          const first = g.index === undefined ? 'user' : g.index === 'byTotal' ? 'total' : 'status';
          const where = g.eqFirst ? { [first]: first === 'total' ? 2 : g.eqValue } : undefined;
          // The range applies to the next sort column after the equality prefix; keep it numeric.
          const rangeOk = g.range !== undefined && (g.index === 'byTotal' ? !g.eqFirst : g.eqFirst);
          const q: Query<RowT> = {
            ...(g.index === undefined ? {} : { index: g.index }),
            ...(where === undefined ? {} : { where: where as Partial<RowT> }),
            ...(rangeOk ? { range: g.range } : {}),
            order: g.order,
            limit: g.limit,
          };
          const ref = await walk(b, { ...q, limit: 1000 });
          expect(await walk(a, q)).toEqual(ref);
          expect(await walk(b, q)).toEqual(ref);
          expect(await a.count(q)).toBe(ref.length);
        }
      }),
      { numRuns: runs, seed: 42 },
    );
  });
});

describe('pieces', () => {
  it('compareStrings is UTF-8 byte order (code-point order)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(Math.sign(compareStrings(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
      { numRuns: 2000 },
    );
  });

  it('prefixUpperBound: every string with the prefix is below it, the prefix itself is not', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1 }), fc.string({ unit: 'grapheme' }), (p, rest) => {
        const u = prefixUpperBound(p);
        if (u === undefined) return;
        expect(compareStrings(p + rest, u)).toBeLessThan(0);
        expect(compareStrings(p, u)).toBeLessThan(0);
      }),
    );
  });

  it('mergeSorted merges sorted lists into the sorted union, up to the limit', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 20 }), { maxLength: 6 }), fc.integer({ min: 1, max: 200 }), (lists, limit) => {
        const rows = lists.map((l) => [...l].sort((x, y) => x - y).map((v) => ({ v })));
        const merged = mergeSorted(rows, rowComparator(['v'], false), limit).map((r) => r.v);
        expect(merged).toEqual(lists.flat().sort((x, y) => x - y).slice(0, limit));
      }),
    );
  });
});
