/** Eviction policies: resolve a name to an implementation. */
import { requireArg } from '../../errors/index.js';
import type { Policy, PolicyName } from './base.js';
import { LfuPolicy, type LfuOptions } from './lfu.js';
import { LruPolicy } from './lru.js';
import { WTinyLfuPolicy, type WTinyLfuOptions } from './wtinylfu.js';

export type { Policy, PolicyName } from './base.js';
export { SlotLists } from './base.js';
export { LruPolicy } from './lru.js';
export { LfuPolicy, type LfuOptions } from './lfu.js';
export { WTinyLfuPolicy, type WTinyLfuOptions } from './wtinylfu.js';

export const POLICY_NAMES: readonly PolicyName[] = ['wtinylfu', 'lru', 'lfu'];

export interface PolicyOptions {
  wtinylfu?: WTinyLfuOptions;
  lfu?: LfuOptions;
}

/** A policy for `entriesMax` residents over slots [0, capacity). */
export function createPolicy(name: PolicyName, entriesMax: number, capacity: number, options: PolicyOptions = {}): Policy {
  requireArg(POLICY_NAMES.includes(name), 'policy', `must be one of ${POLICY_NAMES.join(', ')}`);
  if (name === 'lru') return new LruPolicy(entriesMax, capacity);
  if (name === 'lfu') return new LfuPolicy(entriesMax, capacity, options.lfu);
  return new WTinyLfuPolicy(entriesMax, capacity, options.wtinylfu);
}
