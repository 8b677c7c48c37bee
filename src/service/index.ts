/**
 * Services: typed definitions, nodes that host them, registry and discovery, calls through
 * balancer + resilience. The HTTP gateway is in gateway/. See docs/services.md.
 */
export { defineService, action, event, consumer } from './define.js';
export type { ServiceInput } from './define.js';
export { createNode, ServiceNode } from './node.js';
export type { NodeConfig, CallDefaults, NodeHealth, NodeState, NodeStatus, ServiceStatus } from './node.js';
export { Registry, Route } from './registry.js';
export type { ActionDescriptor, EventDescriptor, ServiceDescriptor, NodeInfo } from './registry.js';
export { compileValidator } from './validate.js';
export type { Validator } from './validate.js';
export type {
  ServiceRegistry, Context, CallOptions, ActionDef, EventDef, ConsumerDef, AnyAction, AnyEvent, AnyConsumer, ServiceDef, ActionAt, ParamsOf, ResultOf, CheckActionName,
  EventAt, PayloadOf, CheckTopic,
} from './types.js';
