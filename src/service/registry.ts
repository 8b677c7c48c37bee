/**
 * The registry: which node offers which action, and the per-endpoint state a call needs.
 *
 * An ENDPOINT is (action, node). Each action has a `Route`: an `EndpointSet` (in-flight and latency
 * EWMA per endpoint, fed by the call path), the balancer reading it, and one circuit breaker per
 * endpoint. Nodes enter by announcing their services and leave by a `leave` message, by the
 * failure detector declaring them dead, or by announcing again without the action.
 */
import { createBalancer, EndpointSet, type Balancer, type BalancerName } from '../balance/index.js';
import { invariant } from '../errors/index.js';
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from '../resilience/index.js';

/** What a node says about one of its actions (travels in announcements). */
export interface ActionDescriptor {
  /** `service.action` */
  name: string;
  idempotent: boolean;
  balancer?: BalancerName;
  keyParam?: string;
  timeoutMs?: number;
}

export interface EventDescriptor {
  topic: string;
  group: string;
}

export interface ServiceDescriptor {
  name: string;
  version: number;
  actions: ActionDescriptor[];
  events: EventDescriptor[];
}

export interface NodeInfo {
  nodeId: string;
  /** Changes when the process restarts under the same node id. */
  instanceId: string;
  services: ServiceDescriptor[];
  local: boolean;
  status: 'alive' | 'suspect';
}

export class Route {
  readonly set = new EndpointSet();
  readonly balancer: Balancer;
  readonly breakers = new Map<string, CircuitBreaker>();
  /** Descriptor from the latest announcement that offered this action. */
  descriptor: ActionDescriptor;

  constructor(descriptor: ActionDescriptor, defaultBalancer: BalancerName, private readonly breakerOptions: CircuitBreakerOptions,
    private readonly onBreakerChange: (action: string, nodeId: string, to: CircuitState) => void) {
    this.descriptor = descriptor;
    const strategy = descriptor.keyParam !== undefined ? 'consistent-hash' : (descriptor.balancer ?? defaultBalancer);
    this.balancer = createBalancer(strategy, { endpoints: this.set });
  }

  add(nodeId: string, local: boolean): void {
    if (this.set.get(nodeId) !== undefined) return;
    this.set.add(nodeId, { meta: { local } });
    this.breakers.set(nodeId, new CircuitBreaker({
      ...this.breakerOptions,
      name: `${this.descriptor.name}@${nodeId}`,
      onStateChange: (change) => this.onBreakerChange(this.descriptor.name, nodeId, change.to),
    }));
  }

  remove(nodeId: string): void {
    this.set.remove(nodeId);
    this.breakers.delete(nodeId);
  }
}

export class Registry {
  readonly nodes = new Map<string, NodeInfo>();
  readonly routes = new Map<string, Route>();

  constructor(
    private readonly defaultBalancer: BalancerName,
    private readonly breakerOptions: CircuitBreakerOptions,
    private readonly nodesMax: number,
    private readonly onBreakerChange: (action: string, nodeId: string, to: CircuitState) => void = () => {},
  ) {}

  /** Adds or replaces a node's offer. Returns 'added', 'updated' or 'full' (nodesMax reached). */
  upsert(info: NodeInfo): 'added' | 'updated' | 'full' {
    const previous = this.nodes.get(info.nodeId);
    if (previous === undefined && this.nodes.size >= this.nodesMax) return 'full';
    const offered = new Set<string>();
    for (const svc of info.services) {
      for (const a of svc.actions) {
        offered.add(a.name);
        let route = this.routes.get(a.name);
        if (route === undefined) {
          route = new Route(a, this.defaultBalancer, this.breakerOptions, this.onBreakerChange);
          this.routes.set(a.name, route);
        } else {
          route.descriptor = a;
        }
        route.add(info.nodeId, info.local);
      }
    }
    if (previous !== undefined) {
      for (const svc of previous.services) for (const a of svc.actions) if (!offered.has(a.name)) this.routes.get(a.name)?.remove(info.nodeId);
    }
    this.nodes.set(info.nodeId, info);
    return previous === undefined ? 'added' : 'updated';
  }

  /** Removes a node and all its endpoints; false if it was not known. */
  remove(nodeId: string): boolean {
    const info = this.nodes.get(nodeId);
    if (info === undefined) return false;
    for (const svc of info.services) {
      for (const a of svc.actions) {
        const route = this.routes.get(a.name);
        if (route === undefined) continue;
        route.remove(nodeId);
        if (route.set.size === 0) this.routes.delete(a.name);
      }
    }
    this.nodes.delete(nodeId);
    invariant(!this.nodes.has(nodeId), 'removed node is gone from the registry');
    return true;
  }

  /** Endpoints over all actions. */
  endpointCount(): number {
    let n = 0;
    for (const r of this.routes.values()) n += r.set.size;
    return n;
  }
}
