/**
 * Store benchmark: `npm run bench -- store [--ms=700] [--rounds=2] [--no-pg]` (each measurement
 * is one warm-up + `rounds` measured runs of `ms` per side).
 *
 * Point get, put and compare-and-set per second and p99 latency at concurrency 1 and 64, for
 * Powerplant on SQLite vs raw better-sqlite3 and Powerplant on PostgreSQL vs raw `pg`, measured
 * interleaved (ours, peer, ours, peer, ...) in the same process so machine noise hits both.
 *
 * The peers run the same SQL statements on a table of the same shape, the way a user of the raw
 * driver would: one transaction per write (autocommit), the value msgpack-decoded after a get.
 * They do NOT write the change-feed record ours writes in every transaction. Pools: the PostgreSQL
 * peer gets a pool of 8 connections; ours reads through a pool of 8 and writes through one
 * connection per shard (group commit). Plus a 4-shard scatter-gather index query (SQLite).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Type } from '@sinclair/typebox';
import pg from 'pg';
import { pack, unpack } from '../src/store/codec.js';
import { openStore, type Store } from '../src/store/index.js';
import { formatTable } from '../src/util/index.js';

const PG_URL = process.env.PP_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const KEYS = 10_000;
const PG_POOL = 8;

interface Result {
  opsPerSec: number;
  p99Ms: number;
}

/** Runs `op` from `concurrency` workers for `ms`; returns throughput and p99 latency. */
async function measure(op: (worker: number, i: number) => Promise<unknown>, concurrency: number, ms: number): Promise<Result> {
  const lat: number[] = [];
  let done = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let i = 0;
      while (performance.now() < end) {
        const t0 = performance.now();
        await op(w, i++);
        lat.push(performance.now() - t0);
        done++;
      }
    }),
  );
  const elapsed = performance.now() - start;
  lat.sort((a, b) => a - b);
  return { opsPerSec: (done / elapsed) * 1000, p99Ms: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] ?? 0 };
}

/**
 * Interleaves rounds of ours and peer after one unmeasured warm-up round of each (JIT, lazily
 * opened pool connections); returns mean throughput and the worst p99 of the measured rounds.
 */
async function versus(ours: () => Promise<Result>, peer: () => Promise<Result>, rounds: number): Promise<{ ours: Result; peer: Result }> {
  const a: Result[] = [];
  const b: Result[] = [];
  await ours();
  await peer();
  for (let r = 0; r < rounds; r++) {
    a.push(await ours());
    b.push(await peer());
  }
  const agg = (xs: Result[]): Result => ({ opsPerSec: xs.reduce((s, x) => s + x.opsPerSec, 0) / xs.length, p99Ms: Math.max(...xs.map((x) => x.p99Ms)) });
  return { ours: agg(a), peer: agg(b) };
}

function value(i: number): { n: number; s: string } {
  return { n: i, s: 'payload-payload-payload-payload' };
}

function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}

type Row = Record<string, string | number>;

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const ms = Number(args.find((a) => a.startsWith('--ms='))?.slice(5) ?? 700);
  const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 2);
  const withPg = !args.includes('--no-pg');
  const dir = mkdtempSync(join(tmpdir(), 'pp-bench-store-'));
  const schema = `pp_bench_${process.pid}`;
  const rows: Row[] = [];
  const out: Record<string, unknown> = { unit: 'ops/s', peer: 'better-sqlite3 / pg (same statements, one transaction per write)' };
  const stores: Store[] = [];
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    // ---- SQLite -------------------------------------------------------------------------------
    {
      const store = await openStore({ engine: `sqlite:${join(dir, 'ours')}`, sweep: { intervalMs: 0 } });
      stores.push(store);
      const kv = await store.kv<{ n: number; s: string }>('bench');
      for (let i = 0; i < KEYS; i += 500) await kv.putMany(Array.from({ length: 500 }, (_, j) => ({ key: `key:${i + j}`, value: value(i + j) })));
      // The peer: the same table shape and pragmas in its own file, loaded with the same data.
      const peerStore = await openStore({ engine: `sqlite:${join(dir, 'peer')}`, sweep: { intervalMs: 0 } });
      const pkv = await peerStore.kv<{ n: number; s: string }>('bench');
      for (let i = 0; i < KEYS; i += 500) await pkv.putMany(Array.from({ length: 500 }, (_, j) => ({ key: `key:${i + j}`, value: value(i + j) })));
      await peerStore.close();
      const db = new Database(join(dir, 'peer', 'shard-0.db'));
      cleanups.push(() => {
        db.close();
      });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      const get = db.prepare('SELECT * FROM "kv_bench" WHERE "k" = ? AND ("_exp" IS NULL OR "_exp" > ?)');
      const put = db.prepare(
        'INSERT INTO "kv_bench" AS x ("k", "v", "_v", "_exp") VALUES (?, ?, 1, ?) ON CONFLICT ("k") DO UPDATE SET "k" = excluded."k", "v" = excluded."v", "_v" = x."_v" + 1, "_exp" = excluded."_exp" RETURNING *',
      );
      const cas = db.prepare('UPDATE "kv_bench" SET "v" = ?, "_v" = "_v" + 1, "_exp" = ? WHERE "k" = ? AND ("_exp" IS NULL OR "_exp" > ?) AND "_v" = ? RETURNING *');
      const oursVer = new Map<string, number>();
      const peerVer = new Map<string, number>();
      for (const c of [1, 64]) {
        const g = await versus(
          () => measure(async () => kv.get(`key:${rnd(KEYS)}`), c, ms),
          () =>
            measure(async () => {
              const r = get.get(`key:${rnd(KEYS)}`, Date.now()) as { v: Buffer } | undefined;
              return r === undefined ? undefined : unpack(r.v);
            }, c, ms),
          rounds,
        );
        const p = await versus(
          () => measure(async (_, i) => kv.put(`key:${rnd(KEYS)}`, value(i)), c, ms),
          () => measure(async (_, i) => put.get(`key:${rnd(KEYS)}`, pack(value(i)), null), c, ms),
          rounds,
        );
        const s = await versus(
          () =>
            measure(async (w, i) => {
              const k = `cas:${c}:${w}`;
              const r = await kv.cas(k, oursVer.get(k) ?? 0, value(i));
              oursVer.set(k, r.version);
            }, c, ms),
          () =>
            measure(async (w, i) => {
              const k = `cas:${c}:${w}`;
              const v = peerVer.get(k) ?? 0;
              if (v === 0) put.get(k, pack(value(i)), null);
              else if (cas.get(pack(value(i)), null, k, Date.now(), v) === undefined) throw new Error('peer cas conflict');
              peerVer.set(k, v + 1);
            }, c, ms),
          rounds,
        );
        for (const [name, r] of [['get', g], ['put', p], ['cas', s]] as const) {
          rows.push({ engine: 'sqlite', op: name, conc: c, ours: Math.round(r.ours.opsPerSec), peer: Math.round(r.peer.opsPerSec), ratio: +(r.ours.opsPerSec / r.peer.opsPerSec).toFixed(2), ours_p99_ms: +r.ours.p99Ms.toFixed(3), peer_p99_ms: +r.peer.p99Ms.toFixed(3) });
          out[`ratio_${name}_sqlite_c${c}`] = +(r.ours.opsPerSec / r.peer.opsPerSec).toFixed(3);
          out[`ours_${name}_sqlite_c${c}`] = Math.round(r.ours.opsPerSec);
          out[`peer_${name}_sqlite_c${c}`] = Math.round(r.peer.opsPerSec);
        }
      }
      out.ratio_get_sqlite = out.ratio_get_sqlite_c1;
      out.sqlite_batches = store.stats().shards[0];
    }

    // ---- PostgreSQL ---------------------------------------------------------------------------
    if (withPg) {
      const url = `${PG_URL}?schema=${schema}`;
      cleanups.push(async () => {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.query(`DROP SCHEMA IF EXISTS "${schema}_peer" CASCADE`);
        await c.end();
      });
      const store = await openStore({ engine: url, sweep: { intervalMs: 0 }, postgres: { readPoolMax: PG_POOL } });
      stores.push(store);
      const kv = await store.kv<{ n: number; s: string }>('bench');
      for (let i = 0; i < KEYS; i += 500) await kv.putMany(Array.from({ length: 500 }, (_, j) => ({ key: `key:${i + j}`, value: value(i + j) })));
      const peerStore = await openStore({ engine: `${PG_URL}?schema=${schema}_peer`, sweep: { intervalMs: 0 } });
      const pkv = await peerStore.kv<{ n: number; s: string }>('bench');
      for (let i = 0; i < KEYS; i += 500) await pkv.putMany(Array.from({ length: 500 }, (_, j) => ({ key: `key:${i + j}`, value: value(i + j) })));
      await peerStore.close();
      const pool = new pg.Pool({ connectionString: PG_URL, max: PG_POOL });
      cleanups.push(() => pool.end());
      const T = `"${schema}_peer"."kv_bench"`;
      const getQ = { name: 'peer_get', text: `SELECT * FROM ${T} WHERE "k" = $1 AND ("_exp" IS NULL OR "_exp" > $2)` };
      const putQ = {
        name: 'peer_put',
        text: `INSERT INTO ${T} AS x ("k", "v", "_v", "_exp") VALUES ($1, $2, 1, $3) ON CONFLICT ("k") DO UPDATE SET "k" = excluded."k", "v" = excluded."v", "_v" = x."_v" + 1, "_exp" = excluded."_exp" RETURNING *`,
      };
      const casQ = { name: 'peer_cas', text: `UPDATE ${T} SET "v" = $1, "_v" = "_v" + 1, "_exp" = $2 WHERE "k" = $3 AND ("_exp" IS NULL OR "_exp" > $4) AND "_v" = $5 RETURNING *` };
      const oursVer = new Map<string, number>();
      const peerVer = new Map<string, number>();
      for (const c of [1, 64]) {
        const g = await versus(
          () => measure(async () => kv.get(`key:${rnd(KEYS)}`), c, ms),
          () =>
            measure(async () => {
              const r = await pool.query<{ v: Buffer }>({ ...getQ, values: [`key:${rnd(KEYS)}`, Date.now()] });
              return r.rows[0] === undefined ? undefined : unpack(r.rows[0].v);
            }, c, ms),
          rounds,
        );
        const p = await versus(
          () => measure(async (_, i) => kv.put(`key:${rnd(KEYS)}`, value(i)), c, ms),
          () => measure(async (_, i) => pool.query({ ...putQ, values: [`key:${rnd(KEYS)}`, pack(value(i)), null] }), c, ms),
          rounds,
        );
        const s = await versus(
          () =>
            measure(async (w, i) => {
              const k = `cas:${c}:${w}`;
              const r = await kv.cas(k, oursVer.get(k) ?? 0, value(i));
              oursVer.set(k, r.version);
            }, c, ms),
          () =>
            measure(async (w, i) => {
              const k = `cas:${c}:${w}`;
              const v = peerVer.get(k) ?? 0;
              if (v === 0) await pool.query({ ...putQ, values: [k, pack(value(i)), null] });
              else if ((await pool.query({ ...casQ, values: [pack(value(i)), null, k, Date.now(), v] })).rowCount !== 1) throw new Error('peer cas conflict');
              peerVer.set(k, v + 1);
            }, c, ms),
          rounds,
        );
        for (const [name, r] of [['get', g], ['put', p], ['cas', s]] as const) {
          rows.push({ engine: 'postgres', op: name, conc: c, ours: Math.round(r.ours.opsPerSec), peer: Math.round(r.peer.opsPerSec), ratio: +(r.ours.opsPerSec / r.peer.opsPerSec).toFixed(2), ours_p99_ms: +r.ours.p99Ms.toFixed(3), peer_p99_ms: +r.peer.p99Ms.toFixed(3) });
          out[`ratio_${name}_pg_c${c}`] = +(r.ours.opsPerSec / r.peer.opsPerSec).toFixed(3);
          out[`ours_${name}_pg_c${c}`] = Math.round(r.ours.opsPerSec);
          out[`peer_${name}_pg_c${c}`] = Math.round(r.peer.opsPerSec);
        }
      }
      out.pg_batches = store.stats().shards[0];
    }

    // ---- 4-shard scatter-gather (SQLite) ------------------------------------------------------
    {
      const store = await openStore({ engine: `sqlite:${join(dir, 'scatter')}`, shards: 4, sweep: { intervalMs: 0 } });
      stores.push(store);
      const t = await store.table('ev', {
        schema: Type.Object({ user: Type.String(), id: Type.Integer(), score: Type.Integer() }),
        primaryKey: ['user', 'id'],
        indexes: { byScore: ['score'] },
      });
      const N = 20_000;
      for (let i = 0; i < N; i += 1000) await t.batch(Array.from({ length: 1000 }, (_, j) => ({ op: 'insert' as const, row: { user: `u${(i + j) % 997}`, id: i + j, score: (i + j) % 10_000 } })));
      const q = await measure(async () => {
        const lo = rnd(9_000);
        return t.query({ index: 'byScore', range: { gte: lo, lt: lo + 1000 }, limit: 50 });
      }, 16, ms);
      const routed = await measure(async () => t.query({ where: { user: `u${rnd(997)}` }, limit: 20 }), 16, ms);
      rows.push({ engine: 'sqlite x4', op: 'scatter query (limit 50)', conc: 16, ours: Math.round(q.opsPerSec), peer: 0, ratio: 0, ours_p99_ms: +q.p99Ms.toFixed(3), peer_p99_ms: 0 });
      rows.push({ engine: 'sqlite x4', op: 'routed query (limit 20)', conc: 16, ours: Math.round(routed.opsPerSec), peer: 0, ratio: 0, ours_p99_ms: +routed.p99Ms.toFixed(3), peer_p99_ms: 0 });
      out.scatter_query_4shards_ops = Math.round(q.opsPerSec);
      out.scatter_query_4shards_p99_ms = +q.p99Ms.toFixed(3);
      out.routed_query_4shards_ops = Math.round(routed.opsPerSec);
    }
  } finally {
    await Promise.allSettled(stores.map((s) => s.close()));
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  }
  console.log(formatTable(rows));
  const main4 = ['ratio_get_sqlite', 'ratio_put_sqlite_c64', 'ratio_get_pg_c64', 'ratio_put_pg_c64'];
  const first = Object.fromEntries(main4.filter((k) => k in out).map((k) => [k, out[k]]));
  const ours = out.ours_put_sqlite_c64;
  const peerValue = out.peer_put_sqlite_c64;
  return { ...first, ours, peer_value: peerValue, ratio: out.ratio_put_sqlite_c64, ...out };
}
