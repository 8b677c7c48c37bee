/**
 * The outbox: messages derived from committed store writes through the store's change feed — a
 * row and its message commit together or not at all; a restarted outbox publishes nothing twice
 * (same ids, deduped by the queue) and loses nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { createOutbox, openQueue, type OutboxRoute, type Queue } from '../../src/queue/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { waitFor } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'pp-outbox-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const schema = Type.Object({ user: Type.String(), id: Type.Integer(), total: Type.Number() });
const route: OutboxRoute = (ch) =>
  ch.op === 'put' && ch.row !== undefined ? { topic: 'order-events', key: String(ch.row.user), message: { id: ch.row.id, total: ch.row.total, version: ch.version } } : undefined;

async function all(q: Queue): Promise<{ id: number; total: number; version: number }[]> {
  const out = [];
  for (let p = 0; p < 2; p++) out.push(...(await q.read<{ id: number; total: number; version: number }>('order-events', p, 'earliest', 10_000)).map((m) => m.value));
  return out.sort((a, b) => a.id - b.id || a.version - b.version);
}

describe('outbox', () => {
  it('publishes exactly the committed writes; a failed write leaves neither row nor message; a restart adds no duplicate', async () => {
    const storeUrl = `sqlite:${join(root, 'store')}`;
    const queueUrl = `file:${join(root, 'queue')}`;
    let store: Store = await openStore({ engine: storeUrl, sweep: { intervalMs: 0 } });
    let q = await openQueue({ engine: queueUrl });
    await q.createTopic('order-events', { partitions: 2 });
    let orders = await store.table('orders', { schema, primaryKey: ['user', 'id'] });
    let outbox = await createOutbox({ store, queue: q, name: 'orders', routes: { orders: route }, pollIntervalMs: 20 });
    await orders.insert({ user: 'ann', id: 1, total: 10 });
    await orders.insert({ user: 'bob', id: 2, total: 20 });
    // A write that fails (conflict) commits nothing, so no message either.
    let err: unknown;
    try {
      await orders.insert({ user: 'ann', id: 1, total: 999 });
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_CONFLICT')).toBe(true);
    // An atomic batch with a failing op: none of its rows, none of their messages.
    let batchErr: unknown;
    try {
      await orders.batch([
        { op: 'insert', row: { user: 'cat', id: 3, total: 30 } },
        { op: 'insert', row: { user: 'cat', id: 3, total: 31 } },
      ]);
    } catch (e) {
      batchErr = e;
    }
    expect(batchErr).toBeDefined();
    expect(await orders.get({ user: 'cat', id: 3 })).toBeUndefined();
    await orders.update({ user: 'bob', id: 2 }, { total: 25 });
    await waitFor(async () => (await all(q)).length === 3, 10_000, 'three messages');
    expect(await all(q)).toEqual([
      { id: 1, total: 10, version: 1 },
      { id: 2, total: 20, version: 1 },
      { id: 2, total: 25, version: 2 },
    ]);
    // Restart both, and replay the whole feed with a fresh feed consumer (as after a crash before
    // the position was stored): the same ids are deduped, nothing is published twice.
    await outbox.close();
    await q.close();
    await store.close();
    store = await openStore({ engine: storeUrl, sweep: { intervalMs: 0 } });
    q = await openQueue({ engine: queueUrl });
    orders = await store.table('orders', { schema, primaryKey: ['user', 'id'] });
    outbox = await createOutbox({ store, queue: q, name: 'orders', consumer: 'orders-replay', routes: { orders: route }, pollIntervalMs: 20 });
    await orders.insert({ user: 'dan', id: 4, total: 40 });
    await waitFor(async () => (await all(q)).some((m) => m.id === 4), 10_000, 'the new message');
    expect((await all(q)).map((m) => `${m.id}@${m.version}`)).toEqual(['1@1', '2@1', '2@2', '4@1']);
    expect(outbox.published).toBeGreaterThanOrEqual(4);
    await outbox.close();
    await q.close();
    await store.close();
  });
});
