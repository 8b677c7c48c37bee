/**
 * A job spread over nodes, on PostgreSQL (two shards) and NATS JetStream: three child processes run
 * the bids job; the topic's partitions are split between them by the queue's consumer group; one
 * node is SIGKILLed mid-stream and a fourth joins; its partitions and their state move (the state
 * is in the store, the offsets with it). The results then equal one uninterrupted run.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openQueue, type JetStreamEngine } from '../../src/queue/index.js';
import { openStore } from '../../src/store/index.js';
import { killChildren, startChild, type RunningChild } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { waitUntil } from '../helpers/wait.js';
import { dropSchemas, PG_BASE } from '../store/helpers.js';
import { makeBids } from './fixtures/bids.js';
import { actualBids, deadByCode, expectedBids } from './helpers.js';
import { openJobTablesForTest } from './tables.js';

const pgUp = await needEngine('postgres');
const natsUp = await needEngine('nats');
const id = `st${process.pid.toString(36)}${Date.now().toString(36)}`;
const storeUrl = `${PG_BASE}?schema=pp_${id}`;
const queueUrl = `nats://127.0.0.1:4222?ns=${id}`;
afterEach(() => killChildren());
afterAll(async () => {
  if (!pgUp || !natsUp) return;
  await dropSchemas(`pp_${id}`);
  const q = await openQueue({ engine: queueUrl });
  await (q.engine as JetStreamEngine).destroyNamespace();
  await q.close();
});

const CHILD = 'test/stream/fixtures/job-child.ts';
const P = 6;

function owned(c: RunningChild): number[] {
  const lines = c.output().split('\n').filter((l) => l.startsWith('progress'));
  const last = lines[lines.length - 1];
  const m = last === undefined ? undefined : /owned=([\d,]*)/.exec(last);
  return m === null || m === undefined || m[1] === '' ? [] : m[1]!.split(',').map(Number);
}

describe.runIf(pgUp && natsUp)('stream job over three nodes (PostgreSQL + JetStream)', () => {
  it('splits partitions over the nodes, moves them when one is killed and one joins, and the results stay exact', async () => {
    const q = await openQueue({ engine: queueUrl });
    await q.createTopic('bids', { partitions: P });
    const bids = makeBids(12_000, 120, 21);
    const publish = async (xs: typeof bids): Promise<void> => {
      for (let i = 0; i < xs.length; i += 500) await Promise.all(xs.slice(i, i + 500).map((b) => q.publish('bids', b, { key: b.auction })));
    };
    await publish(bids.slice(0, 4000));
    const args = ['--import', 'tsx', CHILD, storeUrl, queueUrl, '0'];
    const nodes = [startChild(args), startChild(args), startChild(args)];
    await waitUntil(() => nodes.every((n) => owned(n).length > 0) && new Set(nodes.flatMap(owned)).size === P, 60_000, 'three nodes sharing the six partitions');
    await publish(bids.slice(4000, 8000));
    // Kill one node mid-stream (no shutdown, no flush); another joins.
    const victim = nodes[1]!;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    nodes.push(startChild(args));
    await publish(bids.slice(8000));
    const live = [nodes[0]!, nodes[2]!, nodes[3]!];
    await waitUntil(() => new Set(live.flatMap(owned)).size === P && live.every((n) => owned(n).length > 0), 60_000, 'the surviving and the new node sharing every partition');

    const store = await openStore({ engine: storeUrl, shards: 2, sweep: { intervalMs: 0 } });
    try {
      const t = await openJobTablesForTest(store, 'bids');
      const ends = await Promise.all(Array.from({ length: P }, async (_, p) => (await q.bounds('bids', p)).next));
      await waitUntil(
        async () => {
          const metas = await Promise.all(Array.from({ length: P }, (_, p) => t.state.get({ part: p, key: '#meta' })));
          return metas.every((m, p) => m !== undefined && (m.row.doc as { offset: number }).offset === ends[p]);
        },
        90_000,
        'every partition checkpointed to its end',
      );
      const exp = await expectedBids(q, P);
      expect(await actualBids(store)).toEqual(exp.rows);
      const dead = await deadByCode(store);
      expect(dead.get('late') ?? 0).toBe(exp.late);
      expect(dead.get('PP_ERR_VALIDATION') ?? 0).toBe(exp.dead);
    } finally {
      await store.close();
      await q.close();
    }
  }, 240_000);
});
