/**
 * Child processes for fault tests: run a TypeScript fixture in its own Node process, read its
 * stdout line by line, and SIGKILL it (no shutdown hook, no flush) at the moment a line says so.
 * Every child started here is tracked, so a suite can kill leftovers even when a test failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const running = new Set<ChildProcess>();

/** SIGKILLs every child still running (call from afterEach/afterAll). */
export function killChildren(): void {
  for (const ch of running) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
  running.clear();
}

/**
 * Runs `node --import tsx <fixture> ...args` from the repository root and feeds each stdout line to
 * `onLine`; when it returns true the child is SIGKILLed. Resolves once the child died of that
 * SIGKILL; rejects (with its stderr) if it exited any other way first. Lines the child printed
 * before it died but that arrive after the kill are passed on only with `deliverAfterKill` (a
 * durability test wants every acknowledgement; a test that judges the state at the kill does not).
 */
export function runUntilKilled(
  fixture: string,
  args: readonly string[],
  onLine: (line: string) => boolean,
  options: { deliverAfterKill?: boolean } = {},
): Promise<void> {
  const deliverAfterKill = options.deliverAfterKill ?? false;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let buf = '';
    let stderr = '';
    let killed = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((!killed || deliverAfterKill) && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (onLine(line) && !killed) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (_code, signal) => {
      running.delete(child);
      if (killed && signal === 'SIGKILL') resolve();
      else reject(new Error(`child ${fixture} exited on its own (${String(signal)}): ${stderr}`));
    });
  });
}

/** A long-running child started by `startChild`: its output so far, and a wait for a line. */
export interface RunningChild {
  readonly proc: ChildProcess;
  /** stdout and stderr so far, interleaved as received. */
  output(): string;
  /** Resolves with the match of the first output line matching `re` (past lines included); rejects if the child exits first or after `timeoutMs`. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves when the child has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `node ...args` from the repository root (e.g. `['bin/powerplant.js', 'start', 'examples/shop']` or
 * `['--import', 'tsx', 'examples/shop/main.ts']`) and tracks it, so killChildren() SIGKILLs it
 * whatever the test did. Unlike runUntilKilled the child may run as long as the test wants.
 */
export function startChild(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): RunningChild {
  const proc = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  running.add(proc);
  let out = '';
  const lines: string[] = [];
  let partial = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    const s = chunk.toString();
    out += s;
    partial += s;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      lines.push(partial.slice(0, nl));
      partial = partial.slice(nl + 1);
    }
    for (const w of waiters) w();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal });
      for (const w of waiters) w();
    });
  });
  const done = (): boolean => proc.exitCode !== null || proc.signalCode !== null;
  return {
    proc,
    output: () => out,
    exited,
    waitForLine(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const check = (): void => {
          for (; seen < lines.length; seen++) {
            const m = re.exec(lines[seen]!);
            if (m !== null) return finish(() => resolve(m));
          }
          if (done()) finish(() => reject(new Error(`child ${args.join(' ')} exited (${String(proc.exitCode ?? proc.signalCode)}) before printing ${String(re)}:\n${out}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(re)} from ${args.join(' ')}:\n${out}`))), timeoutMs);
        const finish = (f: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
  };
}
