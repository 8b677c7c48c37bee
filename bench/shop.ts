/**
 * The shop's request mix (examples/shop/loadmix.ts: browse 80 %, recent orders and search 15 %,
 * place order 5 %; driven by the generic load generator, src/cli/loadgen.ts) against examples/shop on the embedded default (bench/_shop-server.ts) and against the
 * handwritten Fastify + better-sqlite3 + lru-cache peer (bench/shop-peer), with the same load
 * generator, settings and seed data, in the same run.
 *
 * METHOD (the machine has 2 cores and is shared; see bench/gateway.ts for what pinning fixed there):
 *  - both servers are child processes pinned to the LAST CPU (taskset), one at a time; the load
 *    generator (`runMix`, undici, in THIS process) is pinned to the first CPU. This process's CPU use
 *    over the window is reported (`client CPU`): near 100 % with the server well below would mean the
 *    generator, not the server, set the pace;
 *  - each side keeps ONE data directory for the whole run, seeded by its first start (the same
 *    seed-data.ts on both sides), so orders placed accumulate alike on both;
 *  - a ROUND starts a fresh server process per side (placement luck and JIT state do not carry over
 *    between rounds), lets runMix sign in and discover the catalog (not measured), warms up for
 *    `--warmup` s (discarded: JIT, caches, page cache), measures `--duration` s, then stops it; the
 *    order alternates (ours first in odd rounds, the peer first in even ones);
 *  - `ratio` = median over rounds of ours / median of the peer; the per-round ratios (adjacent
 *    windows under nearly the same machine load) and their median (`ratio_paired`) are reported
 *    too; p99s are medians over rounds. On a shared machine single windows swing 2-4x (one run
 *    at load average 9-12 gave per-round ratios 0.26, 0.60, 1.09): use more rounds there;
 *  - server CPU per request (user + system, over the measured window, from the child over IPC) is
 *    reported too: it depends far less on what else runs on the machine than req/s does;
 *  - any non-2xx, network error or timeout is counted; more than 1 % of the requests of any window
 *    fails the bench (a benchmark of errors is meaningless).
 *
 * Args: --rounds N (3), --duration S (10), --warmup S (5), --connections N (64), --seed N (1),
 * --no-pin, --quick (2 rounds, 4 s windows, 2 s warm-up), --cpu-prof DIR (each server process writes a
 * V8 .cpuprofile of its whole life, start-up and sign-ins included, to DIR/ours or DIR/peer).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMix, type EndpointName, type ShopMixResult } from '../examples/shop/loadmix.js';
import { formatMixTable, runMix } from '../src/cli/loadgen.js';
import { cpuOf, median, numArg, runQueueWaitNs, setAffinity, startChild, stopChild, type StartedChild } from './_util.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Above this share of failed requests in a window the bench fails. */
const ERROR_SHARE_MAX = 0.01;

interface Side {
  name: 'ours' | 'peer';
  label: string;
  script: string;
  dataDir: string;
}

interface Window {
  result: ShopMixResult;
  /** Server CPU (user + system) per completed request over the measured window, microseconds. */
  serverCpuUsPerReq: number;
  /** Server CPU time / wall time over the window (1 = the server's core was saturated). */
  serverUtil: number;
  /** Load generator (this process) CPU time / wall time over the window. */
  clientUtil: number;
  /** Share of the window the server's main thread waited for its CPU (other processes on it). */
  serverWait: number;
  startMs: number;
}

interface Mark { wallNs: bigint; server: { userUs: number; sysUs: number }; client: NodeJS.CpuUsage; waitNs: number; completed: number }

async function mark(server: StartedChild, completed: number): Promise<Mark> {
  return { wallNs: process.hrtime.bigint(), server: await cpuOf(server.child), client: process.cpuUsage(), waitNs: runQueueWaitNs(server.child.pid), completed };
}

interface MeasureOptions { connections: number; durationMs: number; warmupMs: number; seed: number; cpuProfDir: string | undefined }

async function measure(side: Side, cpu: number | undefined, opts: MeasureOptions): Promise<Window> {
  const t0 = performance.now();
  const nodeArgs = opts.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', join(opts.cpuProfDir, side.name)];
  const server = await startChild(side.label, side.script, ['--port', '0', '--data', side.dataDir], { cpu, ready: /listening on (http:\/\/\S+)/, timeoutMs: 180_000, nodeArgs });
  const startMs = performance.now() - t0;
  try {
    // The measured window starts when runMix's warm-up ends: the first progress report past it
    // takes the CPU marks (within ~200 ms of the boundary; normalised by the requests completed
    // between the two marks, so the offset does not bias CPU per request).
    let first: Promise<Mark> | undefined;
    let completed = 0;
    const result = await runMix({
      mix: loadMix, url: server.ready[1] as string, connections: opts.connections, durationMs: opts.durationMs, warmupMs: opts.warmupMs, seed: opts.seed,
      onProgress: (p) => {
        completed = p.requests; // every completed request so far, warm-up included; the last report comes after the drain
        if (first === undefined && p.elapsedMs >= opts.warmupMs) first = mark(server, p.requests);
      },
    });
    if (first === undefined) throw new Error(`${side.label}: the load generator reported no progress past the warm-up`);
    const a = await first;
    const b = await mark(server, completed);
    const wallUs = Number(b.wallNs - a.wallNs) / 1e3;
    const serverUs = b.server.userUs - a.server.userUs + b.server.sysUs - a.server.sysUs;
    const clientUs = b.client.user - a.client.user + b.client.system - a.client.system;
    const between = Math.max(1, b.completed - a.completed);
    return {
      result, startMs,
      serverCpuUsPerReq: serverUs / between,
      serverUtil: serverUs / wallUs,
      clientUtil: clientUs / wallUs,
      serverWait: (b.waitNs - a.waitNs) / (wallUs * 1e3),
    };
  } finally {
    await stopChild(server.child);
  }
}

function checkErrors(side: Side, w: Window): void {
  const r = w.result;
  if (r.requests === 0) throw new Error(`${side.label}: no requests completed in the measured window`);
  const share = r.errors / r.requests;
  if (r.errors > 0) {
    console.log(`${side.label}: ${r.errors} of ${r.requests} requests failed (${(share * 100).toFixed(2)} %): by status ${JSON.stringify(r.byStatus)}, network ${r.networkErrors}, timeouts ${r.timeouts}`);
    for (const s of r.errorSamples) console.log(`  ${s}`);
  }
  if (share > ERROR_SHARE_MAX) {
    throw new Error(`${side.label}: ${(share * 100).toFixed(2)} % of requests failed (> ${ERROR_SHARE_MAX * 100} %): the numbers would measure errors; see the samples above`);
  }
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(0)} %` : '-');

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const rounds = Math.max(1, numArg(args, '--rounds', quick ? 2 : 3));
  const durationS = numArg(args, '--duration', quick ? 4 : 10);
  const warmupS = numArg(args, '--warmup', quick ? 2 : 5);
  const connections = numArg(args, '--connections', 64);
  const seed = numArg(args, '--seed', 1);
  const pi = args.indexOf('--cpu-prof');
  const cpuProfDir = pi >= 0 ? resolve(args[pi + 1] ?? 'shop-cpu-prof') : undefined;
  const opts: MeasureOptions = { connections, durationMs: durationS * 1000, warmupMs: warmupS * 1000, seed, cpuProfDir };

  const root = mkdtempSync(join(tmpdir(), 'pp-shop-bench-'));
  const sides: Side[] = [
    { name: 'ours', label: 'powerplant shop', script: join(here, '_shop-server.ts'), dataDir: join(root, 'ours') },
    { name: 'peer', label: 'handwritten peer', script: join(here, 'shop-peer', 'server.ts'), dataDir: join(root, 'peer') },
  ];
  const cpuCount = cpus().length;
  const restoreAffinity = !args.includes('--no-pin') && cpuCount >= 2 ? setAffinity(process.pid, '0') : undefined;
  const serverCpu = restoreAffinity === undefined ? undefined : cpuCount - 1;
  const load0 = loadavg()[0] as number;
  const windows: Record<Side['name'], Window[]> = { ours: [], peer: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        const w = await measure(side, serverCpu, opts);
        console.log(`\nround ${r + 1}/${rounds}, ${side.label} (started in ${(w.startMs / 1000).toFixed(1)} s; server CPU ${w.serverCpuUsPerReq.toFixed(0)} us/req, server busy ${pct(w.serverUtil)}, run-queue wait ${pct(w.serverWait)}, client CPU ${pct(w.clientUtil)}; load average ${(loadavg()[0] as number).toFixed(1)}):`);
        console.log(formatMixTable(w.result));
        checkErrors(side, w);
        windows[side.name].push(w);
      }
      const o = windows.ours[r] as Window;
      const p = windows.peer[r] as Window;
      console.log(`round ${r + 1}: ours ${o.result.rps.toFixed(0)} req/s, peer ${p.result.rps.toFixed(0)} req/s, ratio ${(o.result.rps / p.result.rps).toFixed(3)}`);
    }
  } finally {
    if (restoreAffinity !== undefined) setAffinity(process.pid, restoreAffinity);
    rmSync(root, { recursive: true, force: true });
  }

  const med = (name: Side['name'], f: (w: Window) => number): number => median(windows[name].map(f));
  const ours = med('ours', (w) => w.result.rps);
  const peer = med('peer', (w) => w.result.rps);
  const perRound = windows.ours.map((w, i) => w.result.rps / (windows.peer[i] as Window).result.rps);
  const endpointNames = windows.ours[0]?.result.endpoints.map((e) => e.name) ?? [];
  const ep = (name: Side['name'], e: EndpointName, f: 'rps' | 'p50Ms' | 'p99Ms'): number =>
    med(name, (w) => w.result.endpoints.find((x) => x.name === e)?.[f] ?? Number.NaN);
  const load1 = loadavg()[0] as number;

  console.log(`\nshop: ${connections} connections, ${rounds} round(s) of ${durationS} s per side (+${warmupS} s warm-up each), fresh server processes per round, seed ${seed}`);
  console.log(`${cpuCount} CPUs, shared: load average ${load0.toFixed(1)} at start, ${load1.toFixed(1)} at end; ${serverCpu === undefined ? 'not pinned' : `servers pinned to CPU ${serverCpu}, load generator to CPU 0`}`);
  console.log('medians over rounds     ours req/s   p50 ms   p99 ms   peer req/s   p50 ms   p99 ms   ratio');
  for (const e of endpointNames) {
    const label = windows.ours[0]?.result.endpoints.find((x) => x.name === e)?.label ?? e;
    const [o, p] = [ep('ours', e, 'rps'), ep('peer', e, 'rps')];
    console.log(`${label.padEnd(30)} ${o.toFixed(0).padStart(6)} ${ep('ours', e, 'p50Ms').toFixed(2).padStart(8)} ${ep('ours', e, 'p99Ms').toFixed(2).padStart(8)} ${p.toFixed(0).padStart(12)} ${ep('peer', e, 'p50Ms').toFixed(2).padStart(8)} ${ep('peer', e, 'p99Ms').toFixed(2).padStart(8)} ${(o / p).toFixed(3).padStart(7)}`);
  }
  const p99 = med('ours', (w) => w.result.p99Ms);
  const peerP99 = med('peer', (w) => w.result.p99Ms);
  console.log(`${'all'.padEnd(30)} ${ours.toFixed(0).padStart(6)} ${med('ours', (w) => w.result.p50Ms).toFixed(2).padStart(8)} ${p99.toFixed(2).padStart(8)} ${peer.toFixed(0).padStart(12)} ${med('peer', (w) => w.result.p50Ms).toFixed(2).padStart(8)} ${peerP99.toFixed(2).padStart(8)} ${(ours / peer).toFixed(3).padStart(7)}`);
  const cpuOurs = med('ours', (w) => w.serverCpuUsPerReq);
  const cpuPeer = med('peer', (w) => w.serverCpuUsPerReq);
  console.log(`server CPU per request: ours ${cpuOurs.toFixed(0)} us, peer ${cpuPeer.toFixed(0)} us (peer / ours ${(cpuPeer / cpuOurs).toFixed(3)}); server busy ${pct(med('ours', (w) => w.serverUtil))} / ${pct(med('peer', (w) => w.serverUtil))}; client CPU ${pct(med('ours', (w) => w.clientUtil))} / ${pct(med('peer', (w) => w.clientUtil))}`);
  console.log(`ratio (median ours / median peer) ${(ours / peer).toFixed(3)} (floor 0.8); per round ${perRound.map((x) => x.toFixed(3)).join(' ')} (median ${median(perRound).toFixed(3)})`);

  const endpoints = Object.fromEntries(endpointNames.map((e) => [e, {
    ours: Math.round(ep('ours', e, 'rps')), peer_value: Math.round(ep('peer', e, 'rps')), ratio: +(ep('ours', e, 'rps') / ep('peer', e, 'rps')).toFixed(3),
    p50_ms: +ep('ours', e, 'p50Ms').toFixed(3), peer_p50_ms: +ep('peer', e, 'p50Ms').toFixed(3),
    p99_ms: +ep('ours', e, 'p99Ms').toFixed(3), peer_p99_ms: +ep('peer', e, 'p99Ms').toFixed(3),
  }]));
  return {
    unit: 'req/s', ours: Math.round(ours), peer: 'handwritten', peer_value: Math.round(peer), ratio: +(ours / peer).toFixed(3),
    p99_ms: +p99.toFixed(3), peer_p99_ms: +peerP99.toFixed(3), ratio_paired: +median(perRound).toFixed(3),
    rounds: windows.ours.map((w, i) => ({ ours: Math.round(w.result.rps), peer_value: Math.round((windows.peer[i] as Window).result.rps), ratio: +(perRound[i] as number).toFixed(3) })),
    endpoints,
    cpu_us_per_req: +cpuOurs.toFixed(1), peer_cpu_us_per_req: +cpuPeer.toFixed(1),
    connections, duration_s: durationS, warmup_s: warmupS, load_average: [+load0.toFixed(1), +load1.toFixed(1)], pinned: serverCpu !== undefined,
  };
}
