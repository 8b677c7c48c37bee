/**
 * HTTP GET through the gateway to an in-process action returning a small JSON, vs a bare Fastify
 * route returning the same JSON (bench/_gateway-server.ts), driven by autocannon with the same
 * settings for every side.
 *
 * METHOD, shaped by this 2-core machine being shared with other engineers' jobs (load average
 * 5-11 while this was written, drifting within seconds):
 *  - every server is a child process; autocannon runs here, with the same connections, pipelining
 *    and duration for every side;
 *  - with `taskset` and >= 2 CPUs, the server is pinned to the last CPU and this process (the load
 *    generator) to the first, for every side alike. Unpinned, each fresh pair of processes landed
 *    either on separate cores or on one core ping-ponging (~10k context switches/s instead of
 *    ~700), and that coin flip moved throughput 2-3x between rounds for the SAME server (bare
 *    Fastify measured 14.6k and 50k req/s in consecutive runs). Pinned, the remaining noise is the
 *    other jobs on the machine. `--no-pin` turns it off;
 *  - a ROUND starts a fresh process per side (an A/A run with long-lived processes showed a steady
 *    ~12 % gap in favour of whichever process the scheduler placed better; fresh processes per
 *    round spread that placement luck), warms each up with `--warmup-requests` requests
 *    (discarded; a COUNT, not a time: under load a 1 s warm-up left the side with more code to
 *    optimise (ours) less JIT-compiled than the other), then measures each for `--duration-s`,
 *    the order rotating from round to round so no side always goes first;
 *  - the first `--warmup-rounds` rounds are discarded whole (page cache, CPU frequency, tsx cache);
 *  - reported: the median over rounds of the per-round ratio ours / peer (`ratio`: adjacent
 *    windows see nearly the same machine load, so drift cancels), the ratio of the two medians
 *    (`ratio_of_medians`), and the server CPU per request (user and system, from
 *    process.cpuUsage() of the server around the measured window). CPU per request barely depends
 *    on how much CPU the server was GIVEN, so it is the steadier figure on a loaded machine; the
 *    user part is where the two sides' code differs (the system part is the loopback syscalls).
 *  - `fastify-schema` (the peer route with the same response schema as our action's result) is
 *    measured alongside, to show how much of the ratio the fast-json-stringify serializer explains.
 *  - `--aa` runs the calibration: bare Fastify on both sides. Its ratios show the method's noise.
 *
 * Args: --rounds N (default 8), --warmup-rounds N (1), --duration-s N (2), --warmup-requests N (30000),
 * --connections N (50), --no-schema-peer, --no-pin, --aa, --quick (3 rounds, 1 s windows).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));

interface Side {
  name: string;
  impl: 'ours' | 'fastify' | 'fastify-schema';
}

interface Sample {
  reqPerSec: number;
  p99Ms: number;
  userUsPerReq: number;
  sysUsPerReq: number;
  /** Server CPU time / window length: near 1, the server was the bottleneck; well below, the load generator or the machine was. */
  serverUtil: number;
  errors: number;
  non2xx: number;
}

interface Server {
  child: ChildProcess;
  port: number;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Sets the CPU affinity of every thread of `pid`; returns the previous list, or undefined without taskset. */
function setAffinity(pid: number, cpuList: string): string | undefined {
  try {
    const before = /: ([\d,-]+)\s*$/.exec(execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' }))?.[1];
    execFileSync('taskset', ['-a', '-c', '-p', cpuList, String(pid)], { stdio: 'ignore' });
    return before;
  } catch {
    return undefined;
  }
}

function startServer(impl: Side['impl'], serverCpu: number | undefined): Promise<Server> {
  const argv = [process.execPath, '--import', 'tsx', join(here, '_gateway-server.ts'), impl];
  const [cmd, ...rest] = serverCpu === undefined ? argv : ['taskset', '-c', String(serverCpu), ...argv];
  const child = spawn(cmd as string, rest, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.add(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${impl} server did not start within 60 s`)), 60_000);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${impl} server exited with ${code}`));
    });
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

function cpuOf(child: ChildProcess): Promise<{ userUs: number; sysUs: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not report its CPU within 10 s')), 10_000);
    child.once('message', (m: { userUs: number; sysUs: number }) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.send('cpu');
  });
}

async function warmUp(server: Server, connections: number, requests: number): Promise<void> {
  if (requests > 0) await autocannon({ url: `http://127.0.0.1:${server.port}/products/p1`, connections, pipelining: 1, amount: requests });
}

async function drive(server: Server, connections: number, durationS: number): Promise<Sample> {
  const cpu0 = await cpuOf(server.child);
  const r = await autocannon({ url: `http://127.0.0.1:${server.port}/products/p1`, connections, pipelining: 1, duration: durationS });
  const cpu1 = await cpuOf(server.child);
  const n = Math.max(1, r.requests.total);
  return {
    reqPerSec: r.requests.total / durationS, p99Ms: r.latency.p99,
    userUsPerReq: (cpu1.userUs - cpu0.userUs) / n, sysUsPerReq: (cpu1.sysUs - cpu0.sysUs) / n,
    serverUtil: (cpu1.userUs - cpu0.userUs + cpu1.sysUs - cpu0.sysUs) / (durationS * 1e6),
    errors: r.errors, non2xx: r.non2xx,
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const argNum = (flag: string, dflt: number): number => {
    const i = args.indexOf(flag);
    const v = i >= 0 ? Number(args[i + 1]) : dflt;
    if (!Number.isFinite(v) || v < 0) throw new Error(`${flag} needs a number >= 0`);
    return v;
  };
  const rounds = argNum('--rounds', quick ? 3 : 8);
  const warmupRounds = argNum('--warmup-rounds', 1);
  const durationS = argNum('--duration-s', quick ? 1 : 2);
  const warmupRequests = argNum('--warmup-requests', 30_000);
  const connections = argNum('--connections', 50);
  const aa = args.includes('--aa');
  const sides: Side[] = aa
    ? [{ name: 'fastify-a', impl: 'fastify' }, { name: 'fastify-b', impl: 'fastify' }]
    : [{ name: 'powerplant', impl: 'ours' }, { name: 'fastify', impl: 'fastify' }];
  if (!aa && !args.includes('--no-schema-peer')) sides.push({ name: 'fastify+schema', impl: 'fastify-schema' });
  const samples: Sample[][] = sides.map(() => []);
  const load0 = loadavg()[0] as number;
  const running = new Set<Server>();
  const cpuCount = cpus().length;
  const restoreAffinity = !args.includes('--no-pin') && cpuCount >= 2 ? setAffinity(process.pid, '0') : undefined;
  const serverCpu = restoreAffinity === undefined ? undefined : cpuCount - 1;
  try {
    for (let r = 0; r < warmupRounds + rounds; r++) {
      const servers = await Promise.all(sides.map((s) => startServer(s.impl, serverCpu)));
      for (const s of servers) running.add(s);
      const order = sides.map((_, i) => (i + r) % sides.length);
      const round: Sample[] = [];
      for (const i of order) {
        const server = servers[i] as Server;
        await warmUp(server, connections, warmupRequests); // JIT, connections: discarded
        round[i] = await drive(server, connections, durationS);
      }
      await Promise.all(servers.map(async (s) => {
        await stopServer(s.child);
        running.delete(s);
      }));
      if (r < warmupRounds) continue;
      sides.forEach((_, i) => samples[i]?.push(round[i] as Sample));
      const line = sides.map((s, i) => `${s.name} ${(round[i] as Sample).reqPerSec.toFixed(0)}`).join('  ');
      console.log(`round ${r - warmupRounds + 1}/${rounds}: ${line}  ratio ${((round[0] as Sample).reqPerSec / (round[1] as Sample).reqPerSec).toFixed(3)}`);
    }
  } finally {
    await Promise.all([...running].map((s) => stopServer(s.child)));
    if (restoreAffinity !== undefined) setAffinity(process.pid, restoreAffinity);
  }

  const of = (i: number): Sample[] => samples[i] as Sample[];
  const med = (i: number, f: (s: Sample) => number): number => median(of(i).map(f));
  const pairedRatios = (i: number): number[] => of(0).map((s, r) => s.reqPerSec / (of(i)[r] as Sample).reqPerSec);
  const cpu = (s: Sample): number => s.userUsPerReq + s.sysUsPerReq;
  const load1 = loadavg()[0] as number;

  console.log(`\ngateway: GET /products/:id, autocannon ${connections} connections, pipelining 1; ${rounds} rounds of ${durationS} s per side (+${warmupRounds} warm-up round(s), +${warmupRequests} warm-up requests per window); fresh server processes per round`);
  console.log(`${cpuCount} CPUs, shared: load average ${load0.toFixed(1)} at start, ${load1.toFixed(1)} at end; ${serverCpu === undefined ? 'not pinned' : `servers pinned to CPU ${serverCpu}, autocannon to CPU 0`}`);
  console.log('side              req/s (median)   p99 ms   CPU us/req: user    sys  total   server CPU use   errors  non-2xx');
  sides.forEach((s, i) => {
    const errors = of(i).reduce((a, x) => a + x.errors, 0);
    const non2xx = of(i).reduce((a, x) => a + x.non2xx, 0);
    console.log(`${s.name.padEnd(16)} ${med(i, (x) => x.reqPerSec).toFixed(0).padStart(14)} ${med(i, (x) => x.p99Ms).toFixed(1).padStart(8)} ${med(i, (x) => x.userUsPerReq).toFixed(1).padStart(17)} ${med(i, (x) => x.sysUsPerReq).toFixed(1).padStart(6)} ${med(i, cpu).toFixed(1).padStart(6)} ${`${(med(i, (x) => x.serverUtil) * 100).toFixed(0)} %`.padStart(16)} ${String(errors).padStart(8)} ${String(non2xx).padStart(8)}`);
  });
  const ratio = median(pairedRatios(1));
  const ratioOfMedians = med(0, (x) => x.reqPerSec) / med(1, (x) => x.reqPerSec);
  const cpuRatio = med(1, cpu) / med(0, cpu);
  const userCpuRatio = med(1, (x) => x.userUsPerReq) / med(0, (x) => x.userUsPerReq);
  console.log(`vs ${sides[1]?.name}: ratio (median of per-round ratios) ${ratio.toFixed(3)} (floor 0.85); per-round ${pairedRatios(1).map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`   ratio of medians ${ratioOfMedians.toFixed(3)}; CPU per request, peer / ours: total ${cpuRatio.toFixed(3)}, user ${userCpuRatio.toFixed(3)} (the throughput ratio a CPU-bound server would see)`);
  const extra: Record<string, unknown> = {};
  if (sides.length > 2) {
    const r2 = median(pairedRatios(2));
    const cpu2 = med(2, cpu) / med(0, cpu);
    console.log(`vs ${sides[2]?.name}: ratio ${r2.toFixed(3)}; per-round ${pairedRatios(2).map((x) => x.toFixed(2)).join(' ')}; CPU per request, peer / ours ${cpu2.toFixed(3)}`);
    extra.schema_peer_value = Math.round(med(2, (x) => x.reqPerSec));
    extra.schema_peer_ratio = +r2.toFixed(3);
    extra.schema_peer_cpu_ratio = +cpu2.toFixed(3);
  }
  return {
    unit: 'req/s', ours: Math.round(med(0, (x) => x.reqPerSec)), peer: aa ? 'fastify (A/A calibration)' : 'fastify',
    peer_value: Math.round(med(1, (x) => x.reqPerSec)), ratio: +ratio.toFixed(3), ratio_of_medians: +ratioOfMedians.toFixed(3),
    cpu_us_per_req: +med(0, cpu).toFixed(1), peer_cpu_us_per_req: +med(1, cpu).toFixed(1), cpu_ratio: +cpuRatio.toFixed(3), user_cpu_ratio: +userCpuRatio.toFixed(3),
    p99_ms: med(0, (x) => x.p99Ms), peer_p99_ms: med(1, (x) => x.p99Ms), rounds, connections, ...extra,
  };
}
