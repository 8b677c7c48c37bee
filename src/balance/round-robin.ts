/**
 * Round-robin: members in insertion order, one after the other. Ignores weights and load. Each
 * member is visited once per cycle of `size` picks while the set does not change.
 *
 * Excluded members are skipped (the cursor moves past them), so a retry goes to the next member in
 * order. After a removal the cursor keeps its numeric position, which is at most one step away
 * from where it "should" be; no member is ever skipped for more than one cycle.
 */
import { BaseBalancer, isExcluded, type ExcludeSpec } from './base.js';
import type { Endpoint, EndpointState } from './endpoint.js';

export class RoundRobinBalancer extends BaseBalancer {
  readonly name = 'round-robin' as const;
  private cursor = 0;

  pick(_key?: string | Uint8Array, exclude?: ExcludeSpec): Endpoint | undefined {
    const list = this.endpoints.list;
    const n = list.length;
    if (n === 0) return undefined;
    // Bounded: at most n probes, then every member was excluded.
    for (let probes = 0; probes < n; probes++) {
      if (this.cursor >= n) this.cursor = 0;
      const ep = list[this.cursor] as EndpointState;
      this.cursor++;
      if (!isExcluded(ep, exclude)) return ep;
    }
    return undefined;
  }
}
