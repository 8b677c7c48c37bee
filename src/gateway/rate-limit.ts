/**
 * The gateway's rate limiter: one `TokenBucket` (resilience/) per client per route, in a table of
 * at most `clientsMax` buckets per route.
 *
 * BOUNDED. A client key costs a bucket only while it is among the `clientsMax` most recently seen
 * on the route (a Map in recency order: a hit moves the key to the end, a new key past the bound
 * evicts the first one). Memory is O(routes x clientsMax) whatever the number of addresses.
 *
 * FAIRNESS OF EVICTION. An evicted client that comes back starts with a full bucket, so eviction
 * can only ever admit MORE than the configured rate, never less: from any start, a client is
 * admitted at least as many requests as an unbounded table would admit it (a property test holds
 * this), so no client is starved because of others. The least recently seen bucket goes first, and
 * a bucket idle for burst / rate seconds is full again anyway, so evicting it loses nothing; a
 * bucket still below full when evicted means its client may get up to `burst` tokens more than its
 * rate allowed. That takes more than `clientsMax` distinct clients on the route within about
 * burst / rate seconds (e.g. one attacker cycling through many source addresses, which also
 * spreads itself over as many buckets, each holding it to the rate): the gateway counts those
 * evictions (`pp_http_rate_limit_evictions_total{route}`) so an operator sees the bound is too
 * small for the traffic.
 *
 * COST. Only limited routes pay: a Map lookup, a delete + set (recency), the bucket's refill and
 * take; a refused request also builds its PP_ERR_RATE_LIMITED. A route without a limit runs none
 * of this (its handler is the unlimited one).
 */
import { ppError, requireArg, type PowerplantError } from '../errors/index.js';
import type { CounterSeries } from '../observe/index.js';
import { TokenBucket, type Clock } from '../resilience/index.js';

export class ClientBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly clientsMax: number,
    private readonly clock: Clock | undefined,
    private readonly evictions: CounterSeries,
  ) {}

  /** Takes a token for `key`; undefined when admitted, else the PP_ERR_RATE_LIMITED to answer. */
  take(key: string): PowerplantError | undefined {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.clientsMax) this.evictOldest();
      b = new TokenBucket({ ratePerSec: this.ratePerSec, burst: this.burst, clock: this.clock });
    } else {
      this.buckets.delete(key); // re-inserted below: the Map's order is recency
    }
    this.buckets.set(key, b);
    if (b.tryTake(1)) return undefined;
    // The time to the next token, rounded up: Retry-After (whole seconds, >= 1) is derived from it.
    return ppError('PP_ERR_RATE_LIMITED', { retryAfterMs: Math.max(1, Math.ceil(b.waitMs(1))) });
  }

  /** Buckets held (<= clientsMax). */
  get size(): number {
    return this.buckets.size;
  }

  private evictOldest(): void {
    for (const [key, b] of this.buckets) {
      this.buckets.delete(key);
      if (b.available() < this.burst) this.evictions.inc();
      return;
    }
  }
}

/** Checks one limit's numbers, naming `field` (e.g. `rateLimit` or `routes[3].rateLimit`). */
export function checkLimit(ratePerSec: number, burst: number, field: string): void {
  requireArg(typeof ratePerSec === 'number' && ratePerSec > 0 && Number.isFinite(ratePerSec), `${field}.ratePerSec`, 'must be a finite number > 0');
  requireArg(typeof burst === 'number' && burst >= 1 && Number.isFinite(burst), `${field}.burst`, 'must be a finite number >= 1');
}
