/**
 * Power of two choices with a latency EWMA (Mitzenmacher 2001; the in-flight x latency cost and
 * the unknown-latency probe come from Finagle's P2C + peak EWMA): draw two distinct members at
 * random, keep the one with the lower
 *
 *     cost = latencyEwmaMs^(1/4) * (inFlight + 1) / weight
 *
 * Ties (for example before any latency is known, when every EWMA is 0) go to the lower
 * `(inFlight+1)/weight`, then to the first draw, which is itself random.
 *
 * Why the fourth root and not Finagle's `latencyEwmaMs * (inFlight + 1)`: that product is the
 * expected completion time on a server that runs one call at a time. Our servers run several calls
 * at once (worker pools, event loops), so latency does not grow with in-flight until the server is
 * full; equal Finagle cost means `inFlight ~ 1 / latency`, and the fast servers are pushed past
 * their concurrency and queue (docs/balance.md: in the simulation the 5-14 ms servers sat at 1.2-1.5
 * x their slots). In-flight alone (exponent 0) is the opposite error: every member is drawn at the
 * same rate (2/n per pick), so a slow member can only shed traffic by losing comparisons, which it
 * does by sitting at a higher in-flight count than the rest, i.e. it queues. A small exponent lets
 * the latency order the members that are about equally busy without overriding in-flight. The
 * simulation (1,000 servers, seeds 1-5) put the optimum between 0.2 and 0.35, flat; 1/4 is in the
 * middle and costs two square roots. docs/balance.md has the sweep and what P2C cannot do here.
 *
 * O(1) per pick, no allocation, no shared scan. Use it as the default for large or heterogeneous
 * sets; least-outstanding (a full scan) balances more evenly when the set is small.
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

/**
 * The cheaper of two endpoints by `cost`. The cost is computed here rather than by calling
 * `cost()`: a double returned from a call the engine does not inline is boxed in a new heap
 * number, and the pick loop measured 8-16 bytes allocated per pick that way.
 */
export function lowerCost(a: EndpointState, b: EndpointState): EndpointState {
  const ea = a.latencyEwmaMs > 0 || a.inFlight === 0 ? a.latencyEwmaMs : UNKNOWN_LATENCY_PENALTY_MS;
  const eb = b.latencyEwmaMs > 0 || b.inFlight === 0 ? b.latencyEwmaMs : UNKNOWN_LATENCY_PENALTY_MS;
  const ca = (Math.sqrt(Math.sqrt(ea)) * (a.inFlight + 1)) / a.weight;
  const cb = (Math.sqrt(Math.sqrt(eb)) * (b.inFlight + 1)) / b.weight;
  if (ca !== cb) return ca < cb ? a : b;
  return (b.inFlight + 1) / b.weight < (a.inFlight + 1) / a.weight ? b : a;
}

/**
 * An endpoint with no latency known yet (EWMA 0: the set was empty when it joined) that already has
 * calls in flight counts as this slow, as in Finagle: otherwise its cost stays 0 until its first
 * reply and every pair it is drawn into sends it another call (a slow newcomer would collect a
 * flood). With the penalty (1e9^(1/4) ~ 178 x a 1 ms endpoint per call) it is probed with one call
 * at a time until it answers.
 */
export const UNKNOWN_LATENCY_PENALTY_MS = 1e9;

/** Exponent of the latency EWMA in the cost (see the file comment for why 1/4). */
export const LATENCY_EXPONENT = 0.25;

/** `latencyEwmaMs^(1/4) * (inFlight + 1) / weight`, with the unknown-latency penalty (as `lowerCost` computes it). */
export function cost(ep: EndpointState): number {
  const ewma = ep.latencyEwmaMs > 0 || ep.inFlight === 0 ? ep.latencyEwmaMs : UNKNOWN_LATENCY_PENALTY_MS;
  // x^(1/4) as two square roots: exact for LATENCY_EXPONENT = 0.25 and cheaper than Math.pow.
  return (Math.sqrt(Math.sqrt(ewma)) * (ep.inFlight + 1)) / ep.weight;
}
