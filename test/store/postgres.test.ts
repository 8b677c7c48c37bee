/**
 * What only the PostgreSQL engine can show, against the real server: the write path's round
 * trips, a connection dropped in the middle of a batch, a lock that outlasts the statement
 * timeout, closing while a batch is stuck, feed positions with two writer processes, and URL /
 * schema-name validation. Faults are made with a second session (table locks, pg_terminate_backend)
 * and are deterministic: the test waits until the writer is provably blocked before acting.
 */
import { Type } from '@sinclair/typebox';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type ChangeRecord, type Store, type WriteResult } from '../../src/store/index.js';
import { needEngine } from '../helpers/engines.js';
import { PG_BASE, expectCode, postgresCase } from './helpers.js';

const pgUp = await needEngine('postgres');
const engine = postgresCase();
afterAll(() => engine.cleanup());

let seq = 0;
function fresh(): { id: string; schema: string } {
  const id = `x${seq++}`;
  return { id, schema: new URL(engine.url(id)).searchParams.get('schema')! };
}

/** A second session that holds an EXCLUSIVE lock on a table (reads pass, writes wait). */
async function lockTable(schema: string, table: string): Promise<{ pid: number; release: () => Promise<void> }> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  await c.query('BEGIN');
  await c.query(`LOCK TABLE "${schema}"."${table}" IN EXCLUSIVE MODE`);
  const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return {
    pid,
    release: async () => {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    },
  };
}

/** Waits until at least `n` backends are blocked by `blocker`. */
async function blockedCount(blocker: number, n: number): Promise<number> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try {
    for (let i = 0; i < 500; i++) {
      const r = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [blocker]);
      if (r.rows[0]!.n >= n) return r.rows[0]!.n;
      await new Promise((res) => setTimeout(res, 10));
    }
    throw new Error(`fewer than ${n} backends got blocked`);
  } finally {
    await c.end();
  }
}

/** Waits until some backend is blocked by `blocker`; returns its pid. */
async function blockedBy(blocker: number): Promise<number> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try {
    for (let i = 0; i < 500; i++) {
      const r = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [blocker]);
      if (r.rows.length > 0) return r.rows[0]!.pid;
      await new Promise((res) => setTimeout(res, 10));
    }
    throw new Error('nothing got blocked');
  } finally {
    await c.end();
  }
}

async function terminate(pid: number): Promise<void> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  await c.query('SELECT pg_terminate_backend($1)', [pid]);
  await c.end();
}

function tracker<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  return { p, settled: () => done };
}

describe.runIf(pgUp)('postgres engine', () => {
  it('a write is ONE round trip (writes and outbox records + COMMIT in one message); updates and conflicts take the diagnosing path', async () => {
    const s = await engine.open({ shards: 1 }, fresh().id);
    const kv = await s.kv<number>('rt');
    const t = await s.table('rt', { schema: Type.Object({ id: Type.String(), n: Type.Integer() }), primaryKey: ['id'] });
    const e = (): Record<string, number> => s.stats().shards[0]!.engine;
    const step = async (f: () => Promise<unknown>): Promise<{ roundTrips: number; diagnosed: number }> => {
      const a = e();
      await f().catch(() => undefined);
      const b = e();
      return { roundTrips: b.roundTrips! - a.roundTrips!, diagnosed: b.diagnosed! - a.diagnosed! };
    };
    expect(await step(() => kv.put('a', 1))).toEqual({ roundTrips: 1, diagnosed: 0 });
    expect(await step(() => kv.cas('a', 1, 2))).toEqual({ roundTrips: 1, diagnosed: 0 });
    expect(await step(() => kv.delete('a'))).toEqual({ roundTrips: 1, diagnosed: 0 });
    expect(await step(() => t.insert({ id: 'x', n: 1 }))).toEqual({ roundTrips: 1, diagnosed: 0 });
    expect(await step(() => t.batch([{ op: 'upsert', row: { id: 'y', n: 1 } }, { op: 'delete', key: 'x', version: 1 }]))).toEqual({ roundTrips: 1, diagnosed: 0 });
    // An update's feed document is the row after the patch: statements, then outbox + COMMIT.
    expect(await step(() => t.update('y', { n: 2 }))).toEqual({ roundTrips: 2, diagnosed: 1 });
    // A stale CAS: the one-trip message aborts, ROLLBACK, then diagnosis (probe, ROLLBACK).
    const c = await step(() => kv.cas('b', 5, 1));
    expect(c.diagnosed).toBe(1);
    await expectCode(kv.cas('b', 5, 1), 'PP_ERR_CONFLICT');
    expect(await kv.get('a')).toBeUndefined();
    expect((await t.get('y'))?.row).toEqual({ id: 'y', n: 2 });
    // The feed holds exactly the applied writes, in order.
    const recs = await s.feed.read('s0', 0, 100);
    expect(recs.map((r) => `${r.name}:${r.op}:${String(r.key[0])}:${r.version}`)).toEqual(['rt:put:a:1', 'rt:put:a:2', 'rt:delete:a:0', 'rt:put:x:1', 'rt:put:y:1', 'rt:delete:x:0', 'rt:put:y:2']);
  });

  it('writes are acknowledged only after COMMIT; a connection dropped mid-batch fails them with a retryable typed error, none applied, and the next write reconnects', async () => {
    const { id, schema } = fresh();
    const s = await engine.open({ shards: 1 }, id);
    const kv = await s.kv<number>('drop');
    await kv.put('before', 0);
    const lock = await lockTable(schema, 'kv_drop');
    try {
      const writes = Array.from({ length: 5 }, (_, i) => tracker(kv.put(`w${i}`, i)));
      const writer = await blockedBy(lock.pid);
      // The batch is executing on the server but has not committed: nothing is acknowledged.
      await new Promise((r) => setTimeout(r, 50));
      expect(writes.some((w) => w.settled())).toBe(false);
      expect((await kv.get('w0'))).toBeUndefined();
      await terminate(writer);
      const settled = await Promise.allSettled(writes.map((w) => w.p));
      for (const r of settled) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'PP_ERR_UNAVAILABLE', retryable: true });
      }
    } finally {
      await lock.release();
    }
    expect(await kv.getMany(['w0', 'w1', 'w2', 'w3', 'w4'])).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect((await kv.put('after', 1)).version).toBe(1);
    expect((await s.feed.read('s0', 0)).map((r) => r.key[0])).toEqual(['before', 'after']);
  });

  it('a lock that outlasts queryTimeoutMs fails the batch with PP_ERR_TIMEOUT (cancelled, not committed); closing with a stuck batch and a queue does not hang', async () => {
    const { id, schema } = fresh();
    const s = await engine.open({ shards: 1, postgres: { queryTimeoutMs: 300, readPoolMax: 2 }, groupCommit: { drainTimeoutMs: 50 } }, id);
    const kv = await s.kv<number>('slow');
    const lock = await lockTable(schema, 'kv_slow');
    let results: PromiseSettledResult<WriteResult>[];
    try {
      await expectCode(kv.put('t', 1), 'PP_ERR_TIMEOUT');
      // One batch stuck on the lock, more queued behind it, then close.
      const inFlight = kv.put('stuck', 1);
      await blockedBy(lock.pid);
      const all = Promise.allSettled([inFlight, kv.put('q1', 1), kv.put('q2', 2)]);
      const t0 = Date.now();
      await s.close();
      expect(Date.now() - t0).toBeLessThan(5_000);
      results = await all;
    } finally {
      await lock.release();
    }
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'))).toEqual(['PP_ERR_TIMEOUT', 'PP_ERR_CLOSED', 'PP_ERR_CLOSED']);
    const s2 = await engine.open({ shards: 1 }, id);
    const kv2 = await s2.kv<number>('slow');
    expect(await kv2.getMany(['t', 'stuck', 'q1', 'q2'])).toEqual([undefined, undefined, undefined, undefined]);
    expect(await s2.feed.heads()).toEqual({ s0: 0 });
  });

  it('feed positions with two writer processes on one shard: strictly increasing, and a reader tailing during the writes never misses one', async () => {
    const { id } = fresh();
    const a: Store = await engine.open({ shards: 1 }, id);
    const b: Store = await engine.open({ shards: 1 }, id);
    const ka = await a.kv<number>('two');
    const kb = await b.kv<number>('two');
    let writing = true;
    const seen: ChangeRecord[] = [];
    const tail = (async () => {
      let after = 0;
      while (writing || after < (await a.feed.heads()).s0!) {
        const recs = await a.feed.read('s0', after, 1000);
        for (const r of recs) seen.push(r);
        if (recs.length > 0) after = recs[recs.length - 1]!.position;
      }
    })();
    const acks = await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        const out: WriteResult[] = [];
        for (let i = 0; i < 40; i++) out.push(await (w % 2 === 0 ? ka : kb).put(`w${w}_${i % 7}`, i));
        return out;
      }),
    );
    writing = false;
    await tail;
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.position).toBeGreaterThan(seen[i - 1]!.position);
    const positions = new Set(seen.map((r) => r.position));
    expect(seen).toHaveLength(320);
    for (const w of acks.flat()) expect(positions.has(w.position)).toBe(true);
  });

  it('a query without the partition key reads every shard in parallel', async () => {
    const { id, schema } = fresh();
    const s = await engine.open({ shards: 3 }, id);
    const t = await s.table('fan', { schema: Type.Object({ id: Type.String(), n: Type.Integer() }), primaryKey: ['id'], indexes: { byN: ['n'] } });
    await t.batch(Array.from({ length: 30 }, (_, i) => ({ op: 'insert' as const, row: { id: `r${i}`, n: i } })));
    // One session locks the table on all three shards against reads too.
    const c = new pg.Client({ connectionString: PG_BASE });
    await c.connect();
    await c.query('BEGIN');
    for (let i = 0; i < 3; i++) await c.query(`LOCK TABLE "${schema}_${i}"."t_fan" IN ACCESS EXCLUSIVE MODE`);
    const blocker = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const q = t.query({ index: 'byN', range: { gte: 10 }, limit: 5 });
    try {
      // Sequential reads would leave one shard's read blocked at a time; parallel ones block all three.
      expect(await blockedCount(blocker, 3)).toBe(3);
    } finally {
      await c.query('ROLLBACK');
      await c.end();
    }
    expect((await q).items.map((r) => r.row.n)).toEqual([10, 11, 12, 13, 14]);
  });

  it('tables created and migrated concurrently, with reads queued meanwhile, all complete (a pool reset never strands waiters)', async () => {
    const { id } = fresh();
    const s = await engine.open({ shards: 2 }, id);
    const V1 = Type.Object({ id: Type.String(), n: Type.Integer() });
    const V2 = Type.Object({ id: Type.String(), n: Type.Integer(), note: Type.Optional(Type.String()) });
    // More concurrent DDL than the shard's pool has connections.
    const names = Array.from({ length: 12 }, (_, i) => `cc${i}`);
    const tables = await Promise.all(names.map((n) => s.table(n, { schema: V1, primaryKey: ['id'] })));
    await Promise.all(tables.map((t, i) => t.insert({ id: 'a', n: i })));
    // Migrations reset the pool (stale prepared statements); reads queued on it must still be served.
    const migrated = Promise.all(names.slice(0, 6).map((n) => s.table(n, { schema: V2, primaryKey: ['id'] })));
    const reads = Promise.all(Array.from({ length: 40 }, (_, i) => tables[i % tables.length]!.get('a')));
    const [m2, got] = await Promise.all([migrated, reads]);
    expect(got.map((r) => r?.row.n)).toEqual(Array.from({ length: 40 }, (_, i) => i % tables.length));
    await m2[0]!.upsert({ id: 'a', n: 0, note: 'after' });
    expect((await m2[0]!.get('a'))?.row).toEqual({ id: 'a', n: 0, note: 'after' });
    expect((await m2[0]!.migrations()).length).toBeGreaterThanOrEqual(2);
  });

  it('schema names and other identifiers are validated before they reach SQL', async () => {
    await expectCode(openStore({ engine: `${PG_BASE}?schema=a"b` }), 'PP_ERR_INVALID_ARGUMENT', 'engine');
    await expectCode(openStore({ engine: `${PG_BASE}?schema=a;drop`, shards: 2 }), 'PP_ERR_INVALID_ARGUMENT', 'engine');
    await expectCode(openStore({ engine: `${PG_BASE}?schema=${'x'.repeat(60)}` }), 'PP_ERR_INVALID_ARGUMENT', 'engine');
    await expectCode(openStore({ engine: `${PG_BASE}?schema=ok`, postgres: { queryTimeoutMs: 0 } }), 'PP_ERR_INVALID_ARGUMENT', 'postgres.queryTimeoutMs');
    const s = await engine.open({ shards: 1 }, fresh().id);
    await expectCode(() => s.kv('x"; DROP SCHEMA public; --'), 'PP_ERR_INVALID_ARGUMENT', 'namespace');
    await expectCode(() => s.table('t"', { schema: Type.Object({ id: Type.String() }), primaryKey: ['id'] }), 'PP_ERR_INVALID_ARGUMENT', 'name');
    await expectCode(() => s.table('t', { schema: Type.Object({ 'i"d': Type.String() }), primaryKey: ['i"d'] }), 'PP_ERR_INVALID_ARGUMENT');
    await expectCode(() => s.table('t', { schema: Type.Object({ id: Type.String() }), primaryKey: ['id'], indexes: { 'a b': ['id'] } }), 'PP_ERR_INVALID_ARGUMENT');
    // Values are literals or parameters, never identifiers: quotes and backslashes round-trip.
    const kv = await s.kv<string>('q');
    const nasty = `'); DROP TABLE "kv_q"; --\\'\\x00`;
    await kv.put(nasty, nasty);
    expect((await kv.get(nasty))?.value).toBe(nasty);
    expect((await s.feed.read('s0', 0)).map((r) => r.key[0])).toEqual([nasty]);
  });

  it('application_name is configurable per store (option, or the URL parameter for its shards) and validated', async () => {
    const names = async (prefix: string): Promise<string[]> => {
      const c = new pg.Client({ connectionString: PG_BASE });
      await c.connect();
      try {
        const r = await c.query<{ a: string }>('SELECT DISTINCT application_name AS a FROM pg_stat_activity WHERE starts_with(application_name, $1) ORDER BY 1', [prefix]);
        return r.rows.map((x) => x.a);
      } finally {
        await c.end();
      }
    };
    const tag = `app${process.pid}${Date.now().toString(36)}`;
    const a = await engine.open({ shards: 2, postgres: { applicationName: `${tag}-api` } }, fresh().id);
    const kv = await a.kv<number>('named');
    for (let i = 0; i < 8; i++) await kv.put(`k${i}`, i);
    await kv.get('k1');
    expect(await names(`${tag}-api:`)).toEqual([`${tag}-api:s0:reader`, `${tag}-api:s0:writer`, `${tag}-api:s1:reader`, `${tag}-api:s1:writer`]);
    const b = await openStore({ sweep: { intervalMs: 0 }, engine: `${engine.url(fresh().id)}&application_name=${tag}-url`, postgres: { applicationName: `${tag}-opt` } });
    await (await b.kv<number>('named')).put('k', 1);
    expect(await names(`${tag}-url:`)).toEqual([`${tag}-url:s0:reader`, `${tag}-url:s0:writer`]);
    expect(await names(`${tag}-opt:`)).toEqual([]);
    await b.close();
    await expectCode(openStore({ engine: `${PG_BASE}?schema=ok`, postgres: { applicationName: 'x'.repeat(41) } }), 'PP_ERR_INVALID_ARGUMENT', 'postgres.applicationName');
    await expectCode(openStore({ engine: `${PG_BASE}?schema=ok`, postgres: { applicationName: 'caf\u00e9' } }), 'PP_ERR_INVALID_ARGUMENT', 'postgres.applicationName');
    await expectCode(openStore({ engine: `${PG_BASE}?schema=ok&application_name=%0A` }), 'PP_ERR_INVALID_ARGUMENT', 'engine');
  });
});
