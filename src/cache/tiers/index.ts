/** L2 tiers: resolve a URL to an implementation. `redis://host:port[/db]` (also `rediss://`). */
import { requireArg } from '../../errors/index.js';
import type { L2Tier } from './base.js';
import { RedisTier, type RedisTierOptions } from './redis.js';

export type { L2Tier } from './base.js';
export { RedisTier, redisClient, type RedisTierOptions } from './redis.js';

export async function createTier(url: string, options: RedisTierOptions = {}): Promise<L2Tier> {
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const tier = new RedisTier(url, options);
    await tier.connect();
    return tier;
  }
  requireArg(false, 'l2', `unknown L2 URL '${url}' (expected redis://host:port)`);
}
