/**
 * What a node reports about itself: `health()` (liveness, readiness), `status()` (the nodes and
 * services it knows, per endpoint its in-flight calls, latency estimate and breaker state), and its
 * Prometheus metrics: the counters the call and serve paths feed, and the gauges read at scrape time.
 */
import type { CircuitState } from '../resilience/index.js';
import type { Counter, Histogram, MetricsRegistry } from '../observe/index.js';
import type { NodeCore, NodeState } from './core.js';

export interface NodeHealth {
  nodeId: string;
  /** The process is up and the node not stopped. */
  live: boolean;
  /** Started, not draining: it accepts requests. */
  ready: boolean;
  state: NodeState;
  registryNodes: number;
  inFlight: number;
}

/** One service as `status()` reports it. */
export interface ServiceStatus {
  name: string;
  version: number;
  /** Node ids offering it, sorted. */
  instances: string[];
  actions: {
    name: string;
    idempotent: boolean;
    endpoints: { nodeId: string; inFlight: number; latencyEwmaMs: number; breaker: 'closed' | 'open' | 'half-open' }[];
  }[];
  /** Event topics its instances subscribe to. */
  events: string[];
}

/** `ServiceNode.status()`: this node, the nodes it knows, and the services they offer. */
export interface NodeStatus {
  node: NodeHealth & { namespace: string; instanceId: string; transport: string; uptimeMs: number };
  nodes: { nodeId: string; instanceId: string; local: boolean; status: 'alive' | 'suspect'; services: { name: string; version: number }[] }[];
  services: ServiceStatus[];
}

const BREAKER_CODE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** The counters and histograms of one node (registered in this order, before the gauges). */
export class NodeMetrics {
  readonly callsTotal: Counter;
  readonly callDuration: Histogram;
  readonly retriesTotal: Counter;
  readonly servedTotal: Counter;
  readonly eventsDropped: Counter;
  readonly nodesLeft: Counter;

  constructor(m: MetricsRegistry) {
    this.callsTotal = m.counter('pp_calls_total', 'Calls made by this node, by action and outcome (ok or error code).', ['action', 'outcome']);
    this.callDuration = m.histogram('pp_call_duration_ms', 'Duration of calls made by this node (all attempts), ms.', ['action']);
    this.retriesTotal = m.counter('pp_call_retries_total', 'Retries (attempts after the first), by action.', ['action']);
    this.servedTotal = m.counter('pp_served_total', 'Requests served by this node, by action and outcome.', ['action', 'outcome']);
    this.eventsDropped = m.counter('pp_events_dropped_total', 'Events dropped before their handler (invalid payload, handler error, draining).', ['topic', 'reason']);
    this.nodesLeft = m.counter('pp_registry_nodes_left_total', 'Nodes removed from the registry, by reason.', ['reason']);
  }
}

/** The gauges, read when the metrics are rendered (nothing on the request path). */
export function registerGauges(m: MetricsRegistry, core: NodeCore, inFlight: () => number): void {
  const { registry, transport } = core;
  m.gauge('pp_registry_nodes', 'Nodes in the registry (this one included).', [], () => [[[], registry.nodes.size]]);
  m.gauge('pp_registry_endpoints', 'Endpoints (action x node) in the registry.', [], () => [[[], registry.endpointCount()]]);
  m.gauge('pp_breaker_state', 'Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open.', ['action', 'node'], () => breakerSamples(core));
  m.gauge('pp_in_flight', 'Requests being served by this node.', [], () => [[[], inFlight()]]);
  m.gauge('pp_transport', 'Transport counters (frames, drops, timeouts).', ['counter'], () =>
    Object.entries(transport.stats()).map(([k, v]) => [[k], v] as const));
}

function* breakerSamples(core: NodeCore): Iterable<readonly [readonly string[], number]> {
  for (const route of core.registry.routes.values()) {
    for (const [nodeId, b] of route.breakers) yield [[route.descriptor.name, nodeId], BREAKER_CODE[b.state]] as const;
  }
}

export function nodeHealth(core: NodeCore, inFlight: number): NodeHealth {
  const state = core.state;
  return {
    nodeId: core.nodeId, live: state !== 'stopped', ready: state === 'running', state,
    registryNodes: core.registry.nodes.size, inFlight,
  };
}

/**
 * What this node knows of the cluster, for status pages and `powerplant status`: itself, every
 * node in its registry (alive or suspect) with the services it offers, and per service the
 * instances and, per action, each endpoint's in-flight calls, latency estimate and breaker state
 * as seen from this node. A snapshot: cheap, no I/O.
 */
export function nodeStatus(core: NodeCore, health: NodeHealth, uptimeMs: number): NodeStatus {
  const registry = core.registry;
  const nodes = [...registry.nodes.values()].map((n) => ({
    nodeId: n.nodeId, instanceId: n.instanceId, local: n.local, status: n.status,
    services: n.services.map((s) => ({ name: s.name, version: s.version })),
  }));
  const services = new Map<string, ServiceStatus>();
  for (const n of registry.nodes.values()) {
    for (const s of n.services) {
      let svc = services.get(s.name);
      if (svc === undefined) {
        svc = { name: s.name, version: s.version, instances: [], actions: [], events: [] };
        services.set(s.name, svc);
      }
      svc.instances.push(n.nodeId);
      for (const e of s.events) if (!svc.events.includes(e.topic)) svc.events.push(e.topic);
    }
  }
  for (const [name, route] of registry.routes) {
    const svc = services.get(name.slice(0, name.indexOf('.')));
    if (svc === undefined) continue;
    const endpoints = [...route.breakers.keys()].map((nodeId) => {
      const ep = route.set.get(nodeId);
      return {
        nodeId, inFlight: ep?.inFlight ?? 0, latencyEwmaMs: Math.round((ep?.latencyEwmaMs ?? 0) * 1000) / 1000,
        breaker: route.breakers.get(nodeId)?.state ?? 'closed',
      };
    });
    svc.actions.push({ name, idempotent: route.descriptor.idempotent, endpoints });
  }
  for (const svc of services.values()) {
    svc.instances.sort();
    svc.actions.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  return {
    node: { ...health, namespace: core.namespace, instanceId: core.instanceId, transport: core.transport.kind, uptimeMs: Math.round(uptimeMs) },
    nodes: nodes.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)),
    services: [...services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}
