/**
 * Least outstanding requests: the member with the fewest calls in flight relative to its weight,
 * scored `(inFlight + 1) / weight` as Envoy's LEAST_REQUEST does (the +1 makes an idle heavy member
 * beat an idle light one). With equal weights that is simply a minimum in-flight member.
 *
 * Ties are broken round-robin, not towards the first member: the scan starts one position later on
 * every pick and keeps the first minimum it meets. Always taking the first would pile every burst
 * that arrives at equal load onto member 0.
 *
 * O(n) per pick (a full scan): exact, and cheap up to a few hundred members. For large sets prefer
 * p2c, which is O(1) and nearly as even.
 */
import { BaseBalancer, isExcluded, type ExcludeSpec } from './base.js';
import type { Endpoint, EndpointState } from './endpoint.js';

export class LeastOutstandingBalancer extends BaseBalancer {
  readonly name = 'least-outstanding' as const;
  private start = 0;

  pick(_key?: string | Uint8Array, exclude?: ExcludeSpec): Endpoint | undefined {
    const list = this.endpoints.list;
    const n = list.length;
    if (n === 0) return undefined;
    if (this.start >= n) this.start = 0;
    const from = this.start++;
    let best: EndpointState | undefined;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      let i = from + k;
      if (i >= n) i -= n;
      const ep = list[i] as EndpointState;
      const score = (ep.inFlight + 1) / ep.weight;
      if (score < bestScore && !isExcluded(ep, exclude)) {
        bestScore = score;
        best = ep;
      }
    }
    return best;
  }
}
