/**
 * Power of two choices with a latency EWMA (Mitzenmacher 2001; cost as in Finagle's P2C + peak
 * EWMA): draw two distinct members at random, keep the one with the lower
 *
 *     cost = latencyEwmaMs * (inFlight + 1) / weight
 *
 * the expected time a new call waits behind the calls already there, scaled by capacity. Ties (for
 * example before any latency is known, when every EWMA is 0) go to the lower `(inFlight+1)/weight`,
 * then to the first draw, which is itself random.
 *
 * O(1) per pick, no shared scan, and the choice between two random members keeps the maximum load
 * within O(log log n) of the mean where random choice drifts O(log n / log log n) above it. Use it
 * as the default for large or heterogeneous sets.
 */
import { BaseBalancer, type ExcludeSpec } from './base.js';
import type { Endpoint, EndpointState } from './endpoint.js';

export class P2CBalancer extends BaseBalancer {
  readonly name = 'p2c' as const;

  pick(_key?: string | Uint8Array, exclude?: ExcludeSpec): Endpoint | undefined {
    const list = this.endpoints.list;
    const n = list.length;
    if (n === 0) return undefined;
    const i = this.randomEligible(exclude, -1);
    if (i < 0) return undefined;
    const a = list[i] as EndpointState;
    if (n === 1) return a;
    const j = this.randomEligible(exclude, i);
    if (j < 0) return a;
    const b = list[j] as EndpointState;
    return lowerCost(a, b);
  }
}

/** The cheaper of two endpoints (exported for tests and the simulation's cost checks). */
export function lowerCost(a: EndpointState, b: EndpointState): EndpointState {
  const ca = cost(a);
  const cb = cost(b);
  if (ca !== cb) return ca < cb ? a : b;
  return (b.inFlight + 1) / b.weight < (a.inFlight + 1) / a.weight ? b : a;
}

/**
 * An endpoint with no latency known yet (EWMA 0: the set was empty when it joined) that already has
 * calls in flight costs this much per call, as in Finagle: otherwise its cost stays 0 until its
 * first reply and every pair it is drawn into sends it another call (a slow newcomer would collect
 * a flood). With the penalty it is probed with one call at a time until it answers.
 */
export const UNKNOWN_LATENCY_PENALTY_MS = 1e9;

/** `latencyEwmaMs * (inFlight + 1) / weight`, with the unknown-latency penalty. */
export function cost(ep: EndpointState): number {
  const ewma = ep.latencyEwmaMs > 0 || ep.inFlight === 0 ? ep.latencyEwmaMs : UNKNOWN_LATENCY_PENALTY_MS;
  return (ewma * (ep.inFlight + 1)) / ep.weight;
}
