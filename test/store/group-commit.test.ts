/**
 * Group commit on both engines, through the public store: concurrent writes share transactions
 * (batch counts asserted from stats), batches are bounded by size and by wait, the queue is
 * bounded (PP_ERR_OVERLOADED), a failed request inside a shared batch fails alone, and closing the
 * store with writes queued never hangs and never acknowledges a write that is not there.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import type { Store } from '../../src/store/index.js';
import { needEngine } from '../helpers/engines.js';
import { expectCode, postgresCase, sqliteCase, type EngineCase } from './helpers.js';

const pgUp = await needEngine('postgres');
const cases: EngineCase[] = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];
afterAll(async () => {
  await Promise.all(cases.map((c) => c.cleanup()));
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each(cases)('group commit: $name', (engine) => {
  it('writes issued together are batched: ceil(n / batchMax) transactions, none larger than batchMax', async () => {
    const s = await engine.open({ shards: 1, groupCommit: { batchMax: 16 } });
    const kv = await s.kv<number>('gc');
    // All 200 are submitted in one event-loop turn, before the first flush.
    const res = await Promise.all(Array.from({ length: 200 }, (_, i) => kv.put(`k${i}`, i)));
    const st = s.stats().shards[0]!;
    expect(st.requests).toBe(200);
    expect(st.batches).toBe(Math.ceil(200 / 16));
    expect(st.batchMaxSeen).toBe(16);
    expect(st.pending).toBe(0);
    // Every write got its own position, and the positions of one shard are distinct.
    expect(new Set(res.map((r) => r.position)).size).toBe(200);
    expect(await kv.count()).toBe(200);
  });

  it('waitMs gathers writes that arrive within the wait into one transaction', async () => {
    const s = await engine.open({ shards: 1, groupCommit: { waitMs: 50 } });
    const kv = await s.kv<number>('wait');
    const a = kv.put('a', 1);
    await sleep(5);
    const b = kv.put('b', 2);
    await Promise.all([a, b]);
    expect(s.stats().shards[0]).toMatchObject({ batches: 1, requests: 2 });
  });

  it('the queue is bounded: beyond queueMax writes fail fast with a retryable PP_ERR_OVERLOADED and are not written', async () => {
    const s = await engine.open({ shards: 1, groupCommit: { batchMax: 2, queueMax: 2 } });
    const kv = await s.kv<number>('over');
    const settled = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => kv.put(`k${i}`, i)));
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected']);
    for (const r of settled.slice(2)) {
      const e = (r as PromiseRejectedResult).reason as unknown;
      expect(isPowerplantError(e, 'PP_ERR_OVERLOADED')).toBe(true);
      expect((e as { retryable: boolean }).retryable).toBe(true);
    }
    expect((await kv.scan()).items.map((i) => i.key)).toEqual(['k0', 'k1']);
  });

  it('a failing request in a shared batch fails alone; the others commit with their feed records', async () => {
    const s = await engine.open({ shards: 1 });
    const kv = await s.kv<number>('mixed');
    await kv.putMany([{ key: 'c0', value: 0 }, { key: 'c1', value: 0 }]);
    const head = (await s.feed.heads()).s0!;
    const before = s.stats().shards[0]!.batches;
    // One event-loop turn: plain puts (coalesced on PostgreSQL), good and stale CAS, a duplicate
    // insert, a multi-op request that fails on its last op, and a good multi-op request.
    const settled = await Promise.allSettled([
      kv.put('p0', 1),
      kv.cas('c0', 1, 10),
      kv.cas('c1', 7, 10), // stale
      kv.put('p1', 1),
      kv.cas('c0', 0, 99), // exists
      kv.putMany([{ key: 'm0', value: 1 }, { key: 'c1', value: 2, version: 5 }]), // stale -> nothing of it
      kv.putMany([{ key: 'm1', value: 1 }, { key: 'c1', value: 3, version: 1 }]),
      kv.delete('nope'),
      kv.put('p2', 1),
    ]);
    expect(s.stats().shards[0]!.batches - before).toBe(1);
    expect(settled.map((r) => (r.status === 'fulfilled' ? 'ok' : ((r.reason as { code: string }).code)))).toEqual([
      'ok',
      'ok',
      'PP_ERR_CONFLICT',
      'ok',
      'PP_ERR_CONFLICT',
      'PP_ERR_CONFLICT',
      'ok',
      'ok',
      'ok',
    ]);
    expect((settled[7] as PromiseFulfilledResult<boolean>).value).toBe(false);
    expect(await kv.get('m0')).toBeUndefined();
    expect((await kv.get('c0'))).toMatchObject({ value: 10, version: 2 });
    expect((await kv.get('c1'))).toMatchObject({ value: 3, version: 2 });
    const recs = await s.feed.read('s0', head, 100);
    expect(recs.map((r) => r.key[0]).sort()).toEqual(['c0', 'c1', 'm1', 'p0', 'p1', 'p2']);
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.position).toBeGreaterThan(recs[i - 1]!.position);
  });

  it('runs of plain puts beside a stale CAS and an update in one batch: each request gets its own outcome and feed record', async () => {
    const s = await engine.open({ shards: 1 });
    const t = await s.table('runs', { schema: Type.Object({ id: Type.String(), n: Type.Integer(), note: Type.Optional(Type.String()) }), primaryKey: ['id'] });
    await t.upsert({ id: 'u', n: 0, note: 'keep' });
    const head = (await s.feed.heads()).s0!;
    // On PostgreSQL the update and the stale CAS send this batch down the diagnosing path, with
    // the runs of plain upserts as multi-row statements whose rows are matched back by key.
    const settled = await Promise.allSettled([
      t.upsert({ id: 'a', n: 1 }),
      t.upsert({ id: 'b', n: 1 }),
      t.upsert({ id: 'c', n: 1 }),
      t.upsert({ id: 'u', n: 9 }, { version: 7 }), // stale
      t.update('u', { n: 5 }),
      t.upsert({ id: 'd', n: 1 }),
      t.upsert({ id: 'a', n: 2 }), // same key again: a new statement
    ]);
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value.version : (r.reason as { code: string }).code))).toEqual([1, 1, 1, 'PP_ERR_CONFLICT', 2, 1, 2]);
    const recs = await s.feed.read('s0', head, 100);
    expect(recs.map((r) => [r.key[0], r.version, r.row])).toEqual([
      ['a', 1, { id: 'a', n: 1 }],
      ['b', 1, { id: 'b', n: 1 }],
      ['c', 1, { id: 'c', n: 1 }],
      ['u', 2, { id: 'u', n: 5, note: 'keep' }],
      ['d', 1, { id: 'd', n: 1 }],
      ['a', 2, { id: 'a', n: 2 }],
    ]);
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') expect(recs.find((x) => x.position === r.value.position)?.key[0]).toBe(['a', 'b', 'c', 'u', 'u', 'd', 'a'][i]);
    });
  });

  it('unconditional upserts sharing a batch (one multi-row statement on PostgreSQL), composite keys of every key type', async () => {
    const s = await engine.open({ shards: 1 });
    const t = await s.table('multi', {
      schema: Type.Object({ a: Type.String(), b: Type.Number(), c: Type.Uint8Array(), d: Type.Boolean(), v: Type.Integer(), note: Type.Optional(Type.String()) }),
      primaryKey: ['a', 'b', 'c', 'd'],
    });
    const row = (i: number, v: number): { a: string; b: number; c: Uint8Array; d: boolean; v: number; note?: string } => ({
      a: i % 2 === 0 ? "o'k" : 'ü',
      b: i % 3 === 0 ? -1.5 : i,
      c: new Uint8Array([i, 0]),
      d: i % 4 === 0,
      v,
      ...(i % 5 === 0 ? { note: `n${i}` } : {}),
    });
    await Promise.all(Array.from({ length: 20 }, (_, i) => t.upsert(row(i, 1))));
    const before = s.stats().shards[0]!.batches;
    const res = await Promise.all(Array.from({ length: 20 }, (_, i) => t.upsert(row(i, 2), { ttlMs: 60_000 })));
    expect(s.stats().shards[0]!.batches - before).toBe(1);
    expect(res.every((r) => r.version === 2)).toBe(true);
    const recs = await s.feed.read('s0', 0, 100);
    expect(recs).toHaveLength(40);
    for (let i = 0; i < 20; i++) {
      const got = await t.get(row(i, 0));
      expect(got).toMatchObject({ version: 2, row: { v: 2 } });
      const rec = recs.find((r) => r.position === res[i]!.position)!;
      expect(rec).toMatchObject({ version: 2, expiresAtMs: got!.expiresAtMs });
      expect({ ...rec.row, c: [...(rec.row!.c as Uint8Array)] }).toEqual({ ...row(i, 2), c: [i, 0] });
    }
  });

  it('closing with writes queued: each one either commits (and is there after reopening) or fails with PP_ERR_CLOSED (and is not)', async () => {
    const id = `close${Math.random().toString(36).slice(2, 8)}`;
    for (const drainTimeoutMs of [0, 10_000]) {
      const s: Store = await engine.open({ shards: 2, groupCommit: { batchMax: 8, drainTimeoutMs } }, id);
      const kv = await s.kv<number>('closing');
      const writes = Array.from({ length: 100 }, (_, i) => kv.put(`d${drainTimeoutMs}_${i}`, i));
      const closed = s.close();
      await expectCode(kv.put('after', 1), 'PP_ERR_CLOSED');
      const settled = await Promise.allSettled(writes);
      await closed;
      for (const r of settled) if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('PP_ERR_CLOSED');
      if (drainTimeoutMs > 0) expect(settled.every((r) => r.status === 'fulfilled')).toBe(true);
      const s2 = await engine.open({ shards: 2 }, id);
      const kv2 = await s2.kv<number>('closing');
      const got = await kv2.getMany(Array.from({ length: 100 }, (_, i) => `d${drainTimeoutMs}_${i}`));
      settled.forEach((r, i) => expect(got[i]?.value).toBe(r.status === 'fulfilled' ? i : undefined));
      expect(await kv2.get('after')).toBeUndefined();
      await s2.close();
    }
  });
});
