/**
 * Transactions benchmark: `npm run bench -- tx [--ms=2000] [--rounds=2] [--no-dbos]`.
 *
 *  1. A 3-step workflow, each step writing one row, through our workflows (PostgreSQL store, one
 *     shard) vs DBOS Transact (@dbos-inc/dbos-sdk, the same PostgreSQL server), workflows/s at 1
 *     and 64 concurrent, interleaved rounds (ours, peer, ours, peer) in one process. The DBOS
 *     workflow is written the way its docs show with the core SDK: `DBOS.runStep` around a `pg`
 *     query per step (its checkpoint is a separate commit after the write; ours commits the
 *     checkpoint and the write together).
 *  2. Transfers between two wallets: both on one shard (one local commit) vs on two shards (two-
 *     phase commit), PostgreSQL, 2 shards, 64 concurrent, random pairs of 20,000 wallets.
 *  3. The same workflow on the embedded default (SQLite), 64 concurrent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import pg from 'pg';
import { openStore, type Store, type Table } from '../src/store/index.js';
import { defineWorkflow, openTransactions, openWorkflows, type Transactions, type Workflows } from '../src/tx/index.js';
import { formatTable } from '../src/util/index.js';

const PG_URL = process.env.PP_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const PG_ADMIN = PG_URL.replace(/\/[^/?]+(\?|$)/, '/postgres$1');

function arg(args: string[], name: string, dflt: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? dflt : Number(a.slice(name.length + 3));
}

/** Runs `op` from `concurrency` workers for `ms`; returns completed ops per second. */
async function rate(op: (w: number, i: number) => Promise<unknown>, concurrency: number, ms: number): Promise<number> {
  let done = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        await op(w, i);
        done++;
      }
    }),
  );
  return (done / (performance.now() - start)) * 1000;
}

async function versus(ours: () => Promise<number>, peer: (() => Promise<number>) | undefined, rounds: number): Promise<{ ours: number; peer: number }> {
  await ours();
  if (peer !== undefined) await peer();
  const o: number[] = [];
  const p: number[] = [];
  for (let r = 0; r < rounds; r++) {
    o.push(await ours());
    if (peer !== undefined) p.push(await peer());
  }
  const mean = (xs: number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  return { ours: mean(o), peer: mean(p) };
}

const Row = Type.Object({ id: Type.String(), step: Type.Integer(), payload: Type.String() });
type RowT = { id: string; step: number; payload: string };

interface Ours {
  store: Store;
  txs: Transactions;
  wf: Workflows;
  run: (id: string) => Promise<unknown>;
}

async function oursOn(store: Store): Promise<Ours> {
  const rows: Table<RowT> = await store.table('bench_rows', { schema: Row, primaryKey: ['id'] });
  const txs = await openTransactions(store, { recoverIntervalMs: 0 });
  const wf = await openWorkflows(store, txs, { recoverIntervalMs: 0 });
  const three = defineWorkflow({
    name: 'three',
    async run(ctx, id: string) {
      for (let s = 0; s < 3; s++) {
        await ctx.step(`s${s}`, (tx) => tx.upsert(rows, { id: `${id}-${s}`, step: s, payload: 'x'.repeat(32) }));
      }
      return id;
    },
  });
  wf.register(three);
  let n = 0;
  return { store, txs, wf, run: async (id) => (await wf.start(three, id, { id: `${id}-${n++}` })).result() };
}

interface Peer {
  run: (id: string) => Promise<unknown>;
  close: () => Promise<void>;
}

async function dbosPeer(): Promise<Peer> {
  const { DBOS } = await import('@dbos-inc/dbos-sdk');
  const sysDb = `pp_bench_dbos_${process.pid}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${sysDb}`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: PG_URL, max: 8 });
  await pool.query('CREATE TABLE IF NOT EXISTS pp_bench_dbos_rows (id TEXT PRIMARY KEY, step INT NOT NULL, payload TEXT NOT NULL)');
  DBOS.setConfig({ name: 'ppbench', systemDatabaseUrl: PG_ADMIN.replace(/\/postgres(\?|$)/, `/${sysDb}$1`), logLevel: 'error', runAdminServer: false });
  const three = DBOS.registerWorkflow(
    async (id: string) => {
      for (let s = 0; s < 3; s++) {
        await DBOS.runStep(() => pool.query('INSERT INTO pp_bench_dbos_rows (id, step, payload) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET step = excluded.step, payload = excluded.payload', [`${id}-${s}`, s, 'x'.repeat(32)]), { name: `s${s}` });
      }
      return id;
    },
    { name: 'three' },
  );
  await DBOS.launch();
  let n = 0;
  return {
    run: async (id) => (await DBOS.startWorkflow(three, { workflowID: `${id}-${n++}-${process.pid}` })(id)).getResult(),
    close: async () => {
      await DBOS.shutdown();
      await pool.query('DROP TABLE IF EXISTS pp_bench_dbos_rows');
      await pool.end();
      const a = new pg.Client({ connectionString: PG_ADMIN });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${sysDb}`).catch(() => undefined);
      await a.end();
    },
  };
}

const Wallet = Type.Object({ user: Type.String(), balance: Type.Integer() });
/** Wallets per shard: enough that two random transfers rarely touch the same wallet. */
const WALLETS_PER_SHARD = 10_000;

async function transfers(store: Store, ms: number, rounds: number): Promise<{ single: number; twoPc: number }> {
  const wallets = await store.table('bench_wallets', { schema: Wallet, primaryKey: ['user'] });
  const txs = await openTransactions(store, { recoverIntervalMs: 0 });
  const byShard: string[][] = store.shards.map(() => []);
  for (let i = 0; byShard.some((b) => b.length < WALLETS_PER_SHARD); i++) {
    const u = `w${i}`;
    const b = byShard[wallets.locate(u).shard]!;
    if (b.length < WALLETS_PER_SHARD) b.push(u);
  }
  for (const list of byShard) for (let i = 0; i < list.length; i += 200) await wallets.batch(list.slice(i, i + 200).map((user) => ({ op: 'upsert' as const, row: { user, balance: 1_000_000 } })));
  let seed = 1;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const move = (a: string, b: string): Promise<void> =>
    txs.run(async (tx) => {
      const x = await tx.get(wallets, a);
      const y = await tx.get(wallets, b);
      await tx.update(wallets, a, { balance: x!.row.balance - 1 });
      await tx.update(wallets, b, { balance: y!.row.balance + 1 });
    }, { retries: 100 });
  const single = (): Promise<number> =>
    rate(() => {
      const s = rnd(2);
      const i = rnd(WALLETS_PER_SHARD);
      return move(byShard[s]![i]!, byShard[s]![(i + 1 + rnd(WALLETS_PER_SHARD - 1)) % WALLETS_PER_SHARD]!);
    }, 64, ms);
  const cross = (): Promise<number> => rate(() => move(byShard[0]![rnd(WALLETS_PER_SHARD)]!, byShard[1]![rnd(WALLETS_PER_SHARD)]!), 64, ms);
  const r = await versus(single, cross, rounds);
  await txs.close();
  return { single: r.ours, twoPc: r.peer };
}

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const ms = arg(args, 'ms', 2000);
  const rounds = arg(args, 'rounds', 2);
  const withDbos = !args.includes('--no-dbos');
  const schema = `pp_bench_tx_${process.pid}`;
  const pgStore = await openStore({ engine: `${PG_URL}?schema=${schema}`, sweep: { intervalMs: 0 } });
  const ours = await oursOn(pgStore);
  const peer = withDbos ? await dbosPeer() : undefined;
  const table: string[][] = [];
  const out: Record<string, number> = {};
  for (const c of [1, 64]) {
    const r = await versus(
      () => rate((w, i) => ours.run(`o${c}-${w}-${i}`), c, ms),
      peer === undefined ? undefined : () => rate((w, i) => peer.run(`d${c}-${w}-${i}`), c, ms),
      rounds,
    );
    out[`ours_c${c}`] = r.ours;
    out[`dbos_c${c}`] = r.peer;
    table.push([`3-step workflow, c=${c}`, r.ours.toFixed(0), peer === undefined ? '-' : r.peer.toFixed(0), peer === undefined ? '-' : (r.ours / r.peer).toFixed(2)]);
  }
  await peer?.close();
  await ours.wf.close();
  await ours.txs.close();
  await pgStore.close();

  const tStore = await openStore({ engine: [`${PG_URL}?schema=${schema}_a`, `${PG_URL}?schema=${schema}_b`], sweep: { intervalMs: 0 } });
  const t = await transfers(tStore, ms, rounds);
  table.push(['transfer, one shard (txn/s), c=64', t.single.toFixed(0), '', '']);
  table.push(['transfer, two shards by 2PC (txn/s), c=64', t.twoPc.toFixed(0), '', (t.twoPc / t.single).toFixed(2)]);
  await tStore.close();

  const dir = mkdtempSync(join(tmpdir(), 'pp-bench-tx-'));
  const sStore = await openStore({ engine: `sqlite:${dir}`, sweep: { intervalMs: 0 } });
  const emb = await oursOn(sStore);
  const e = await versus(() => rate((w, i) => emb.run(`e-${w}-${i}`), 64, ms), undefined, rounds);
  table.push(['3-step workflow, embedded SQLite, c=64', e.ours.toFixed(0), '', '']);
  await emb.wf.close();
  await emb.txs.close();
  await sStore.close();
  rmSync(dir, { recursive: true, force: true });

  // Drop the PostgreSQL schemas the bench made.
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  for (const s of [schema, `${schema}_a`, `${schema}_b`]) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await c.end();

  process.stdout.write(`${formatTable(table.map(([what, ours, dbos, ratio]) => ({ what: what!, ours: ours!, dbos: dbos!, ratio: ratio! })))}\n`);
  return {
    unit: 'workflows/s',
    ours: Math.round(out.ours_c64!),
    peer: 'dbos',
    peer_value: Math.round(out.dbos_c64!),
    ratio: peer === undefined ? null : +(out.ours_c64! / out.dbos_c64!).toFixed(2),
    ours_c1: Math.round(out.ours_c1!),
    peer_c1: Math.round(out.dbos_c1!),
    ratio_c1: peer === undefined ? null : +(out.ours_c1! / out.dbos_c1!).toFixed(2),
    single_shard_txn_per_s: Math.round(t.single),
    two_pc_txn_per_s: Math.round(t.twoPc),
    ratio_2pc_vs_single_shard: +(t.twoPc / t.single).toFixed(2),
    embedded_workflows_per_s: Math.round(e.ours),
  };
}
