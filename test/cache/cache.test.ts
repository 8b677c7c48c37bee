/**
 * The tiered cache's protections with L1 only (no engine needed): single-flight, SWR, soft and
 * hard timeouts, XFetch, negative caching and the Bloom filter, jitter, fail-safe, the stale-set
 * race (reproduced deterministically, with the guard off to show the bug and on to show the fix),
 * tags, namespaces, typed errors. Time is an injected clock; no timing is asserted.
 */
import { describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { MissingKeyFilter, createCache, hashKey, type CacheOptions } from '../../src/cache/index.js';
import { FakeClock } from '../resilience/fake-clock.js';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const base = (clock: FakeClock, extra: CacheOptions = {}): CacheOptions => ({ clock, jitter: 0, earlyRefresh: false, ...extra });

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('Cache (L1 only)', () => {
  it('single-flight: 1,000 concurrent misses of one key make one loader call', async () => {
    const cache = await createCache<number>({ jitter: 0 });
    let calls = 0;
    const gate = deferred<number>();
    const loader = (): Promise<number> => {
      calls++;
      return gate.promise;
    };
    const all = Array.from({ length: 1000 }, () => cache.getOrLoad('k', loader));
    gate.resolve(42);
    const values = await Promise.all(all);
    expect(calls).toBe(1);
    expect(values.every((v) => v === 42)).toBe(true);
    expect(await cache.getOrLoad('k', loader)).toBe(42);
    expect(calls).toBe(1);
  });

  it('peek: the fresh L1 value synchronously; undefined when absent, stale or negative', async () => {
    const clock = new FakeClock(1_000_000);
    const cache = await createCache<string>(base(clock, { ttlMs: 100, negativeTtlMs: 100 }));
    expect(cache.peek('k')).toBeUndefined();
    await cache.getOrLoad('k', () => 'v');
    const hits = cache.stats().hitsL1;
    expect(cache.peek('k')).toBe('v');
    expect(cache.stats().hitsL1).toBe(hits + 1);
    await cache.getOrLoad('gone', () => undefined); // cached as "does not exist"
    expect(cache.peek('gone')).toBeUndefined();
    clock.advance(100);
    expect(cache.peek('k')).toBeUndefined();
    await cache.set('k', 'w');
    expect(cache.peek('k')).toBe('w');
    await cache.delete('k');
    expect(cache.peek('k')).toBeUndefined();
  });

  it('TTL: fresh until ttlMs, then loaded again', async () => {
    const clock = new FakeClock(1_000_000);
    const cache = await createCache<string>(base(clock, { ttlMs: 100 }));
    let n = 0;
    const loader = (): string => `v${++n}`;
    expect(await cache.getOrLoad('k', loader)).toBe('v1');
    clock.advance(99);
    expect(await cache.getOrLoad('k', loader)).toBe('v1');
    clock.advance(1);
    expect(await cache.getOrLoad('k', loader)).toBe('v2');
  });

  it('stale-while-revalidate: within grace the stale value is served at once and refreshed in the background', async () => {
    const clock = new FakeClock(1_000_000);
    const cache = await createCache<string>(base(clock, { ttlMs: 100, graceMs: 1_000 }));
    let n = 0;
    const gate = deferred<void>();
    const loader = async (): Promise<string> => {
      n++;
      if (n > 1) await gate.promise;
      return `v${n}`;
    };
    expect(await cache.getOrLoad('k', loader)).toBe('v1');
    clock.advance(150);
    expect(await cache.getOrLoad('k', loader)).toBe('v1'); // stale, served immediately
    expect(await cache.getOrLoad('k', loader)).toBe('v1'); // refresh still in flight: no second call
    expect(n).toBe(2);
    gate.resolve();
    await new Promise((r) => setTimeout(r, 0));
    expect(await cache.getOrLoad('k', loader)).toBe('v2');
    expect(cache.stats().staleServed).toBe(2);
    clock.advance(2_000); // past grace: a plain miss
    expect(await cache.getOrLoad('k', loader)).toBe('v3');
  });

  it('fail-safe: a failing loader is answered with the stale value (within grace); without one the error passes', async () => {
    const clock = new FakeClock(1_000_000);
    const cache = await createCache<string>(base(clock, { ttlMs: 100, graceMs: 1_000, staleWhileRevalidate: false }));
    expect(await cache.getOrLoad('k', () => 'good')).toBe('good');
    clock.advance(200);
    const boom = (): Promise<string> => Promise.reject(new Error('db down'));
    expect(await cache.getOrLoad('k', boom)).toBe('good');
    expect(cache.stats().failSafeServed).toBe(1);
    // Backoff: the stale value now counts as fresh for failSafeBackoffMs, the loader is spared.
    let called = false;
    expect(await cache.getOrLoad('k', () => { called = true; return 'x'; })).toBe('good');
    expect(called).toBe(false);
    const err = await rejection(cache.getOrLoad('other', boom));
    expect((err as Error).message).toBe('db down');
  });

  it('hard timeout aborts the loader with PP_ERR_TIMEOUT; soft timeout answers with the stale value while the load goes on', async () => {
    const clock = new FakeClock(1_000_000);
    const cache = await createCache<string>(base(clock, { ttlMs: 100, graceMs: 10_000, staleWhileRevalidate: false, failSafe: false, hardTimeoutMs: 30, softTimeoutMs: 5 }));
    let aborted = false;
    const never = ({ signal }: { signal: AbortSignal }): Promise<string> =>
      new Promise((_, reject) => signal.addEventListener('abort', () => { aborted = true; reject(signal.reason); }));
    const err = await rejection(cache.getOrLoad('a', never));
    expect(isPowerplantError(err, 'PP_ERR_TIMEOUT')).toBe(true);
    expect(aborted).toBe(true);

    expect(await cache.getOrLoad('b', () => 'old')).toBe('old');
    clock.advance(200);
    const slow = deferred<string>();
    expect(await cache.getOrLoad('b', () => slow.promise)).toBe('old'); // soft timeout: stale
    expect(cache.stats().softTimeouts).toBe(1);
    slow.resolve('new');
    await new Promise((r) => setTimeout(r, 0));
    expect(await cache.getOrLoad('b', () => 'unused')).toBe('new'); // the load finished and was cached
  });

  it('XFetch: refreshes early when -delta*beta*ln(rand) reaches expiry, not otherwise', async () => {
    const clock = new FakeClock(1_000_000);
    let r = 0.999999;
    const cache = await createCache<string>({ clock, jitter: 0, ttlMs: 1_000, random: () => r, earlyRefresh: { beta: 1 } });
    let n = 0;
    const loader = async (): Promise<string> => {
      n++;
      clock.advance(50); // the recompute takes 50 ms (delta)
      return `v${n}`;
    };
    expect(await cache.getOrLoad('k', loader)).toBe('v1');
    clock.advance(900); // 50 ms before expiry
    expect(await cache.getOrLoad('k', loader)).toBe('v1'); // rand ~1: -ln(rand) ~ 0, no refresh
    expect(n).toBe(1);
    r = 0.01; // -50 * ln(0.01) = 230 ms >= remaining 50 ms
    expect(await cache.getOrLoad('k', loader)).toBe('v1'); // served, refresh in the background
    await new Promise((res) => setTimeout(res, 0));
    expect(n).toBe(2);
    expect(cache.stats().earlyRefreshes).toBe(1);
    expect(await cache.getOrLoad('k', loader)).toBe('v2');
  });

  it('negative caching: undefined is cached for negativeTtlMs, a set replaces it', async () => {
    const clock = new FakeClock(1_000_000);
    const cache = await createCache<string>(base(clock, { negativeTtlMs: 100 }));
    let calls = 0;
    const missing = (): undefined => { calls++; return undefined; };
    expect(await cache.getOrLoad('k', missing)).toBeUndefined();
    expect(await cache.getOrLoad('k', missing)).toBeUndefined();
    expect(calls).toBe(1);
    clock.advance(100);
    expect(await cache.getOrLoad('k', missing)).toBeUndefined();
    expect(calls).toBe(2);
    await cache.set('k', 'now exists');
    expect(await cache.getOrLoad('k', missing)).toBe('now exists');
  });

  it('Bloom filter of missing keys answers after the negative entry left L1; set and delete remove the key', async () => {
    const clock = new FakeClock(1_000_000);
    const cache = await createCache<string>(base(clock, { negativeTtlMs: 1_000, bloom: { expectedKeys: 1000 }, l1: { entriesMax: 10 } }));
    let calls = 0;
    const missing = (): undefined => { calls++; return undefined; };
    for (let i = 0; i < 100; i++) await cache.getOrLoad(`m${i}`, missing);
    expect(calls).toBe(100);
    // L1 holds 10 entries; the other 90 negatives are answered by the filter.
    for (let i = 0; i < 100; i++) await cache.getOrLoad(`m${i}`, missing);
    expect(calls).toBe(100);
    expect(cache.stats().bloomHits).toBeGreaterThanOrEqual(90);
    await cache.delete('m5');
    expect(await cache.getOrLoad('m5', () => 'created')).toBe('created');
    clock.advance(2_001); // two generations: forgotten
    for (let i = 0; i < 20; i++) await cache.getOrLoad(`m${i + 50}`, missing);
    expect(calls).toBe(120);
  });

  it('Bloom filter: false-positive rate near the target at the expected load', () => {
    const f = new MissingKeyFilter({ expectedKeys: 10_000, falsePositiveRate: 0.01, generationMs: 1e9, clock: { now: () => 0 } });
    for (let i = 0; i < 10_000; i++) f.add(hashKey(`in${i}`));
    for (let i = 0; i < 10_000; i++) expect(f.has(hashKey(`in${i}`))).toBe(true);
    let fp = 0;
    for (let i = 0; i < 20_000; i++) if (f.has(hashKey(`out${i}`))) fp++;
    expect(fp / 20_000).toBeLessThan(0.03);
  });

  it('TTL jitter shortens TTLs by up to the fraction, never lengthens them', async () => {
    const clock = new FakeClock(1_000_000);
    let r = 0;
    const cache = await createCache<number>({ clock, ttlMs: 1_000, jitter: 0.2, random: () => r, earlyRefresh: false });
    const stales: number[] = [];
    for (let i = 0; i < 10; i++) {
      r = i / 10;
      await cache.set(`k${i}`, i);
      stales.push(cache.l1.staleAtOf(cache.l1.slotOf(`k${i}`)) - clock.now());
    }
    expect(Math.max(...stales)).toBe(1_000);
    expect(Math.min(...stales)).toBeCloseTo(820, 5);
    expect(new Set(stales).size).toBe(10);
  });

  it('no stale sets: a miss-then-set that started before a delete cannot write the old value (deterministic race)', async () => {
    for (const guard of [false, true]) {
      const cache = await createCache<string>({ jitter: 0, staleSetProtection: guard });
      let db = 'v1';
      const readStarted = deferred<void>();
      const release = deferred<void>();
      // The reader reads the database (v1), then stalls before its set.
      const reader = cache.getOrLoad('k', async () => {
        const seen = db;
        readStarted.resolve();
        await release.promise;
        return seen;
      });
      await readStarted.promise;
      db = 'v2'; // a writer commits v2 ...
      await cache.delete('k'); // ... and invalidates
      release.resolve();
      expect(await reader).toBe('v1'); // the reader's own answer is its read
      const after = await cache.getOrLoad('k', () => db);
      if (guard) {
        expect(after).toBe('v2');
        expect(cache.stats().staleSetsPrevented).toBe(1);
      } else {
        expect(after).toBe('v1'); // the bug the guard prevents: v1 cached after the invalidation
      }
    }
  });

  it('tags: invalidateTags drops every entry carrying the tag and nothing else', async () => {
    const cache = await createCache<string>({ jitter: 0 });
    await cache.set('p1', 'a', { tags: ['product', 'cat:1'] });
    await cache.set('p2', 'b', { tags: ['product'] });
    await cache.set('u1', 'c', { tags: ['user'] });
    await cache.getOrLoad('p3', () => 'd', { tags: ['cat:1'] });
    await cache.invalidateTags(['cat:1']);
    expect(await cache.get('p1')).toBeUndefined();
    expect(await cache.get('p3')).toBeUndefined();
    expect(await cache.get('p2')).toBe('b');
    await cache.invalidateTags(['product']);
    expect(await cache.get('p2')).toBeUndefined();
    expect(await cache.get('u1')).toBe('c');
  });

  it('namespaces: same key, separate values; clear is per namespace', async () => {
    const root = await createCache<string>({ jitter: 0 });
    const users = root.withNamespace<string>('users');
    await root.set('1', 'root');
    await users.set('1', 'user');
    expect(await root.get('1')).toBe('root');
    expect(await users.get('1')).toBe('user');
    await users.clear();
    expect(await users.get('1')).toBeUndefined();
    expect(await root.get('1')).toBe('root');
    expect(() => root.withNamespace('bad:name')).toThrow(/namespace/);
  });

  it('bad input: unserializable and oversize values, bad keys and options are typed errors', async () => {
    const cache = await createCache<unknown>({ valueBytesMax: 1000 });
    const fn = await rejection(cache.set('f', { run: () => 1 }));
    expect(isPowerplantError(fn, 'PP_ERR_UNSERIALIZABLE')).toBe(true);
    expect((fn as { field: string }).field).toBe('value.run');
    const big = await rejection(cache.set('b', 'x'.repeat(2000)));
    expect(isPowerplantError(big, 'PP_ERR_TOO_LARGE')).toBe(true);
    const fromLoader = await rejection(cache.getOrLoad('l', () => ({ s: Symbol('x') })));
    expect(isPowerplantError(fromLoader, 'PP_ERR_UNSERIALIZABLE')).toBe(true);
    for (const key of ['', 'k'.repeat(2000)]) expect(isPowerplantError(await rejection(cache.get(key)), 'PP_ERR_INVALID_ARGUMENT')).toBe(true);
    await expect(createCache({ jitter: 1 })).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'jitter' });
    await expect(createCache({ l2: 'memcached://x' })).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'l2' });
    expect(await cache.get('f')).toBeUndefined();
  });

  it('the deprecated maxKeyLength and l1.maxEntries still work; an old name that contradicts the new one is refused', async () => {
    const cache = await createCache<string>({ maxKeyLength: 4, l1: { maxEntries: 2 } });
    await cache.set('abcd', 'v');
    const long = await rejection(cache.get('abcde'));
    expect(long).toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'key', message: expect.stringContaining('4 characters') });
    await cache.set('a', '1');
    await cache.set('b', '2');
    expect(cache.stats().l1.entries).toBeLessThanOrEqual(2);
    await expect(createCache({ keyCharsMax: 8, maxKeyLength: 16 })).rejects.toMatchObject({
      code: 'PP_ERR_INVALID_ARGUMENT', field: 'keyCharsMax', message: expect.stringMatching(/keyCharsMax.*maxKeyLength/),
    });
  });
});
