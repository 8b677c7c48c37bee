/**
 * Queue consumers declared on a service: subscribed while the node runs (after the `started`
 * hooks, once the node serves), closed when it stops (after the drain, before the `stopped`
 * hooks), a failing start unwinds. On the embedded log and on JetStream.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Delivery, Queue } from '../../src/queue/index.js';
import { consumer, type NodeConfig, type ServiceNode } from '../../src/service/index.js';
import { action, createNode, defineService } from './imports.js';
import { needEngine } from '../helpers/engines.js';
import { waitUntil } from '../helpers/wait.js';
import { jetstreamCase, logCase, type QueueCase } from '../queue/helpers.js';

const nodes: ServiceNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

function node(services: NodeConfig['services']): ServiceNode {
  const n = createNode({ logger: false, services });
  nodes.push(n);
  return n;
}

/** Receives the next message of `group` on `topic` with a plain subscription: proves no one else holds the group's partitions. */
async function nextWithPlainMember(q: Queue, topic: string, group: string): Promise<unknown> {
  const got: unknown[] = [];
  const sub = await q.subscribe(topic, { group, handler: (d) => { got.push(d.value); } });
  try {
    await waitUntil(() => got.length > 0, 15_000, `a delivery to a plain member of ${group}`);
    return got[0];
  } finally {
    await sub.close();
  }
}

function consumerSuite(c: QueueCase): void {
  afterAll(() => c.cleanup());

  it('subscribes after the started hooks while the node runs, hands the handler a context, and closes before the stopped hooks', async () => {
    const q = await c.open();
    await q.createTopic('tasks', { partitions: 1 });
    const order: string[] = [];
    const seen: { n: number; name: string; nodeId: string; doubled: unknown; state: string }[] = [];
    let gate: (() => void) | undefined;
    const worker = defineService({
      name: 'tworker',
      actions: { double: action({ params: Type.Object({ n: Type.Number() }), handler: (_ctx, p) => p.n * 2 }) },
      consumers: {
        tasks: consumer<{ n: number }>({
          queue: q,
          ackWaitMs: 10_000,
          handler: async (ctx, d: Delivery<{ n: number }>) => {
            if (d.value.n === 99) {
              order.push('handler running');
              await new Promise<void>((r) => { gate = r; });
              order.push('handler done');
              return;
            }
            // The node serves while its consumers run: a local action answers.
            const doubled = await ctx.callDynamic('tworker.double', { n: d.value.n });
            seen.push({ n: d.value.n, name: ctx.name, nodeId: ctx.nodeId, doubled, state: n.state });
          },
        }),
      },
      started: () => { order.push('started'); },
      stopped: () => { order.push('stopped'); },
    });
    const n = node([worker]);
    for (const v of [1, 2, 3]) await q.publish('tasks', { n: v });
    await n.start();
    await waitUntil(() => seen.length === 3, 15_000, 'three deliveries');
    expect(seen.map((s) => s.n).sort()).toEqual([1, 2, 3]);
    expect(seen[0]).toMatchObject({ name: 'tasks', nodeId: n.nodeId, state: 'running' });
    expect(seen.map((s) => s.doubled).sort()).toEqual([2, 4, 6]);
    expect(order).toEqual(['started']);

    // A delivery in progress when the node stops: stop() waits for it, then runs the stopped hook.
    await q.publish('tasks', { n: 99 });
    await waitUntil(() => gate !== undefined, 15_000, 'the held delivery');
    const stopping = n.stop();
    expect(n.state).toBe('draining');
    gate!();
    await stopping;
    expect(order).toEqual(['started', 'handler running', 'handler done', 'stopped']);

    // The node left the group (default group: the service name): a new member gets the next message.
    await q.publish('tasks', { n: 4 });
    expect(await nextWithPlainMember(q, 'tasks', 'tworker')).toEqual({ n: 4 });
    expect(seen).toHaveLength(3);
  });

  it('a consumer that cannot subscribe fails the start and unwinds: earlier consumers closed, stopped hooks of started services run', async () => {
    const q = await c.open();
    await q.createTopic('good', { partitions: 1 });
    await q.createTopic('bad', { partitions: 1 });
    const order: string[] = [];
    const good: unknown[] = [];
    const first = defineService({
      name: 'tfirst',
      consumers: { good: consumer({ queue: q, group: 'g1', handler: (_ctx, d) => { good.push(d.value); } }) },
      started: () => { order.push('first started'); },
      stopped: () => { order.push('first stopped'); },
    });
    const second = defineService({
      name: 'tsecond',
      // Valid for defineService; the queue rejects it when the node subscribes.
      consumers: { bad: consumer({ queue: q, concurrency: 0, handler: () => undefined }) },
      started: () => { order.push('second started'); },
      stopped: () => { order.push('second stopped'); },
    });
    const n = node([first, second]);
    await expect(n.start()).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'concurrency' });
    expect(n.state).toBe('stopped');
    expect(n.health()).toMatchObject({ live: false, ready: false });
    expect(order).toEqual(['first started', 'second started', 'first stopped', 'second stopped']);
    // The first consumer was subscribed, then closed by the unwind: group g1 is free again.
    await q.publish('good', 'after');
    expect(await nextWithPlainMember(q, 'good', 'g1')).toBe('after');
    expect(good).toEqual([]);
  });
}

describe('service consumers on the embedded log', () => {
  consumerSuite(logCase());
});

const natsUp = await needEngine('nats');
describe.runIf(natsUp)('service consumers on JetStream', () => {
  consumerSuite(jetstreamCase());
});

describe('consumer declarations are checked by defineService', async () => {
  const c = logCase();
  afterAll(() => c.cleanup());
  const queue = await c.open();
  const handler = (): void => undefined;
  it.each([
    [{ 'a.b': consumer({ queue, handler }) }, 'consumers.a.b'],
    [{ '': consumer({ queue, handler }) }, 'consumers.'],
    [{ t: consumer({ queue, handler: 'no' as unknown as typeof handler }) }, 'consumers.t.handler'],
    [{ t: consumer({ queue: {} as Queue, handler }) }, 'consumers.t.queue'],
    [{ t: consumer({ queue, handler, group: 'a b' }) }, 'consumers.t.group'],
  ])('rejects %o naming %s', (consumers, field) => {
    expect(() => defineService({ name: 'tbad', consumers })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field }));
  });

  it('accepts a valid declaration and keeps it on the definition', () => {
    const def = consumer({ queue, handler, concurrency: 4 });
    expect(defineService({ name: 'tok', consumers: { 'orders-created': def } }).consumers['orders-created']).toBe(def);
    expect(defineService({ name: 'tnone' }).consumers).toEqual({});
  });
});
