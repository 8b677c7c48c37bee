/**
 * Queue benchmark: publish + consume throughput of durable 1 KB messages with acks, and the
 * end-to-end latency (publish call -> handler), for
 *   - Powerplant on the embedded log (fsync per group commit),
 *   - Powerplant on NATS JetStream,
 *   - BullMQ 6.7 on the machine's Redis (127.0.0.1:6379),
 *   - pg-boss 10 on the machine's PostgreSQL.
 * Same driver for all: the consumer starts first (concurrency 50), then `publishers` concurrent
 * loops publish N messages (each awaits its publish: a resolved publish = durable/acknowledged by
 * the system), the clock stops when every message was handled (acked) once. Each message carries
 * its publish time; latency = handled - published.
 *
 * `npm run bench -- queue [--n=100000] [--peer-n=15000] [--publishers=256] [--concurrency=50]`
 * Both Powerplant engines publish `n` messages (at 40k+ msgs/s a 15k run lasts a third of a
 * second, too short to be steady); the peers `peer-n` (pg-boss at most 10k) so the run ends in
 * minutes. Rates are per second, so the counts need not match.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis as IORedis } from 'ioredis';
import PgBoss from 'pg-boss';
import pg from 'pg';
import { formatTable } from '../src/util/index.js';
import { JetStreamEngine, openQueue } from '../src/queue/index.js';

const PG_URL = process.env.PP_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS_URL = process.env.PP_BENCH_NATS ?? 'nats://127.0.0.1:4222';
const MSG_BYTES = 1024;

interface Result {
  readonly system: string;
  readonly msgs: number;
  readonly seconds: number;
  readonly rate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly duplicates: number;
}

interface Target {
  /** Starts consuming; `handled(i, sentAt)` must be called once per handled message. */
  consume(handled: (i: number, sentAtMs: number) => void): Promise<void>;
  publish(i: number, sentAtMs: number): Promise<void>;
  close(): Promise<void>;
}

function arg(args: string[], name: string, dflt: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? dflt : Number(a.slice(name.length + 3));
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function drive(system: string, n: number, publishers: number, target: Target): Promise<Result> {
  const lat = new Float64Array(n);
  const seen = new Uint8Array(n);
  let count = 0;
  let duplicates = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  await target.consume((i, sentAt) => {
    if (seen[i] === 1) {
      duplicates++;
      return;
    }
    seen[i] = 1;
    lat[i] = performance.now() - sentAt;
    if (++count === n) done();
  });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: publishers }, async () => {
      while (next < n) {
        const i = next++;
        await target.publish(i, performance.now());
      }
    }),
  );
  const guard = setTimeout(() => done(), 120_000);
  await all;
  clearTimeout(guard);
  const seconds = (performance.now() - t0) / 1000;
  await target.close();
  const sorted = lat.slice(0, n).sort();
  return { system, msgs: count, seconds, rate: count / seconds, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), duplicates };
}

function payload(i: number, sentAt: number): Buffer {
  const b = Buffer.alloc(MSG_BYTES, 0x61);
  b.writeDoubleLE(sentAt, 0);
  b.writeUInt32LE(i, 8);
  return b;
}

async function powerplant(engine: string, concurrency: number, partitions: number): Promise<Target & { cleanup(): Promise<void> }> {
  const q = await openQueue({ engine });
  await q.createTopic('bench', { partitions });
  let sub: Awaited<ReturnType<typeof q.subscribe>> | undefined;
  return {
    async consume(handled) {
      sub = await q.subscribe('bench', {
        group: 'bench',
        concurrency,
        handler: (m) => {
          const b = m.value as Uint8Array;
          const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
          handled(v.readUInt32LE(8), v.readDoubleLE(0));
        },
      });
    },
    async publish(i, sentAt) {
      await q.publish('bench', payload(i, sentAt), { key: `k${i % 1000}` });
    },
    async close() {
      await sub?.close();
    },
    async cleanup() {
      if (q.engine instanceof JetStreamEngine) await q.engine.destroyNamespace();
      await q.close();
    },
  };
}

async function bullmq(concurrency: number): Promise<Target & { cleanup(): Promise<void> }> {
  const name = `ppbench-${process.pid}-${Date.now().toString(36)}`;
  const conn = new IORedis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  const wconn = new IORedis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  const queue = new BullQueue(name, { connection: conn });
  let worker: BullWorker | undefined;
  const body = 'a'.repeat(MSG_BYTES - 40);
  return {
    async consume(handled) {
      worker = new BullWorker(
        name,
        async (job) => {
          const d = job.data as { i: number; t: number };
          handled(d.i, d.t);
        },
        { connection: wconn, concurrency },
      );
      await worker.waitUntilReady();
    },
    async publish(i, sentAt) {
      await queue.add('m', { i, t: sentAt, p: body }, { removeOnComplete: true });
    },
    async close() {
      await worker?.close();
    },
    async cleanup() {
      await queue.obliterate({ force: true });
      await queue.close();
      conn.disconnect();
      wconn.disconnect();
    },
  };
}

async function pgboss(concurrency: number): Promise<Target & { cleanup(): Promise<void> }> {
  const schema = `ppbench_${process.pid}_${Date.now().toString(36)}`;
  const boss = new PgBoss({ connectionString: PG_URL, schema, max: 20, supervise: false, schedule: false, migrate: true });
  boss.on('error', () => undefined);
  await boss.start();
  const name = 'bench';
  await boss.createQueue(name);
  const body = 'a'.repeat(MSG_BYTES - 40);
  return {
    async consume(handled) {
      // pg-boss 10 has no per-worker concurrency: a worker fetches `batchSize` jobs, runs the
      // handler, then waits out the polling interval (>= 0.5 s) before fetching again. So its best
      // setting is many workers with big batches (here 10 x 100 = 1000 in flight, vs 50 for the others).
      void concurrency;
      for (let w = 0; w < 10; w++) {
        await boss.work<{ i: number; t: number }>(name, { batchSize: 100, pollingIntervalSeconds: 0.5 }, async (jobs) => {
          for (const j of jobs) handled(j.data.i, j.data.t);
        });
      }
    },
    async publish(i, sentAt) {
      await boss.send(name, { i, t: sentAt, p: body });
    },
    async close() {
      await boss.offWork(name);
    },
    async cleanup() {
      await boss.stop({ graceful: false, wait: true });
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

async function measure(system: string, n: number, publishers: number, make: () => Promise<Target & { cleanup(): Promise<void> }>): Promise<Result | undefined> {
  let t: (Target & { cleanup(): Promise<void> }) | undefined;
  try {
    t = await make();
    const r = await drive(system, n, publishers, t);
    process.stderr.write(`${system}: ${Math.round(r.rate)} msgs/s, p99 ${r.p99Ms.toFixed(1)} ms\n`);
    return r;
  } catch (err) {
    process.stderr.write(`${system}: failed: ${(err as Error).message}\n`);
    return undefined;
  } finally {
    await t?.cleanup().catch((err: unknown) => process.stderr.write(`${system}: cleanup failed: ${(err as Error).message}\n`));
  }
}

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const n = arg(args, 'n', 100_000);
  const peerN = arg(args, 'peer-n', 15_000);
  const publishers = arg(args, 'publishers', 256);
  const concurrency = arg(args, 'concurrency', 50);
  const partitions = arg(args, 'partitions', 4);
  const dir = mkdtempSync(join(tmpdir(), 'pp-bench-queue-'));
  const results: Result[] = [];
  try {
    const ours = await measure('powerplant (embedded log)', n, publishers, () => powerplant(`file:${join(dir, 'q')}`, concurrency, partitions));
    const js = await measure('powerplant (JetStream)', n, publishers, () => powerplant(`${NATS_URL}?ns=ppbench${process.pid}`, concurrency, partitions));
    const bull = await measure('bullmq 6.7 (Redis)', peerN, publishers, () => bullmq(concurrency));
    const boss = await measure('pg-boss 10 (PostgreSQL)', Math.min(peerN, 10_000), publishers, () => pgboss(concurrency));
    for (const r of [ours, js, bull, boss]) if (r !== undefined) results.push(r);
    console.log(`\nqueue: durable ${MSG_BYTES} B messages, publish + consume with acks, ${publishers} publishers, consumer concurrency ${concurrency}\n`);
    console.log(
      formatTable(
        results.map((r) => ({
          system: r.system,
          msgs: r.msgs,
          seconds: r.seconds.toFixed(2),
          'msgs/s': Math.round(r.rate),
          'p50 ms': r.p50Ms.toFixed(1),
          'p99 ms': r.p99Ms.toFixed(1),
          dups: r.duplicates,
        })),
      ),
    );
    const ratio = (a: Result | undefined, b: Result | undefined): number | null => (a === undefined || b === undefined ? null : Math.round((a.rate / b.rate) * 100) / 100);
    return {
      unit: 'msgs/s',
      ours: ours === undefined ? null : Math.round(ours.rate),
      peer: 'bullmq',
      peer_value: bull === undefined ? null : Math.round(bull.rate),
      ratio: ratio(ours, bull),
      ratio_vs_pgboss: ratio(ours, boss),
      ratio_jetstream_vs_bullmq: ratio(js, bull),
      p99_ms: ours === undefined ? null : Math.round(ours.p99Ms * 10) / 10,
      jetstream: js === undefined ? null : Math.round(js.rate),
      jetstream_p99_ms: js === undefined ? null : Math.round(js.p99Ms * 10) / 10,
      pgboss: boss === undefined ? null : Math.round(boss.rate),
      pgboss_p99_ms: boss === undefined ? null : Math.round(boss.p99Ms * 10) / 10,
      bullmq_p99_ms: bull === undefined ? null : Math.round(bull.p99Ms * 10) / 10,
      floor_ratio_5: ours !== undefined && bull !== undefined ? ours.rate / bull.rate >= 5 : null,
      floor_jetstream_1: js !== undefined && bull !== undefined ? js.rate / bull.rate >= 1 : null,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
