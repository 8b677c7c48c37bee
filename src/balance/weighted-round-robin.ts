/**
 * Smooth weighted round-robin, nginx's algorithm (ngx_http_upstream_get_peer, 2012): every pick,
 * each eligible member's `current` grows by its weight; the member with the largest `current` wins
 * and loses the sum of the eligible weights. Over any cycle of `sum(weights)` picks from a fresh
 * state each member is picked exactly `weight` times, and the picks are interleaved rather than
 * bunched: weights {a:5, b:1, c:1} give a a b a c a a.
 *
 * Use it for static capacity differences (a big box and a small box) when you want exact shares
 * and no randomness. It does not react to load or latency.
 *
 * Membership and weight changes: the `current` values of surviving members are kept (rescaled by
 * new total weight / old total weight), newcomers start at 0, and all are shifted so they sum to 0
 * again (the invariant of the algorithm: after
 * each pick the currents sum to 0). Keeping them avoids the burst a reset would give (after a reset
 * the heaviest member is picked first, so frequent churn would overload it); shares are exact over
 * the long run and, from a fresh state, per cycle. Excluded members take no part in a pick: their
 * `current` does not grow and the winner loses only the eligible weights (as nginx does for peers
 * already tried).
 *
 * Weights are floats; with integer weights every value stays an exact integer, so ties (broken
 * towards the earlier member) are exact.
 */
import { invariant } from '../errors/index.js';
import { BaseBalancer, isExcluded, type ExcludeSpec } from './base.js';
import type { Endpoint, EndpointState } from './endpoint.js';

export class WeightedRoundRobinBalancer extends BaseBalancer {
  readonly name = 'weighted-round-robin' as const;
  /** current[i] belongs to endpoints.list[i]; rebuilt on set changes. */
  private current = new Float64Array(0);
  /** The members `current` was built for, to carry values across a rebuild. */
  private builtFor: EndpointState[] = [];
  /** Sum of weights when `current` was built. */
  private builtTotalWeight = 0;

  protected override rebuild(): void {
    const list = this.endpoints.list;
    const old = new Map<EndpointState, number>();
    for (let i = 0; i < this.builtFor.length; i++) old.set(this.builtFor[i] as EndpointState, this.current[i] as number);
    const next = new Float64Array(list.length);
    // Currents are bounded by the total weight; rescaling them to the new total keeps each
    // survivor's phase without letting a big old total hand one member a long burst.
    const scale = this.builtTotalWeight > 0 ? this.endpoints.totalWeight / this.builtTotalWeight : 0;
    let sum = 0;
    for (let i = 0; i < list.length; i++) {
      const v = (old.get(list[i] as EndpointState) ?? 0) * scale;
      next[i] = v;
      sum += v;
    }
    if (list.length > 0 && sum !== 0) {
      const shift = sum / list.length;
      for (let i = 0; i < list.length; i++) next[i] = (next[i] as number) - shift;
    }
    this.current = next;
    this.builtFor = list.slice();
    this.builtTotalWeight = this.endpoints.totalWeight;
  }

  pick(_key?: string | Uint8Array, exclude?: ExcludeSpec): Endpoint | undefined {
    this.sync();
    const list = this.endpoints.list;
    const cur = this.current;
    invariant(cur.length === list.length, 'weighted-round-robin state matches the set');
    let best = -1;
    let bestCurrent = -Infinity;
    let total = 0;
    for (let i = 0; i < list.length; i++) {
      const ep = list[i] as EndpointState;
      if (isExcluded(ep, exclude)) continue;
      const c = (cur[i] as number) + ep.weight;
      cur[i] = c;
      total += ep.weight;
      if (c > bestCurrent) {
        bestCurrent = c;
        best = i;
      }
    }
    if (best < 0) return undefined;
    cur[best] = (cur[best] as number) - total;
    return list[best];
  }
}
