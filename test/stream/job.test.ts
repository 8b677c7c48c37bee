/**
 * A stream job on the embedded engines: results equal one uninterrupted run of the pure window
 * code over the same topic; a graceful restart counts nothing twice; bad input (no timestamp, a
 * key that does not serialise, a key in the wrong partition, a sink row that fails validation, a
 * throwing step) is dead-lettered with its reason and counted, and the job keeps running.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { openQueue, type Queue } from '../../src/queue/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createJob, tumbling, type Job } from '../../src/stream/index.js';
import { waitUntil } from '../helpers/wait.js';
import { bidsJob, makeBids } from './fixtures/bids.js';
import { actualBids, deadByCode, expectedBids } from './helpers.js';
import { openJobTablesForTest } from './tables.js';

const root = mkdtempSync(join(tmpdir(), 'pp-stream-job-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function publishBids(q: Queue, n: number, seed: number): Promise<void> {
  const bids = makeBids(n, 50, seed);
  for (let i = 0; i < bids.length; i += 500) await Promise.all(bids.slice(i, i + 500).map((b) => q.publish('bids', b, { key: b.auction })));
}

async function caughtUp(job: Job): Promise<void> {
  await waitUntil(async () => {
    const s = await job.status();
    return s.partitions.length > 0 && s.partitions.reduce((a, p) => a + p.lagRecords, 0) === 0;
  }, 30_000, 'the job to read every record');
  await job.flush();
}

describe('stream job (embedded engines)', () => {
  it('writes exactly the results of one uninterrupted run, late and bad records dead-lettered and counted; a restart adds nothing twice', async () => {
    const dir = join(root, 'a');
    let store: Store = await openStore({ engine: `sqlite:${join(dir, 'store')}`, shards: 2, sweep: { intervalMs: 0 } });
    let q = await openQueue({ engine: `file:${join(dir, 'queue')}` });
    await q.createTopic('bids', { partitions: 4 });
    await publishBids(q, 6000, 7);
    let job = await bidsJob(store, q);
    await job.start();
    await caughtUp(job);
    const exp = await expectedBids(q, 4);
    expect(exp.late).toBeGreaterThan(0);
    expect(exp.dead).toBeGreaterThan(0);
    expect(await actualBids(store)).toEqual(exp.rows);
    const s = await job.status();
    expect(s.counters.late).toBe(exp.late);
    expect(s.counters.dead).toBe(exp.dead);
    expect(s.operators.map((o) => o.name)).toEqual(['source', '0:filter', 'window']);
    await job.stop();
    await q.close();
    await store.close();

    // Restart on the same files, more records: the table equals the run over all of them.
    store = await openStore({ engine: `sqlite:${join(dir, 'store')}`, shards: 2, sweep: { intervalMs: 0 } });
    q = await openQueue({ engine: `file:${join(dir, 'queue')}` });
    await publishBids(q, 3000, 8);
    job = await bidsJob(store, q);
    await job.start();
    await caughtUp(job);
    const exp2 = await expectedBids(q, 4);
    expect(await actualBids(store)).toEqual(exp2.rows);
    const dead = await deadByCode(store);
    expect(dead.get('late')).toBe(exp2.late);
    expect(dead.get('PP_ERR_VALIDATION')).toBe(exp2.dead);
    await job.stop();
    await q.close();
    await store.close();
  }, 60_000);

  it('joins two keyed streams within a window (new persons and the auctions they opened, Nexmark q8)', async () => {
    const dir = join(root, 'j');
    const store = await openStore({ engine: `sqlite:${join(dir, 'store')}`, sweep: { intervalMs: 0 } });
    const q = await openQueue({ engine: `file:${join(dir, 'queue')}` });
    await q.createTopic('people', { partitions: 2 });
    type Ev = { kind: 'person'; id: string; name: string; ts: number } | { kind: 'auction'; seller: string; item: string; ts: number };
    const out = await store.table('q8', { schema: Type.Object({ person: Type.String(), start: Type.Integer(), pairs: Type.Array(Type.String()) }), primaryKey: ['person', 'start'] });
    const job = createJob('q8', { store, queue: q, checkpointIntervalMs: 20 });
    job
      .from<Ev>('people', { timestamp: (e) => e.ts })
      .keyBy((e) => (e.kind === 'person' ? e.id : e.seller))
      .window(tumbling(1000))
      .join(
        (e) => e.kind === 'person',
        (p, a) => `${(p as { name: string }).name}:${(a as { item: string }).item}`,
      )
      .toTable(out, (r) => ({ person: String(r.key), start: r.start, pairs: r.value.pairs }));
    await job.start();
    const t0 = 1_700_000_000_000;
    const evs: Ev[] = [
      { kind: 'person', id: 'ann', name: 'Ann', ts: t0 + 10 },
      { kind: 'auction', seller: 'ann', item: 'lamp', ts: t0 + 20 },
      { kind: 'auction', seller: 'bob', item: 'vase', ts: t0 + 30 }, // bob joined in another window
      { kind: 'auction', seller: 'ann', item: 'desk', ts: t0 + 900 },
      { kind: 'person', id: 'bob', name: 'Bob', ts: t0 + 1100 },
      { kind: 'auction', seller: 'ann', item: 'late', ts: t0 + 1200 }, // next window: no person there
    ];
    for (const e of evs) await q.publish('people', e, { key: e.kind === 'person' ? e.id : e.seller });
    // Move event time past the windows on both partitions.
    for (const k of ['ann', 'bob']) await q.publish('people', { kind: 'person', id: k, name: k, ts: t0 + 5000 }, { key: k });
    await waitUntil(async () => (await job.status()).counters.recordsIn === 8, 15_000, 'records in');
    await job.flush();
    const start = Math.floor(t0 / 1000) * 1000;
    expect((await out.get({ person: 'ann', start }))?.row.pairs).toEqual(['Ann:lamp', 'Ann:desk']);
    expect((await out.get({ person: 'bob', start }))?.row.pairs).toEqual([]);
    expect((await out.get({ person: 'ann', start: start + 1000 }))?.row.pairs).toEqual([]);
    await job.stop();
    await q.close();
    await store.close();
  }, 30_000);

  it('bad input is dead-lettered with its reason and the job keeps running', async () => {
    const dir = join(root, 'b');
    const store = await openStore({ engine: `sqlite:${join(dir, 'store')}`, sweep: { intervalMs: 0 } });
    const q = await openQueue({ engine: `file:${join(dir, 'queue')}` });
    await q.createTopic('ev', { partitions: 2 });
    const out = await store.table('ev_out', { schema: Type.Object({ k: Type.String(), start: Type.Integer(), n: Type.Integer({ maximum: 2 }) }), primaryKey: ['k', 'start'] });
    const job = createJob('bad', { store, queue: q, checkpointIntervalMs: 20 });
    job
      .from<{ k: unknown; ts: unknown; boom?: boolean }>('ev', { timestamp: (v) => v.ts as number })
      .map((v) => {
        if (v.boom === true) throw new Error('boom');
        return v;
      })
      .keyBy((v) => v.k as string)
      .window(tumbling(1000))
      .count()
      .toTable(out, (r) => ({ k: String(r.key), start: r.start, n: r.value }));
    await job.start();
    const t0 = 1_700_000_000_000;
    const pub = (v: Record<string, unknown>, key: string): Promise<unknown> => q.publish('ev', v, { key });
    await pub({ k: 'x', ts: 'yesterday' }, 'x'); // no usable timestamp
    await pub({ k: { nested: true }, ts: t0 }, 'x'); // a key that is not a string or number
    await pub({ k: 'y', ts: t0, boom: true }, 'y'); // a step that throws
    // 'x' published under another key's partition: the key's state would be split
    let other = 'z0';
    for (let i = 0; i < 100; i++) if ((await q.publish('ev', { k: 'q', ts: t0 }, { key: `z${i}`, partition: 0 })).partition === 0) break;
    other = 'q';
    for (let i = 0; i < 4; i++) await pub({ k: 'x', ts: t0 + i }, 'x'); // 4 in one window: the row's n > 2 fails validation
    await pub({ k: 'x', ts: t0 + 5000 }, 'x'); // fires the window
    await pub({ k: 'w', ts: t0 }, 'w');
    await pub({ k: 'w', ts: t0 + 5000 }, 'w');
    await waitUntil(async () => (await job.status()).counters.recordsIn >= 10, 15_000, 'records in');
    await job.flush();
    const s = await job.status();
    expect(s.running).toBe(true);
    const t = await openJobTablesForTest(store, 'bad');
    const rows = (await t.dead.query({ limit: 100 })).items.map((i) => i.row);
    const reasons = rows.map((r) => r.reason).join('\n');
    expect(reasons).toMatch(/timestamp: must be a finite number/);
    expect(reasons).toMatch(/keyBy: the key must be a string/);
    expect(reasons).toMatch(/map \(step 0\): boom/);
    expect(reasons).toMatch(/sink ev_out: row\.n/);
    if (other === 'q') expect(reasons.includes('belongs to partition') || rows.length >= 4).toBe(true);
    expect((await out.get({ k: 'w', start: Math.floor(t0 / 1000) * 1000 }))?.row.n).toBe(1);
    expect(s.counters.dead).toBe(rows.filter((r) => r.code !== 'late').length);
    await job.stop();
    await q.close();
    await store.close();
  }, 30_000);
});
