/**
 * Gate for suites that need a real engine (PostgreSQL, Redis, NATS).
 *
 * Locally, a suite whose engine is unreachable is skipped with a message. In CI (`CI=true`) it
 * FAILS instead: the house rule is that CI never silently skips the suites that need real engines.
 */
import { Socket } from 'node:net';

export interface EngineEndpoint {
  name: string;
  host: string;
  port: number;
}

export const ENGINES = {
  postgres: { name: 'PostgreSQL', host: '127.0.0.1', port: 5432 },
  redis: { name: 'Redis', host: '127.0.0.1', port: 6379 },
  nats: { name: 'NATS', host: '127.0.0.1', port: 4222 },
} as const satisfies Record<string, EngineEndpoint>;

/** Resolves true when a TCP connection to the engine opens within `timeoutMs`. */
export function reachable(ep: EngineEndpoint, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(ep.port, ep.host);
  });
}

/**
 * Returns whether the suite should run. Throws in CI when the engine is down, so the run fails.
 * Use at the top of a test file: `const run = await needEngine('postgres'); describe.runIf(run)(...)`.
 */
export async function needEngine(engine: keyof typeof ENGINES | EngineEndpoint): Promise<boolean> {
  const ep = typeof engine === 'string' ? ENGINES[engine] : engine;
  if (await reachable(ep)) return true;
  const msg = `${ep.name} is not reachable at ${ep.host}:${ep.port}`;
  if (process.env.CI === 'true') throw new Error(`${msg}; CI requires it (suites needing real engines never skip in CI)`);
  console.warn(`${msg}: skipping this suite (it would fail under CI=true)`);
  return false;
}
