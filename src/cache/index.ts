/**
 * The cache: the public entry of src/cache. See docs/cache.md.
 */
export { L1Cache, DEFAULT_L1_ENTRIES_MAX, L1_ENTRIES_MAX, FLAG_NEGATIVE, wallClock, type CacheKey, type L1Options, type L1Stats } from './l1.js';
export {
  POLICY_NAMES, createPolicy, LruPolicy, LfuPolicy, WTinyLfuPolicy, SlotLists,
  type Policy, type PolicyName, type PolicyOptions, type LfuOptions, type WTinyLfuOptions,
} from './policies/index.js';
export { CountMinSketch, SKETCH_COUNTER_MAX, SKETCH_WIDTH_MAX, hashKey } from './sketch.js';
export { VALUE_DEPTH_MAX, measureValue } from './size.js';
export { MissingKeyFilter, BLOOM_COUNTERS_MAX, type BloomOptions } from './bloom.js';
export { SingleFlight, InvalidationEpochs, DEFAULT_IN_FLIGHT_MAX, DEFAULT_EPOCH_BUCKETS } from './singleflight.js';
export { encodeEntry, decodeEntry, type L2Entry } from './codec.js';
export { createTier, RedisTier, redisClient, type L2Tier, type RedisTierOptions } from './tiers/index.js';
export { createBus, RedisBus, TransportBus, isInvalidationMessage, type InvalidationBus, type InvalidationMessage, type RedisBusOptions, type BusOptions } from './bus/index.js';
export {
  Cache, createCache, CACHE_DEFAULTS,
  type CacheOptions, type CacheStats, type EntryOptions, type LoadContext, type Loader,
} from './cache.js';
export { invalidateFromFeed, readThroughKv, readThroughTable, tableCacheKey, type FeedInvalidationOptions, type ReadThrough } from './store.js';
