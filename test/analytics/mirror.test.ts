/**
 * Mirrors on both store engines: a DuckDB copy of a store table kept in step by the change feed
 * (inserts, updates, deletes, TTL expiry), resumed from its own positions, evolved or stopped on a
 * shape change, loaded from the table when the feed no longer holds its start.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import type { Analytics, Mirror } from '../../src/analytics/index.js';
import type { Store, Table } from '../../src/store/index.js';
import { needEngine } from '../helpers/engines.js';
import { waitUntil } from '../helpers/wait.js';
import { expectCode, uniqueId } from '../store/helpers.js';
import { LINE_SCHEMA_V2, analyticsCase, line, lineTable, mirrorRows, storeRows, type Line } from './helpers.js';

const pgUp = await needEngine('postgres');
const cases = [analyticsCase('sqlite'), ...(pgUp ? [analyticsCase('postgres')] : [])];
afterAll(async () => {
  await Promise.all(cases.map((c) => c.cleanup()));
});

async function expectSame(a: Analytics, name: string, t: Table<Line>): Promise<void> {
  const want = await storeRows(t);
  const got = await mirrorRows(a, name);
  expect(got.length).toBe(want.size);
  expect(new Set(got.map((r) => r.id)).size).toBe(got.length);
  for (const g of got) {
    const w = want.get(g.id);
    expect(w, `row ${g.id} in the mirror but not in the store`).toBeDefined();
    expect(g.row).toEqual(w!.row);
    expect(g._v).toBe(w!.version);
  }
}

async function caughtUp(m: Mirror<Line>, store: Store): Promise<void> {
  await m.waitFor(await store.feed.heads(), 20_000);
}

describe.each(cases)('analytics mirror: $name', (c) => {
  it('applies inserts, updates and deletes, batched, and equals the store table', async () => {
    const id = uniqueId('m');
    const store = await c.openStore(id);
    const t = await lineTable(store);
    const a = await c.openAnalytics(store, id);
    const m = await a.mirror(t);
    await t.batch(Array.from({ length: 500 }, (_, i) => ({ op: 'insert' as const, row: line(i) })));
    for (let i = 0; i < 50; i++) await t.update(`l${i}`, { qty: 100 + i, note: `n${i}` });
    for (let i = 50; i < 80; i++) await t.delete(`l${i}`);
    await t.upsert(line(50, { qty: 9 })); // deleted, then back
    await t.update('l1', { note: undefined as never });
    await caughtUp(m, store);
    await expectSame(a, 'lines', t);
    const s = m.stats();
    expect(s.state).toBe('running');
    expect(s.batches).toBeLessThan(s.records);
    const sum = await a.query<{ n: number; q: number }>('SELECT count(*) AS n, sum(qty) AS q FROM lines');
    const rows = [...(await storeRows(t)).values()];
    expect(sum.rows[0]).toEqual({ n: rows.length, q: rows.reduce((x, r) => x + r.row.qty, 0) });
    expect((await m.lag()).records).toBe(0);
  });

  it('hides expired rows (TTL is not a feed event) and keeps rows without expiry', async () => {
    const id = uniqueId('m');
    const store = await c.openStore(id);
    const t = await lineTable(store);
    const a = await c.openAnalytics(store, id);
    const m = await a.mirror(t);
    await t.insert(line(1));
    const w = await t.insert(line(2), { ttlMs: 300 });
    await m.waitFor(w);
    expect((await a.query<{ id: string }>('SELECT id FROM lines ORDER BY id')).rows.map((r) => r.id)).toEqual(['l1', 'l2']);
    await waitUntil(async () => (await a.query('SELECT id FROM lines')).rows.length === 1, 10_000, 'the expired row to disappear');
    // the store sweeps it and the key is inserted afresh (version 1 again): exactly one row
    await store.sweepOnce();
    await m.waitFor(await t.insert(line(2, { qty: 42 })));
    expect((await a.query<{ id: string; qty: number }>('SELECT id, qty FROM lines ORDER BY id')).rows).toEqual([
      { id: 'l1', qty: 2 },
      { id: 'l2', qty: 42 },
    ]);
  });

  it('resumes from its own positions after a close: nothing applied twice, nothing missed', async () => {
    const id = uniqueId('m');
    const store = await c.openStore(id);
    const t = await lineTable(store);
    let a = await c.openAnalytics(store, id);
    let m = await a.mirror(t);
    await t.batch(Array.from({ length: 200 }, (_, i) => ({ op: 'insert' as const, row: line(i) })));
    await caughtUp(m, store);
    await a.close();
    // written while no mirror runs
    await t.batch(Array.from({ length: 200 }, (_, i) => ({ op: 'insert' as const, row: line(200 + i) })));
    for (let i = 0; i < 20; i++) await t.update(`l${i}`, { qty: 7 });
    a = await c.openAnalytics(store, id);
    m = await a.mirror(t);
    await caughtUp(m, store);
    await expectSame(a, 'lines', t);
    expect(m.stats().records).toBe(220);
  });

  it('stops on a record whose shape changed, and evolves when reopened with the new definition', async () => {
    const id = uniqueId('m');
    const store = await c.openStore(id);
    const t = await lineTable(store);
    const a = await c.openAnalytics(store, id);
    const errors: unknown[] = [];
    const m = await a.mirror(t, { onError: (e) => errors.push(e) });
    await m.waitFor(await t.insert(line(1)));
    const t2 = await store.table('lines', { schema: LINE_SCHEMA_V2, primaryKey: ['id'] });
    const w = await t2.insert({ ...line(2), coupon: 'SPRING' });
    await waitUntil(() => m.stats().state === 'stopped', 10_000, 'the mirror to stop');
    const err = m.stats().error!;
    expect(err.code).toBe('PP_ERR_MIRROR_STOPPED');
    expect(err.field).toBe('coupon');
    expect(err.message).toContain('coupon');
    expect(errors.some((e) => isPowerplantError(e, 'PP_ERR_MIRROR_STOPPED'))).toBe(true);
    await expectCode(m.waitFor(w), 'PP_ERR_MIRROR_STOPPED');
    // nothing of the refused record was applied
    expect((await a.query('SELECT id FROM lines')).rows).toEqual([{ id: 'l1' }]);
    await m.close();
    const m2 = await a.mirror(t2);
    await m2.waitFor(w);
    expect((await a.query('SELECT id, coupon FROM lines ORDER BY id')).rows).toEqual([
      { id: 'l1', coupon: null },
      { id: 'l2', coupon: 'SPRING' },
    ]);
    await expectCode(a.mirror(t), 'PP_ERR_INVALID_ARGUMENT', 'as'); // already open
  });

  it('loads the table when the feed no longer holds the start, then follows', async () => {
    const id = uniqueId('m');
    const store = await c.openStore(id);
    const t = await lineTable(store);
    await t.batch(Array.from({ length: 300 }, (_, i) => ({ op: 'insert' as const, row: line(i) })));
    for (let i = 0; i < 10; i++) await t.update(`l${i}`, { qty: 50 });
    await store.feed.trim(5);
    const a = await c.openAnalytics(store, id);
    const m = await a.mirror(t);
    await t.delete('l299');
    await t.update('l298', { qty: 1 });
    await caughtUp(m, store);
    await expectSame(a, 'lines', t);
  });

  it('mirrors bytes, json and boolean columns, and composite keys', async () => {
    const id = uniqueId('m');
    const store = await c.openStore(id);
    const t = await store.table('docs', {
      schema: Type.Object({ owner: Type.String(), n: Type.Integer(), data: Type.Uint8Array(), meta: Type.Object({ a: Type.Integer() }), tags: Type.Optional(Type.Array(Type.String())), ok: Type.Boolean() }),
      primaryKey: ['owner', 'n'],
    });
    const a = await c.openAnalytics(store, id);
    const m = await a.mirror(t);
    await t.insert({ owner: 'ann', n: 1, data: new Uint8Array([1, 2, 255]), meta: { a: 1 }, tags: ['x', 'y'], ok: true });
    await t.insert({ owner: 'ann', n: 2, data: new Uint8Array([]), meta: { a: 2 }, ok: false });
    await t.insert({ owner: 'bob', n: 1, data: new Uint8Array([9]), meta: { a: 3 }, ok: true });
    await t.update({ owner: 'ann', n: 2 }, { meta: { a: 20 }, ok: true });
    await m.waitFor(await t.delete({ owner: 'bob', n: 1 }).then(async () => store.feed.heads()));
    const rows = (await a.query<{ owner: string; n: number; data: Uint8Array; meta: string; tags: string | null; ok: boolean }>('SELECT * FROM docs ORDER BY owner, n')).rows;
    expect(rows.map((r) => ({ ...r, data: [...r.data], meta: JSON.parse(r.meta) as unknown, tags: r.tags === null ? null : (JSON.parse(r.tags) as unknown) }))).toEqual([
      { owner: 'ann', n: 1, data: [1, 2, 255], meta: { a: 1 }, tags: ['x', 'y'], ok: true },
      { owner: 'ann', n: 2, data: [], meta: { a: 20 }, tags: null, ok: true },
    ]);
    expect((await a.query("SELECT json_extract(meta, '$.a') AS a FROM docs WHERE ok ORDER BY n")).rows.map((r) => Number(r.a))).toEqual([1, 20]);
  });

  it('refuses bad options, naming them', async () => {
    const id = uniqueId('m');
    const store = await c.openStore(id);
    const t = await lineTable(store);
    const a = await c.openAnalytics(store, id);
    await expectCode(a.mirror(t, { partitionBy: { kind: 'time', column: 'nope', everyMs: 60_000 } }), 'PP_ERR_UNKNOWN_COLUMN', 'partitionBy.column');
    await expectCode(a.mirror(t, { partitionBy: { kind: 'time', column: 'category', everyMs: 60_000 } }), 'PP_ERR_INVALID_ARGUMENT', 'partitionBy.column');
    await expectCode(a.mirror(t, { partitionBy: { kind: 'time', column: 'createdAt', everyMs: 5 } }), 'PP_ERR_INVALID_ARGUMENT', 'partitionBy.everyMs');
    await expectCode(a.mirror(t, { batchMax: 0 }), 'PP_ERR_INVALID_ARGUMENT', 'batchMax');
    await expectCode(a.mirror(t, { as: 'bad name' }), 'PP_ERR_INVALID_ARGUMENT', 'as');
    await expectCode(async () => a.mirror({} as never), 'PP_ERR_INVALID_ARGUMENT', 'table');
    const m = await a.mirror(t, { partitionBy: { kind: 'key', column: 'category' } });
    await m.close();
    await expectCode(a.mirror(t, { partitionBy: { kind: 'time', column: 'createdAt', everyMs: 60_000 } }), 'PP_ERR_INVALID_ARGUMENT', 'partitionBy');
    await expectCode(async () => m.waitFor({ shard: 'nope', position: 1 }), 'PP_ERR_INVALID_ARGUMENT', 'shard');
  });
});
