/** Invalidation buses: `redis://…` (Redis pub/sub) or a Powerplant Transport (NATS / in-process). */
import { requireArg } from '../../errors/index.js';
import type { Transport } from '../../transport/index.js';
import type { InvalidationBus } from './base.js';
import { RedisBus, type RedisBusOptions } from './redis.js';
import { TransportBus } from './transport.js';

export { isInvalidationMessage, type InvalidationBus, type InvalidationMessage } from './base.js';
export { RedisBus, type RedisBusOptions } from './redis.js';
export { TransportBus } from './transport.js';

export interface BusOptions extends RedisBusOptions {
  /** Topic on a Transport bus. Default 'cache.inv'. */
  topic?: string;
}

export function createBus(spec: string | Transport | InvalidationBus, options: BusOptions = {}): InvalidationBus {
  if (typeof spec !== 'string') {
    if ('start' in spec && 'publish' in spec && !('request' in spec)) return spec;
    return new TransportBus(spec as Transport, options.topic);
  }
  if (spec.startsWith('redis://') || spec.startsWith('rediss://')) return new RedisBus(spec, options);
  requireArg(false, 'bus', `unknown bus '${spec}' (expected redis://host:port or a Transport)`);
}
