/**
 * Backpressure: when the store stops taking the job's checkpoints (its state table locked on
 * PostgreSQL), the job stops consuming once `pendingRecordsMax` records wait uncheckpointed —
 * it does not read the topic into memory — and when the store is back it catches up, exactly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openQueue } from '../../src/queue/index.js';
import { openStore } from '../../src/store/index.js';
import { needEngine } from '../helpers/engines.js';
import { waitUntil } from '../helpers/wait.js';
import { dropSchemas, PG_BASE } from '../store/helpers.js';
import { bidsJob, makeBids } from './fixtures/bids.js';
import { actualBids, expectedBids } from './helpers.js';

const up = await needEngine('postgres');
const schema = `pp_bp${process.pid.toString(36)}${Date.now().toString(36)}`;
const root = mkdtempSync(join(tmpdir(), 'pp-stream-bp-'));
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  if (up) await dropSchemas(schema);
});

describe.runIf(up)('stream backpressure (PostgreSQL store)', () => {
  it('stops consuming while checkpoints cannot commit, then catches up exactly', async () => {
    const store = await openStore({ engine: `${PG_BASE}?schema=${schema}`, sweep: { intervalMs: 0 } });
    const q = await openQueue({ engine: `file:${join(root, 'queue')}` });
    await q.createTopic('bids', { partitions: 1 });
    const job = await bidsJob(store, q, { checkpointIntervalMs: 20, checkpointRecordsMax: 100, pendingRecordsMax: 200, readAheadMax: 100 }, 'bp');
    await job.start();
    await waitUntil(async () => (await job.status()).partitions.length === 1, 15_000, 'the partition assigned');
    const locker = new pg.Client({ connectionString: PG_BASE });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${schema}"."t_pp_stream_bp" IN EXCLUSIVE MODE`);
      const bids = makeBids(3000, 20, 3);
      for (let i = 0; i < bids.length; i += 500) await Promise.all(bids.slice(i, i + 500).map((b) => q.publish('bids', b, { key: b.auction })));
      await waitUntil(() => job.counters.recordsIn >= 200, 15_000, 'records up to the bound');
      await new Promise((r) => setTimeout(r, 1000));
      // Held at the bound: the running checkpoint's records + pendingRecordsMax (+ the record that hit it).
      expect(job.counters.recordsIn).toBeLessThanOrEqual(100 + 200 + 1);
      expect((await job.status()).partitions[0]!.lagRecords).toBeGreaterThan(2000);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    await waitUntil(async () => (await job.status()).partitions[0]!.lagRecords === 0, 60_000, 'catching up');
    await job.flush();
    const exp = await expectedBids(q, 1);
    expect(await actualBids(store, 'bp')).toEqual(exp.rows);
    await job.stop();
    await q.close();
    await store.close();
  }, 90_000);
});
