/**
 * The cache: the public entry of src/cache. See docs/cache.md.
 */
export { L1Cache, DEFAULT_L1_MAX_ENTRIES, MAX_L1_ENTRIES, FLAG_NEGATIVE, wallClock, type CacheKey, type L1Options, type L1Stats } from './l1.js';
export {
  POLICY_NAMES, createPolicy, LruPolicy, LfuPolicy, WTinyLfuPolicy, SlotLists,
  type Policy, type PolicyName, type PolicyOptions, type LfuOptions, type WTinyLfuOptions,
} from './policies/index.js';
export { CountMinSketch, SKETCH_COUNTER_MAX, SKETCH_MAX_WIDTH, hashKey } from './sketch.js';
export { MAX_VALUE_DEPTH, measureValue } from './size.js';
