/**
 * HTTP GET through the gateway to an in-process action returning a small JSON, vs a bare Fastify
 * route returning the same JSON. Each server runs in its own child process; autocannon drives
 * both from this process with the same settings, alternating rounds, median reported.
 *
 * Many short alternating rounds rather than a few long ones: on a shared machine the load of
 * other processes drifts, and pairing each of our rounds with the adjacent peer round cancels most
 * of it; `ratio` is the median of those per-round ratios. Args: --duration-s N (default 2), --rounds N (default 7), --connections N (default 50), --quick.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
type Impl = 'ours' | 'fastify';

interface Sample {
  reqPerSec: number;
  /** Server CPU time per request, microseconds. */
  cpuUsPerReq: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function startServer(impl: Impl): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, '_gateway-server.ts'), impl], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.add(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${impl} server did not start`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      const m = /port (\d+)/.exec(d.toString());
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
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

function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m: { cpuUs: number }) => resolve(m.cpuUs));
    child.send('cpu');
  });
}

async function drive(server: { child: ChildProcess; port: number }, connections: number, durationS: number): Promise<Sample> {
  const cpu0 = await cpuOf(server.child);
  const result = await autocannon({ url: `http://127.0.0.1:${server.port}/products/p1`, connections, pipelining: 1, duration: durationS });
  const cpuUs = (await cpuOf(server.child)) - cpu0;
  const total = result.requests.average * durationS;
  return { reqPerSec: result.requests.average, cpuUsPerReq: cpuUs / total, p99Ms: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

function median(xs: Sample[]): Sample {
  const sorted = [...xs].sort((a, b) => a.reqPerSec - b.reqPerSec);
  return sorted[Math.floor(sorted.length / 2)] as Sample;
}

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes('--quick');
  const argNum = (flag: string, dflt: number): number => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const durationS = argNum('--duration-s', quick ? 2 : 2);
  const rounds = argNum('--rounds', quick ? 3 : 6);
  const connections = argNum('--connections', 50);
  const impls: Impl[] = ['ours', 'fastify'];
  const samples: Record<Impl, Sample[]> = { ours: [], fastify: [] };
  let current: { child: ChildProcess; port: number } | undefined;
  try {
    // A fresh server process per round, in alternating order: with both servers kept alive for the
    // whole run, an A/A test (the same bare Fastify as "ours" and as "peer") showed a steady ~12 %
    // gap in favour of whichever process the scheduler happened to place better. Restarting per
    // round spreads that placement luck over both sides.
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? impls : [...impls].reverse();
      for (const impl of order) {
        current = await startServer(impl);
        await drive(current, connections, 1); // warm-up: JIT, connections
        samples[impl].push(await drive(current, connections, durationS));
        await stopServer(current.child);
        current = undefined;
      }
    }
    const ours = median(samples.ours);
    const peer = median(samples.fastify);
    const paired = samples.ours.map((s, i) => s.reqPerSec / (samples.fastify[i] as Sample).reqPerSec).sort((a, b) => a - b);
    const pairedMedian = paired[Math.floor(paired.length / 2)] as number;
    console.log(`\ngateway: GET /products/:id, autocannon ${connections} connections, ${durationS} s x ${rounds} round(s), median; 2-core machine, shared`);
    const cpuMedian = (xs: Sample[]): number => {
      const v = xs.map((x) => x.cpuUsPerReq).sort((a, b) => a - b);
      return v[Math.floor(v.length / 2)] as number;
    };
    const oursCpu = cpuMedian(samples.ours);
    const peerCpu = cpuMedian(samples.fastify);
    console.log('            req/s    p99 ms  server CPU us/req  errors  non-2xx');
    for (const [name, s, cpu] of [['powerplant', ours, oursCpu], ['fastify', peer, peerCpu]] as const) {
      console.log(`${name.padEnd(10)} ${s.reqPerSec.toFixed(0).padStart(7)} ${s.p99Ms.toFixed(1).padStart(9)} ${cpu.toFixed(1).padStart(18)} ${String(s.errors).padStart(7)} ${String(s.non2xx).padStart(8)}`);
    }
    console.log(`CPU per request, peer / ours: ${(peerCpu / oursCpu).toFixed(3)} (the throughput ratio a CPU-bound server would see)`);
    console.log(`ratio (median of per-round ratios) ${pairedMedian.toFixed(3)} (floor 0.85); per-round ${paired.map((x) => x.toFixed(2)).join(' ')}; ratio of medians ${(ours.reqPerSec / peer.reqPerSec).toFixed(3)}`);
    return {
      // ratio: median over rounds of (ours / peer) in the same round. Adjacent rounds see nearly the
      // same machine load; the ratio of the two medians mixes rounds minutes apart and, in an A/A
      // run (bare Fastify on both sides), read 0.82 where the paired median read 1.03.
      unit: 'req/s', ours: Math.round(ours.reqPerSec), peer: 'fastify', peer_value: Math.round(peer.reqPerSec),
      ratio: +pairedMedian.toFixed(3), ratio_of_medians: +(ours.reqPerSec / peer.reqPerSec).toFixed(3), p99_ms: ours.p99Ms, peer_p99_ms: peer.p99Ms, connections,       cpu_us_per_req: +oursCpu.toFixed(1), peer_cpu_us_per_req: +peerCpu.toFixed(1), cpu_ratio: +(peerCpu / oursCpu).toFixed(3),
    };
  } finally {
    if (current !== undefined) await stopServer(current.child);
  }
}
