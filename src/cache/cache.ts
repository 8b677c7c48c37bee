/**
 * The tiered cache: L1 in process -> optional L2 (Redis) -> the caller's loader, with the
 * protections of docs/cache.md: single-flight per key (and across nodes through an L2 lease),
 * stale-while-revalidate within a grace period, soft and hard loader timeouts, XFetch early
 * refresh, negative caching and a Bloom filter of missing keys, TTL jitter, fail-safe (serve
 * stale when the loader fails), no stale sets (epochs locally, leases in L2), cross-node
 * invalidation over a bus, tags and namespaces, and an L2 behind a circuit breaker so a dead
 * Redis never fails a request.
 */
import { randomBytes } from 'node:crypto';
import { invariant, ppError, requireArg } from '../errors/index.js';
import { CircuitBreaker, REJECTED, defaultRandom, withTimeout, type CircuitBreakerOptions, type Clock, type RandomSource } from '../resilience/index.js';
import type { Transport } from '../transport/index.js';
import { renamedOptions } from '../util/index.js';
import { MissingKeyFilter } from './bloom.js';
import { createBus, type BusOptions, type InvalidationBus, type InvalidationMessage } from './bus/index.js';
import { decodeEntry, encodeEntry, type L2Entry } from './codec.js';
import { FLAG_NEGATIVE, L1Cache, wallClock, type CacheKey, type L1Options } from './l1.js';
import { InvalidationEpochs, SingleFlight } from './singleflight.js';
import { hashKey } from './sketch.js';
import { measureValue } from './size.js';
import { createTier, type L2Tier, type RedisTierOptions } from './tiers/index.js';

export const CACHE_DEFAULTS = {
  ttlMs: 60_000,
  graceMs: 0,
  jitter: 0.1,
  negativeTtlMs: 5_000,
  hardTimeoutMs: 10_000,
  softTimeoutMs: Infinity,
  failSafeBackoffMs: 1_000,
  xfetchBeta: 1,
  leaseMs: 5_000,
  leasePollMs: 10,
  valueBytesMax: 1024 * 1024,
  keyCharsMax: 1024,
  tagsPerEntryMax: 32,
} as const;

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export interface LoadContext {
  readonly key: string;
  /** Aborts at the hard timeout. */
  readonly signal: AbortSignal;
}

/** Returns the value, or undefined when it does not exist (cached as a negative entry). */
export type Loader<V> = (ctx: LoadContext) => Promise<V | undefined> | V | undefined;

export interface EntryOptions {
  /** Freshness of this entry (before jitter). */
  ttlMs?: number;
  /** Tags to invalidate the entry by. */
  tags?: readonly string[];
}

export interface CacheOptions {
  /** Namespace of the root cache. Default 'default'. Letters, digits, '_', '.', '-'. */
  namespace?: string;
  /** Identifies this node on the bus (its own messages are ignored). Default random. */
  nodeId?: string;
  l1?: L1Options;
  /** `redis://host:port` or a tier instance. Default none (L1 only). */
  l2?: string | L2Tier;
  l2Options?: RedisTierOptions;
  /**
   * Where invalidations go: a `redis://` URL (pub/sub), a Powerplant Transport (NATS or in-process),
   * a bus instance, or false. Default: the L2 URL when it is a redis:// URL, else none.
   */
  bus?: string | Transport | InvalidationBus | false;
  busOptions?: BusOptions;
  /** Freshness of entries. Default 60,000 ms. */
  ttlMs?: number;
  /** How long a stale entry is kept past its freshness for SWR and fail-safe. Default 0. */
  graceMs?: number;
  /** Serve a stale entry (within grace) at once and refresh in the background. Default true. */
  staleWhileRevalidate?: boolean;
  /** TTLs are shortened by up to this fraction at random, in [0, 1). Default 0.1. */
  jitter?: number;
  /** TTL of "does not exist" results; 0 disables negative caching. Default 5,000 ms. */
  negativeTtlMs?: number;
  /** A Bloom filter of keys the loader reported missing; off unless given. */
  bloom?: { expectedKeys?: number; falsePositiveRate?: number };
  /** With a stale value at hand, answer with it once the loader has run this long. Default Infinity. */
  softTimeoutMs?: number;
  /** Abort the loader (PP_ERR_TIMEOUT) after this long. Default 10,000 ms. */
  hardTimeoutMs?: number;
  /** Serve a stale value (within grace) when the loader fails. Default true. */
  failSafe?: boolean;
  /** After a fail-safe answer, the stale value counts as fresh this long (spares a failing loader). Default 1,000 ms. */
  failSafeBackoffMs?: number;
  /** XFetch early refresh; beta > 1 refreshes earlier. false disables. Default { beta: 1 }. */
  earlyRefresh?: { beta: number } | false;
  /** L2 leases: single-flight across nodes and no stale sets in L2. */
  lease?: { leaseMs?: number; pollMs?: number; waitMs?: number; distributed?: boolean };
  /** Keep true. false turns the stale-set guards off (to demonstrate the race in tests). */
  staleSetProtection?: boolean;
  /** Largest encoded value, in bytes (PP_ERR_TOO_LARGE beyond). Default 1 MiB. */
  valueBytesMax?: number;
  /** Longest key, in UTF-16 code units (`key.length`). Default 1024. */
  keyCharsMax?: number;
  /** Loads in flight at once (distinct keys). Default 10,000. */
  inFlightMax?: number;
  /** The L2 circuit breaker. Default: count window 20, trips at 50% with >= 5 calls, open 2,000 ms. */
  breaker?: CircuitBreakerOptions;
  /** Epoch-ms clock. Default Date.now. */
  clock?: Clock;
  random?: RandomSource;
  /** @deprecated use valueBytesMax */
  maxValueBytes?: number;
  /** @deprecated use keyCharsMax (it counts UTF-16 code units, not bytes) */
  maxKeyLength?: number;
  /** @deprecated use inFlightMax */
  maxInFlight?: number;
}

export interface CacheStats {
  hitsL1: number;
  hitsL2: number;
  misses: number;
  loads: number;
  loadErrors: number;
  negativeHits: number;
  bloomHits: number;
  staleServed: number;
  failSafeServed: number;
  softTimeouts: number;
  earlyRefreshes: number;
  backgroundErrors: number;
  staleSetsPrevented: number;
  leaseWaits: number;
  l2Errors: number;
  l2Skipped: number;
  busErrors: number;
  invalidationsReceived: number;
  busReconnects: number;
}

function newStats(): CacheStats {
  return {
    hitsL1: 0, hitsL2: 0, misses: 0, loads: 0, loadErrors: 0, negativeHits: 0, bloomHits: 0, staleServed: 0, failSafeServed: 0, softTimeouts: 0,
    earlyRefreshes: 0, backgroundErrors: 0, staleSetsPrevented: 0, leaseWaits: 0, l2Errors: 0, l2Skipped: 0, busErrors: 0, invalidationsReceived: 0, busReconnects: 0,
  };
}

interface Loaded {
  value: unknown;
  negative: boolean;
}

const SKIP: unique symbol = Symbol('skip');

/** What every namespace of one cache shares: L2, bus, breaker, options. */
class CacheCore {
  readonly namespaces = new Map<string, Cache<unknown>>();
  readonly stats = newStats();
  bus: InvalidationBus | undefined;

  constructor(
    readonly nodeId: string,
    readonly options: CacheOptions,
    readonly l2: L2Tier | undefined,
    readonly ownsL2: boolean,
    readonly breaker: CircuitBreaker,
    readonly clock: Clock,
    readonly random: RandomSource,
  ) {}

  onMessage(msg: InvalidationMessage): void {
    if (msg.origin === this.nodeId) return;
    this.stats.invalidationsReceived++;
    this.namespaces.get(msg.namespace)?.applyInvalidation(msg);
  }

  onReconnect(): void {
    // Invalidations may have been missed while the bus was cut off: drop every L1.
    this.stats.busReconnects++;
    for (const c of this.namespaces.values()) c.clearLocal();
  }
}

export class Cache<V = unknown> {
  readonly namespace: string;
  readonly l1: L1Cache<string, unknown>;
  private readonly core: CacheCore;
  private readonly flights: SingleFlight<Loaded>;
  private readonly epochs = new InvalidationEpochs();
  private readonly bloom: MissingKeyFilter | undefined;
  private readonly tagIndex = new Map<string, Set<string>>();
  // Resolved options (hot in getOrLoad).
  private readonly ttlMs: number;
  private readonly graceMs: number;
  private readonly swr: boolean;
  private readonly jitter: number;
  private readonly negativeTtlMs: number;
  private readonly softTimeoutMs: number;
  private readonly hardTimeoutMs: number;
  private readonly failSafe: boolean;
  private readonly failSafeBackoffMs: number;
  private readonly beta: number;
  private readonly leaseMs: number;
  private readonly leasePollMs: number;
  private readonly leaseWaitMs: number;
  private readonly distributed: boolean;
  private readonly guard: boolean;
  private readonly valueBytesMax: number;
  private readonly keyCharsMax: number;

  /** Use `createCache`; this is the namespace view it returns. */
  constructor(core: CacheCore, namespace: string, l1Options: L1Options | undefined) {
    const o = core.options;
    this.core = core;
    this.namespace = namespace;
    this.ttlMs = o.ttlMs ?? CACHE_DEFAULTS.ttlMs;
    this.graceMs = o.graceMs ?? CACHE_DEFAULTS.graceMs;
    this.swr = o.staleWhileRevalidate ?? true;
    this.jitter = o.jitter ?? CACHE_DEFAULTS.jitter;
    this.negativeTtlMs = o.negativeTtlMs ?? CACHE_DEFAULTS.negativeTtlMs;
    this.softTimeoutMs = o.softTimeoutMs ?? CACHE_DEFAULTS.softTimeoutMs;
    this.hardTimeoutMs = o.hardTimeoutMs ?? CACHE_DEFAULTS.hardTimeoutMs;
    this.failSafe = o.failSafe ?? true;
    this.failSafeBackoffMs = o.failSafeBackoffMs ?? CACHE_DEFAULTS.failSafeBackoffMs;
    this.beta = o.earlyRefresh === false ? 0 : (o.earlyRefresh?.beta ?? CACHE_DEFAULTS.xfetchBeta);
    this.leaseMs = o.lease?.leaseMs ?? CACHE_DEFAULTS.leaseMs;
    this.leasePollMs = o.lease?.pollMs ?? CACHE_DEFAULTS.leasePollMs;
    this.leaseWaitMs = o.lease?.waitMs ?? this.leaseMs;
    this.distributed = o.lease?.distributed ?? true;
    this.guard = o.staleSetProtection ?? true;
    this.valueBytesMax = o.valueBytesMax ?? CACHE_DEFAULTS.valueBytesMax;
    this.keyCharsMax = o.keyCharsMax ?? CACHE_DEFAULTS.keyCharsMax;
    requireArg(Number.isFinite(this.ttlMs) && this.ttlMs > 0, 'ttlMs', 'must be a finite number > 0');
    requireArg(Number.isFinite(this.graceMs) && this.graceMs >= 0, 'graceMs', 'must be a finite number >= 0');
    requireArg(this.jitter >= 0 && this.jitter < 1, 'jitter', 'must be in [0, 1)');
    requireArg(Number.isFinite(this.negativeTtlMs) && this.negativeTtlMs >= 0, 'negativeTtlMs', 'must be a finite number >= 0');
    requireArg(this.softTimeoutMs > 0, 'softTimeoutMs', 'must be > 0');
    requireArg(this.hardTimeoutMs > 0, 'hardTimeoutMs', 'must be > 0');
    requireArg(this.failSafeBackoffMs >= 0, 'failSafeBackoffMs', 'must be >= 0');
    requireArg(this.beta >= 0 && Number.isFinite(this.beta), 'earlyRefresh.beta', 'must be a finite number >= 0');
    requireArg(this.leaseMs > 0 && this.leasePollMs > 0 && this.leaseWaitMs >= 0, 'lease', 'leaseMs and pollMs must be > 0, waitMs >= 0');
    requireArg(Number.isInteger(this.valueBytesMax) && this.valueBytesMax >= 1, 'valueBytesMax', 'must be an integer >= 1');
    requireArg(Number.isInteger(this.keyCharsMax) && this.keyCharsMax >= 1, 'keyCharsMax', 'must be an integer >= 1');
    this.l1 = new L1Cache<string, unknown>({
      ...l1Options,
      clock: core.clock,
      onTaggedRemove: (key, tags) => this.untag(key as string, tags),
    });
    this.flights = new SingleFlight<Loaded>(o.inFlightMax);
    this.bloom = o.bloom === undefined
      ? undefined
      : new MissingKeyFilter({ ...o.bloom, generationMs: Math.max(1, this.negativeTtlMs), clock: core.clock });
  }

  /**
   * The namespace `name`: a cache sharing this one's L2, bus and breaker, with its own L1 (created
   * on first use with `l1Options` or the root's), its own keys and tags; `clear` is per namespace.
   */
  withNamespace<T = V>(name: string, l1Options?: L1Options): Cache<T> {
    requireArg(NAME_RE.test(name), 'namespace', 'must be 1-64 letters, digits, "_", "." or "-"');
    let c = this.core.namespaces.get(name);
    if (c === undefined) {
      c = new Cache<unknown>(this.core, name, l1Options ?? this.core.options.l1);
      this.core.namespaces.set(name, c);
    }
    return c as Cache<T>;
  }

  get nodeId(): string {
    return this.core.nodeId;
  }

  stats(): CacheStats & { l1: ReturnType<L1Cache['stats']>; breaker: string; inFlight: number } {
    return { ...this.core.stats, l1: this.l1.stats(), breaker: this.core.breaker.state, inFlight: this.flights.size };
  }

  // ---- reads ---------------------------------------------------------------------------------

  /**
   * The fresh value of `key` from L1 or L2, or undefined (absent, stale, negative). No loader,
   * no single-flight: `getOrLoad` is the read-through path.
   */
  async get(key: string): Promise<V | undefined> {
    this.checkKey(key);
    const slot = this.l1.lookup(key);
    if (slot >= 0 && this.core.clock.now() < this.l1.staleAtOf(slot)) {
      this.core.stats.hitsL1++;
      return (this.l1.flagsOf(slot) & FLAG_NEGATIVE) !== 0 ? undefined : (this.l1.valueAt(slot) as V);
    }
    const token = this.epochs.token(hashKey(key));
    const e = await this.readL2(key, token);
    if (e !== undefined && this.core.clock.now() < e.staleAtMs) {
      this.core.stats.hitsL2++;
      return (e.flags & FLAG_NEGATIVE) !== 0 ? undefined : (e.value as V);
    }
    this.core.stats.misses++;
    return undefined;
  }

  /**
   * The fresh L1 value of `key`, synchronously, or undefined (absent, stale, negative: then call
   * `getOrLoad`). Lets a handler answer a hit without a promise — the service runtime then answers
   * without a microtask hop. Counts as an L1 hit for the policy and the stats; skips XFetch's early
   * refresh (that is `getOrLoad`'s job on the next miss path).
   */
  peek(key: string): V | undefined {
    const l1 = this.l1;
    const slot = l1.lookup(key);
    if (slot < 0 || this.core.clock.now() >= l1.staleAtOf(slot) || (l1.flagsOf(slot) & FLAG_NEGATIVE) !== 0) return undefined;
    this.core.stats.hitsL1++;
    return l1.valueAt(slot) as V;
  }

  /**
   * Read-through: L1, then L2, then `loader` (once per key across concurrent callers, and across
   * nodes with an L2 lease). `undefined` from the loader means "does not exist" and is cached for
   * negativeTtlMs. Rejects only with the loader's own error (or PP_ERR_TIMEOUT at the hard
   * timeout) when no stale value can be served instead — never because L2 or the bus failed.
   */
  async getOrLoad(key: string, loader: Loader<V>, options?: EntryOptions): Promise<V | undefined> {
    this.checkKey(key);
    const l1 = this.l1;
    const slot = l1.lookup(key);
    if (slot >= 0) {
      const now = this.core.clock.now();
      const staleAt = l1.staleAtOf(slot);
      const negative = (l1.flagsOf(slot) & FLAG_NEGATIVE) !== 0;
      if (now < staleAt) {
        this.core.stats.hitsL1++;
        if (negative) {
          this.core.stats.negativeHits++;
          return undefined;
        }
        // XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh early with a probability
        // that grows as expiry nears and with the recompute time, so a hot key is refreshed by one
        // request before it expires instead of by a stampede after.
        const delta = l1.computeMsOf(slot);
        if (this.beta > 0 && delta > 0 && now - delta * this.beta * Math.log(this.core.random()) >= staleAt) {
          this.core.stats.earlyRefreshes++;
          this.background(key, loader, options, true);
        }
        return l1.valueAt(slot) as V;
      }
      if (this.swr) {
        this.core.stats.staleServed++;
        this.background(key, loader, options, false);
        return negative ? undefined : (l1.valueAt(slot) as V);
      }
    }
    this.core.stats.misses++;
    return this.loadShared(key, loader, options);
  }

  // ---- writes --------------------------------------------------------------------------------

  /**
   * Stores `value` in L1 and L2 and tells the other nodes to drop their copy. Resolves once L2 has
   * it (or L2 was skipped as down) and the invalidation was handed to the bus.
   * PP_ERR_UNSERIALIZABLE / PP_ERR_TOO_LARGE for a value that cannot be stored.
   */
  async set(key: string, value: V, options?: EntryOptions): Promise<void> {
    this.checkKey(key);
    const tags = this.checkTags(options?.tags);
    const now = this.core.clock.now();
    const ttl = this.jittered(options?.ttlMs ?? this.ttlMs);
    const staleAt = now + ttl;
    const expiresAt = staleAt + this.graceMs;
    const { bytes, size } = this.encode({ value, staleAtMs: staleAt, expiresAtMs: expiresAt, computeMs: 0, flags: 0, tags });
    const hash = hashKey(key);
    this.epochs.bump(hash);
    this.bloom?.remove(hash);
    this.l1.setEntry(key, value, staleAt, expiresAt, size, 0, 0, tags);
    if (tags !== undefined) this.tag(key, tags);
    if (bytes !== undefined) {
      const fullTags = tags?.map((t) => this.fullTag(t));
      await this.l2call((t) => t.set(this.fullKey(key), bytes, expiresAt - now, fullTags, undefined));
    }
    await this.publish({ origin: this.core.nodeId, namespace: this.namespace, keys: [key] });
  }

  /** Removes `key` from L1 and L2 everywhere (and revokes its L2 lease: a load in flight cannot write it back). */
  async delete(key: string): Promise<void> {
    this.checkKey(key);
    this.invalidateLocal(key);
    await this.l2call((t) => t.delete([this.fullKey(key)]));
    await this.publish({ origin: this.core.nodeId, namespace: this.namespace, keys: [key] });
  }

  /** Removes every entry carrying one of `tags`, on every node and in L2. */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    const checked = this.checkTags(tags) ?? [];
    this.invalidateTagsLocal(checked);
    await this.l2call((t) => t.invalidateTags(checked.map((tag) => this.fullTag(tag))));
    await this.publish({ origin: this.core.nodeId, namespace: this.namespace, tags: checked });
  }

  /** Empties this namespace on every node and in L2. */
  async clear(): Promise<void> {
    this.clearLocal();
    await this.l2call((t) => t.clearNamespace(this.namespace));
    await this.publish({ origin: this.core.nodeId, namespace: this.namespace, clear: true });
  }

  /**
   * Drops keys from L2 (revoking their leases) without a bus message: for invalidation sources
   * every node follows itself, such as the store's change feed.
   */
  async evictShared(keys: readonly string[]): Promise<void> {
    for (const k of keys) this.checkKey(k);
    await this.l2call((t) => t.delete(keys.map((k) => this.fullKey(k))));
  }

  /** Drops `key` from this node only (what a received invalidation or a feed record does). */
  invalidateLocal(key: string): void {
    const hash = hashKey(key);
    this.epochs.bump(hash);
    this.bloom?.remove(hash);
    this.l1.delete(key);
  }

  /** Drops every entry carrying one of `tags` from this node only. */
  invalidateTagsLocal(tags: readonly string[]): void {
    this.epochs.bumpAll();
    for (const tag of tags) {
      const keys = this.tagIndex.get(tag);
      if (keys === undefined) continue;
      for (const k of [...keys]) this.l1.delete(k);
      this.tagIndex.delete(tag);
    }
  }

  clearLocal(): void {
    this.epochs.bumpAll();
    this.l1.clear();
    this.bloom?.clear();
    this.tagIndex.clear();
  }

  applyInvalidation(msg: InvalidationMessage): void {
    if (msg.clear === true) this.clearLocal();
    if (msg.keys !== undefined) for (const k of msg.keys) this.invalidateLocal(k);
    if (msg.tags !== undefined) this.invalidateTagsLocal(msg.tags);
  }

  /** Closes the whole cache (every namespace): the bus, and the L2 connection if createCache made it. */
  async close(): Promise<void> {
    const core = this.core;
    await core.bus?.close();
    core.bus = undefined;
    if (core.ownsL2) await core.l2?.close();
  }

  // ---- the load path -------------------------------------------------------------------------

  /** The shared load, with the caller's soft timeout and fail-safe. */
  private async loadShared(key: string, loader: Loader<V>, options: EntryOptions | undefined): Promise<V | undefined> {
    const run = this.flights.run(key, () => this.fetch(key, loader, options, false));
    if (this.softTimeoutMs !== Infinity) {
      const first = await this.raceSoft(run);
      if (first === SKIP) {
        const stale = this.peekStale(key);
        if (stale !== undefined) {
          this.core.stats.softTimeouts++;
          // The load goes on; its result lands in the cache. Its failure must not go unhandled.
          run.catch(() => {});
          return stale.negative ? undefined : (stale.value as V);
        }
      }
    }
    try {
      const r = await run;
      return r.negative ? undefined : (r.value as V);
    } catch (err) {
      const stale = this.failSafe ? this.peekStale(key) : undefined;
      if (stale === undefined) throw err;
      this.core.stats.failSafeServed++;
      const slot = this.l1.slotOf(key);
      if (slot >= 0 && this.failSafeBackoffMs > 0) this.l1.setStaleAt(slot, this.core.clock.now() + this.failSafeBackoffMs);
      return stale.negative ? undefined : (stale.value as V);
    }
  }

  private raceSoft(run: Promise<Loaded>): Promise<Loaded | typeof SKIP> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(SKIP), this.softTimeoutMs);
      run.then(
        (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        () => {
          clearTimeout(timer);
          resolve(SKIP);
        },
      );
    });
  }

  private background(key: string, loader: Loader<V>, options: EntryOptions | undefined, force: boolean): void {
    if (this.flights.current(key) !== undefined) return;
    this.flights.run(key, () => this.fetch(key, loader, options, force)).catch(() => {
      this.core.stats.backgroundErrors++;
    });
  }

  /** A stale (or fresh) L1 entry that has not reached its hard expiry. */
  private peekStale(key: string): Loaded | undefined {
    const slot = this.l1.slotOf(key);
    if (slot < 0 || this.core.clock.now() >= this.l1.expiresAtOf(slot)) return undefined;
    return { value: this.l1.valueAt(slot), negative: (this.l1.flagsOf(slot) & FLAG_NEGATIVE) !== 0 };
  }

  /**
   * One load: L2 (unless `force`, an early refresh), the Bloom filter, the L2 lease (waiting for
   * another node's load if it holds it), then loadAndStore; a lease that the set script did not
   * consume is released on the way out, whatever happened.
   */
  private async fetch(key: string, loader: Loader<V>, options: EntryOptions | undefined, force: boolean): Promise<Loaded> {
    const hash = hashKey(key);
    const token = this.epochs.token(hash);
    const l2 = this.core.l2;
    if (l2 !== undefined && !force) {
      const e = await this.readL2(key, token);
      if (e !== undefined && this.core.clock.now() < e.staleAtMs) {
        this.core.stats.hitsL2++;
        return { value: e.value, negative: (e.flags & FLAG_NEGATIVE) !== 0 };
      }
    }
    if (this.bloom !== undefined && this.bloom.has(hash)) {
      this.core.stats.bloomHits++;
      return { value: undefined, negative: true };
    }
    let lease: string | undefined;
    let recheck = false;
    if (l2 !== undefined && this.guard) {
      const got = await this.l2call((t) => t.lease(this.fullKey(key), this.leaseMs));
      if (typeof got === 'string') {
        lease = got;
        recheck = !force;
      } else if (got === null && this.distributed) {
        const w = await this.waitForPeer(key, token);
        if ('value' in w) return w;
        lease = w.lease;
      }
    }
    if (lease === undefined) return this.loadAndStore(key, hash, token, loader, options, undefined);
    // A lease taken is given back on every path that does not end in the set script (which drops
    // it): the loader threw or timed out, the value was too large, a negative result is not
    // cached, the value was found in L2 after all, or L2 failed. Left behind, it would make every
    // other node wait leaseWaitMs for a value nobody is loading.
    const held = { lease: lease as string | undefined };
    try {
      // A peer may have written the value and released its lease between our read and our
      // lease: read once more before loading (one GET on the loader path only).
      const again = recheck ? await this.freshFromL2(key, token) : undefined;
      if (again !== undefined) return again;
      return await this.loadAndStore(key, hash, token, loader, options, held);
    } finally {
      if (held.lease !== undefined) await this.releaseLease(key, held.lease);
    }
  }

  /**
   * The loader under the hard timeout, then the writes — L1 only if no invalidation of the key
   * happened since the load began (epoch token), L2 only with the lease `held` (cleared once the
   * set script has run: it drops the lease, or the lease was no longer ours).
   */
  private async loadAndStore(key: string, hash: number, token: number, loader: Loader<V>, options: EntryOptions | undefined, held: { lease: string | undefined } | undefined): Promise<Loaded> {
    this.core.stats.loads++;
    const t0 = this.core.clock.now();
    let value: V | undefined;
    try {
      value = await withTimeout(async (signal) => loader({ key, signal }), { timeoutMs: this.hardTimeoutMs });
    } catch (err) {
      this.core.stats.loadErrors++;
      throw err;
    }
    const now = this.core.clock.now();
    const computeMs = now - t0;
    const negative = value === undefined;
    if (negative && this.negativeTtlMs === 0) return { value: undefined, negative: true };
    const tags = negative ? undefined : this.checkTags(options?.tags);
    const staleAt = now + this.jittered(negative ? this.negativeTtlMs : (options?.ttlMs ?? this.ttlMs));
    const expiresAt = negative ? staleAt : staleAt + this.graceMs;
    const flags = negative ? FLAG_NEGATIVE : 0;
    const { bytes, size } = this.encode({ value, staleAtMs: staleAt, expiresAtMs: expiresAt, computeMs, flags, tags });
    if (!this.guard || this.epochs.token(hash) === token) {
      this.l1.setEntry(key, value, staleAt, expiresAt, size, flags, computeMs, tags);
      if (tags !== undefined) this.tag(key, tags);
      if (negative) this.bloom?.add(hash);
    } else {
      this.core.stats.staleSetsPrevented++;
    }
    // Without a lease (L2 down, or a peer's load outlived waitMs) the value is not written to L2:
    // an unconditional write could be a stale set.
    const lease = held?.lease;
    if (bytes !== undefined && (lease !== undefined || !this.guard)) {
      const fullTags = tags?.map((t) => this.fullTag(t));
      const ok = await this.l2call((t) => t.set(this.fullKey(key), bytes, expiresAt - now, fullTags, lease));
      if (ok !== SKIP && held !== undefined) held.lease = undefined; // the script dropped it, or it was not ours any more
      if (ok === false) this.core.stats.staleSetsPrevented++;
    }
    return { value, negative };
  }

  /** Gives a lease back (best effort: an L2 that is down lets it expire). */
  private async releaseLease(key: string, lease: string): Promise<void> {
    await this.l2call((t) => t.release(this.fullKey(key), lease));
  }

  /** Another node holds the lease: poll L2 for its value; take the lease if it is released. */
  private async waitForPeer(key: string, token: number): Promise<Loaded | { lease: string | undefined }> {
    this.core.stats.leaseWaits++;
    const deadline = this.core.clock.now() + this.leaseWaitMs;
    while (this.core.clock.now() < deadline) {
      await new Promise((r) => setTimeout(r, this.leasePollMs));
      const e = await this.readL2(key, token);
      if (e !== undefined && this.core.clock.now() < e.staleAtMs) {
        this.core.stats.hitsL2++;
        return { value: e.value, negative: (e.flags & FLAG_NEGATIVE) !== 0 };
      }
      const got = await this.l2call((t) => t.lease(this.fullKey(key), this.leaseMs));
      if (typeof got === 'string') {
        // The peer's write and its lease release are one script: if it finished between our read
        // and our lease, its value is in L2 now (the cross-node test saw 2 loader calls without this).
        const fresh = await this.freshFromL2(key, token);
        if (fresh === undefined) return { lease: got };
        await this.releaseLease(key, got);
        return fresh;
      }
      if (got === SKIP) return { lease: undefined };
    }
    return { lease: undefined };
  }

  /** The key's fresh L2 value (filling L1, counted as an L2 hit), or undefined. */
  private async freshFromL2(key: string, token: number): Promise<Loaded | undefined> {
    const e = await this.readL2(key, token);
    if (e === undefined || this.core.clock.now() >= e.staleAtMs) return undefined;
    this.core.stats.hitsL2++;
    return { value: e.value, negative: (e.flags & FLAG_NEGATIVE) !== 0 };
  }

  /** Reads L2 and, when the entry is live, fills L1 with it (unless invalidated meanwhile). */
  private async readL2(key: string, token: number): Promise<L2Entry | undefined> {
    if (this.core.l2 === undefined) return undefined;
    const raw = await this.l2call((t) => t.get(this.fullKey(key)));
    if (raw === SKIP || raw === null) return undefined;
    const e = decodeEntry(raw);
    if (e === undefined || this.core.clock.now() >= e.expiresAtMs) return undefined;
    if (!this.guard || this.epochs.token(hashKey(key)) === token) {
      this.l1.setEntry(key, e.value, e.staleAtMs, e.expiresAtMs, raw.length, e.flags, e.computeMs, e.tags);
      if (e.tags !== undefined) this.tag(key, e.tags);
    }
    return e;
  }

  // ---- helpers -------------------------------------------------------------------------------

  private async l2call<T>(fn: (tier: L2Tier) => Promise<T>): Promise<T | typeof SKIP> {
    const { l2, breaker, stats } = this.core;
    if (l2 === undefined) return SKIP;
    const permit = breaker.acquire();
    if (permit === REJECTED) {
      stats.l2Skipped++;
      return SKIP;
    }
    try {
      const r = await fn(l2);
      breaker.onSuccess(permit);
      return r;
    } catch (err) {
      breaker.onFailure(err, permit);
      stats.l2Errors++;
      return SKIP;
    }
  }

  private async publish(msg: InvalidationMessage): Promise<void> {
    const bus = this.core.bus;
    if (bus === undefined) return;
    try {
      await bus.publish(msg);
    } catch {
      this.core.stats.busErrors++;
    }
  }

  /** Validates and sizes a value; the encoded bytes when there is an L2. */
  private encode(e: L2Entry): { bytes: Buffer | undefined; size: number } {
    if (this.core.l2 !== undefined) {
      const bytes = encodeEntry(e);
      this.checkSize(bytes.length);
      return { bytes, size: bytes.length };
    }
    const size = measureValue(e.value);
    this.checkSize(size);
    return { bytes: undefined, size };
  }

  private checkSize(size: number): void {
    if (size > this.valueBytesMax) {
      throw ppError('PP_ERR_TOO_LARGE', { field: 'value', message: `value: ${size} bytes exceed valueBytesMax ${this.valueBytesMax}`, data: { sizeBytes: size, valueBytesMax: this.valueBytesMax } });
    }
  }

  private checkKey(key: string): void {
    requireArg(typeof key === 'string' && key.length > 0 && key.length <= this.keyCharsMax, 'key', `must be a non-empty string of at most ${this.keyCharsMax} characters`);
  }

  private checkTags(tags: readonly string[] | undefined): readonly string[] | undefined {
    if (tags === undefined || tags.length === 0) return undefined;
    requireArg(tags.length <= CACHE_DEFAULTS.tagsPerEntryMax, 'tags', `at most ${CACHE_DEFAULTS.tagsPerEntryMax} tags`);
    for (const t of tags) requireArg(typeof t === 'string' && t.length > 0 && t.length <= 256, 'tags', 'each tag must be a non-empty string of at most 256 characters');
    return tags;
  }

  private jittered(ttlMs: number): number {
    requireArg(Number.isFinite(ttlMs) && ttlMs > 0, 'ttlMs', 'must be a finite number > 0');
    // Shortened, never lengthened: entries written together spread their expiry (avalanche).
    return this.jitter === 0 ? ttlMs : Math.max(1, ttlMs * (1 - this.jitter * this.core.random()));
  }

  private fullKey(key: string): string {
    return this.namespace + ':' + key;
  }

  private fullTag(tag: string): string {
    return this.namespace + ':' + tag;
  }

  private tag(key: string, tags: readonly string[]): void {
    for (const t of tags) {
      let s = this.tagIndex.get(t);
      if (s === undefined) {
        s = new Set();
        this.tagIndex.set(t, s);
      }
      s.add(key);
    }
  }

  private untag(key: string, tags: readonly string[]): void {
    for (const t of tags) {
      const s = this.tagIndex.get(t);
      if (s === undefined) continue;
      s.delete(key);
      if (s.size === 0) this.tagIndex.delete(t);
    }
  }
}

/**
 * Builds a cache: `createCache()` is L1 only; `createCache({ l2: 'redis://127.0.0.1:6379' })`
 * adds Redis as L2 and (by default) Redis pub/sub as the invalidation bus;
 * `createCache({ l2: 'redis://…', bus: transport })` sends invalidations over a Powerplant
 * Transport (NATS) instead. Never fails because Redis is down: it connects in the background.
 */
export async function createCache<V = unknown>(given: CacheOptions = {}): Promise<Cache<V>> {
  const options = renamedOptions(given, { valueBytesMax: 'maxValueBytes', keyCharsMax: 'maxKeyLength', inFlightMax: 'maxInFlight' });
  const namespace = options.namespace ?? 'default';
  requireArg(NAME_RE.test(namespace), 'namespace', 'must be 1-64 letters, digits, "_", "." or "-"');
  const nodeId = options.nodeId ?? randomBytes(6).toString('hex');
  const clock = options.clock ?? wallClock;
  let l2: L2Tier | undefined;
  let ownsL2 = false;
  if (typeof options.l2 === 'string') {
    l2 = await createTier(options.l2, options.l2Options);
    ownsL2 = true;
  } else l2 = options.l2;
  const breaker = new CircuitBreaker({
    name: 'cache-l2',
    window: { kind: 'count', size: 20 },
    throughputMin: 5,
    failureRateThreshold: 0.5,
    openMs: 2_000,
    ...renamedOptions(options.breaker ?? {}, { throughputMin: 'minimumThroughput' }, 'breaker.'),
  });
  const core = new CacheCore(nodeId, options, l2, ownsL2, breaker, clock, options.random ?? defaultRandom);
  const root = new Cache<V>(core, namespace, options.l1);
  core.namespaces.set(namespace, root as Cache<unknown>);
  const busSpec = options.bus ?? (typeof options.l2 === 'string' && options.l2.startsWith('redis') ? options.l2 : false);
  if (busSpec !== false) {
    const bus = createBus(busSpec, options.busOptions);
    await bus.start((m) => core.onMessage(m), () => core.onReconnect());
    core.bus = bus;
  }
  invariant(core.namespaces.get(namespace) === (root as Cache<unknown>), 'cache: root namespace registered');
  return root;
}

export type { CacheKey };
