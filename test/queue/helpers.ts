/**
 * Engine fixtures for the queue suites: every queue gets its own storage (a temp directory, or a
 * JetStream namespace: its own streams and groups bucket), so parallel test files never collide;
 * `cleanup` closes the queues and removes the storage.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JetStreamEngine} from '../../src/queue/index.js';
import { openQueue, type Queue, type QueueOptions } from '../../src/queue/index.js';
import { waitUntil as waitFor } from '../helpers/wait.js';

export interface QueueCase {
  readonly name: 'log' | 'jetstream';
  /** A new queue on new storage; the same `id` reopens the same storage. */
  open(options?: Omit<QueueOptions, 'engine'>, id?: string): Promise<Queue>;
  /** Engine URL of storage `id` (for child processes). */
  url(id: string): string;
  cleanup(): Promise<void>;
}

let seq = 0;
export function uniqueId(tag: string): string {
  return `${tag}${process.pid.toString(36)}${Date.now().toString(36)}${(seq++).toString(36)}`;
}

export function logCase(): QueueCase {
  const root = mkdtempSync(join(tmpdir(), 'pp-queue-'));
  const queues: Queue[] = [];
  const url = (id: string): string => `file:${join(root, id)}`;
  return {
    name: 'log',
    url,
    async open(options = {}, id = uniqueId('q')) {
      const q = await openQueue({ ...options, engine: url(id) });
      queues.push(q);
      return q;
    },
    async cleanup() {
      await Promise.allSettled(queues.map((q) => q.close()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export function jetstreamCase(): QueueCase {
  const queues: Queue[] = [];
  const namespaces = new Set<string>();
  const url = (id: string): string => `nats://127.0.0.1:4222?ns=${id}`;
  return {
    name: 'jetstream',
    url,
    async open(options = {}, id = uniqueId('t')) {
      namespaces.add(id);
      const q = await openQueue({ ...options, engine: url(id) });
      queues.push(q);
      return q;
    },
    async cleanup() {
      await Promise.allSettled(queues.map((q) => q.close()));
      for (const ns of namespaces) {
        const q = await openQueue({ engine: url(ns) });
        await (q.engine as JetStreamEngine).destroyNamespace();
        await q.close();
      }
    },
  };
}

/** Polls `cond` every 10 ms until it holds; fails after `timeoutMs` (a bound, not a timing assertion). */
export { waitFor };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Fast group settings for tests: short heartbeats so a graceful rebalance happens within a few
 * ticks. The session (lease) is long enough that a loaded CI machine stalling the event loop does
 * not expire a live member's lease (which would move partitions and redeliver); no test waits for
 * a FAST lease to expire.
 */
export const FAST = { heartbeatMs: 50, sessionTimeoutMs: 5000 } as const;

/**
 * A barrier instead of a sleep: publishes one sentinel to every partition and waits until `seen`
 * reports each. Records are handed out in offset order per partition, so once every sentinel was
 * seen, anything published before them that was going to be (re)delivered has been.
 */
export async function barrier(q: Queue, topic: string, seen: (tag: string) => boolean, timeoutMs = 10_000): Promise<void> {
  const cfg = await q.topic(topic);
  const tags: string[] = [];
  for (let p = 0; p < cfg!.partitions; p++) {
    const tag = `sentinel-${p}-${seq++}`;
    tags.push(tag);
    await q.publish(topic, { sentinel: tag }, { partition: p });
  }
  await waitFor(() => tags.every(seen), timeoutMs, `sentinels on ${topic}`);
}
