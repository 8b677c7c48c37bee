/**
 * Exactly-once under SIGKILL: a child process runs the bids job on the embedded engines (SQLite
 * with two shards, the segment log) and is killed — no shutdown hook, no flush — at seeded random
 * moments, then started again on the same files (and, as a second case, on PostgreSQL + NATS
 * JetStream), until it has read everything. The results table
 * and the dead letters are then exactly what one uninterrupted run gives: nothing lost, nothing
 * counted twice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openQueue, type JetStreamEngine } from '../../src/queue/index.js';
import { openStore } from '../../src/store/index.js';
import { seededRandom } from '../../src/util/index.js';
import { killChildren, runUntilKilled, startChild } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { dropSchemas, PG_BASE } from '../store/helpers.js';
import { makeBids } from './fixtures/bids.js';
import { actualBids, deadByCode, expectedBids } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'pp-stream-faults-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => killChildren());

const CHILD = 'test/stream/fixtures/job-child.ts';

async function killLoop(storeUrl: string, queueUrl: string, sessionMs: number): Promise<void> {
    const seed = Number(process.env.PP_SEED ?? 14);
    const rnd = seededRandom(seed);
    const N = 20_000;
    const q = await openQueue({ engine: queueUrl });
    await q.createTopic('bids', { partitions: 4 });
    const bids = makeBids(N, 200, seed);
    for (let i = 0; i < bids.length; i += 1000) await Promise.all(bids.slice(i, i + 1000).map((b) => q.publish('bids', b, { key: b.auction })));
    const exp = await expectedBids(q, 4);
    await q.close();

    const kills = 4;
    const atKill: number[] = [];
    for (let k = 0; k < kills; k++) {
      // Kill after a random number of progress lines (each ~15 ms apart) once the job started.
      const after = 1 + Math.floor(rnd() * 15);
      let seen = 0;
      let last = '';
      await runUntilKilled(CHILD, [storeUrl, queueUrl, String(N), String(sessionMs)], (line) => {
        if (!line.startsWith('progress')) return false;
        last = line;
        return ++seen >= after;
      });
      atKill.push(Number(last.split(' ')[1]));
    }
    const child = startChild(['--import', 'tsx', CHILD, storeUrl, queueUrl, String(N), String(sessionMs)]);
    await child.waitForLine(/caught-up/, 60_000);
    // The kills landed mid-stream: some runs had read records, and the last run still had work.
    expect(atKill.some((n) => n > 0)).toBe(true);
    expect(atKill.reduce((a, b) => a + b, 0)).toBeLessThan(N * kills);
    const progress = child.output().split('\n').filter((l) => l.startsWith('progress')).map((l) => Number(l.split(' ')[1]));
    console.log(`records read by each killed run: ${atKill.join(', ')}; by the last: ${Math.max(...progress)}`);
    // Every record was read at least once across the runs (more when a kill landed between a read
    // and its checkpoint: re-read from the checkpoint, counted once below; exactly N when every kill
    // landed right after a checkpoint, which a loaded machine makes likely).
    expect(atKill.reduce((a, b) => a + b, 0) + Math.max(0, ...progress)).toBeGreaterThanOrEqual(N);
    child.proc.kill('SIGKILL');
    await child.exited;
    const errs = child.output().split('\n').filter((l) => l.startsWith('job error') || l.startsWith('unhandled'));
    if (errs.length > 0) console.log(`the last run reported (and survived): ${errs.slice(0, 5).join(' | ')}`);

    const store = await openStore({ engine: storeUrl, shards: 2, sweep: { intervalMs: 0 } });
    try {
      const act = await actualBids(store);
      expect(act.size).toBe(exp.rows.size);
      expect(act).toEqual(exp.rows);
      const dead = await deadByCode(store);
      expect(dead.get('late') ?? 0).toBe(exp.late);
      expect(dead.get('PP_ERR_VALIDATION') ?? 0).toBe(exp.dead);
    } finally {
      await store.close();
    }
}

describe('stream job under SIGKILL (embedded engines)', () => {
  it('results equal one uninterrupted run after kills at random moments', async () => {
    await killLoop(`sqlite:${join(root, 'store')}`, `file:${join(root, 'queue')}`, 300);
  }, 180_000);
});

const pgUp = await needEngine('postgres');
const natsUp = await needEngine('nats');
const id = `sk${process.pid.toString(36)}${Date.now().toString(36)}`;
afterAll(async () => {
  if (!pgUp || !natsUp) return;
  await dropSchemas(`pp_${id}`);
  const q = await openQueue({ engine: `nats://127.0.0.1:4222?ns=${id}` });
  await (q.engine as JetStreamEngine).destroyNamespace();
  await q.close();
});

describe.runIf(pgUp && natsUp)('stream job under SIGKILL (PostgreSQL + JetStream)', () => {
  it('results equal one uninterrupted run after kills at random moments', async () => {
    // A 300 ms session on a loaded machine: the last run's member finds its lease lapsed, loses
    // and retakes partitions in-process (fences conflict, a released task is fenced) — the
    // takeover path under test. Before the job raised the consumer's deliveriesMax, records
    // delivered five times across restarts were dropped by the consumer and 2 of 5 runs ended
    // with windows missing.
    await killLoop(`${PG_BASE}?schema=pp_${id}`, `nats://127.0.0.1:4222?ns=${id}`, 300);
  }, 180_000);
});
