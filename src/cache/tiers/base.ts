/**
 * The L2 tier contract: a shared cache all nodes read and write (Redis today; one file per
 * implementation, `index.ts` resolves a URL). Values are opaque bytes (the cache encodes them,
 * codec.ts). Every method may reject when the tier is down: the cache wraps each call in a circuit
 * breaker and treats a failure as a miss / a skipped write, never as the caller's error.
 *
 * Keys are `<namespace>:<key>` strings; the tier adds its own prefix.
 */

export interface L2Tier {
  readonly kind: string;
  get(key: string): Promise<Buffer | null>;
  /**
   * Writes `bytes` for `ttlMs` and adds the key to each tag's set. With `leaseToken`, writes only
   * if the key's lease is still that token (no invalidation since the lease was taken: the "no
   * stale sets" rule) and resolves false otherwise. Without one, writes unconditionally and
   * revokes any lease on the key (a write is newer than every load in flight).
   */
  set(key: string, bytes: Buffer, ttlMs: number, tags: readonly string[] | undefined, leaseToken: string | undefined): Promise<boolean>;
  /** Takes the key's lease for `leaseMs` if nobody holds it: the token, or null when held. */
  lease(key: string, leaseMs: number): Promise<string | null>;
  /** Gives the key's lease back if it is still `leaseToken` (a load that wrote nothing). */
  release(key: string, leaseToken: string): Promise<void>;
  /** Deletes the keys and revokes their leases. */
  delete(keys: readonly string[]): Promise<void>;
  /** Deletes every key in the tags' sets (and their leases), then the sets. Returns keys deleted. */
  invalidateTags(tags: readonly string[]): Promise<number>;
  /** Deletes every key of a namespace (SCAN, bounded batches). */
  clearNamespace(namespace: string): Promise<number>;
  close(): Promise<void>;
}
