/**
 * The engine conformance suite: the same cases against SQLite and the real PostgreSQL, through the
 * public store API, on 3 shards so every fan-out path is exercised.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChangeRecord, Store } from '../../src/store/index.js';
import { waitUntil } from '../helpers/wait.js';
import { needEngine } from '../helpers/engines.js';
import { expectCode, postgresCase, sqliteCase, type EngineCase } from './helpers.js';

const pgUp = await needEngine('postgres');
const cases: EngineCase[] = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];

afterAll(async () => {
  await Promise.all(cases.map((c) => c.cleanup()));
});

const Order = Type.Object({
  user: Type.String(),
  id: Type.Integer(),
  total: Type.Number(),
  paid: Type.Boolean(),
  status: Type.Optional(Type.String()),
  tags: Type.Optional(Type.Array(Type.String())),
  blob: Type.Optional(Type.Uint8Array()),
});

const orderSpec = {
  schema: Order,
  primaryKey: ['user', 'id'],
  partitionKey: ['user'],
  indexes: { byTotal: ['total'], byStatus: ['status', 'total'] },
} as const;

async function untilExpired(expiresAtMs: number | null): Promise<void> {
  expect(expiresAtMs).not.toBeNull();
  while (Date.now() <= expiresAtMs!) await new Promise((r) => setTimeout(r, 5));
}

describe.each(cases)('store conformance: $name', (engine) => {
  const open = (opts = {}): Promise<Store> => engine.open({ shards: 3, ...opts });

  describe('kv', () => {
    it('put / get / delete, versions increase by one per write', async () => {
      const s = await open();
      const kv = await s.kv<{ n: number; s?: string }>('kv1');
      expect(await kv.get('missing')).toBeUndefined();
      const w1 = await kv.put('a', { n: 1 });
      expect(w1.version).toBe(1);
      expect(s.shards).toContain(w1.shard);
      expect(w1.position).toBeGreaterThan(0);
      const w2 = await kv.put('a', { n: 2, s: 'é😀' });
      expect(w2.version).toBe(2);
      expect(w2.position).toBeGreaterThan(w1.position);
      expect(await kv.get('a')).toEqual({ value: { n: 2, s: 'é😀' }, version: 2, expiresAtMs: null });
      expect(await kv.delete('a')).toBe(true);
      expect(await kv.delete('a')).toBe(false);
      expect(await kv.get('a')).toBeUndefined();
    });

    it('compare-and-set: 0 means absent, a stale version is a typed conflict, first writer wins', async () => {
      const s = await open();
      const kv = await s.kv<string>('cas');
      expect((await kv.cas('k', 0, 'first')).version).toBe(1);
      await expectCode(kv.cas('k', 0, 'again'), 'PP_ERR_CONFLICT');
      // Two writers read version 1; both try to write: exactly one wins.
      const results = await Promise.allSettled([kv.cas('k', 1, 'w1'), kv.cas('k', 1, 'w2')]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(rejected.reason).toMatchObject({ code: 'PP_ERR_CONFLICT', data: { expectedVersion: 1, actualVersion: 2 } });
      const cur = await kv.get('k');
      expect(cur?.version).toBe(2);
      await expectCode(kv.delete('k', { version: 1 }), 'PP_ERR_CONFLICT');
      expect(await kv.delete('k', { version: 2 })).toBe(true);
      await expectCode(kv.cas('k', 2, 'gone'), 'PP_ERR_CONFLICT');
    });

    it('a conflict names the version its op found, even when a later write of the same batch changes the key', async () => {
      const s = await open({ shards: 1 });
      const kv = await s.kv<string>('casbatch');
      await kv.put('k', 'v1');
      const before = s.stats().shards[0]!.batches;
      // One group-commit batch: a stale CAS, then a put of the same key.
      const [cas, put] = await Promise.allSettled([kv.cas('k', 2, 'stale'), kv.put('k', 'v2')]);
      expect(s.stats().shards[0]!.batches - before).toBe(1);
      expect(cas.status).toBe('rejected');
      const err = (cas as PromiseRejectedResult).reason as { code: string; message: string; data: unknown };
      expect(err).toMatchObject({ code: 'PP_ERR_CONFLICT', data: { expectedVersion: 2, actualVersion: 1 } });
      expect(err.message).toMatch(/expected version 2, found 1$/);
      expect(put).toMatchObject({ status: 'fulfilled', value: { version: 2 } });
      expect(await kv.get('k')).toMatchObject({ value: 'v2', version: 2 });
      // A failed atomic request leaves no trace on the requests after it in its batch: its first
      // op would have created `a`, so the CAS-on-absent that follows it still finds `a` absent.
      const [many, first] = await Promise.allSettled([
        kv.putMany([
          { key: 'a', value: 'x' },
          { key: 'k', value: 'y', version: 1 },
        ]),
        kv.cas('a', 0, 'first'),
      ]);
      expect(many).toMatchObject({ status: 'rejected', reason: { code: 'PP_ERR_CONFLICT', data: { expectedVersion: 1, actualVersion: 2 } } });
      expect(first).toMatchObject({ status: 'fulfilled', value: { version: 1 } });
      expect(await kv.get('a')).toMatchObject({ value: 'first', version: 1 });
    });

    it('a handle used without await says to await it', async () => {
      const s = await open();
      const pending = s.kv<number>('noawait') as unknown as { put(k: string, v: number): unknown; get(k: string): unknown };
      expect(() => pending.put('a', 1)).toThrow(/store\.kv\("noawait"\) returns a promise of the handle: await it/);
      expect(() => pending.get('a')).toThrow(/await it/);
      await expectCode(async () => pending.get('a'), 'PP_ERR_INVALID_ARGUMENT');
      const t = s.table('noawait_t', { schema: Type.Object({ id: Type.String() }), primaryKey: ['id'] }) as unknown as { insert(row: unknown): unknown };
      expect(() => t.insert({ id: 'a' })).toThrow(/store\.table\("noawait_t"\) returns a promise of the handle: await it/);
      // Awaited, they are the handles, and the same handle each time.
      const kv = await s.kv<number>('noawait');
      expect((await kv.put('a', 1)).version).toBe(1);
      expect(await s.kv<number>('noawait')).toBe(kv);
      expect((await (await s.table('noawait_t', { schema: Type.Object({ id: Type.String() }), primaryKey: ['id'] })).insert({ id: 'a' })).version).toBe(1);
    });

    it('batch get and batch put, scan by prefix with a cursor across shards', async () => {
      const s = await open();
      const kv = await s.kv<number>('scan');
      const keys = Array.from({ length: 60 }, (_, i) => `user:${String(i).padStart(3, '0')}`);
      const res = await kv.putMany(keys.map((key, i) => ({ key, value: i })));
      expect(new Set(res.map((r) => r.shard)).size).toBeGreaterThan(1);
      await kv.putMany([{ key: 'other:1', value: -1 }, { key: 'user', value: -2 }]);
      const got = await kv.getMany(['user:005', 'nope', 'user:059', 'user:005']);
      expect(got.map((g) => g?.value)).toEqual([5, undefined, 59, 5]);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await kv.scan({ prefix: 'user:', limit: 7, ...(cursor === undefined ? {} : { cursor }) });
        seen.push(...page.items.map((i) => i.key));
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined);
      expect(seen).toEqual(keys);
      expect(pages).toBe(9);
      expect(await kv.count({ prefix: 'user:' })).toBe(60);
      expect(await kv.count()).toBe(62);
    });

    it('TTL: expired entries are invisible at once and removed by a bounded sweep', async () => {
      const s = await open({ sweep: { intervalMs: 0, batchMax: 2 } });
      const kv = await s.kv<string>('ttl');
      const w = await kv.put('short', 'x', { ttlMs: 20 });
      await kv.putMany([1, 2, 3, 4].map((i) => ({ key: `t${i}`, value: 'y', ttlMs: 20 })));
      await kv.put('long', 'z', { ttlMs: 3_600_000 });
      await kv.put('forever', 'f');
      // Every short entry was written with expiry <= now + 20 ms, `now` read after the writes.
      await untilExpired(Date.now() + 20);
      expect((await kv.get('long'))?.value).toBe('z');
      expect(await kv.get('short')).toBeUndefined();
      expect((await kv.scan()).items.map((i) => i.key)).toEqual(['forever', 'long']);
      expect(await kv.count()).toBe(2);
      // A key whose entry expired counts as absent: compare-and-set with 0 succeeds.
      expect((await kv.cas('short', 0, 'again')).version).toBe(w.version + 1);
      // Bounded: at most batchMax rows per shard per table per sweep.
      let removed = 0;
      for (let i = 0; i < 10; i++) {
        const n = await s.sweepOnce();
        expect(n).toBeLessThanOrEqual(2 * s.shards.length);
        removed += n;
        if (n === 0) break;
      }
      expect(removed).toBe(4);
      expect(await kv.count()).toBe(3);
    });

    it('bad input: typed errors naming the field, nothing written', async () => {
      const s = await open({ limits: { valueBytesMax: 1024, keyBytesMax: 64 } });
      const kv = await s.kv<unknown>('bad');
      await expectCode(kv.put('', 1), 'PP_ERR_MISSING_KEY', 'key');
      await expectCode(kv.put(42 as unknown as string, 1), 'PP_ERR_VALIDATION', 'key');
      await expectCode(kv.put('k', 'x'.repeat(2000)), 'PP_ERR_TOO_LARGE', 'value');
      await expectCode(kv.put('k'.repeat(100), 1), 'PP_ERR_TOO_LARGE', 'key');
      await expectCode(kv.put('a\0b', 1), 'PP_ERR_VALIDATION', 'key');
      await expectCode(kv.put('k', undefined), 'PP_ERR_VALIDATION', 'value');
      await expectCode(kv.put('k', 1, { ttlMs: -5 }), 'PP_ERR_INVALID_ARGUMENT', 'ttlMs');
      await expectCode(kv.put('k', 1, { version: 1.5 }), 'PP_ERR_INVALID_ARGUMENT', 'version');
      await expectCode(kv.scan({ cursor: 'garbage!' }), 'PP_ERR_VALIDATION', 'cursor');
      await expectCode(kv.scan({ limit: 0 }), 'PP_ERR_INVALID_ARGUMENT', 'limit');
      await expectCode(() => s.kv('no spaces'), 'PP_ERR_INVALID_ARGUMENT', 'namespace');
      // One bad entry in a multi-shard batch: nothing of the batch is written.
      await expectCode(
        kv.putMany([
          { key: 'b1', value: 1 },
          { key: 'b2', value: 'x'.repeat(5000) },
          { key: 'b3', value: 3 },
        ]),
        'PP_ERR_TOO_LARGE',
        'entries[1].value',
      );
      expect(await kv.count()).toBe(0);
      expect(Object.values(await s.feed.heads()).every((p) => p === 0)).toBe(true);
    });
  });

  describe('tables', () => {
    it('insert / upsert / update / delete with optimistic concurrency', async () => {
      const s = await open();
      const t = await s.table('orders', orderSpec);
      const w = await t.insert({ user: 'u1', id: 1, total: 10, paid: false, tags: ['a'] });
      expect(w.version).toBe(1);
      await expectCode(t.insert({ user: 'u1', id: 1, total: 11, paid: false }), 'PP_ERR_CONFLICT');
      expect(await t.get({ user: 'u1', id: 1 })).toEqual({ row: { user: 'u1', id: 1, total: 10, paid: false, tags: ['a'] }, version: 1, expiresAtMs: null });
      // update with the right version, then a stale one.
      expect((await t.update({ user: 'u1', id: 1 }, { status: 'open', paid: true }, { version: 1 })).version).toBe(2);
      await expectCode(t.update({ user: 'u1', id: 1 }, { status: 'stale' }, { version: 1 }), 'PP_ERR_CONFLICT');
      await expectCode(t.update({ user: 'u1', id: 99 }, { status: 'x' }), 'PP_ERR_NOT_FOUND');
      // Without a version: last writer wins.
      await t.upsert({ user: 'u1', id: 1, total: 12, paid: true, status: 'shipped', blob: new Uint8Array([1, 2, 255]) });
      const got = await t.get({ user: 'u1', id: 1 });
      expect(got?.version).toBe(3);
      expect(got?.row.status).toBe('shipped');
      expect(got?.row.tags).toBeUndefined();
      expect(Buffer.from(got!.row.blob!)).toEqual(Buffer.from([1, 2, 255]));
      // upsert with a version is compare-and-set; with 0 it is insert.
      await expectCode(t.upsert({ user: 'u1', id: 1, total: 1, paid: true }, { version: 2 }), 'PP_ERR_CONFLICT');
      expect((await t.upsert({ user: 'u1', id: 1, total: 13, paid: true }, { version: 3 })).version).toBe(4);
      expect((await t.upsert({ user: 'u2', id: 1, total: 1, paid: true }, { version: 0 })).version).toBe(1);
      // Setting a column to undefined clears it.
      await t.update({ user: 'u1', id: 1 }, { status: 'x' });
      await t.update({ user: 'u1', id: 1 }, { status: undefined });
      expect((await t.get({ user: 'u1', id: 1 }))?.row.status).toBeUndefined();
      await expectCode(t.delete({ user: 'u1', id: 1 }, { version: 1 }), 'PP_ERR_CONFLICT');
      expect(await t.delete({ user: 'u1', id: 1 })).toBe(true);
      expect(await t.get({ user: 'u1', id: 1 })).toBeUndefined();
      const many = await t.getMany([{ user: 'u2', id: 1 }, { user: 'u1', id: 1 }]);
      expect(many.map((m) => m?.row.total)).toEqual([1, undefined]);
    });

    it('query by index equality and range, order, limit, cursor pages, count; partition key routes to one shard', async () => {
      const s = await open();
      const t = await s.table('q', orderSpec);
      const rows = Array.from({ length: 40 }, (_, i) => ({
        user: `u${i % 4}`,
        id: i,
        total: (i * 7) % 20,
        paid: i % 2 === 0,
        ...(i % 5 === 0 ? {} : { status: i % 3 === 0 ? 'open' : 'done' }),
      }));
      const written = await t.batch(rows.map((row) => ({ op: 'insert' as const, row })));
      // Primary key order across shards.
      const all = await t.query({ limit: 1000 });
      expect(all.items.map((r) => `${r.row.user}/${r.row.id}`)).toEqual(
        [...rows].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : a.id - b.id)).map((r) => `${r.user}/${r.id}`),
      );
      expect(all.cursor).toBeUndefined();
      // Partition key in where: exactly the one shard its rows were written to; otherwise all shards.
      const shardOfUser = new Map(rows.map((r, i) => [r.user, written[i]!.shard]));
      expect(new Set(written.map((w) => w.shard)).size).toBeGreaterThan(1);
      for (const [user, shard] of shardOfUser) {
        expect(rows.every((r, i) => r.user !== user || written[i]!.shard === shard)).toBe(true);
        expect(t.explain({ where: { user } }).shards).toEqual([shard]);
        expect(t.explain({ index: 'byStatus', where: { user, status: 'open' } }).shards).toEqual([shard]);
      }
      expect(t.explain({ index: 'byTotal' }).shards).toEqual(s.shards);
      const u1 = await t.query({ where: { user: 'u1' }, order: 'desc' });
      expect(u1.items.map((r) => r.row.id)).toEqual(rows.filter((r) => r.user === 'u1').map((r) => r.id).reverse());
      // Index range with cursor pages, ordered by (total, user, id).
      const expected = rows
        .filter((r) => r.total >= 5 && r.total < 15)
        .sort((a, b) => a.total - b.total || (a.user < b.user ? -1 : a.user > b.user ? 1 : 0) || a.id - b.id)
        .map((r) => r.id);
      const seen: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await t.query({ index: 'byTotal', range: { gte: 5, lt: 15 }, limit: 3, ...(cursor === undefined ? {} : { cursor }) });
        expect(page.items.length).toBeLessThanOrEqual(3);
        seen.push(...page.items.map((r) => r.row.id));
        cursor = page.cursor;
      } while (cursor !== undefined);
      expect(seen).toEqual(expected);
      expect(await t.count({ index: 'byTotal', range: { gte: 5, lt: 15 } })).toBe(expected.length);
      // Equality on the first index column, range on the next; rows with NULL status are not in the index.
      const open1 = await t.query({ index: 'byStatus', where: { status: 'open' }, range: { gt: 3 }, order: 'desc' });
      const exp1 = rows.filter((r) => r.status === 'open' && r.total > 3).sort((a, b) => b.total - a.total || (a.user < b.user ? 1 : a.user > b.user ? -1 : b.id - a.id));
      expect(open1.items.map((r) => r.row.id)).toEqual(exp1.map((r) => r.id));
      expect(await t.count({ index: 'byStatus' })).toBe(rows.filter((r) => r.status !== undefined).length);
      expect(await t.count()).toBe(40);
      expect(await t.count({ where: { user: 'u2' } })).toBe(10);
    });

    it('range and list partitioning by configuration', async () => {
      const s = await open();
      const Ev = Type.Object({ day: Type.Integer(), id: Type.String() });
      const byRange = await s.table('ev', { schema: Ev, primaryKey: ['day', 'id'], partitioning: { kind: 'range', boundaries: [100, 200], shards: ['s0', 's1', 's2'] } });
      expect((await byRange.insert({ day: 5, id: 'a' })).shard).toBe('s0');
      expect((await byRange.insert({ day: 100, id: 'b' })).shard).toBe('s1');
      expect((await byRange.insert({ day: 250, id: 'c' })).shard).toBe('s2');
      expect((await byRange.query()).items.map((r) => r.row.id)).toEqual(['a', 'b', 'c']);
      expect(byRange.explain({ where: { day: 150 } }).shards).toEqual(['s1']);
      expect((await byRange.query({ where: { day: 100 } })).items.map((r) => r.row.id)).toEqual(['b']);
      expect(await byRange.count({ where: { day: 250 } })).toBe(1);
      const Acct = Type.Object({ region: Type.String(), id: Type.String() });
      const byList = await s.table('acct', {
        schema: Acct,
        primaryKey: ['region', 'id'],
        partitioning: { kind: 'list', partitions: [{ name: 'eu', shard: 's2', values: ['de', 'fr'] }, { name: 'us', shard: 's0', values: ['us'] }] },
      });
      expect((await byList.insert({ region: 'fr', id: '1' })).shard).toBe('s2');
      expect((await byList.insert({ region: 'us', id: '2' })).shard).toBe('s0');
      expect((await byList.insert({ region: 'de', id: '4' })).shard).toBe('s2');
      expect(byList.explain({ where: { region: 'de' } }).shards).toEqual(['s2']);
      expect((await byList.query({ where: { region: 'fr' } })).items.map((r) => r.row.id)).toEqual(['1']);
      expect((await byList.query({ order: 'desc' })).items.map((r) => `${r.row.region}/${r.row.id}`)).toEqual(['us/2', 'fr/1', 'de/4']);
      await expectCode(byList.insert({ region: 'jp', id: '3' }), 'PP_ERR_PARTITION_UNMAPPED');
      await expectCode(() => s.table('bad', { schema: Acct, primaryKey: ['region', 'id'], partitioning: { kind: 'list', partitions: [{ name: 'x', shard: 's9', values: ['x'] }] } }), 'PP_ERR_UNKNOWN_SHARD');
    });

    it('describes its shards and tables with their placement', async () => {
      const s = await open();
      const Ev = Type.Object({ day: Type.Integer(), id: Type.String() });
      await s.table('evd', { schema: Ev, primaryKey: ['day', 'id'], partitioning: { kind: 'range', boundaries: [100], shards: ['s2', 's0'] } });
      await s.table('evh', { schema: Ev, primaryKey: ['id', 'day'], indexes: { byDay: ['day'] } });
      await s.kv('kvd');
      const d = s.describe();
      expect(d.shards.map((x) => x.shard)).toEqual(s.shards);
      for (const sh of d.shards) expect(sh.location).not.toMatch(/:[^/@]*@/); // no password in a location
      const byName = new Map(d.tables.map((t) => [t.name, t]));
      expect(byName.get('evd')).toMatchObject({ kind: 'table', partitionKey: ['day'], partitioning: { kind: 'range', shards: ['s2', 's0'] } });
      const h = byName.get('evh')!;
      expect(h).toMatchObject({ kind: 'table', primaryKey: ['id', 'day'], partitionKey: ['id'], indexes: { byDay: ['day'] } });
      if (h.partitioning.kind !== 'hash') throw new Error('evh is hash partitioned');
      // Every slot is owned by exactly one shard, and every shard owns some.
      expect(Object.keys(h.partitioning.owned).sort()).toEqual([...s.shards].sort());
      expect(Object.values(h.partitioning.owned).reduce((a, b) => a + b, 0)).toBe(h.partitioning.slotCount);
      for (const n of Object.values(h.partitioning.owned)) expect(n).toBeGreaterThan(0);
      expect(byName.get('kvd')?.kind).toBe('kv');
    });

    it('TTL on table rows', async () => {
      const s = await open();
      const t = await s.table('sess', { schema: Type.Object({ id: Type.String(), v: Type.Integer() }), primaryKey: ['id'] });
      const w = await t.insert({ id: 'a', v: 1 }, { ttlMs: 20 });
      await t.insert({ id: 'b', v: 2 }, { ttlMs: 3_600_000 });
      expect((await t.get('b'))?.expiresAtMs).toBeGreaterThan(Date.now());
      await untilExpired(Date.now() + 20);
      expect(await t.get('a')).toBeUndefined();
      expect(await t.count()).toBe(1);
      await expectCode(t.update('a', { v: 5 }), 'PP_ERR_NOT_FOUND');
      expect((await t.insert({ id: 'a', v: 3 })).version).toBe(w.version + 1);
      expect(await s.sweepOnce()).toBe(0);
    });

    it('schema evolution: add a nullable column and an index to a table holding data, recorded as migrations', async () => {
      const id = `evo${Math.random().toString(36).slice(2, 8)}`;
      const V1 = Type.Object({ id: Type.String(), n: Type.Integer() });
      const s1 = await engine.open({ shards: 2 }, id);
      const t1 = await s1.table('items', { schema: V1, primaryKey: ['id'] });
      for (let i = 0; i < 10; i++) await t1.insert({ id: `i${i}`, n: i });
      expect((await t1.migrations()).map((m) => Object.keys(m.change)[0])).toEqual(['createTable']);
      await s1.close();

      const V2 = Type.Object({ id: Type.String(), n: Type.Integer(), note: Type.Optional(Type.String()) });
      const s2 = await engine.open({ shards: 2 }, id);
      const t2 = await s2.table('items', { schema: V2, primaryKey: ['id'], indexes: { byNote: ['note'] } });
      const migs = await t2.migrations();
      expect(migs.map((m) => m.change)).toEqual([
        expect.objectContaining({ createTable: expect.anything() }),
        { addColumn: 'note', type: 'string' },
        { addIndex: 'byNote', columns: ['note'] },
      ]);
      expect((await t2.get('i3'))?.row).toEqual({ id: 'i3', n: 3 });
      await t2.update('i3', { note: 'b' });
      await t2.update('i7', { note: 'a' });
      expect((await t2.query({ index: 'byNote' })).items.map((r) => r.row.id)).toEqual(['i7', 'i3']);
      expect(await t2.count()).toBe(10);
      // Re-opening with the same definition is not a migration.
      await s2.table('items', { schema: V2, primaryKey: ['id'], indexes: { byNote: ['note'] } });
      expect(await t2.migrations()).toHaveLength(3);
      // Incompatible changes are refused, nothing is altered.
      const V3 = Type.Object({ id: Type.String(), n: Type.String() });
      await expectCode(s2.table('items', { schema: V3, primaryKey: ['id'] }), 'PP_ERR_INCOMPATIBLE_SCHEMA');
      const V4 = Type.Object({ id: Type.String(), n: Type.Integer(), note: Type.Optional(Type.String()), must: Type.String() });
      await expectCode(s2.table('items', { schema: V4, primaryKey: ['id'], indexes: { byNote: ['note'] } }), 'PP_ERR_INCOMPATIBLE_SCHEMA');
      expect(await t2.migrations()).toHaveLength(3);
    });

    it('bad input: wrong types, missing key, missing partition key, unknown index/column, too large', async () => {
      const s = await open({ limits: { valueBytesMax: 2000 } });
      const t = await s.table('bad', orderSpec);
      await expectCode(t.insert({ user: 'u', id: 1.5, total: 1, paid: true }), 'PP_ERR_VALIDATION', 'row.id');
      await expectCode(t.insert({ user: 'u', id: 1, total: 'x' as unknown as number, paid: true }), 'PP_ERR_VALIDATION', 'row.total');
      await expectCode(t.insert({ user: 'u', id: 1, total: 1, paid: true, tags: [1] as unknown as string[] }), 'PP_ERR_VALIDATION', 'row.tags.0');
      await expectCode(t.insert({ id: 1, total: 1, paid: true } as unknown as never), 'PP_ERR_MISSING_PARTITION_KEY', 'row.user');
      await expectCode(t.insert({ user: 'u', total: 1, paid: true } as unknown as never), 'PP_ERR_MISSING_KEY', 'row.id');
      await expectCode(t.get({ id: 1 }), 'PP_ERR_MISSING_PARTITION_KEY', 'key.user');
      await expectCode(t.insert({ user: 'u', id: 1, total: 1, paid: true, extra: 1 } as unknown as never), 'PP_ERR_UNKNOWN_COLUMN', 'row.extra');
      await expectCode(t.insert({ user: 'u', id: 1, total: 1, paid: true, status: 'x'.repeat(3000) }), 'PP_ERR_TOO_LARGE', 'row');
      await expectCode(t.query({ index: 'nope' }), 'PP_ERR_UNKNOWN_INDEX', 'index');
      await expectCode(t.query({ where: { paid: true } }), 'PP_ERR_INVALID_ARGUMENT', 'where.paid');
      await expectCode(t.query({ where: { nope: 1 } as never }), 'PP_ERR_UNKNOWN_COLUMN', 'where.nope');
      await expectCode(t.query({ index: 'byTotal', range: { gte: 'x' } }), 'PP_ERR_VALIDATION', 'range.gte');
      await expectCode(t.update({ user: 'u', id: 1 }, { id: 2 }), 'PP_ERR_INVALID_ARGUMENT', 'patch.id');
      await expectCode(() => s.table('bad2', { schema: Order, primaryKey: ['nope'] }), 'PP_ERR_UNKNOWN_COLUMN');
      await expectCode(() => s.table('bad3', { schema: Order, primaryKey: ['user'], indexes: { i: ['tags'] } }), 'PP_ERR_INVALID_ARGUMENT');
      expect(await t.count()).toBe(0);
    });

    it('a failed batch leaves nothing half written', async () => {
      const s = await open();
      const t = await s.table('atomic', orderSpec);
      await t.insert({ user: 'u1', id: 0, total: 0, paid: false });
      const heads = await s.feed.heads();
      // Same partition key = one shard = one atomic request; the last op's stale version fails it all.
      await expectCode(
        t.batch([
          { op: 'insert', row: { user: 'u1', id: 1, total: 1, paid: false } },
          { op: 'update', key: { user: 'u1', id: 0 }, patch: { total: 5 } },
          { op: 'delete', key: { user: 'u1', id: 0 }, version: 7 },
        ]),
        'PP_ERR_CONFLICT',
      );
      expect(await t.get({ user: 'u1', id: 1 })).toBeUndefined();
      expect((await t.get({ user: 'u1', id: 0 }))?.row.total).toBe(0);
      expect(await s.feed.heads()).toEqual(heads);
      // Bad input anywhere in a cross-shard batch: rejected before anything is written.
      await expectCode(
        t.batch([
          { op: 'insert', row: { user: 'a', id: 1, total: 1, paid: false } },
          { op: 'insert', row: { user: 'b', id: 1, total: 'no' as unknown as number, paid: false } },
        ]),
        'PP_ERR_VALIDATION',
        'ops[1].row.total',
      );
      expect(await t.count()).toBe(1);
      expect(await s.feed.heads()).toEqual(heads);
      // And a good batch applies entirely.
      const ok = await t.batch([
        { op: 'insert', row: { user: 'u1', id: 1, total: 1, paid: false } },
        { op: 'update', key: { user: 'u1', id: 0 }, patch: { total: 5 }, version: 1 },
      ]);
      expect(ok.map((r) => r.version)).toEqual([1, 2]);
      expect(ok[1]!.position).toBeGreaterThan(ok[0]!.position);
    });
  });

  describe('atomic requests across tables (the tx layer\'s building block)', () => {
    it('checks and writes of several tables on one shard apply together or not at all', async () => {
      const s = await open({ shards: 1 });
      const orders = await s.table('atomic_orders', orderSpec);
      const kv = await s.kv<number>('atomic_kv');
      await kv.put('stock', 5);
      const stock = await kv.get('stock');
      const out = await s.atomic([
        kv.checkOp('stock', stock!.version),
        kv.writeOp({ op: 'put', key: 'stock', value: 4 }),
        orders.writeOp({ op: 'insert', row: { user: 'u', id: 1, total: 3, paid: false } }),
        orders.checkOp({ user: 'u', id: 2 }, 0),
      ]);
      expect(out.map((o) => o.applied)).toEqual([false, true, true, false]);
      expect(out[1]!.position).toBeGreaterThan(0);
      expect(out[2]!.position).toBeGreaterThan(out[1]!.position);
      // A stale check fails the whole request with a typed conflict naming what it found.
      const err = await s
        .atomic([kv.writeOp({ op: 'put', key: 'stock', value: 3 }), orders.writeOp({ op: 'upsert', row: { user: 'u', id: 3, total: 1, paid: false } }), kv.checkOp('stock', stock!.version)])
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PP_ERR_CONFLICT', data: { expectedVersion: stock!.version } });
      expect((await kv.get('stock'))!.value).toBe(4);
      expect(await orders.get({ user: 'u', id: 3 })).toBeUndefined();
      // "must not exist" checks: the inserted order now exists.
      await expectCode(s.atomic([orders.checkOp({ user: 'u', id: 1 }, 0), kv.writeOp({ op: 'put', key: 'x', value: 1 })]), 'PP_ERR_CONFLICT');
      expect(await kv.get('x')).toBeUndefined();
      // A request of checks alone writes no change record.
      const head = await s.feed.heads();
      await s.atomic([orders.checkOp({ user: 'u', id: 1 }, 1)]);
      expect(await s.feed.heads()).toEqual(head);
    });

    it('refuses ops of two shards in one request, and bad versions', async () => {
      const s = await open();
      const kv = await s.kv<number>('atomic_kv2');
      const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
      const shards = new Set(keys.map((k) => kv.locate(k).shard));
      expect(shards.size).toBeGreaterThan(1);
      const a = keys.find((k) => kv.locate(k).shard === 0)!;
      const b = keys.find((k) => kv.locate(k).shard !== 0)!;
      await expectCode(s.atomic([kv.writeOp({ op: 'put', key: a, value: 1 }), kv.writeOp({ op: 'put', key: b, value: 1 })]), 'PP_ERR_INVALID_ARGUMENT');
      await expectCode(s.atomic([]), 'PP_ERR_INVALID_ARGUMENT');
      expect(() => kv.checkOp(a, -1)).toThrow(/version/);
      expect(await kv.get(a)).toBeUndefined();
    });

    it('encodes a put or delete and decodes it back to the same unconditional write', async () => {
      const s = await open({ shards: 2 });
      const orders = await s.table('atomic_enc', orderSpec);
      const row = { user: 'v', id: 7, total: 2.5, paid: true, tags: ['x'], blob: new Uint8Array([1, 2, 3]) };
      const put = s.decodeOp(s.encodeOp(orders.writeOp({ op: 'insert', row })));
      expect(put.write.kind).toBe('upsert');
      await s.atomic([put]);
      expect((await orders.get({ user: 'v', id: 7 }))!.row).toEqual({ ...row, blob: Buffer.from([1, 2, 3]) });
      await s.atomic([s.decodeOp(s.encodeOp(orders.writeOp({ op: 'delete', key: { user: 'v', id: 7 } })))]);
      expect(await orders.get({ user: 'v', id: 7 })).toBeUndefined();
      const other = await open({ shards: 2 });
      await expectCode(Promise.resolve().then(() => other.decodeOp(s.encodeOp(orders.writeOp({ op: 'insert', row })))), 'PP_ERR_NOT_FOUND');
    });
  });

  describe('the change feed (group commit: group-commit.test.ts)', () => {
    it('every committed write appears once, in position order per shard, with its row', async () => {
      const s = await open();
      const kv = await s.kv<{ i: number }>('feed');
      const t = await s.table('ft', { schema: Type.Object({ id: Type.String(), n: Type.Integer() }), primaryKey: ['id'] });
      const writes = await Promise.all(Array.from({ length: 30 }, (_, i) => kv.put(`k${i}`, { i })));
      await t.insert({ id: 'x', n: 1 });
      await t.update('x', { n: 2 });
      await kv.delete('k0');
      await expectCode(kv.cas('k1', 9, { i: -1 }), 'PP_ERR_CONFLICT'); // failed writes leave no record
      const all: ChangeRecord[] = [];
      for (const shard of s.shards) {
        const recs = await s.feed.read(shard, 0, 1000);
        for (let i = 1; i < recs.length; i++) expect(recs[i]!.position).toBeGreaterThan(recs[i - 1]!.position);
        all.push(...recs);
      }
      expect(all).toHaveLength(33);
      for (const w of writes) expect(all.some((r) => r.shard === w.shard && r.position === w.position)).toBe(true);
      const upd = all.find((r) => r.source === 'table' && r.version === 2);
      expect(upd).toMatchObject({ name: 'ft', op: 'put', key: ['x'], row: { id: 'x', n: 2 } });
      expect(all.find((r) => r.op === 'delete')).toMatchObject({ source: 'kv', name: 'feed', key: ['k0'], version: 0 });
      expect(all.find((r) => r.source === 'kv' && r.key[0] === 'k5')?.value).toEqual({ i: 5 });
    });

    it('a change record holds the row after the write, every column type, the same on every engine', async () => {
      const s = await open({ shards: 1 });
      const t = await s.table('typed', orderSpec);
      const row = { user: 'ü', id: -3, total: 2.5, paid: true, status: "it's", tags: ['x', 'y'], blob: new Uint8Array([0, 255]) };
      const w1 = await t.insert(row);
      const w2 = await t.upsert({ user: 'ü', id: -3, total: 0, paid: false }, { version: 1 });
      const w3 = await t.update({ user: 'ü', id: -3 }, { status: 'x' });
      const w4 = await t.insert({ user: 'v', id: 1, total: 1, paid: false }, { ttlMs: 60_000 });
      const recs = await s.feed.read('s0', 0);
      expect(recs.map((r) => r.position)).toEqual([w1.position, w2.position, w3.position, w4.position]);
      const norm = (r: ChangeRecord): unknown => ({ ...r, row: { ...r.row, ...(r.row?.blob === undefined ? {} : { blob: [...(r.row.blob as Uint8Array)] }) } });
      expect(norm(recs[0]!)).toMatchObject({ op: 'put', key: ['ü', -3], version: 1, expiresAtMs: null, row: { ...row, blob: [0, 255] } });
      expect(recs[1]!.row).toEqual({ user: 'ü', id: -3, total: 0, paid: false });
      expect(recs[2]!.row).toEqual({ user: 'ü', id: -3, total: 0, paid: false, status: 'x' });
      expect(recs[3]!.expiresAtMs).toBe((await t.get({ user: 'v', id: 1 }))?.expiresAtMs);
    });

    it('subscribe from a position: only later records, per shard', async () => {
      const s = await open({ shards: 1 });
      const kv = await s.kv<number>('from');
      for (let i = 0; i < 5; i++) await kv.put(`a${i}`, i);
      const mid = (await s.feed.heads()).s0!;
      for (let i = 0; i < 3; i++) await kv.put(`b${i}`, i);
      const got: string[] = [];
      let sub: Awaited<ReturnType<typeof s.feed.subscribe>> | undefined;
      await new Promise<void>((resolve) => {
        void s.feed
          .subscribe({
            from: { s0: mid },
            handler: (recs) => {
              for (const r of recs) got.push(r.key[0] as string);
              if (got.length >= 3) resolve();
            },
          })
          .then((x) => (sub = x));
      });
      await sub?.close();
      expect(got).toEqual(['b0', 'b1', 'b2']);
      expect(sub?.positions().s0).toBe((await s.feed.heads()).s0);
    });

    it('subscribers sharing reads, filtered by `only`: each gets exactly its tables\' records, in order, none skipped', async () => {
      const s = await open({ shards: 2 });
      const A = await s.table('fa', { schema: Type.Object({ id: Type.String(), n: Type.Integer() }), primaryKey: ['id'] });
      const B = await s.table('fb', { schema: Type.Object({ id: Type.String(), n: Type.Integer() }), primaryKey: ['id'] });
      const kv = await s.kv<number>('fa'); // same name as a table: `only` tells them apart
      const seen = { a: [] as string[], b: [] as string[], kv: [] as string[], all: [] as string[] };
      const lastPos: Record<string, Record<string, number>> = { a: {}, b: {}, kv: {}, all: {} };
      const sub = (name: keyof typeof seen, only?: { tables?: string[]; kv?: string[] }) =>
        s.feed.subscribe({
          ...(only === undefined ? {} : { only }),
          batchMax: 7,
          pollIntervalMs: 5,
          handler: (recs, shard) => {
            for (const r of recs) {
              // Ascending per shard, across handler calls too.
              expect(r.position).toBeGreaterThan(lastPos[name]![shard] ?? 0);
              lastPos[name]![shard] = r.position;
              seen[name].push(`${r.source}:${r.name}:${String(r.key[0])}`);
            }
          },
        });
      const subs = await Promise.all([sub('a', { tables: ['fa'] }), sub('b', { tables: ['fb'] }), sub('kv', { kv: ['fa'] }), sub('all')]);
      // Concurrent writers on both shards, interleaving the three sources.
      await Promise.all(Array.from({ length: 60 }, async (_, i) => {
        await A.insert({ id: `a${i}`, n: i });
        await B.insert({ id: `b${i}`, n: i });
        await kv.put(`k${i}`, i);
      }));
      await waitUntil(() => seen.all.length >= 180, 15_000, 'the unfiltered subscriber saw every record');
      await waitUntil(() => seen.a.length >= 60 && seen.b.length >= 60 && seen.kv.length >= 60, 15_000, 'filtered subscribers caught up');
      await Promise.all(subs.map((x) => x.close()));
      const ids = (p: string) => Array.from({ length: 60 }, (_, i) => `${p}${i}`).sort();
      expect(seen.a.map((x) => x.split(':')[2]).sort()).toEqual(ids('a'));
      expect(seen.a.every((x) => x.startsWith('table:fa:'))).toBe(true);
      expect(seen.b.map((x) => x.split(':')[2]).sort()).toEqual(ids('b'));
      expect(seen.kv.every((x) => x.startsWith('kv:fa:'))).toBe(true);
      expect(seen.kv.map((x) => x.split(':')[2]).sort()).toEqual(ids('k'));
      expect(seen.all.length).toBe(180);
      // Filtered subscribers still advanced past the records they skipped.
      expect(subs[0]!.positions()).toEqual(await s.feed.heads());
    });

    it('subscribe: at least once, redelivers after a handler error, resumable by consumer name', async () => {
      const id = `sub${Math.random().toString(36).slice(2, 8)}`;
      const s1 = await engine.open({ shards: 2 }, id);
      const kv = await s1.kv<number>('events');
      for (let i = 0; i < 10; i++) await kv.put(`e${i}`, i);
      const got = new Map<string, number>();
      let failOnce = true;
      const done = new Promise<void>((resolve) => {
        void s1.feed
          .subscribe({
            consumer: 'c1',
            batchMax: 3,
            retryDelayMs: 5,
            handler: (recs) => {
              if (failOnce) {
                failOnce = false;
                throw new Error('transient');
              }
              for (const r of recs) got.set(r.key[0] as string, r.value as number);
              if (got.size === 10) resolve();
            },
          })
          .then((sub) => done.then(() => sub.close()));
      });
      await done;
      expect([...got.keys()].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `e${i}`).sort());
      await new Promise((r) => setTimeout(r, 20));
      await s1.close();

      // Restart: the consumer resumes after what it handled; new writes arrive, old ones do not.
      const s2 = await engine.open({ shards: 2 }, id);
      const stored = await s2.feed.consumerPositions('c1');
      expect(Object.keys(stored).length).toBeGreaterThan(0);
      const kv2 = await s2.kv<number>('events');
      const fresh: string[] = [];
      let sub: Awaited<ReturnType<typeof s2.feed.subscribe>> | undefined;
      await new Promise<void>((resolve) => {
        void s2.feed
          .subscribe({
            consumer: 'c1',
            handler: (recs) => {
              for (const r of recs) fresh.push(r.key[0] as string);
              if (fresh.includes('late')) resolve();
            },
          })
          .then((x) => {
            sub = x;
            void kv2.put('late', 99);
          });
      });
      await sub?.close();
      expect(fresh).toEqual(['late']);
      // 'latest' skips history; an unknown shard is a typed error.
      await expectCode(s2.feed.read('s9', 0), 'PP_ERR_UNKNOWN_SHARD');
    });

    it('trimmed positions are reported, never skipped silently', async () => {
      const s = await open({ shards: 1 });
      const kv = await s.kv<number>('trim');
      for (let i = 0; i < 10; i++) await kv.put(`k${i}`, i);
      const head = (await s.feed.heads()).s0!;
      expect(await s.feed.trim(3)).toBe(7);
      await expectCode(s.feed.read('s0', 0), 'PP_ERR_FEED_TRUNCATED');
      const tail = await s.feed.read('s0', head - 3);
      expect(tail.map((r) => r.value)).toEqual([7, 8, 9]);
      await expectCode(s.feed.subscribe({ handler: () => undefined, from: { s0: 1 } }), 'PP_ERR_FEED_TRUNCATED');
      // 'earliest' means the oldest record still held.
      const fromEarliest: number[] = [];
      const sub1 = await s.feed.subscribe({ handler: (recs) => void fromEarliest.push(...recs.map((r) => r.value as number)) });
      while (fromEarliest.length < 3) await new Promise((r) => setTimeout(r, 5));
      await sub1.close();
      expect(fromEarliest).toEqual([7, 8, 9]);
      // A subscriber that falls behind a trim is told, and stops: it never skips records silently.
      const errors: unknown[] = [];
      let calls = 0;
      let gate!: () => void;
      const blocked = new Promise<void>((r) => (gate = r));
      const sub2 = await s.feed.subscribe({
        from: { s0: head - 3 },
        batchMax: 1,
        onError: (e) => errors.push(e),
        handler: async () => {
          if (calls++ === 0) await blocked; // hold the first record while the feed moves on
        },
      });
      while (calls === 0) await new Promise((r) => setTimeout(r, 5));
      for (let i = 10; i < 20; i++) await kv.put(`k${i}`, i);
      await s.feed.trim(2);
      gate();
      while (errors.length === 0) await new Promise((r) => setTimeout(r, 5));
      await sub2.close();
      expect(errors[0]).toMatchObject({ code: 'PP_ERR_FEED_TRUNCATED' });
      expect(calls).toBe(1);
    });
  });
});
