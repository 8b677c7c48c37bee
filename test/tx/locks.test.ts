/**
 * The lock conformance suite on its three implementations: the store on SQLite shards, the store
 * on PostgreSQL shards, and Redis (fencing on an SQLite store: a Redis token is just a number).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocks, redisLocks, storeLocks, type LockService } from '../../src/tx/index.js';
import { needEngine } from '../helpers/engines.js';
import { deleteKeysWithPrefix } from '../helpers/redis.js';
import { postgresCase, sqliteCase } from '../store/helpers.js';
import { lockConformance, type LockCase } from './locks.conformance.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

function storeCase(name: string, engine: typeof sqliteCase): LockCase {
  const e = engine();
  return {
    name,
    async open() {
      const store = await e.open({ shards: 2 });
      return { store, locks: await storeLocks(store) };
    },
    cleanup: () => e.cleanup(),
  };
}

function redisCase(): LockCase {
  const prefix = `pp:test:lock:${randomBytes(4).toString('hex')}:`;
  const stores = sqliteCase();
  const opened: LockService[] = [];
  return {
    name: 'redis',
    async open() {
      const locks = await redisLocks(REDIS_URL, { prefix });
      opened.push(locks);
      return { locks, store: await stores.open({ shards: 2 }) };
    },
    async cleanup() {
      await Promise.allSettled(opened.map((l) => l.close()));
      await stores.cleanup();
      await deleteKeysWithPrefix(REDIS_URL, prefix);
    },
  };
}

const cases: LockCase[] = [storeCase('store on SQLite', sqliteCase)];
if (await needEngine('postgres')) cases.push(storeCase('store on PostgreSQL', postgresCase));
if (await needEngine('redis')) cases.push(redisCase());
afterAll(async () => {
  for (const c of cases) await c.cleanup();
});
for (const c of cases) lockConformance(c);

describe('lock services: picking one, and an unreachable Redis', () => {
  it('createLocks picks the store for a Store and Redis for a redis:// URL; other URLs are refused naming target', async () => {
    const e = sqliteCase();
    try {
      const store = await e.open({ shards: 1 });
      expect((await createLocks(store)).kind).toBe('store');
      await expect(createLocks('postgres://127.0.0.1/x')).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'target' });
      await expect(createLocks(null as never)).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'target' });
      await expect(storeLocks(store, { ttlMsMax: 0 })).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'ttlMsMax' });
      if (cases.some((c) => c.name === 'redis')) {
        const r = await createLocks(REDIS_URL, { prefix: `pp:test:lock:pick:${randomBytes(3).toString('hex')}:` });
        expect(r.kind).toBe('redis');
        await r.close();
      }
    } finally {
      await e.cleanup();
    }
  });

  it('a Redis that cannot be reached is PP_ERR_UNAVAILABLE (retryable), not a hang or a crash', async () => {
    await expect(redisLocks('redis://127.0.0.1:1')).rejects.toMatchObject({ code: 'PP_ERR_UNAVAILABLE', retryable: true });
  });
});
