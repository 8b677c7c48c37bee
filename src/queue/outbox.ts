/**
 * The transactional outbox: messages derived from store writes, so a row and its message commit
 * together or not at all.
 *
 * The store already appends a change record in the same transaction as every write (its change
 * feed, `pp_feed`): a record exists iff the write committed. The outbox follows that feed with a
 * durable feed consumer and turns the changes of the routed tables / kv namespaces into messages
 * (`routes[name](change)`). Nothing is written to the queue by the writer itself, so there is no
 * window where the row committed and the message did not (or the reverse): the message is a
 * function of the committed change.
 *
 * Delivery to the queue is at least once: the feed position is stored after the batch's messages
 * are durable in the queue; after a crash in between, the batch is published again with the same
 * ids (`outbox:<name>:<shard>:<position>:<i>`), which the queue's dedup window absorbs. Order: the
 * messages of one shard are published in commit order, so per-key order holds for rows whose key
 * maps to one shard (the partition key).
 */
import { requireArg } from '../errors/index.js';
import type { ChangeRecord, Store, Subscription as FeedSubscription } from '../store/index.js';
import type { PublishOptions, Queue } from './queue.js';

export interface OutboxMessage {
  readonly topic: string;
  readonly message: unknown;
  readonly key?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly delayMs?: number;
}

/** Maps one committed change to zero, one or several messages. Must be deterministic (it may run again). */
/**
 * Maps a committed change to its messages. It may look data up (a promise): the feed waits for
 * it, in commit order; what it resolves to is published under ids of the change's position, so
 * a replay after a crash publishes the same ids (deduped) — with what the lookup answers then.
 */
export type OutboxRoute = (change: ChangeRecord) => OutboxMessage | readonly OutboxMessage[] | undefined | Promise<OutboxMessage | readonly OutboxMessage[] | undefined>;

export interface OutboxOptions {
  readonly store: Store;
  readonly queue: Queue;
  /** Names the message ids (`outbox:<name>:…`) and, by default, the durable feed consumer. */
  readonly name: string;
  /** Durable feed consumer (positions stored in the store). Default `outbox-<name>`. */
  readonly consumer?: string;
  /** Table or kv-namespace name -> route; changes of anything else are skipped. */
  readonly routes: Readonly<Record<string, OutboxRoute>>;
  /** Where a new outbox starts in the feed. Default 'earliest'. */
  readonly from?: 'earliest' | 'latest';
  /** Change records per batch. Default 256. */
  readonly batchMax?: number;
  /** How often to look for writes of other processes, in ms. Default 200. */
  readonly pollIntervalMs?: number;
  /** Wait after a failed publish before the batch is retried, in ms. Default 1000. */
  readonly retryDelayMs?: number;
  readonly onError?: (err: unknown) => void;
}

export interface Outbox {
  /** Published feed position per shard. */
  positions(): Record<string, number>;
  /** Messages published (including dedup-absorbed repeats). */
  readonly published: number;
  close(): Promise<void>;
}

export async function createOutbox(options: OutboxOptions): Promise<Outbox> {
  requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object');
  const { store, queue, name, routes } = options;
  requireArg(typeof name === 'string' && /^[A-Za-z0-9_-]{1,100}$/.test(name), 'name', 'must match [A-Za-z0-9_-]{1,100}');
  requireArg(typeof routes === 'object' && routes !== null && Object.values(routes).every((r) => typeof r === 'function'), 'routes', 'must map names to functions');
  let published = 0;
  const sub: FeedSubscription = await store.feed.subscribe({
    consumer: options.consumer ?? `outbox-${name}`,
    from: options.from ?? 'earliest',
    batchMax: options.batchMax ?? 256,
    pollIntervalMs: options.pollIntervalMs ?? 200,
    retryDelayMs: options.retryDelayMs ?? 1000,
    // A route names a table or a kv namespace; changes of anything else are never decoded.
    only: { tables: Object.keys(routes), kv: Object.keys(routes) },
    ...(options.onError === undefined ? {} : { onError: (err: unknown) => options.onError?.(err) }),
    handler: async (records, shard) => {
      const out: { topic: string; message: unknown; opts: PublishOptions }[] = [];
      for (const rec of records) {
        const route = Object.hasOwn(routes, rec.name) ? routes[rec.name] : undefined;
        if (route === undefined) continue;
        const routed = route(rec);
        const r = routed !== null && typeof routed === 'object' && typeof (routed as Promise<unknown>).then === 'function' ? await routed : (routed as OutboxMessage | readonly OutboxMessage[] | undefined);
        if (r === undefined) continue;
        const list: readonly OutboxMessage[] = Array.isArray(r) ? (r as readonly OutboxMessage[]) : [r as OutboxMessage];
        list.forEach((m, i) => {
          out.push({
            topic: m.topic,
            message: m.message,
            opts: { id: `outbox:${name}:${shard}:${rec.position}:${i}`, ...(m.key === undefined ? {} : { key: m.key }), ...(m.headers === undefined ? {} : { headers: m.headers }), ...(m.delayMs === undefined ? {} : { delayMs: m.delayMs }) },
          });
        });
      }
      if (out.length === 0) return;
      // Resolve topics first, then issue the publishes in commit order without awaiting each:
      // appends are ordered by call, so per-key order is kept and the batch shares one group commit.
      for (const t of new Set(out.map((o) => o.topic))) await queue.partitionsOf(t);
      await Promise.all(out.map((o) => queue.publish(o.topic, o.message, o.opts)));
      published += out.length;
    },
  });
  return {
    positions: () => sub.positions(),
    get published() {
      return published;
    },
    close: () => sub.close(),
  };
}
