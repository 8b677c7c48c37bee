/**
 * The lock services' conformance suite: every LockService (store on SQLite, store on PostgreSQL,
 * Redis) runs these cases unchanged, each with a store for its fenced writes (tokens are numbers,
 * so a Redis token fences a store write like a store token does).
 */
import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { openFence, type Lease, type LockService } from '../../src/tx/index.js';
import { expectCode } from '../store/helpers.js';
import { waitUntil } from '../helpers/wait.js';

export interface LockCase {
  readonly name: string;
  /** A fresh lock service and a store (2 shards) for fenced writes; both closed by `cleanup`. */
  open(): Promise<{ locks: LockService; store: Store }>;
  cleanup(): Promise<void>;
}

let seq = 0;
const uniqueName = (tag: string): string => `${tag}-${process.pid}-${seq++}`;
const Doc = Type.Object({ id: Type.String(), by: Type.String(), token: Type.Integer() });

async function waitLapsed(locks: LockService, lease: Lease): Promise<void> {
  await waitUntil(async () => Date.now() > lease.expiresAtMs && (await locks.holder(lease.name)) === undefined, 10_000, `lease ${lease.name} to lapse`);
}

export function lockConformance(c: LockCase): void {
  describe(`lock service: ${c.name}`, () => {
    it('acquire, renew (same token, later expiry), release; the next acquisition gets a higher token', async () => {
      const { locks } = await c.open();
      const name = uniqueName('basic');
      const a = await locks.acquire(name, { ttlMs: 5_000, owner: 'alice' });
      expect(a).toMatchObject({ name, owner: 'alice' });
      expect(a.token).toBeGreaterThanOrEqual(1);
      expect(await locks.holder(name)).toMatchObject({ owner: 'alice', token: a.token });
      await new Promise((r) => setTimeout(r, 5));
      const r = await locks.renew(a, 10_000);
      expect(r.token).toBe(a.token);
      expect(r.expiresAtMs).toBeGreaterThan(a.expiresAtMs);
      await locks.release(r);
      expect(await locks.holder(name)).toBeUndefined();
      const b = await locks.acquire(name, { ttlMs: 5_000 });
      expect(b.token).toBeGreaterThan(a.token);
      expect(b.owner).not.toBe('alice'); // a generated owner
      await locks.release(b);
    });

    it('a held lock is PP_ERR_LOCK_HELD (retryable, with the time to its expiry); after expiry another owner takes it over', async () => {
      const { locks } = await c.open();
      const name = uniqueName('expiry');
      const a = await locks.acquire(name, { ttlMs: 300, owner: 'a' });
      const err = await locks.acquire(name, { ttlMs: 1_000, owner: 'b' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PP_ERR_LOCK_HELD', retryable: true, data: { name } });
      expect((err as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
      await waitLapsed(locks, a);
      const b = await locks.acquire(name, { ttlMs: 5_000, owner: 'b' });
      expect(b.token).toBeGreaterThan(a.token);
      // The first holder no longer holds it: renew and release are refused, the new lease stands.
      await expectCode(locks.renew(a, 1_000), 'PP_ERR_NOT_HOLDER');
      await expectCode(locks.release(a), 'PP_ERR_NOT_HOLDER');
      expect(await locks.holder(name)).toMatchObject({ owner: 'b', token: b.token });
      await locks.release(b);
    });

    it('renewing keeps the lease past its first TTL: others stay out', async () => {
      const { locks } = await c.open();
      const name = uniqueName('keep');
      const first = await locks.acquire(name, { ttlMs: 2_000, owner: 'a' });
      let lease = first;
      while (Date.now() <= first.expiresAtMs + 500) {
        await new Promise((r) => setTimeout(r, 400));
        lease = await locks.renew(lease, 2_000);
      }
      await expectCode(locks.acquire(name, { ttlMs: 1_000, owner: 'b' }), 'PP_ERR_LOCK_HELD');
      expect(await locks.holder(name)).toMatchObject({ owner: 'a', token: first.token });
      await locks.release(lease);
    });

    it('renew or release of a lapsed lease that nobody took is refused too', async () => {
      const { locks } = await c.open();
      const name = uniqueName('lapsed');
      const a = await locks.acquire(name, { ttlMs: 100, owner: 'a' });
      await waitLapsed(locks, a);
      await expectCode(locks.renew(a, 1_000), 'PP_ERR_NOT_HOLDER');
      await expectCode(locks.release(a), 'PP_ERR_NOT_HOLDER');
    });

    it('waitMs: an acquirer waits (bounded) and gets the lock when the holder releases it; past the wait it is LOCK_HELD', async () => {
      const { locks } = await c.open();
      const name = uniqueName('wait');
      const a = await locks.acquire(name, { ttlMs: 30_000, owner: 'a' });
      await expectCode(locks.acquire(name, { ttlMs: 1_000, owner: 'b', waitMs: 50 }), 'PP_ERR_LOCK_HELD');
      const waiting = locks.acquire(name, { ttlMs: 5_000, owner: 'b', waitMs: 20_000 });
      await new Promise((r) => setTimeout(r, 30));
      await locks.release(a);
      const b = await waiting;
      expect(b).toMatchObject({ owner: 'b' });
      expect(b.token).toBeGreaterThan(a.token);
      await locks.release(b);
    });

    it('tokens strictly increase over many acquisitions of one name; names are independent', async () => {
      const { locks } = await c.open();
      const name = uniqueName('tokens');
      const other = uniqueName('tokens-other');
      const tokens: number[] = [];
      for (let i = 0; i < 20; i++) {
        const l = await locks.acquire(name, { ttlMs: 5_000 });
        tokens.push(l.token);
        if (i % 5 === 0) await locks.release(await locks.acquire(other, { ttlMs: 1_000 }));
        await locks.release(l);
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
    });

    it('concurrent acquirers: exactly one holds the lock, the others get LOCK_HELD', async () => {
      const { locks } = await c.open();
      for (let round = 0; round < 4; round++) {
        const name = uniqueName('race');
        const got = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => locks.acquire(name, { ttlMs: 10_000, owner: `o${i}` })));
        const won = got.filter((g): g is PromiseFulfilledResult<Lease> => g.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const g of got) if (g.status === 'rejected') expect(g.reason).toMatchObject({ code: 'PP_ERR_LOCK_HELD' });
        expect(await locks.holder(name)).toMatchObject({ owner: won[0]!.value.owner, token: won[0]!.value.token });
      }
      // With waits, they all get it, one after another, each with a higher token.
      const name = uniqueName('queue');
      const order: number[] = [];
      await Promise.all(Array.from({ length: 6 }, async (_, i) => {
        const l = await locks.acquire(name, { ttlMs: 10_000, owner: `w${i}`, waitMs: 30_000 });
        order.push(l.token);
        await new Promise((r) => setTimeout(r, 2));
        await locks.release(l);
      }));
      expect(order).toHaveLength(6);
      for (let i = 1; i < order.length; i++) expect(order[i]!).toBeGreaterThan(order[i - 1]!);
    });

    it('a release or renew by a non-holder is PP_ERR_NOT_HOLDER and leaves the holder alone', async () => {
      const { locks } = await c.open();
      const name = uniqueName('nonholder');
      const a = await locks.acquire(name, { ttlMs: 10_000, owner: 'a' });
      await expectCode(locks.release({ ...a, owner: 'mallory' }), 'PP_ERR_NOT_HOLDER');
      await expectCode(locks.release({ ...a, token: a.token + 1 }), 'PP_ERR_NOT_HOLDER');
      await expectCode(locks.renew({ ...a, owner: 'mallory' }, 1_000), 'PP_ERR_NOT_HOLDER');
      await expectCode(locks.release({ name: uniqueName('never'), owner: 'a', token: 1, expiresAtMs: Date.now() + 1_000 }), 'PP_ERR_NOT_HOLDER');
      expect(await locks.holder(name)).toMatchObject({ owner: 'a', token: a.token });
      await locks.release(a);
      await expectCode(locks.release(a), 'PP_ERR_NOT_HOLDER'); // twice
    });

    it('fenced writes: a stale token is PP_ERR_FENCED and writes nothing; the current token writes', async () => {
      const { locks, store } = await c.open();
      const fence = await openFence(store);
      const docs = await store.table(`fdocs_${seq++}`, { schema: Doc, primaryKey: ['id'] });
      const name = uniqueName('fence');
      const a = await locks.acquire(name, { ttlMs: 200, owner: 'a' });
      const put = (id: string, l: Lease) => docs.writeOp({ op: 'upsert', row: { id, by: l.owner, token: l.token } });
      await fence.write(name, a.token, [put('x', a)]);
      await fence.write(name, a.token, [put('x', a)]); // the same token again: fine
      await waitLapsed(locks, a);
      const b = await locks.acquire(name, { ttlMs: 10_000, owner: 'b' });
      const out = await fence.write(name, b.token, [put('x', b)]);
      expect(out).toHaveLength(1);
      expect(out[0]!.applied).toBe(true);
      const err = await fence.write(name, a.token, [put('x', a)]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PP_ERR_FENCED', data: { name, token: a.token, highest: b.token } });
      expect((await docs.get('x'))!.row).toEqual({ id: 'x', by: 'b', token: b.token });
      expect(await fence.highest(name, docs.locate('x').shard)).toBe(b.token);
    });

    it('the fence is per shard until advance() raises it on every shard', async () => {
      const { locks, store } = await c.open();
      const fence = await openFence(store);
      const docs = await store.table(`fdocs_${seq++}`, { schema: Doc, primaryKey: ['id'] });
      const ids = Array.from({ length: 16 }, (_, i) => `k${i}`);
      const on0 = ids.find((id) => docs.locate(id).shard === 0)!;
      const on1 = ids.find((id) => docs.locate(id).shard === 1)!;
      const name = uniqueName('advance');
      const a = await locks.acquire(name, { ttlMs: 10_000, owner: 'a' });
      await locks.release(a);
      const b = await locks.acquire(name, { ttlMs: 10_000, owner: 'b' });
      const put = (id: string, l: Lease) => docs.writeOp({ op: 'upsert', row: { id, by: l.owner, token: l.token } });
      await fence.write(name, b.token, [put(on0, b)]);
      await expectCode(fence.write(name, a.token, [put(on0, a)]), 'PP_ERR_FENCED');
      await fence.write(name, a.token, [put(on1, a)]); // shard 1 has seen nothing newer yet
      expect(await fence.advance(name, b.token)).toBe(b.token);
      await expectCode(fence.write(name, a.token, [put(on1, a)]), 'PP_ERR_FENCED');
      expect(await fence.highest(name)).toBe(b.token);
      expect(await fence.advance(name, a.token)).toBe(b.token); // never lowers; says who is newer
    });

    it('a fenced write is one atomic request with the caller\'s ops: their own conflict writes nothing, the fence is not raised', async () => {
      const { locks, store } = await c.open();
      const fence = await openFence(store);
      const docs = await store.table(`fdocs_${seq++}`, { schema: Doc, primaryKey: ['id'] });
      const name = uniqueName('atomic');
      const a = await locks.acquire(name, { ttlMs: 10_000 });
      await docs.insert({ id: 'p', by: 'seed', token: 0 });
      const shard = docs.locate('p').shard;
      const ids = Array.from({ length: 32 }, (_, i) => `q${i}`).filter((id) => docs.locate(id).shard === shard);
      const err = await fence.write(name, a.token, [
        docs.writeOp({ op: 'upsert', row: { id: ids[0]!, by: 'a', token: a.token } }),
        docs.writeOp({ op: 'insert', row: { id: 'p', by: 'a', token: a.token } }), // exists: conflict
      ]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PP_ERR_CONFLICT' });
      expect(await docs.get(ids[0]!)).toBeUndefined();
      expect(await fence.highest(name, shard)).toBe(0);
    });

    it('concurrent fenced writers with different tokens: once a higher token wrote on a shard, no lower one lands after it', async () => {
      const { store } = await c.open();
      const fence = await openFence(store);
      const log = await store.table(`flog_${seq++}`, { schema: Type.Object({ p: Type.String(), i: Type.Integer(), token: Type.Integer() }), primaryKey: ['p', 'i'], partitionKey: ['p'] });
      const name = uniqueName('interleave');
      let i = 0;
      const results = await Promise.allSettled(Array.from({ length: 60 }, (_, n) => {
        const token = 1 + (n % 6);
        return fence.write(name, token, [log.writeOp({ op: 'insert', row: { p: 'one', i: i++, token } })]);
      }));
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'PP_ERR_FENCED' });
      // In commit order (the change feed of the one shard), tokens never go down.
      const shard = store.shardName(log.locate({ p: 'one', i: 0 }).shard);
      const recs = (await store.feed.read(shard, 0, 10_000)).filter((r) => r.name === log.name);
      const seen = recs.map((r) => (r.row as { token: number }).token);
      expect(seen.length).toBe(results.filter((r) => r.status === 'fulfilled').length);
      for (let k = 1; k < seen.length; k++) expect(seen[k]!).toBeGreaterThanOrEqual(seen[k - 1]!);
    });

    it('bad input: typed errors naming the argument, nothing taken', async () => {
      const { locks, store } = await c.open();
      const fence = await openFence(store);
      await expectCode(locks.acquire('', { ttlMs: 1_000 }), 'PP_ERR_INVALID_ARGUMENT', 'name');
      await expectCode(locks.acquire('x'.repeat(201), { ttlMs: 1_000 }), 'PP_ERR_INVALID_ARGUMENT', 'name');
      await expectCode(locks.acquire('a\nb', { ttlMs: 1_000 }), 'PP_ERR_INVALID_ARGUMENT', 'name');
      await expectCode(locks.acquire('n', { ttlMs: 0 }), 'PP_ERR_INVALID_ARGUMENT', 'options.ttlMs');
      await expectCode(locks.acquire('n', { ttlMs: 1.5 }), 'PP_ERR_INVALID_ARGUMENT', 'options.ttlMs');
      await expectCode(locks.acquire('n', { ttlMs: 10_000_000 }), 'PP_ERR_INVALID_ARGUMENT', 'options.ttlMs');
      await expectCode(locks.acquire('n', { ttlMs: 1_000, waitMs: -1 }), 'PP_ERR_INVALID_ARGUMENT', 'options.waitMs');
      await expectCode(locks.acquire('n', { ttlMs: 1_000, owner: '' }), 'PP_ERR_INVALID_ARGUMENT', 'options.owner');
      await expectCode(locks.acquire('n', undefined as never), 'PP_ERR_INVALID_ARGUMENT', 'options');
      const l = await locks.acquire(uniqueName('bad'), { ttlMs: 5_000 });
      await expectCode(locks.renew(l, 0), 'PP_ERR_INVALID_ARGUMENT', 'ttlMs');
      await expectCode(locks.renew({ ...l, token: 0 }, 1_000), 'PP_ERR_INVALID_ARGUMENT', 'lease.token');
      await expectCode(locks.release(null as never), 'PP_ERR_INVALID_ARGUMENT', 'lease');
      expect(await locks.holder(l.name)).toMatchObject({ token: l.token });
      const docs = await store.table(`fdocs_${seq++}`, { schema: Doc, primaryKey: ['id'] });
      const ids = Array.from({ length: 16 }, (_, i) => `k${i}`);
      const on0 = ids.find((id) => docs.locate(id).shard === 0)!;
      const on1 = ids.find((id) => docs.locate(id).shard === 1)!;
      const put = (id: string) => docs.writeOp({ op: 'upsert', row: { id, by: 'x', token: 1 } });
      await expectCode(fence.write(l.name, l.token, [put(on0), put(on1)]), 'PP_ERR_INVALID_ARGUMENT', 'ops');
      await expectCode(fence.write(l.name, l.token, []), 'PP_ERR_INVALID_ARGUMENT', 'ops');
      await expectCode(fence.write(l.name, 0, [put(on0)]), 'PP_ERR_INVALID_ARGUMENT', 'token');
      await expectCode(fence.write(l.name, 1.5, [put(on0)]), 'PP_ERR_INVALID_ARGUMENT', 'token');
      await expectCode(fence.write('', 1, [put(on0)]), 'PP_ERR_INVALID_ARGUMENT', 'name');
      expect(await docs.get(on0)).toBeUndefined();
    });
  });
}
