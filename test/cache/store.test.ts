/**
 * The cache over the store (SQLite, embedded): read-through over a kv namespace and a table, and
 * invalidation driven by the change feed. Two store handles on one database file stand for two
 * nodes: a write through either one — or straight through the store, bypassing the cache —
 * reaches the other node's L1 through its own feed subscription (polling, as across processes).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/index.js';
import { createCache, readThroughKv, readThroughTable } from '../../src/cache/index.js';
import { waitUntil as eventually } from '../helpers/wait.js';

const root = mkdtempSync(join(tmpdir(), 'pp-cache-store-'));
const stores: Store[] = [];
const closers: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of closers) await c();
  for (const s of stores) await s.close();
  rmSync(root, { recursive: true, force: true });
});

async function nodeStore(db: string): Promise<Store> {
  const s = await openStore({ engine: `sqlite:${join(root, db)}`, sweep: { intervalMs: 0 } });
  stores.push(s);
  return s;
}

describe('cache over the store', () => {
  it('kv read-through; a write straight through the store invalidates every node\'s L1 via the feed', async () => {
    const sa = await nodeStore('kv');
    const sb = await nodeStore('kv');
    const kvA = await sa.kv<{ v: number }>('prices');
    const kvB = await sb.kv<{ v: number }>('prices');
    const ca = await createCache<{ v: number }>({ ttlMs: 3_600_000, jitter: 0 });
    const cb = await createCache<{ v: number }>({ ttlMs: 3_600_000, jitter: 0 });
    const ra = await readThroughKv(ca, kvA, sa.feed, { pollIntervalMs: 10 });
    const rb = await readThroughKv(cb, kvB, sb.feed, { pollIntervalMs: 10 });
    closers.push(() => ra.close(), () => rb.close());
    await kvA.put('p1', { v: 1 });
    expect(await ra.get('p1')).toEqual({ v: 1 });
    expect(await rb.get('p1')).toEqual({ v: 1 });
    expect(await rb.get('missing')).toBeUndefined();
    await kvA.put('p1', { v: 2 }); // not through the cache
    await eventually(async () => (await ra.get('p1'))?.v === 2 && (await rb.get('p1'))?.v === 2);
    await rb.put('p1', { v: 3 }); // through the other node's read-through
    await eventually(async () => (await ra.get('p1'))?.v === 3);
    await kvB.put('missing', { v: 9 }); // a negative entry is invalidated too
    await eventually(async () => (await rb.get('missing'))?.v === 9);
    await ra.delete('p1');
    await eventually(async () => (await rb.get('p1')) === undefined);
  });

  it('table read-through by primary key, invalidated by updates and deletes from another node', async () => {
    const sa = await nodeStore('tbl');
    const sb = await nodeStore('tbl');
    const spec = { schema: Type.Object({ id: Type.Integer(), name: Type.String() }), primaryKey: ['id'] };
    const ta = await sa.table('products', spec);
    const tb = await sb.table('products', spec);
    const ca = await createCache<{ id: number; name: string }>({ ttlMs: 3_600_000, jitter: 0 });
    const ra = await readThroughTable(ca, ta, sa.feed, { pollIntervalMs: 10 });
    closers.push(() => ra.close());
    await tb.insert({ id: 1, name: 'lamp' });
    expect(await ra.get(1)).toEqual({ id: 1, name: 'lamp' });
    expect(await ra.get({ id: 1 })).toEqual({ id: 1, name: 'lamp' });
    await tb.update({ id: 1 }, { name: 'desk lamp' });
    await eventually(async () => (await ra.get(1))?.name === 'desk lamp');
    await tb.delete(1);
    await eventually(async () => (await ra.get(1)) === undefined);
  });
});
