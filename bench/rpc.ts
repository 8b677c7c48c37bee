/**
 * Request/reply over one NATS server: Powerplant's NATS transport vs Moleculer 0.14 with its NATS
 * transporter (default JSON serializer, default settings).
 *
 * Each side runs its server in a child process (bench/_rpc-server.ts) and its client here, so both
 * pay one network hop through the same NATS server. For each payload size (10 B, 1 KB) and
 * concurrency (1, 100), the two are measured in alternation for `rounds` rounds (warm-up, then a
 * timed window of closed-loop callers) and the median round is reported. The last line is the 10 B,
 * concurrency 100 case.
 *
 * Args: --duration-ms N (default 2000), --rounds N (default 3), --quick (1 round, 1 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceBroker } from 'moleculer';
import { createNode } from '../src/service/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const NATS_URL = process.env.PP_NATS_URL ?? 'nats://127.0.0.1:4222';

type Impl = 'ours' | 'moleculer';
type Call = (params: { data: string }) => Promise<unknown>;

interface Sample {
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function startServer(impl: Impl, namespace: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, '_rpc-server.ts'), impl, namespace], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  children.add(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${impl} server did not start`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`${impl} server exited with ${code}`)));
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
  children.delete(child);
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Closed loop: `concurrency` callers, each calling again as soon as its call returns. */
async function measure(call: Call, payload: { data: string }, concurrency: number, warmupMs: number, durationMs: number): Promise<Sample> {
  const latencies = new Float64Array(4_000_000);
  let n = 0;
  let errors = 0;
  let recording = false;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop) {
      const t0 = performance.now();
      try {
        await call(payload);
        if (recording && n < latencies.length) latencies[n++] = performance.now() - t0;
      } catch {
        errors++;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await new Promise((r) => setTimeout(r, warmupMs));
  recording = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  recording = false;
  const elapsedMs = performance.now() - start;
  const done = n;
  stop = true;
  await Promise.all(workers);
  const sorted = latencies.subarray(0, done).sort();
  return { callsPerSec: (done / elapsedMs) * 1000, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), errors };
}

async function client(impl: Impl, namespace: string): Promise<{ call: Call; close: () => Promise<void> }> {
  if (impl === 'ours') {
    const node = createNode({ nodeId: `cli-${process.pid}`, namespace, transport: NATS_URL, logger: false, call: { concurrentPerActionMax: 10_000 } });
    await node.start();
    await node.waitFor(['bench.echo'], 20_000);
    return { call: (p) => node.callDynamic('bench.echo', p), close: () => node.stop() };
  }
  const broker = new ServiceBroker({ nodeID: `mcli-${process.pid}`, namespace, transporter: NATS_URL, logger: false });
  await broker.start();
  await broker.waitForServices(['bench'], 20_000);
  return { call: (p) => broker.call('bench.echo', p), close: () => broker.stop() };
}

function median(xs: Sample[]): Sample {
  const sorted = [...xs].sort((a, b) => a.callsPerSec - b.callsPerSec);
  return sorted[Math.floor(sorted.length / 2)] as Sample;
}

const fmt = (x: number, d = 0): string => x.toFixed(d);

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const argNum = (flag: string, dflt: number): number => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const durationMs = argNum('--duration-ms', quick ? 1_000 : 2_000);
  const rounds = argNum('--rounds', quick ? 1 : 3);
  const warmupMs = 500;
  const ns = `rpcb${process.pid}`;
  const impls: Impl[] = ['ours', 'moleculer'];

  const servers = new Map<Impl, ChildProcess>();
  const clients = new Map<Impl, { call: Call; close: () => Promise<void> }>();
  try {
    for (const impl of impls) {
      servers.set(impl, await startServer(impl, `${ns}${impl === 'ours' ? 'o' : 'm'}`));
      clients.set(impl, await client(impl, `${ns}${impl === 'ours' ? 'o' : 'm'}`));
    }
    const cases = [
      { label: '10 B', payload: { data: 'x'.repeat(10) }, concurrency: 1 },
      { label: '10 B', payload: { data: 'x'.repeat(10) }, concurrency: 100 },
      { label: '1 KB', payload: { data: 'x'.repeat(1024) }, concurrency: 1 },
      { label: '1 KB', payload: { data: 'x'.repeat(1024) }, concurrency: 100 },
    ];
    const rows: { label: string; concurrency: number; ours: Sample; peer: Sample }[] = [];
    for (const c of cases) {
      const samples: Record<Impl, Sample[]> = { ours: [], moleculer: [] };
      for (let r = 0; r < rounds; r++) {
        // Alternate which goes first so neither always gets the cooler machine.
        const order = r % 2 === 0 ? impls : [...impls].reverse();
        for (const impl of order) samples[impl].push(await measure(clients.get(impl)!.call, c.payload, c.concurrency, warmupMs, durationMs));
      }
      rows.push({ label: c.label, concurrency: c.concurrency, ours: median(samples.ours), peer: median(samples.moleculer) });
    }

    console.log(`\nrpc over NATS (${NATS_URL}), median of ${rounds} round(s) of ${durationMs} ms; 2-core machine, shared`);
    console.log('payload  conc | powerplant calls/s   p50 ms   p99 ms | moleculer calls/s   p50 ms   p99 ms | ratio');
    for (const r of rows) {
      console.log(
        `${r.label.padEnd(7)} ${String(r.concurrency).padStart(4)} | ${fmt(r.ours.callsPerSec).padStart(18)} ${fmt(r.ours.p50Ms, 3).padStart(8)} ${fmt(r.ours.p99Ms, 3).padStart(8)} | `
        + `${fmt(r.peer.callsPerSec).padStart(17)} ${fmt(r.peer.p50Ms, 3).padStart(8)} ${fmt(r.peer.p99Ms, 3).padStart(8)} | ${fmt(r.ours.callsPerSec / r.peer.callsPerSec, 2)}`
        + (r.ours.errors + r.peer.errors > 0 ? `  (errors: ours ${r.ours.errors}, peer ${r.peer.errors})` : ''),
      );
    }
    const head = rows[1]!;
    const byCase = Object.fromEntries(rows.map((r) => [`${r.label.replace(' ', '')}_c${r.concurrency}`, {
      ours: Math.round(r.ours.callsPerSec), peer_value: Math.round(r.peer.callsPerSec),
      ratio: +(r.ours.callsPerSec / r.peer.callsPerSec).toFixed(2), p99_ms: +r.ours.p99Ms.toFixed(3), peer_p99_ms: +r.peer.p99Ms.toFixed(3),
    }]));
    return {
      unit: 'calls/s', ours: Math.round(head.ours.callsPerSec), peer: 'moleculer', peer_value: Math.round(head.peer.callsPerSec),
      ratio: +(head.ours.callsPerSec / head.peer.callsPerSec).toFixed(2), p99_ms: +head.ours.p99Ms.toFixed(3), peer_p99_ms: +head.peer.p99Ms.toFixed(3),
      payload_bytes: 10, concurrency: 100, cases: byCase,
    };
  } finally {
    for (const c of clients.values()) await c.close().catch(() => undefined);
    for (const s of servers.values()) await stopServer(s);
  }
}
