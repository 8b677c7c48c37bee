/** Resolves a strategy name to its implementation (the Moleculer-style registry of strategies). */
import { requireArg } from '../errors/index.js';
import type { Balancer, BalancerName } from './base.js';
import { ConsistentHashBalancer, type ConsistentHashOptions } from './consistent-hash.js';
import { LeastOutstandingBalancer } from './least-outstanding.js';
import { P2CBalancer } from './p2c.js';
import { RandomBalancer } from './random.js';
import { RoundRobinBalancer } from './round-robin.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

/** Every strategy name `createBalancer` accepts, in the order the docs and simulation list them. */
export const BALANCER_NAMES: readonly BalancerName[] = ['random', 'round-robin', 'weighted-round-robin', 'least-outstanding', 'p2c', 'consistent-hash'];

/** Options for any strategy; the consistent-hash ones are ignored by the others. */
export type CreateBalancerOptions = ConsistentHashOptions;

/** Resolves a strategy name to a new balancer over `opts.endpoints` (or a fresh empty set). */
export function createBalancer(name: BalancerName, opts: CreateBalancerOptions = {}): Balancer {
  switch (name) {
    case 'random':
      return new RandomBalancer(opts);
    case 'round-robin':
      return new RoundRobinBalancer(opts);
    case 'weighted-round-robin':
      return new WeightedRoundRobinBalancer(opts);
    case 'least-outstanding':
      return new LeastOutstandingBalancer(opts);
    case 'p2c':
      return new P2CBalancer(opts);
    case 'consistent-hash':
      return new ConsistentHashBalancer(opts);
    default:
      requireArg(false, 'name', `unknown balancer "${String(name)}"; expected one of ${BALANCER_NAMES.join(', ')}`);
  }
}
