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
