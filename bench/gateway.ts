/**
 * HTTP GET through the gateway to an in-process action returning a small JSON, vs a bare Fastify
 * route returning the same JSON (bench/_gateway-server.ts), driven by wrk when it is on PATH (else
 * autocannon) with the same settings for every side.
 *
 * DRIVER: autocannon runs in Node on one core and needs about as much CPU per request as the
 * servers do (~27 us vs ~24-30 us here), so on a loaded 2-core machine the client could be the
 * limit. wrk (C, `apt-get install -y wrk`) needs about half that (~14 us/req), leaving the server
 * as the first to run out of CPU. Neither helps when other jobs share the SERVER's core: the
 * run-queue wait column shows that.
 * wrk runs with ONE thread: the client is pinned to one CPU, where a second thread could only
 * time-slice with the first (more context switches, no more client capacity); one epoll thread
 * keeps all connections busy. Measured with `--latency` (req/s, p50/p99 from its text output);
 * warmed up by a request COUNT like autocannon (a Lua script stops the thread at the count and
 * the parent ends wrk with SIGINT). `--driver autocannon|wrk` forces one.
 *
 * METHOD, shaped by this 2-core machine being shared with other engineers' jobs (load average
 * 5-11 while this was written, drifting within seconds):
 *  - every server is a child process; the load generator (wrk as a child process, or autocannon in
 *    this process) uses the same connections, pipelining (1) and duration for every side;
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
 *    the order rotating from round to round so no side always goes first (both drivers);
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
 * --connections N (50), --driver wrk|autocannon (default: wrk if on PATH), --no-schema-peer, --no-pin,
 * --aa, --quick (3 rounds, 1 s windows).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { children, cpuOf, median, numArg, runQueueWaitNs, setAffinity, startChild, stopChild } from './_util.js';

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
  /**
   * Time the server's main thread spent runnable but not running (Linux /proc schedstat) / window
   * length: other processes on its CPU. NaN where unavailable.
   */
  serverWait: number;
  errors: number;
  non2xx: number;
}

interface Server {
  child: ChildProcess;
  port: number;
}

async function startServer(impl: Side['impl'], serverCpu: number | undefined): Promise<Server> {
  const { child, ready } = await startChild(`${impl} server`, join(here, '_gateway-server.ts'), [impl], { cpu: serverCpu, ready: /port (\d+)/ });
  return { child, port: Number(ready[1]) };
}

type DriverName = 'wrk' | 'autocannon';

/** What one measured window of the load generator returns. */
interface Load {
  reqPerSec: number;
  total: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

interface Driver {
  name: DriverName;
  /** Sends `requests` requests (discarded), then returns. */
  warmUp(url: string, connections: number, requests: number): Promise<void>;
  measure(url: string, connections: number, durationS: number): Promise<Load>;
  close(): void;
}

/** `wrk` found on PATH (an executable file), without running it. */
function wrkOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, 'wrk');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

const autocannonDriver: Driver = {
  name: 'autocannon',
  async warmUp(url, connections, requests) {
    if (requests > 0) await autocannon({ url, connections, pipelining: 1, amount: requests });
  },
  async measure(url, connections, durationS) {
    const r = await autocannon({ url, connections, pipelining: 1, duration: durationS });
    return { reqPerSec: r.requests.total / durationS, total: r.requests.total, p99Ms: r.latency.p99, errors: r.errors, non2xx: r.non2xx };
  },
  close() {},
};

/** One thread: see the header (the client is pinned to one CPU). */
const WRK_THREADS = 1;

/** Warm-up script: counts responses, stops the thread at the count and says so on stdout. */
const WARMUP_LUA = `local n, limit, said = 0, 0, false
function init(args) limit = tonumber(args[1]) end
function response(status, headers, body)
  n = n + 1
  if n >= limit and not said then
    said = true
    wrk.thread:stop()
    io.write("powerplant-warmup-done\\n")
    io.flush()
  end
end
`;

interface WrkRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs wrk as a child process (killed by its PID if it outlives `boundMs`); `onLine` sees its stdout
 * line by line. With the parent pinned, the child inherits the client CPU.
 */
function runWrk(bin: string, args: string[], boundMs: number, onLine?: (line: string, child: ChildProcess) => void): Promise<WrkRun> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let pending = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, boundMs);
    child.stdout?.on('data', (d: Buffer) => {
      const text = d.toString();
      stdout += text;
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        onLine?.(line, child);
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (timedOut) reject(new Error(`wrk ${args.join(' ')} did not finish within ${boundMs / 1000} s; killed (pid ${child.pid})`));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

const TIME_UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** `1.67ms`, `850.00us`, `1.02s`, `1.00m` -> milliseconds; NaN when it is none of these. */
export function wrkTimeMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  return m === null ? Number.NaN : Number(m[1]) * (TIME_UNIT_MS[m[2] as string] as number);
}

/**
 * Parses wrk 4.x text output run with `--latency`: `Requests/sec:`, `N requests in T, X read`, the
 * latency distribution's 50 % and 99 % lines, `Socket errors: ...` and `Non-2xx or 3xx responses:`
 * (those two appear only when non-zero). Throws, quoting the output, when a required line is missing.
 */
export function parseWrk(out: string): Load & { p50Ms: number; runtimeS: number } {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(out);
    if (m === null) throw new Error(`wrk output has no ${what}:\n${out}`);
    return m;
  };
  const reqPerSec = Number(need(/^\s*Requests\/sec:\s+([\d.]+)\s*$/m, 'Requests/sec line')[1]);
  const totalLine = need(/^\s*(\d+) requests in ([\d.]+(?:us|ms|s|m|h)),/m, '"N requests in T" line');
  const total = Number(totalLine[1]);
  const runtimeS = wrkTimeMs(totalLine[2] as string) / 1e3;
  // The lines right after `Latency Distribution`, each `<percent>%  <time>`.
  const lines = out.split('\n');
  const from = lines.findIndex((l) => l.trim() === 'Latency Distribution');
  if (from < 0) throw new Error(`wrk output has no latency distribution (run with --latency):\n${out}`);
  const dist = new Map<string, number>();
  for (const l of lines.slice(from + 1)) {
    const m = /^\s*([\d.]+)%\s+(\S+)\s*$/.exec(l);
    if (m === null) break;
    dist.set(Number(m[1]).toString(), wrkTimeMs(m[2] as string));
  }
  const pct = (p: number): number => {
    const ms = dist.get(p.toString());
    if (ms === undefined || !Number.isFinite(ms)) throw new Error(`wrk output has no usable ${p}% latency:\n${out}`);
    return ms;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = sock === null ? 0 : sock.slice(1, 5).reduce((a, x) => a + Number(x), 0);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  if (!Number.isFinite(reqPerSec) || !Number.isFinite(total) || !Number.isFinite(runtimeS)) throw new Error(`wrk output not understood:\n${out}`);
  return { reqPerSec, total, runtimeS, p50Ms: pct(50), p99Ms: pct(99), errors, non2xx };
}

function wrkDriver(bin: string): Driver {
  const dir = mkdtempSync(join(tmpdir(), 'pp-gateway-bench-'));
  const script = join(dir, 'warmup.lua');
  writeFileSync(script, WARMUP_LUA);
  const base = (connections: number): string[] => ['-t', String(WRK_THREADS), '-c', String(Math.max(WRK_THREADS, connections))];
  return {
    name: 'wrk',
    async warmUp(url, connections, requests) {
      if (requests <= 0) return;
      // wrk has no request count: the script stops its thread at the count and prints a marker, on
      // which we end wrk with SIGINT (its main thread would otherwise sleep out -d). -d bounds it.
      const boundS = 120;
      let done = false;
      const run = await runWrk(bin, [...base(connections), '-d', `${boundS}s`, '-s', script, url, '--', String(requests)], (boundS + 30) * 1e3, (line, child) => {
        if (!done && line.includes('powerplant-warmup-done')) {
          done = true;
          child.kill('SIGINT');
        }
      });
      if (!done && run.code !== 0) throw new Error(`wrk warm-up failed (${run.code ?? run.signal}): ${run.stderr}${run.stdout}`);
      if (!done) process.stderr.write(`gateway bench: wrk warm-up did not reach ${requests} requests within ${boundS} s; measuring anyway\n`);
    },
    async measure(url, connections, durationS) {
      const run = await runWrk(bin, [...base(connections), '-d', `${durationS}s`, '--latency', url], (durationS + 30) * 1e3);
      if (run.code !== 0) throw new Error(`wrk exited with ${run.code ?? run.signal}: ${run.stderr}${run.stdout}`);
      const r = parseWrk(run.stdout);
      return { reqPerSec: r.reqPerSec, total: r.total, p99Ms: r.p99Ms, errors: r.errors, non2xx: r.non2xx };
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function drive(driver: Driver, server: Server, connections: number, durationS: number): Promise<Sample> {
  const cpu0 = await cpuOf(server.child);
  const wait0 = runQueueWaitNs(server.child.pid);
  const t0 = process.hrtime.bigint();
  const r = await driver.measure(`http://127.0.0.1:${server.port}/products/p1`, connections, durationS);
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const wait1 = runQueueWaitNs(server.child.pid);
  const cpu1 = await cpuOf(server.child);
  const n = Math.max(1, r.total);
  return {
    reqPerSec: r.reqPerSec, p99Ms: r.p99Ms,
    userUsPerReq: (cpu1.userUs - cpu0.userUs) / n, sysUsPerReq: (cpu1.sysUs - cpu0.sysUs) / n,
    serverUtil: (cpu1.userUs - cpu0.userUs + cpu1.sysUs - cpu0.sysUs) / (wallS * 1e6),
    serverWait: (wait1 - wait0) / (wallS * 1e9),
    errors: r.errors, non2xx: r.non2xx,
  };
}

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const argNum = (flag: string, dflt: number): number => numArg(args, flag, dflt);
  const rounds = argNum('--rounds', quick ? 3 : 8);
  const warmupRounds = argNum('--warmup-rounds', 1);
  const durationS = argNum('--duration-s', quick ? 1 : 2);
  const warmupRequests = argNum('--warmup-requests', 30_000);
  const connections = argNum('--connections', 50);
  const aa = args.includes('--aa');
  const di = args.indexOf('--driver');
  const driverArg = di >= 0 ? args[di + 1] : undefined;
  if (driverArg !== undefined && driverArg !== 'wrk' && driverArg !== 'autocannon') throw new Error('--driver needs wrk or autocannon');
  const wrkBin = driverArg === 'autocannon' ? undefined : wrkOnPath();
  if (driverArg === 'wrk' && wrkBin === undefined) throw new Error('--driver wrk: no wrk on PATH (apt-get install -y wrk)');
  const driver = wrkBin === undefined ? autocannonDriver : wrkDriver(wrkBin);
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
        await driver.warmUp(`http://127.0.0.1:${server.port}/products/p1`, connections, warmupRequests); // JIT, connections: discarded
        round[i] = await drive(driver, server, connections, durationS);
      }
      await Promise.all(servers.map(async (s) => {
        await stopChild(s.child);
        running.delete(s);
      }));
      if (r < warmupRounds) continue;
      sides.forEach((_, i) => samples[i]?.push(round[i] as Sample));
      const line = sides.map((s, i) => `${s.name} ${(round[i] as Sample).reqPerSec.toFixed(0)}`).join('  ');
      console.log(`round ${r - warmupRounds + 1}/${rounds}: ${line}  ratio ${((round[0] as Sample).reqPerSec / (round[1] as Sample).reqPerSec).toFixed(3)}`);
    }
  } finally {
    await Promise.all([...running].map((s) => stopChild(s.child)));
    if (restoreAffinity !== undefined) setAffinity(process.pid, restoreAffinity);
    driver.close();
  }

  const of = (i: number): Sample[] => samples[i] as Sample[];
  const med = (i: number, f: (s: Sample) => number): number => median(of(i).map(f));
  const pairedRatios = (i: number): number[] => of(0).map((s, r) => s.reqPerSec / (of(i)[r] as Sample).reqPerSec);
  const cpu = (s: Sample): number => s.userUsPerReq + s.sysUsPerReq;
  const load1 = loadavg()[0] as number;

  const driverDesc = driver.name === 'wrk' ? `wrk (${WRK_THREADS} thread, --latency)` : 'autocannon (wrk not on PATH or --driver autocannon)';
  console.log(`\ngateway: GET /products/:id, driver ${driverDesc}, ${connections} connections, pipelining 1; ${rounds} rounds of ${durationS} s per side (+${warmupRounds} warm-up round(s), +${warmupRequests} warm-up requests per window); fresh server processes per round`);
  console.log(`${cpuCount} CPUs, shared: load average ${load0.toFixed(1)} at start, ${load1.toFixed(1)} at end; ${serverCpu === undefined ? 'not pinned' : `servers pinned to CPU ${serverCpu}, ${driver.name} to CPU 0`}`);
  console.log('side              req/s (median)   p99 ms   CPU us/req: user    sys  total   server CPU use  run-queue wait   errors  non-2xx  driver');
  sides.forEach((s, i) => {
    const errors = of(i).reduce((a, x) => a + x.errors, 0);
    const non2xx = of(i).reduce((a, x) => a + x.non2xx, 0);
    console.log(`${s.name.padEnd(16)} ${med(i, (x) => x.reqPerSec).toFixed(0).padStart(14)} ${med(i, (x) => x.p99Ms).toFixed(1).padStart(8)} ${med(i, (x) => x.userUsPerReq).toFixed(1).padStart(17)} ${med(i, (x) => x.sysUsPerReq).toFixed(1).padStart(6)} ${med(i, cpu).toFixed(1).padStart(6)} ${`${(med(i, (x) => x.serverUtil) * 100).toFixed(0)} %`.padStart(16)} ${`${(med(i, (x) => x.serverWait) * 100).toFixed(0)} %`.padStart(15)} ${String(errors).padStart(8)} ${String(non2xx).padStart(8)}  ${driver.name}`);
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
    peer_value: Math.round(med(1, (x) => x.reqPerSec)), ratio: +ratio.toFixed(3), driver: driver.name, ratio_of_medians: +ratioOfMedians.toFixed(3),
    cpu_us_per_req: +med(0, cpu).toFixed(1), peer_cpu_us_per_req: +med(1, cpu).toFixed(1), cpu_ratio: +cpuRatio.toFixed(3), user_cpu_ratio: +userCpuRatio.toFixed(3),
    p99_ms: +med(0, (x) => x.p99Ms).toFixed(3), peer_p99_ms: +med(1, (x) => x.p99Ms).toFixed(3), rounds, connections, ...extra,
  };
}
