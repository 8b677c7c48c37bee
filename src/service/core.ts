/**
 * What the parts of one node share (node.ts composes them): its identity, transport, registry,
 * logger, the nodes the failure detector suspects, and the lifecycle state. One object, referenced
 * by every part, so the facade changes the state in one place and every part reads it there.
 */
import type { Logger } from '../observe/index.js';
import type { Transport } from '../transport/index.js';
import type { Registry } from './registry.js';

export type NodeState = 'new' | 'starting' | 'running' | 'draining' | 'stopped';

export class NodeCore {
  /** Written by the facade's start() / stop() only. */
  state: NodeState = 'new';
  /** Nodes the failure detector suspects: membership writes it, the balancers' picks avoid them. */
  readonly suspects = new Set<string>();

  constructor(
    readonly nodeId: string,
    readonly instanceId: string,
    readonly namespace: string,
    readonly transport: Transport,
    readonly registry: Registry,
    readonly logger: Logger,
  ) {}

  /** Discovery messages are taken from the moment the node asks for announcements until it drains. */
  listening(): boolean {
    return this.state === 'running' || this.state === 'starting';
  }
}
