/**
 * The cache on a real Redis (127.0.0.1:6379): the L1 -> L2 -> loader read path, writes to both,
 * invalidation across nodes (two caches = two nodes, each with its own connections), single-flight
 * across nodes through the L2 lease, the cross-node stale-set race, tags across nodes, and faults:
 * a dead port, and a redis-server this test starts on its own port and kills mid-test.
 * Every key lives under a prefix unique to this run, on a channel unique to this run; both are
 * removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { InprocTransport } from '../../src/transport/index.js';
import { Redis } from 'ioredis';
import { createCache, type Cache, type CacheOptions, type Loader } from '../../src/cache/index.js';
import { needEngine, reachable } from '../helpers/engines.js';
import { deleteKeysWithPrefix } from '../helpers/redis.js';
import { waitUntil as eventually } from '../helpers/wait.js';

const URL = 'redis://127.0.0.1:6379';
const run = await needEngine('redis');
const id = randomBytes(4).toString('hex');
const prefix = `pp:test:cache:${id}:`;
const channel = `pp:test:cache:${id}:inv`;
const opened: Cache<unknown>[] = [];

async function node(extra: CacheOptions = {}): Promise<Cache<string>> {
  const c = await createCache<string>({ l2: URL, l2Options: { prefix }, busOptions: { channel }, jitter: 0, earlyRefresh: false, ...extra });
  opened.push(c as Cache<unknown>);
  return c;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((res) => (resolve = res));
  return { promise, resolve };
}

/** Polls `probe` until it returns true; fails after `maxMs` (a liveness bound, not a timing). */
afterAll(async () => {
  for (const c of opened) await c.close();
  if (!run) return;
  await deleteKeysWithPrefix(URL, prefix);
});

describe.runIf(run)('Cache on Redis', () => {
  it('read path L1 -> L2 -> loader; a second node is served from L2, then from its L1', async () => {
    const a = await node();
    const b = await node();
    let calls = 0;
    const loader = (): string => `v${++calls}`;
    expect(await a.getOrLoad('rp', loader)).toBe('v1');
    expect(await b.getOrLoad('rp', loader)).toBe('v1');
    expect(calls).toBe(1);
    expect(b.stats().hitsL2).toBe(1);
    expect(await b.getOrLoad('rp', loader)).toBe('v1');
    expect(b.stats().hitsL1).toBe(1);
  });

  it('a set on one node reaches L2 and drops the key from the other node\'s L1 (bus)', async () => {
    const a = await node();
    const b = await node();
    await a.set('w', 'old');
    expect(await b.get('w')).toBe('old'); // now in b's L1
    await a.set('w', 'new');
    await eventually(async () => (await b.get('w')) === 'new');
    expect(b.stats().invalidationsReceived).toBeGreaterThanOrEqual(1);
    await a.delete('w');
    await eventually(async () => (await b.get('w')) === undefined);
  });

  it('single-flight across nodes: concurrent misses on two nodes make one loader call (L2 lease)', async () => {
    const a = await node({ lease: { pollMs: 2 } });
    const b = await node({ lease: { pollMs: 2 } });
    let calls = 0;
    const gate = deferred<void>();
    const loader = async (): Promise<string> => {
      calls++;
      await gate.promise;
      return 'shared';
    };
    const pa = Array.from({ length: 100 }, () => a.getOrLoad('sf', loader));
    await eventually(() => Promise.resolve(calls === 1)); // a holds the lease and is loading
    const pb = Array.from({ length: 100 }, () => b.getOrLoad('sf', loader));
    await new Promise((r) => setTimeout(r, 20)); // b is now polling for a's value
    gate.resolve();
    const all = await Promise.all([...pa, ...pb]);
    expect(all.every((v) => v === 'shared')).toBe(true);
    expect(calls).toBe(1);
    expect(b.stats().leaseWaits).toBe(1);
  });

  it('no stale sets across nodes: a load that began before another node\'s delete cannot write L2 (deterministic race)', async () => {
    for (const guard of [false, true]) {
      const key = `race-${guard}`;
      const a = await node({ staleSetProtection: guard });
      const b = await node({ staleSetProtection: guard });
      let db = 'v1';
      const started = deferred<void>();
      const release = deferred<void>();
      const reader = a.getOrLoad(key, async () => {
        const seen = db;
        started.resolve();
        await release.promise;
        return seen;
      });
      await started.promise;
      db = 'v2';
      await b.delete(key);
      release.resolve();
      expect(await reader).toBe('v1');
      const c = await node({ staleSetProtection: guard }); // a fresh node: empty L1, reads L2
      const seen = await c.getOrLoad(key, () => db);
      if (guard) {
        expect(seen).toBe('v2');
        expect(a.stats().staleSetsPrevented).toBeGreaterThanOrEqual(1);
        await eventually(async () => (await a.getOrLoad(key, () => db)) === 'v2');
      } else {
        expect(seen).toBe('v1'); // the bug: the old value sits in L2 after the delete
      }
    }
  });

  it('tags across nodes and in L2', async () => {
    const a = await node();
    const b = await node();
    await a.set('t1', 'x', { tags: ['grp'] });
    await a.set('t2', 'y', { tags: ['other'] });
    expect(await b.get('t1')).toBe('x');
    await a.invalidateTags(['grp']);
    await eventually(async () => (await b.get('t1')) === undefined);
    const c = await node();
    expect(await c.get('t1')).toBeUndefined();
    expect(await c.get('t2')).toBe('y');
  });

  it('invalidations over a Powerplant Transport bus (in-process transport here; NATS is the same interface)', async () => {
    const ta = new InprocTransport(`cache-${id}`, { nodeId: 'a' });
    const tb = new InprocTransport(`cache-${id}`, { nodeId: 'b' });
    await ta.connect();
    await tb.connect();
    const a = await node({ bus: ta, nodeId: 'a' });
    const b = await node({ bus: tb, nodeId: 'b' });
    await a.set('tb', 'one');
    expect(await b.get('tb')).toBe('one');
    await a.set('tb', 'two');
    await eventually(async () => (await b.get('tb')) === 'two');
    await ta.close();
    await tb.close();
  });

  it('no lease left behind: a load that fails (throws, times out, is too large to store, or is a negative not cached) releases its L2 lease, so the next node loads the key at once', async () => {
    const redis = new Redis(URL);
    try {
      const leaseMs = 60_000; // a leaked lease would outlive the test: the next load would wait for it
      const cases: { name: string; options: CacheOptions; loader: Loader<string>; fails: boolean }[] = [
        { name: 'throws', options: {}, loader: () => { throw new Error('store refused the key'); }, fails: true },
        {
          name: 'times-out',
          options: { hardTimeoutMs: 50 },
          loader: ({ signal }) => new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
          fails: true,
        },
        { name: 'too-large', options: { valueBytesMax: 64 }, loader: () => 'x'.repeat(1_000), fails: true },
        { name: 'negative', options: { negativeTtlMs: 0 }, loader: () => undefined, fails: false },
      ];
      for (const c of cases) {
        const a = await node({ namespace: `lease-${c.name}`, lease: { leaseMs }, ...c.options });
        const b = await node({ namespace: `lease-${c.name}`, lease: { leaseMs } });
        const key = `k-${c.name}`;
        const first = a.getOrLoad(key, c.loader as Loader<string>);
        if (c.fails) await expect(first, c.name).rejects.toThrow();
        else expect(await first, c.name).toBeUndefined();
        expect(await redis.exists(`${prefix}l:lease-${c.name}:${key}`), `${c.name}: lease still held`).toBe(0);
        let calls = 0;
        expect(await b.getOrLoad(key, () => `fresh-${++calls}`), c.name).toBe('fresh-1');
        expect(b.stats().leaseWaits, `${c.name}: waited for a lease nobody holds`).toBe(0);
        expect(calls).toBe(1);
      }
    } finally {
      await redis.quit();
    }
  });

  it('bad input with L2: unserializable and oversize values are typed errors, nothing is written', async () => {
    const a = await node({ valueBytesMax: 100 });
    await expect(a.set('bad', { f: () => 1 } as unknown as string)).rejects.toMatchObject({ code: 'PP_ERR_UNSERIALIZABLE' });
    await expect(a.set('big', 'x'.repeat(500))).rejects.toMatchObject({ code: 'PP_ERR_TOO_LARGE' });
    expect(await (await node()).get('big')).toBeUndefined();
  });
});

describe('Cache with Redis down', () => {
  it('a dead port: every request is served from L1 + loader, the breaker opens, nothing fails', async () => {
    const c = await createCache<string>({ l2: 'redis://127.0.0.1:1', jitter: 0, l2Options: { commandTimeoutMs: 50 } });
    try {
      let calls = 0;
      for (let i = 0; i < 50; i++) expect(await c.getOrLoad(`k${i % 10}`, () => `v${++calls}`)).toMatch(/^v/);
      await c.set('s', 'v');
      expect(await c.get('s')).toBe('v');
      await c.delete('s');
      await c.invalidateTags(['t']);
      expect(calls).toBe(10);
      expect(c.stats().breaker).toBe('open');
      expect(c.stats().l2Skipped).toBeGreaterThan(0);
    } finally {
      await c.close();
    }
  });

  it('a Redis killed mid-test: requests keep succeeding; after it is back, the bus reconnect clears L1', async () => {
    let port = 0;
    for (let p = 16_400 + Math.floor(Math.random() * 500); p < 17_000; p++) {
      if (!(await reachable({ name: 'free', host: '127.0.0.1', port: p }, 200))) {
        port = p;
        break;
      }
    }
    expect(port).toBeGreaterThan(0);
    const start = (): ChildProcess => spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' });
    let server: ChildProcess | undefined;
    try {
      server = start();
    } catch {
      return; // no redis-server binary: the dead-port test above covers degradation
    }
    const url = `redis://127.0.0.1:${port}`;
    let c: Cache<string> | undefined;
    try {
      await eventually(() => reachable({ name: 'redis', host: '127.0.0.1', port }, 200));
      c = await createCache<string>({ l2: url, jitter: 0, l2Options: { commandTimeoutMs: 100, reconnectDelayMsMax: 100 }, busOptions: { reconnectDelayMsMax: 100 } });
      let calls = 0;
      const loader = (): string => `v${++calls}`;
      for (let i = 0; i < 10; i++) await c.getOrLoad(`k${i}`, loader);
      server.kill('SIGKILL');
      await new Promise((r) => server!.once('exit', r));
      for (let i = 0; i < 40; i++) expect(await c.getOrLoad(`k${i % 20}`, loader)).toMatch(/^v/);
      await c.set('x', 'y'); // does not throw
      expect(calls).toBe(20);
      server = start();
      await eventually(async () => c!.stats().busReconnects >= 1, 15_000);
      expect(c.l1.size).toBe(0);
    } finally {
      await c?.close();
      if (server !== undefined && server.exitCode === null) {
        server.kill('SIGKILL');
        await new Promise((r) => server!.once('exit', r));
      }
    }
  });

  it('typed errors do not depend on Redis being up', async () => {
    const c = await createCache<unknown>({ l2: 'redis://127.0.0.1:1', l2Options: { commandTimeoutMs: 50 } });
    try {
      const err = await c.set('f', () => 1).catch((e: unknown) => e);
      expect(isPowerplantError(err, 'PP_ERR_UNSERIALIZABLE')).toBe(true);
    } finally {
      await c.close();
    }
  });
});
