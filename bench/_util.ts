/**
 * Helpers shared by the benches that run servers as child processes (gateway, shop): CPU pinning
 * with taskset, starting a child and waiting for its ready line, stopping it, asking it for its CPU
 * time over IPC, its run-queue wait, and the median. The child side of the CPU protocol is
 * `serveChild` (the parent sends 'cpu', the child answers `{userUs, sysUs}`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Every child a bench started and has not reaped yet: SIGKILLed if the bench process exits. */
export const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Sets the CPU affinity of every thread of `pid`; returns the previous list, or undefined without taskset. */
export function setAffinity(pid: number, cpuList: string): string | undefined {
  try {
    const before = /: ([\d,-]+)\s*$/.exec(execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' }))?.[1];
    execFileSync('taskset', ['-a', '-c', '-p', cpuList, String(pid)], { stdio: 'ignore' });
    return before;
  } catch {
    return undefined;
  }
}

export interface StartedChild {
  child: ChildProcess;
  /** The match of `ready` on the child's stdout. */
  ready: RegExpExecArray;
}

/**
 * Spawns `node --import tsx <script> ...args` (under `taskset -c <cpu>` when `cpu` is given) with an
 * IPC channel (`nodeArgs` go to node, e.g. --cpu-prof), and resolves once its stdout matches `ready`. Rejects if it exits first or does not
 * get ready within `timeoutMs`. stderr is inherited (a crashing server says why).
 */
export function startChild(
  name: string,
  script: string,
  args: readonly string[],
  options: { cpu?: number | undefined; ready: RegExp; timeoutMs?: number; nodeArgs?: readonly string[] },
): Promise<StartedChild> {
  const argv = [process.execPath, ...(options.nodeArgs ?? []), '--import', 'tsx', script, ...args];
  const [cmd, ...rest] = options.cpu === undefined ? argv : ['taskset', '-c', String(options.cpu), ...argv];
  const child = spawn(cmd as string, rest, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.add(child);
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs / 1000} s`)), timeoutMs);
    let out = '';
    let done = false;
    child.stdout?.on('data', (d: Buffer) => {
      if (done) return;
      out += d.toString();
      const m = options.ready.exec(out);
      if (m !== null) {
        done = true;
        clearTimeout(timer);
        resolve({ child, ready: m });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (!done) reject(new Error(`${name} exited with ${code ?? signal} before it was ready:\n${out}`));
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

/** The child's user and system CPU microseconds so far (it must run `serveChild`). */
export function cpuOf(child: ChildProcess): Promise<{ userUs: number; sysUs: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not report its CPU within 10 s')), 10_000);
    child.once('message', (m: { userUs: number; sysUs: number }) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.send('cpu');
  });
}

/**
 * Child side: answers the parent's 'cpu' requests, and runs `stop` then exits on SIGTERM, SIGINT or
 * the parent going away. CPU time is far less sensitive to other processes on a shared machine than
 * throughput is, so the parent reads it around each measured window.
 */
export function serveChild(stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    void stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('disconnect', shutdown);
  process.on('message', (m) => {
    if (m !== 'cpu') return;
    const u = process.cpuUsage();
    process.send?.({ userUs: u.user, sysUs: u.system });
  });
}

/** Nanoseconds the main thread of `pid` has waited on a run queue so far (NaN off Linux). */
export function runQueueWaitNs(pid: number | undefined): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]);
  } catch {
    return Number.NaN;
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** `--flag N` from `args` (a number >= 0), else `dflt`. */
export function numArg(args: readonly string[], flag: string, dflt: number): number {
  const i = args.indexOf(flag);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v < 0) throw new Error(`${flag} needs a number >= 0`);
  return v;
}

/** `--port N --data DIR` of a bench server process (port default 0 = a free one); exits 2 with `usage` without --data. */
export function serverArgs(usage: string): { port: number; dataDir: string } {
  const arg = (flag: string): string | undefined => {
    const i = process.argv.indexOf(flag);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const dataDir = arg('--data');
  const port = Number(arg('--port') ?? 0);
  if (dataDir === undefined || !Number.isInteger(port) || port < 0) {
    process.stderr.write(`usage: ${usage}\n`);
    process.exit(2);
  }
  return { port, dataDir };
}
