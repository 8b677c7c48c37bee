/**
 * The paused holder (issue 12, Must show 3): a child process takes a lease and makes fenced
 * writes; the test SIGSTOPs it, waits until the lock service's own record says the lease lapsed,
 * takes the lock as a second holder, raises the fence and writes, then SIGCONTs the child, which
 * carries on writing with its old token as a paused holder would. Its writes after the pause are
 * refused (PP_ERR_FENCED), the second holder's all land, and the checker judges from what was
 * recorded: the rows in the store, the shard's change feed (commit order) and the child's own
 * history lines, never from a sleep. Store locks on SQLite and PostgreSQL, Redis locks (fenced on
 * PostgreSQL). Seeded: the seed picks the writes before the pause, the TTL and the second
 * holder's writes; a failure names its seed (PP_FAULT_SEED=<n> reruns one).
 */
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { openFence, redisLocks, storeLocks, type LockService } from '../../src/tx/index.js';
import { seededRandom } from '../../src/util/index.js';
import { killChildren, startChild } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { deleteKeysWithPrefix } from '../helpers/redis.js';
import { waitUntil } from '../helpers/wait.js';
import { postgresCase, sqliteCase, uniqueId, type EngineCase } from '../store/helpers.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const FIXTURE = 'test/tx/fixtures/fenced-writer.ts';
/** The child sleeps this long after each write: the SIGSTOP lands in that gap, never mid-request. */
const GAP_MS = 300;
const FENCED_MAX = 3;

const Row = Type.Object({ resource: Type.String(), writer: Type.String(), n: Type.Integer(), token: Type.Integer() });

interface Line { event: string; token?: number; expiresAtMs?: number; n?: number; ok?: boolean; code?: string }

const runPg = await needEngine('postgres');
const runRedis = await needEngine('redis');
const sqlite = sqliteCase();
const pg = runPg ? postgresCase() : undefined;
const redisPrefix = `pp:test:fence:${randomBytes(4).toString('hex')}:`;
afterEach(() => killChildren());
afterAll(async () => {
  await sqlite.cleanup();
  await pg?.cleanup();
  if (runRedis) await deleteKeysWithPrefix(REDIS_URL, redisPrefix);
});

const seeds = process.env.PP_FAULT_SEED !== undefined ? [Number(process.env.PP_FAULT_SEED)] : [11, 29];

async function pausedHolder(engine: EngineCase, kind: 'store' | 'redis', seed: number): Promise<void> {
  const rnd = seededRandom(seed);
  const writesBeforePause = 1 + Math.floor(rnd() * 4); // 1..4
  const ttlMs = 300 + Math.floor(rnd() * 400);
  const secondWrites = 1 + Math.floor(rnd() * 4);
  const id = uniqueId('fence');
  const name = `res-${id}`;
  const table = `fenced_${seed}_${kind}`;
  const store: Store = await engine.open({ shards: 2 }, id);
  const locks: LockService = kind === 'redis' ? await redisLocks(REDIS_URL, { prefix: redisPrefix }) : await storeLocks(store);
  const fence = await openFence(store);
  const rows = await store.table(table, { schema: Row, primaryKey: ['resource', 'writer', 'n'], partitionKey: ['resource'] });
  try {
    const child = startChild(['--import', 'tsx', FIXTURE, engine.url(id), kind, redisPrefix, name, String(ttlMs), table, String(GAP_MS), String(FENCED_MAX)]);
    const acquired = JSON.parse((await child.waitForLine(/"event":"acquired"/, 60_000)).input!) as Line;
    await child.waitForLine(new RegExp(`"n":${writesBeforePause - 1},"ok":true`), 30_000);
    child.proc.kill('SIGSTOP');
    try {
      // The lease lapses by the lock service's own record (the row / the Redis key), not by a guess.
      await waitUntil(async () => Date.now() > acquired.expiresAtMs! && (await locks.holder(name)) === undefined, 20_000, 'the paused holder\'s lease to lapse');
      const second = await locks.acquire(name, { ttlMs: 60_000, owner: 'second', waitMs: 5_000 });
      expect(second.token).toBeGreaterThan(acquired.token!);
      expect(await fence.advance(name, second.token)).toBe(second.token);
      for (let n = 0; n < secondWrites; n++) {
        await fence.write(name, second.token, [rows.writeOp({ op: 'insert', row: { resource: 'res', writer: 'second', n, token: second.token } })]);
      }
    } finally {
      child.proc.kill('SIGCONT');
    }
    await child.waitForLine(/"event":"done"/, 60_000);
    const history = child.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
    const writes = history.filter((l) => l.event === 'write');
    const okN = writes.filter((w) => w.ok === true).map((w) => w.n!);
    // The child's successful writes are exactly the ones before the pause; after it, every one was fenced.
    expect(okN).toEqual(Array.from({ length: writesBeforePause }, (_, i) => i));
    expect(writes.filter((w) => w.ok === false).map((w) => w.code)).toEqual(Array(FENCED_MAX).fill('PP_ERR_FENCED'));
    expect(history.find((l) => l.event === 'renew')?.code).toBe('PP_ERR_NOT_HOLDER');
    // The store holds exactly what the history says: the child's acknowledged rows (its token),
    // every row of the second holder (its token), nothing else.
    const stored = (await rows.query({ where: { resource: 'res' }, limit: 1000 })).items.map((i) => i.row);
    expect(stored.filter((r) => r.writer === 'child').map((r) => [r.n, r.token])).toEqual(okN.map((n) => [n, acquired.token]));
    const secondRows = stored.filter((r) => r.writer === 'second');
    expect(secondRows).toHaveLength(secondWrites);
    // In commit order on the shard, no row with the old token follows one with the new token.
    const shard = store.shardName(rows.locate({ resource: 'res', writer: 'x', n: 0 }).shard);
    const order = (await store.feed.read(shard, 0, 10_000)).filter((r) => r.name === table).map((r) => (r.row as { token: number }).token);
    expect(order).toHaveLength(stored.length);
    expect(order.lastIndexOf(acquired.token!)).toBeLessThan(order.indexOf(secondRows[0]!.token));
    expect(await fence.highest(name)).toBe(secondRows[0]!.token);
  } finally {
    await locks.close();
  }
}

describe('a holder paused past its lease (SIGSTOP) has its writes fenced', () => {
  for (const seed of seeds) {
    it(`store locks on SQLite (seed ${seed})`, () => pausedHolder(sqlite, 'store', seed), 90_000);
    it.runIf(runPg)(`store locks on PostgreSQL (seed ${seed})`, () => pausedHolder(pg!, 'store', seed), 90_000);
    it.runIf(runRedis && runPg)(`Redis locks, fenced on PostgreSQL (seed ${seed})`, () => pausedHolder(pg!, 'redis', seed), 90_000);
  }
});
