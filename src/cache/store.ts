/**
 * The cache over the store: read-through for a kv namespace or a table, and invalidation driven
 * by the store's change feed.
 *
 * Every node subscribes to the feed (from 'latest', no durable consumer: a restarted node starts
 * with an empty L1, so it has nothing to catch up on). Each put or delete record of the followed
 * kv namespace / table drops the key from this node's L1 (bumping its epoch, so a load in flight
 * cannot write the old row back) and, by default, from L2 (which also revokes the key's lease).
 * So a write through ANY node — through the cache's read-through or straight through the store,
 * even by a process without a cache — reaches every node's L1 within the feed's delivery delay:
 * immediately for commits in the same process, within `pollIntervalMs` for other processes.
 */
import { requireArg } from '../errors/index.js';
import type { ChangeFeed, ChangeRecord, Kv, KvPutOptions, Subscription, Table, WriteResult, KeyOf } from '../store/index.js';
import type { Cache, EntryOptions } from './cache.js';

export interface FeedInvalidationOptions {
  source: 'kv' | 'table';
  /** kv namespace or table name. */
  name: string;
  /** The cache key of a record. Default: kv -> the key; table -> `tableCacheKey(record.key)`. */
  keyOf?: (record: ChangeRecord) => string;
  /** Also delete the key from L2. Default true. */
  deleteFromL2?: boolean;
  /** How often other processes' commits are looked for. Default 50 ms. */
  pollIntervalMs?: number;
  onError?: (err: unknown) => void;
}

/** The cache key of a table row: its primary-key values, JSON-encoded (string and number columns). */
export function tableCacheKey(values: readonly unknown[]): string {
  return JSON.stringify(values);
}

/** Follows the feed and invalidates the cache on every write of `options.name`. Close the subscription to stop. */
export async function invalidateFromFeed(cache: Cache<unknown>, feed: ChangeFeed, options: FeedInvalidationOptions): Promise<Subscription> {
  requireArg(options.source === 'kv' || options.source === 'table', 'source', "must be 'kv' or 'table'");
  const keyOf = options.keyOf ?? ((r: ChangeRecord) => (r.source === 'kv' ? String(r.key[0]) : tableCacheKey(r.key)));
  const toL2 = options.deleteFromL2 ?? true;
  return feed.subscribe({
    from: 'latest',
    pollIntervalMs: options.pollIntervalMs ?? 50,
    retryDelayMs: 100,
    only: options.source === 'kv' ? { kv: [options.name] } : { tables: [options.name] },
    ...(options.onError === undefined ? {} : { onError: (err: unknown) => options.onError?.(err) }),
    handler: async (records) => {
      const keys: string[] = [];
      for (const r of records) if (r.source === options.source && r.name === options.name) keys.push(keyOf(r));
      if (keys.length === 0) return;
      for (const k of keys) cache.invalidateLocal(k);
      if (toL2) await cache.evictShared(keys);
    },
  });
}

export interface ReadThrough<K, V> {
  get(key: K): Promise<V | undefined>;
  /** The fresh L1 value, synchronously, or undefined (then use `get`): see `Cache.peek`. */
  peek(key: K): V | undefined;
  /** Writes through the store, then invalidates the key everywhere (the feed does it too). */
  put(key: K, value: V, options?: KvPutOptions): Promise<WriteResult>;
  delete(key: K): Promise<boolean>;
  /**
   * Drops the key everywhere now, for a write made another way (a transaction, a batch): the
   * feed would drop it too, a poll interval later.
   */
  invalidate(key: K): Promise<void>;
  /** Stops following the feed. */
  close(): Promise<void>;
}

/** Read-through over a kv namespace, invalidated by the store's change feed. */
export async function readThroughKv<V>(cache: Cache<V>, kv: Kv<V>, feed: ChangeFeed, options: EntryOptions & { pollIntervalMs?: number } = {}): Promise<ReadThrough<string, V>> {
  const sub = await invalidateFromFeed(cache as Cache<unknown>, feed, { source: 'kv', name: kv.namespace, pollIntervalMs: options.pollIntervalMs });
  return {
    get: (key) => cache.getOrLoad(key, async () => (await kv.get(key))?.value, options),
    peek: (key) => cache.peek(key),
    put: async (key, value, putOptions) => {
      const w = await kv.put(key, value, putOptions);
      await cache.delete(key);
      return w;
    },
    delete: async (key) => {
      const r = await kv.delete(key);
      await cache.delete(key);
      return r;
    },
    invalidate: async (key) => {
      await cache.delete(key);
    },
    close: () => sub.close(),
  };
}

/** Read-through over a table (rows by primary key), invalidated by the store's change feed. */
export async function readThroughTable<T extends Record<string, unknown>>(
  cache: Cache<T>,
  table: Table<T>,
  feed: ChangeFeed,
  options: EntryOptions & { pollIntervalMs?: number } = {},
): Promise<ReadThrough<KeyOf<T>, T>> {
  const pk = table.def.primaryKey;
  const keyOf = (key: KeyOf<T>): string =>
    tableCacheKey(typeof key === 'object' && key !== null ? pk.map((c) => (key as Record<string, unknown>)[c]) : [key]);
  const sub = await invalidateFromFeed(cache as Cache<unknown>, feed, { source: 'table', name: table.def.name, pollIntervalMs: options.pollIntervalMs });
  return {
    get: (key) => cache.getOrLoad(keyOf(key), async () => (await table.get(key))?.row, options),
    peek: (key) => cache.peek(keyOf(key)),
    put: async (key, value, putOptions) => {
      const w = await table.upsert(value, putOptions);
      await cache.delete(keyOf(key));
      return w;
    },
    delete: async (key) => {
      const r = await table.delete(key);
      await cache.delete(keyOf(key));
      return r;
    },
    invalidate: async (key) => {
      await cache.delete(keyOf(key));
    },
    close: () => sub.close(),
  };
}
