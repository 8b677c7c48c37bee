/**
 * Leases on Redis (`redis://host:port[/db]`, through ioredis). Per lock name, two keys sharing a
 * hash tag (so a Redis Cluster keeps them on one slot):
 *
 *     <prefix>{<name>}:l   the lease: "<token>\n<owner>", with a Redis TTL (PX) = the lease's
 *     <prefix>{<name>}:t   the fencing counter, INCRed by every acquisition, never expired
 *
 * Each operation is one Lua script, which Redis runs atomically: acquire = "no lease key -> INCR
 * the counter, SET the lease with PX"; renew / release = "the lease key still holds exactly my
 * token and owner -> PEXPIRE / DEL". So two acquirers cannot both win, tokens strictly increase,
 * and a stale holder's renew or release cannot touch a newer holder's lease.
 *
 * Time: the lease lapses on the Redis server's clock (PX). `Lease.expiresAtMs` is this process's
 * clock before the request + ttlMs, never later than the server's lapse. A Redis that loses
 * writes (a failover to a replica that had not received the SET, a restart without persistence)
 * can hand a name to two holders; the counter may even go back. Fencing on the store (fence.ts)
 * refuses the lower token either way, which is why writes that matter are fenced.
 */
import { Redis } from 'ioredis';
import { isPowerplantError, ppError, requireArg } from '../../errors/index.js';
import {
  acquireWithWait,
  checkAcquire,
  checkLease,
  checkName,
  checkTtl,
  notHolderError,
  resolveLimits,
  type AcquireOptions,
  type Lease,
  type LockLimits,
  type LockService,
} from './base.js';

export interface RedisLocksOptions extends LockLimits {
  /** Key prefix. Default 'pp:lock:'. */
  readonly prefix?: string;
  /** Per-command timeout when this service opens the connection (a URL was given). Default 1,000 ms. */
  readonly commandTimeoutMs?: number;
}

/** [1, token] taken; [0, pttl] held by someone (pttl: ms left). */
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('PTTL', KEYS[1])} end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t .. '\\n' .. ARGV[1], 'PX', ARGV[2])
return {1, t}`;

/** [1, 0] done; [0, counter] the lease is not this one (gone, or another token/owner). ARGV[3] = 'renew' | 'release'. */
const UPDATE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] == 'renew' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('DEL', KEYS[1]) end
  return {1, 0}
end
return {0, tonumber(redis.call('GET', KEYS[2]) or '0')}`;

/** [value or false, pttl]. */
const HOLDER = `return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}`;

interface ScriptedRedis extends Redis {
  ppLockAcquire(leaseKey: string, counterKey: string, owner: string, ttlMs: number): Promise<[number, number]>;
  ppLockUpdate(leaseKey: string, counterKey: string, value: string, ttlMs: number, what: 'renew' | 'release'): Promise<[number, number]>;
  ppLockHolder(leaseKey: string): Promise<[string | null | false, number]>;
}

function unavailable(err: unknown, what: string): Error {
  if (isPowerplantError(err)) return err;
  return ppError('PP_ERR_UNAVAILABLE', { message: `redis locks: ${what} failed`, cause: err, retryAfterMs: 100 });
}

export class RedisLocks implements LockService {
  readonly kind = 'redis';
  readonly client: Redis;
  readonly #redis: ScriptedRedis;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #limits: Required<LockLimits>;

  /** Use `redisLocks(urlOrClient)`. */
  constructor(client: Redis, owned: boolean, options: RedisLocksOptions) {
    this.#limits = resolveLimits(options);
    this.#prefix = options.prefix ?? 'pp:lock:';
    requireArg(typeof this.#prefix === 'string' && this.#prefix.length > 0 && this.#prefix.length <= 128, 'prefix', 'must be 1-128 characters');
    this.client = client;
    this.#owned = owned;
    client.defineCommand('ppLockAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    client.defineCommand('ppLockUpdate', { numberOfKeys: 2, lua: UPDATE });
    client.defineCommand('ppLockHolder', { numberOfKeys: 1, lua: HOLDER });
    this.#redis = client as ScriptedRedis;
  }

  #keys(name: string): [string, string] {
    const base = `${this.#prefix}{${name}}`;
    return [`${base}:l`, `${base}:t`];
  }

  async acquire(name: string, options: AcquireOptions): Promise<Lease> {
    const { owner, ttlMs, waitMs } = checkAcquire(name, options, this.#limits);
    const [lk, tk] = this.#keys(name);
    return acquireWithWait(name, waitMs, this.#limits.pollMsMax, async () => {
      const now = Date.now();
      let r: [number, number];
      try {
        r = await this.#redis.ppLockAcquire(lk, tk, owner, ttlMs);
      } catch (err) {
        throw unavailable(err, 'acquire');
      }
      if (r[0] === 1) return { name, owner, token: r[1], expiresAtMs: now + ttlMs };
      // PTTL -1 (no expiry) cannot happen for keys this service writes; treat it as a short wait.
      return { heldUntilMs: now + (r[1] > 0 ? r[1] : 1) };
    });
  }

  async #update(lease: Lease, ttlMs: number, what: 'renew' | 'release'): Promise<void> {
    const [lk, tk] = this.#keys(lease.name);
    let r: [number, number];
    try {
      r = await this.#redis.ppLockUpdate(lk, tk, `${lease.token}\n${lease.owner}`, ttlMs, what);
    } catch (err) {
      throw unavailable(err, what);
    }
    if (r[0] !== 1) throw notHolderError(lease, r[1] > lease.token ? `it was taken over (token ${r[1]})` : 'the lease expired, was released, or is not this one');
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    checkLease(lease);
    checkTtl(ttlMs, this.#limits);
    const now = Date.now();
    await this.#update(lease, ttlMs, 'renew');
    return { name: lease.name, owner: lease.owner, token: lease.token, expiresAtMs: now + ttlMs };
  }

  async release(lease: Lease): Promise<void> {
    checkLease(lease);
    await this.#update(lease, 1, 'release');
  }

  async holder(name: string): Promise<Lease | undefined> {
    checkName(name);
    const now = Date.now();
    let r: [string | null | false, number];
    try {
      r = await this.#redis.ppLockHolder(this.#keys(name)[0]);
    } catch (err) {
      throw unavailable(err, 'holder');
    }
    const v = r[0];
    if (typeof v !== 'string' || r[1] <= 0) return undefined;
    const nl = v.indexOf('\n');
    return { name, owner: v.slice(nl + 1), token: Number(v.slice(0, nl)), expiresAtMs: now + r[1] };
  }

  async close(): Promise<void> {
    if (this.#owned) await this.client.quit().catch(() => this.client.disconnect());
  }
}

/**
 * Leases on Redis: a URL (this service opens and, on close, closes the connection) or an ioredis
 * client the caller owns. Resolves once connected (a URL that cannot connect: PP_ERR_UNAVAILABLE).
 */
export async function redisLocks(target: string | Redis, options: RedisLocksOptions = {}): Promise<RedisLocks> {
  if (typeof target !== 'string') return new RedisLocks(target, false, options);
  requireArg(/^rediss?:\/\//.test(target), 'url', 'must be a redis:// or rediss:// URL');
  const timeout = options.commandTimeoutMs ?? 1_000;
  requireArg(Number.isSafeInteger(timeout) && timeout >= 1, 'commandTimeoutMs', 'must be an integer >= 1');
  const client = new Redis(target, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: timeout, connectTimeout: 2_000, connectionName: 'pp-locks' });
  client.on('error', () => {}); // reconnects are ioredis's; failed commands report themselves
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw unavailable(err, 'connect');
  }
  return new RedisLocks(client, true, options);
}
