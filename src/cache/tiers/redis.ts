/**
 * L2 on Redis (`redis://host:port[/db]`), through ioredis.
 *
 * Keys under `prefix` (default `pp:cache:`):
 *     v:<ns>:<key>   the encoded entry, with a Redis TTL = the entry's hard expiry (fresh + grace)
 *     l:<ns>:<key>   the key's LEASE: a token, set NX with a short TTL by the node that loads it
 *     t:<ns>:<tag>   a set of `<ns>:<key>` members carrying the tag
 *
 * Leases (Facebook's memcache leases, Nishtala et al., NSDI 2013): a node that misses takes the
 * lease before calling its loader and writes the result with a Lua compare-and-set on the token.
 * A delete or an unconditional write removes the lease, so a load that started before an
 * invalidation can no longer write its (older) value: no stale sets across nodes. The lease also
 * makes the load single-flight across nodes: others see it held and wait for the value.
 *
 * Failure behaviour: commands fail fast while disconnected (`enableOfflineQueue: false`) and
 * time out after `commandTimeoutMs`; ioredis reconnects in the background with backoff. The cache
 * puts a circuit breaker in front, so a dead Redis costs nothing per request once the breaker opens.
 * Single Redis (or a primary): scripts touch keys they compute, so this is not Redis Cluster-safe.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { requireArg } from '../../errors/index.js';
import { renamedOptions } from '../../util/index.js';
import type { L2Tier } from './base.js';

export interface RedisTierOptions {
  /** Key prefix, default 'pp:cache:'. */
  prefix?: string;
  /** Per-command timeout. Default 250 ms. */
  commandTimeoutMs?: number;
  /** Cap of the reconnect backoff. Default 2,000 ms. */
  reconnectDelayMsMax?: number;
  /** Keys deleted per SCAN batch by clearNamespace. Default 500. */
  scanBatch?: number;
  /** @deprecated use reconnectDelayMsMax */
  reconnectMaxMs?: number;
}

const SET_SCRIPT = `
if ARGV[3] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
local ttl = tonumber(ARGV[2])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[4])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1`;

const TAGS_SCRIPT = `
local n = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, m in ipairs(members) do
    n = n + redis.call('DEL', ARGV[1] .. 'v:' .. m)
    redis.call('DEL', ARGV[1] .. 'l:' .. m)
  end
  redis.call('DEL', KEYS[i])
end
return n`;

/** Deletes the lease only if it is still ours (a newer lease or none is left alone). */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface ScriptedRedis extends Redis {
  ppCacheSet(...args: (string | Buffer | number)[]): Promise<number>;
  ppCacheTags(...args: (string | number)[]): Promise<number>;
  ppCacheRelease(...args: string[]): Promise<number>;
}

/** ioredis options shared by the tier and the bus: fail fast offline, reconnect with capped backoff. */
export function redisClient(url: string, given: { commandTimeoutMs?: number; reconnectDelayMsMax?: number; /** @deprecated */ reconnectMaxMs?: number; offlineQueue?: boolean; name: string }): Redis {
  const options = renamedOptions(given, { reconnectDelayMsMax: 'reconnectMaxMs' });
  const reconnectDelayMsMax = options.reconnectDelayMsMax ?? 2_000;
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: options.offlineQueue ?? false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 250,
    connectTimeout: 1_000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 10), reconnectDelayMsMax),
    connectionName: options.name,
  });
  // ioredis emits 'error' on every failed (re)connect; the cache counts failures through its
  // breaker, so the events only need a listener (an unhandled 'error' event would crash).
  client.on('error', () => {});
  return client;
}

export class RedisTier implements L2Tier {
  readonly kind = 'redis';
  readonly client: Redis;
  private readonly redis: ScriptedRedis;
  private readonly prefix: string;
  private readonly scanBatch: number;
  private readonly tokenPrefix = randomBytes(6).toString('hex');
  private tokenCounter = 0;

  constructor(url: string, options: RedisTierOptions = {}) {
    this.prefix = options.prefix ?? 'pp:cache:';
    requireArg(this.prefix.length > 0 && this.prefix.length <= 128, 'l2.prefix', 'must be 1-128 characters');
    this.scanBatch = options.scanBatch ?? 500;
    this.client = redisClient(url, { ...options, name: 'pp-cache-l2' });
    this.client.defineCommand('ppCacheSet', { lua: SET_SCRIPT });
    this.client.defineCommand('ppCacheTags', { lua: TAGS_SCRIPT });
    this.client.defineCommand('ppCacheRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    this.redis = this.client as ScriptedRedis;
  }

  /** Starts connecting; never rejects (a Redis that is down is retried in the background). */
  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch {
      // retried by ioredis's retryStrategy
    }
  }

  get(key: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.prefix + 'v:' + key);
  }

  async set(key: string, bytes: Buffer, ttlMs: number, tags: readonly string[] | undefined, leaseToken: string | undefined): Promise<boolean> {
    const keys = [this.prefix + 'v:' + key, this.prefix + 'l:' + key];
    if (tags !== undefined) for (const t of tags) keys.push(this.prefix + 't:' + t);
    const ok = await this.redis.ppCacheSet(keys.length, ...keys, bytes, Math.max(1, Math.ceil(ttlMs)), leaseToken ?? '', key);
    return ok === 1;
  }

  async lease(key: string, leaseMs: number): Promise<string | null> {
    const token = `${this.tokenPrefix}:${++this.tokenCounter}`;
    const r = await this.redis.set(this.prefix + 'l:' + key, token, 'PX', Math.max(1, Math.ceil(leaseMs)), 'NX');
    return r === 'OK' ? token : null;
  }

  async release(key: string, leaseToken: string): Promise<void> {
    await this.redis.ppCacheRelease(this.prefix + 'l:' + key, leaseToken);
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const all: string[] = [];
    for (const k of keys) all.push(this.prefix + 'v:' + k, this.prefix + 'l:' + k);
    await this.redis.del(...all);
  }

  invalidateTags(tags: readonly string[]): Promise<number> {
    if (tags.length === 0) return Promise.resolve(0);
    return this.redis.ppCacheTags(tags.length, ...tags.map((t) => this.prefix + 't:' + t), this.prefix);
  }

  async clearNamespace(namespace: string): Promise<number> {
    let cursor = '0';
    let n = 0;
    for (const kind of ['v:', 'l:', 't:']) {
      const match = `${this.prefix}${kind}${namespace}:*`.replace(/[[\]?\\]/g, '\\$&');
      cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', this.scanBatch);
        cursor = next;
        if (keys.length > 0) n += await this.redis.del(...keys);
      } while (cursor !== '0');
    }
    return n;
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
