/**
 * Load balancing: pick an endpoint for each call. One contract (`Balancer`, in base.ts), one file
 * per strategy, and `createBalancer(name)` to resolve a strategy name. All strategies share the
 * endpoint state in an `EndpointSet` (membership, weights, in-flight counts, latency EWMA), which
 * the service runtime updates as calls start and finish. Pure algorithms: no I/O, no timers.
 */
export { BaseBalancer, isExcluded } from './base.js';
export type { Balancer, BalancerName, BalancerOptions, ExcludeSpec, RandomSource } from './base.js';
export { EndpointSet, WEIGHT_MAX } from './endpoint.js';
export type { Endpoint, EndpointOptions, EndpointSetOptions } from './endpoint.js';
export { RandomBalancer } from './random.js';
export { RoundRobinBalancer } from './round-robin.js';
export { WeightedRoundRobinBalancer } from './weighted-round-robin.js';
export { LeastOutstandingBalancer } from './least-outstanding.js';
export { P2CBalancer } from './p2c.js';
export { ConsistentHashBalancer } from './consistent-hash.js';
export type { ConsistentHashOptions } from './consistent-hash.js';
export { simulateBalance, simulationCells } from './simulate.js';
export type { SimulateOptions, SimulationRow } from './simulate.js';
export { createBalancer, BALANCER_NAMES } from './registry.js';
export type { CreateBalancerOptions } from './registry.js';
