/**
 * Leases and locks with fencing tokens: one contract (base.ts), two implementations (the store:
 * store.ts; Redis: redis.ts), and fenced store writes (fence.ts). `createLocks(store)` or
 * `createLocks('redis://…')` picks the implementation.
 */
import type { Store } from '../../store/index.js';
import { requireArg } from '../../errors/index.js';
import type { LockService } from './base.js';
import { redisLocks, type RedisLocksOptions } from './redis.js';
import { storeLocks, type StoreLocksOptions } from './store.js';

export {
  LOCK_DEFAULTS,
  LOCK_NAME_CHARS_MAX,
  OWNER_CHARS_MAX,
  type AcquireOptions,
  type Lease,
  type LockLimits,
  type LockService,
} from './base.js';
export { StoreLocks, storeLocks, type StoreLocksOptions } from './store.js';
export { RedisLocks, redisLocks, type RedisLocksOptions } from './redis.js';
export { Fence, openFence, FENCE_SEEN_MAX, type FenceOptions } from './fence.js';

/** Leases on a store (its shards, either engine) or on Redis (`redis://…`). */
export async function createLocks(target: Store | string, options: StoreLocksOptions & RedisLocksOptions = {}): Promise<LockService> {
  if (typeof target === 'string') {
    requireArg(/^rediss?:\/\//.test(target), 'target', 'a URL must be redis:// or rediss:// (for locks on the store, pass the open Store)');
    return redisLocks(target, options);
  }
  requireArg(typeof target === 'object' && target !== null, 'target', 'must be an open Store or a redis:// URL');
  return storeLocks(target, options);
}
