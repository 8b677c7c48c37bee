import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { needEngine, reachable } from './engines.js';

// A port that nothing listens on: bind one, note it, close it.
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('engine gate', () => {
  const ci = process.env.CI;
  afterEach(() => {
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
  });

  it('fails (throws) under CI=true when the engine is unreachable', async () => {
    const port = await closedPort();
    process.env.CI = 'true';
    await expect(needEngine({ name: 'Nothing', host: '127.0.0.1', port })).rejects.toThrow(/not reachable.*CI requires it/);
  });

  it('skips (returns false) outside CI when the engine is unreachable', async () => {
    const port = await closedPort();
    delete process.env.CI;
    await expect(needEngine({ name: 'Nothing', host: '127.0.0.1', port })).resolves.toBe(false);
  });

  it('reports a listening engine as reachable', async () => {
    const srv = createServer((s) => s.end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as AddressInfo;
    try {
      expect(await reachable({ name: 'local', host: '127.0.0.1', port })).toBe(true);
      process.env.CI = 'true';
      expect(await needEngine({ name: 'local', host: '127.0.0.1', port })).toBe(true);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
