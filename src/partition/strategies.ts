/**
 * Name -> implementation for the hash placement strategies (one file per strategy, as with
 * Moleculer's strategies/ folders): `createPlacement("maglev", shards, options)`.
 */
import { requireArg } from '../errors/index.js';
import { BoundedLoadPlacement, type BoundedLoadOptions } from './bounded.js';
import { JumpPlacement, type JumpOptions } from './jump.js';
import { MaglevPlacement, type MaglevOptions } from './maglev.js';
import type { Placement, PlacementFactory } from './placement.js';
import { RendezvousPlacement, type RendezvousOptions } from './rendezvous.js';
import { RingPlacement, type RingOptions } from './ring.js';

export const STRATEGY_NAMES = ['jump', 'rendezvous', 'ring', 'maglev', 'bounded'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface StrategyOptions {
  readonly jump?: JumpOptions;
  /** Weights are per shard list, so they are not taken here; build RendezvousPlacement directly. */
  readonly rendezvous?: Omit<RendezvousOptions, 'weights'>;
  readonly ring?: RingOptions;
  readonly maglev?: MaglevOptions;
  readonly bounded?: BoundedLoadOptions;
}

export function createPlacement(strategy: StrategyName, shards: readonly string[], options: StrategyOptions = {}): Placement {
  switch (strategy) {
    case 'jump':
      return new JumpPlacement(shards, options.jump);
    case 'rendezvous':
      return new RendezvousPlacement(shards, options.rendezvous);
    case 'ring':
      return new RingPlacement(shards, options.ring);
    case 'maglev':
      return new MaglevPlacement(shards, options.maglev);
    case 'bounded':
      return new BoundedLoadPlacement(shards, options.bounded);
    default:
      requireArg(false, 'strategy', `must be one of ${STRATEGY_NAMES.join(', ')}`);
  }
}

/** A factory for `PartitionMap.addShard/removeShard`: the same strategy over a new shard list. */
export function placementFactory(strategy: StrategyName, options: StrategyOptions = {}): PlacementFactory {
  requireArg((STRATEGY_NAMES as readonly string[]).includes(strategy), 'strategy', `must be one of ${STRATEGY_NAMES.join(', ')}`);
  return (shards) => createPlacement(strategy, shards, options);
}
