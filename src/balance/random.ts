/**
 * Uniform random choice. Ignores weights and load: use it when endpoints are alike and you want
 * the cheapest stateless pick. With heterogeneous or changing endpoints the slow ones get the same
 * share as the fast ones and their queues grow (see the simulation in docs/balance.md).
 */
import { BaseBalancer, type ExcludeSpec } from './base.js';
import type { Endpoint } from './endpoint.js';

export class RandomBalancer extends BaseBalancer {
  readonly name = 'random' as const;

  pick(_key?: string | Uint8Array, exclude?: ExcludeSpec): Endpoint | undefined {
    const list = this.endpoints.list;
    if (list.length === 0) return undefined;
    const i = this.randomEligible(exclude, -1);
    return i < 0 ? undefined : list[i];
  }
}
