/**
 * The query API over mirrors (SQLite store, in process): bound parameters, typed rows, the row and
 * time limits, cancellation, bad SQL named; the typed builder; partitions pruned as `explain`
 * shows; archived partitions still queried, with later deletes and updates applied over them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Analytics, Mirror } from '../../src/analytics/index.js';
import type { Store, Table } from '../../src/store/index.js';
import { expectCode, uniqueId } from '../store/helpers.js';
import { DAY_MS, analyticsCase, line, lineTable, type Line } from './helpers.js';

const c = analyticsCase('sqlite');
let store: Store;
let t: Table<Line>;
let a: Analytics;
let m: Mirror<Line>;
const N = 2000;

beforeAll(async () => {
  const id = uniqueId('q');
  store = await c.openStore(id);
  t = await lineTable(store);
  a = await c.openAnalytics(store, id, { query: { concurrentMax: 2, queueMax: 4 } });
  m = await a.mirror(t, { partitionBy: { kind: 'time', column: 'createdAt', everyMs: DAY_MS } });
  for (let i = 0; i < N; i += 500) await t.batch(Array.from({ length: 500 }, (_, j) => ({ op: 'insert' as const, row: line(i + j) })));
  await m.waitFor(await store.feed.heads());
});
afterAll(() => c.cleanup());

const all = (): Line[] => Array.from({ length: N }, (_, i) => line(i));

describe('analytics query', () => {
  it('binds positional and named parameters and returns typed rows', async () => {
    const r = await a.query<{ category: string; n: number; units: number }>(
      'SELECT category, count(*) AS n, sum(qty) AS units FROM lines WHERE createdAt >= $1 AND paid = $2 GROUP BY category ORDER BY category',
      [3 * DAY_MS, true],
    );
    const want = new Map<string, { n: number; units: number }>();
    for (const l of all().filter((l) => l.createdAt >= 3 * DAY_MS && l.paid)) {
      const w = want.get(l.category) ?? { n: 0, units: 0 };
      want.set(l.category, { n: w.n + 1, units: w.units + l.qty });
    }
    expect(r.rows).toEqual([...want.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([category, v]) => ({ category, ...v })));
    expect(r.columns.map((col) => col.name)).toEqual(['category', 'n', 'units']);
    const named = await a.query<{ id: string; price: number; paid: boolean }>('SELECT id, price, paid FROM lines WHERE id = $id', { id: 'l7' });
    expect(named.rows).toEqual([{ id: 'l7', price: line(7).price, paid: false }]);
    // a parameter is a value, never SQL
    expect((await a.query('SELECT id FROM lines WHERE id = ?', ["l1' OR '1'='1"])).rows).toEqual([]);
  });

  it('refuses SQL that does not parse, unknown tables and columns, other statements, naming them', async () => {
    await expectCode(a.query('SELEC 1'), 'PP_ERR_QUERY_INVALID', 'sql');
    const unknownTable = (await a.query('SELECT * FROM orders').catch((e: unknown) => e)) as { message: string };
    expect(unknownTable).toMatchObject({ code: 'PP_ERR_QUERY_INVALID', status: 400, data: { table: 'orders' } });
    expect(unknownTable.message).toContain('orders');
    const unknownCol = (await a.query('SELECT nope FROM lines WHERE id = $1', ['x']).catch((e: unknown) => e)) as { message: string };
    expect(unknownCol).toMatchObject({ code: 'PP_ERR_QUERY_INVALID', data: { column: 'nope' } });
    expect(unknownCol.message).toContain('nope');
    await expectCode(a.query('DELETE FROM lines'), 'PP_ERR_QUERY_INVALID', 'sql');
    await expectCode(a.query('SELECT 1; SELECT 2'), 'PP_ERR_QUERY_INVALID', 'sql');
    await expectCode(a.query('SELECT * FROM pp.positions'), 'PP_ERR_QUERY_INVALID', 'sql');
    await expectCode(a.query("SELECT * FROM read_csv('/etc/passwd')"), 'PP_ERR_QUERY_INVALID', 'sql');
    await expectCode(a.query(''), 'PP_ERR_QUERY_INVALID', 'sql');
    await expectCode(a.query(42 as never), 'PP_ERR_QUERY_INVALID', 'sql');
    await expectCode(a.query('SELECT id FROM lines WHERE qty = $1'), 'PP_ERR_QUERY_INVALID', 'params');
    await expectCode(a.query('SELECT id FROM lines WHERE qty = $1', [1, 2]), 'PP_ERR_QUERY_INVALID', 'params');
    await expectCode(a.query('SELECT id FROM lines WHERE qty = $1', [undefined as never]), 'PP_ERR_QUERY_INVALID', 'params[0]');
    await expectCode(a.query('SELECT id FROM lines WHERE qty = $1', [{}] as never), 'PP_ERR_QUERY_INVALID', 'params[0]');
    await expectCode(a.query('SELECT id FROM lines WHERE qty = $q', { q: 1, extra: 2 }), 'PP_ERR_QUERY_INVALID', 'params.extra');
    await expectCode(a.query('SELECT id FROM lines WHERE qty = $1', ['abc']), 'PP_ERR_QUERY_INVALID');
  });

  it('enforces the row limit and the time limit, and cancels on a signal', async () => {
    const over = await a.query('SELECT id FROM lines', undefined, { rowsMax: 100 }).catch((e: unknown) => e);
    expect(over).toMatchObject({ code: 'PP_ERR_QUERY_LIMIT', status: 422, field: 'rowsMax' });
    expect((await a.query('SELECT id FROM lines LIMIT 100', undefined, { rowsMax: 100 })).rows).toHaveLength(100);
    const slow = 'SELECT count(*) AS n FROM lines a, lines b, lines c WHERE a.qty + b.qty + c.qty = -1';
    const timedOut = await a.query(slow, undefined, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(timedOut).toMatchObject({ code: 'PP_ERR_QUERY_LIMIT', field: 'timeoutMs' });
    const ac = new AbortController();
    const p = a.query(slow, undefined, { signal: ac.signal, timeoutMs: 60_000 });
    setTimeout(() => ac.abort(), 100);
    await expectCode(p, 'PP_ERR_ABORTED');
    await expectCode(a.query('SELECT 1 AS x', undefined, { signal: AbortSignal.abort() }), 'PP_ERR_ABORTED');
    // the connections are usable again
    expect((await a.query<{ n: number }>('SELECT count(*) AS n FROM lines')).rows[0]!.n).toBe(N);
    await expectCode(async () => a.query('SELECT 1', undefined, { rowsMax: 0 }), 'PP_ERR_INVALID_ARGUMENT', 'rowsMax');
    await expectCode(async () => a.query('SELECT 1', undefined, { timeoutMs: -1 }), 'PP_ERR_INVALID_ARGUMENT', 'timeoutMs');
  });

  it('bounds the queries waiting for a connection', async () => {
    const slow = 'SELECT count(*) AS n FROM lines a, lines b, lines c WHERE a.qty + b.qty + c.qty = -1';
    const ps = Array.from({ length: 7 }, () => a.query(slow, undefined, { timeoutMs: 300 }).catch((e: unknown) => (e as { code: string }).code));
    const codes = await Promise.all(ps);
    expect(codes.filter((x) => x === 'PP_ERR_OVERLOADED').length).toBe(1); // 2 running + 4 queued
    expect(codes.every((x) => x === 'PP_ERR_OVERLOADED' || x === 'PP_ERR_QUERY_LIMIT')).toBe(true);
  });

  it('the typed builder: filter, time bucket, group-by, aggregates, order, limit', async () => {
    const r = await a
      .select(m)
      .where('createdAt', '>=', 2 * DAY_MS)
      .where('createdAt', '<', 5 * DAY_MS)
      .where('category', 'in', ['c1', 'c2'])
      .bucket('createdAt', DAY_MS, 'day')
      .groupBy('category')
      .agg({ lines: 'count', revenue: ['sumProduct', 'qty', 'price'], products: ['countDistinct', 'productId'] })
      .orderBy('day')
      .orderBy('category')
      .run();
    const want = new Map<string, { day: number; category: string; lines: number; revenue: number; products: Set<number> }>();
    for (const l of all().filter((l) => l.createdAt >= 2 * DAY_MS && l.createdAt < 5 * DAY_MS && ['c1', 'c2'].includes(l.category))) {
      const k = `${l.createdAt}|${l.category}`;
      const w = want.get(k) ?? { day: l.createdAt, category: l.category, lines: 0, revenue: 0, products: new Set<number>() };
      w.lines++;
      w.revenue += l.qty * l.price;
      w.products.add(l.productId);
      want.set(k, w);
    }
    const expected = [...want.values()].sort((x, y) => x.day - y.day || (x.category < y.category ? -1 : 1)).map((w) => ({ ...w, products: w.products.size }));
    expect(r.rows.map((x) => ({ ...x, revenue: Math.round(x.revenue * 100) / 100 }))).toEqual(expected.map((x) => ({ ...x, revenue: Math.round(x.revenue * 100) / 100 })));
    const top = await a.select(m).groupBy('productId').agg({ units: ['sum', 'qty'] }).orderBy('units', 'desc').limit(3).run();
    expect(top.rows).toHaveLength(3);
    const rowTyped: number = top.rows[0]!.units + top.rows[0]!.productId;
    expect(rowTyped).toBeGreaterThan(0);
    expect(() => a.select(m).where('nope' as never, '=', 1 as never)).toThrow(/nope/);
    expect(() => a.select(m).groupBy('category').orderBy('missing' as never)).toThrow(/missing/);
  });

  it('explain: a filter on the partition column reads only the matching partitions', async () => {
    const ex = await a.explain('SELECT category, count(*) FROM lines WHERE createdAt >= $1 AND createdAt < $2 GROUP BY category', [3 * DAY_MS, 5 * DAY_MS]);
    const tbl = ex.tables.find((x) => x.mirror === 'lines')!;
    expect(tbl.partitions).toBe(10);
    const part = (day: number): number => m.layout.get(String(day * DAY_MS))!.ordinal;
    expect(tbl.scanned.map((s) => s.partition).sort()).toEqual([part(3), part(4)].sort());
    expect(tbl.pruned).toHaveLength(8);
    expect(ex.rowsScanned).toBeLessThanOrEqual((2 * N) / 10 + 2048 * 2);
    expect(ex.plan).toContain('SCAN');
    const full = await a.explain('SELECT count(*) FROM lines WHERE productId >= 0');
    expect(full.tables[0]!.pruned).toHaveLength(0);
  });
});

describe('analytics key partitions', () => {
  it('one partition per value up to partitionsMax, then an overflow partition; a filter on the key reads one', async () => {
    const byCat = await a.mirror(t, { as: 'bycat', partitionBy: { kind: 'key', column: 'category' }, partitionsMax: 3 });
    await byCat.waitFor(await store.feed.heads());
    const values = byCat.layout.partitions.map((p) => p.value);
    expect(values).toHaveLength(3);
    expect(values).toContain('*');
    const named = JSON.parse(values.find((v) => v !== '*')!) as string; // which two values came first depends on the feed's order
    const counts = await a.query<{ category: string; n: number }>('SELECT category, count(*) AS n FROM bycat GROUP BY category ORDER BY category');
    expect(counts.rows).toEqual(['c0', 'c1', 'c2', 'c3'].map((category) => ({ category, n: N / 4 })));
    const ex = await a.explain('SELECT count(*) FROM bycat WHERE category = $1', [named]);
    const other = byCat.layout.partitions.find((p) => p.value !== '*' && p.value !== JSON.stringify(named))!;
    const scanned = ex.tables[0]!.scanned.map((x) => x.partition);
    expect(scanned).toContain(byCat.layout.get(JSON.stringify(named))!.ordinal);
    // the other named partition is pruned; the overflow one holds a range of values, so min/max may not exclude it
    expect(ex.tables[0]!.pruned).toContain(other.ordinal);
    expect(scanned).not.toContain(other.ordinal);
    await byCat.close();
  });
});

describe('analytics time partitions past partitionsMax', () => {
  it('later buckets share the overflow partition and every row is still there', async () => {
    const few = await a.mirror(t, { as: 'fewdays', partitionBy: { kind: 'time', column: 'createdAt', everyMs: DAY_MS }, partitionsMax: 3 });
    await few.waitFor(await store.feed.heads());
    expect(few.layout.partitions).toHaveLength(3);
    expect(few.layout.partitions.map((p) => p.value)).toContain('*');
    const r = await a.query<{ n: number; q: number }>('SELECT count(*) AS n, sum(qty) AS q FROM fewdays WHERE createdAt >= $1', [5 * DAY_MS]);
    const want = all().filter((l) => l.createdAt >= 5 * DAY_MS);
    expect(r.rows[0]).toEqual({ n: want.length, q: want.reduce((x, l) => x + l.qty, 0) });
    await few.close();
  });
});

describe('analytics archive', () => {
  it('moves old partitions to Parquet; they stay queryable, and later deletes and updates apply over them', async () => {
    const id = uniqueId('ar');
    const s = await c.openStore(id);
    const tt = await lineTable(s, 'alines');
    const aa = await c.openAnalytics(s, id);
    const mm = await aa.mirror(tt, { partitionBy: { kind: 'time', column: 'createdAt', everyMs: DAY_MS } });
    await tt.batch(Array.from({ length: 400 }, (_, i) => ({ op: 'insert' as const, row: line(i) })));
    await mm.waitFor(await s.feed.heads());
    const total = async (): Promise<{ n: number; q: number }> => (await aa.query<{ n: number; q: number }>('SELECT count(*) AS n, sum(qty) AS q FROM alines')).rows[0]!;
    const before = await total();
    const res = await aa.archive(mm, { olderThanMs: 0, nowMs: 5 * DAY_MS });
    expect(res.archived.map((x) => x.rows)).toEqual([40, 40, 40, 40, 40]);
    expect(await total()).toEqual(before);
    const ex = await aa.explain('SELECT count(*) FROM alines');
    expect(ex.tables[0]!.scanned.some((x) => x.partition === -1)).toBe(true);
    // l10 (day 0, archived) deleted, l11 (day 1, archived) updated, l12 (day 2) upserted anew
    await tt.delete('l10');
    await tt.update('l11', { qty: 1000 });
    await mm.waitFor(await tt.update('l22', { note: 'late' }));
    const rows = (await aa.query<{ id: string; qty: number; note: string | null }>("SELECT id, qty, note FROM alines WHERE id IN ('l10', 'l11', 'l22') ORDER BY id")).rows;
    expect(rows).toEqual([
      { id: 'l11', qty: 1000, note: null },
      { id: 'l22', qty: line(22).qty, note: 'late' },
    ]);
    expect((await total()).n).toBe(399);
    // archiving the reopened partitions again merges the file and the live rows
    const again = await aa.archive(mm, { olderThanMs: 0, nowMs: 5 * DAY_MS });
    expect(again.archived.length).toBeGreaterThan(0);
    expect((await total()).n).toBe(399);
    expect((await aa.query("SELECT id, qty FROM alines WHERE id = 'l11'")).rows).toEqual([{ id: 'l11', qty: 1000 }]);
    await expectCode(aa.archive(mm, { olderThanMs: -1 }), 'PP_ERR_INVALID_ARGUMENT', 'olderThanMs');
  });
});
