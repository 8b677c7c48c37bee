/**
 * A node: hosts services, finds the others, and makes calls through balancer + resilience.
 *
 * CALL PATH (caller side, `dispatch`): look up the action's Route (none yet: wait for it to be
 * discovered, at most discoveryWaitMs and within the deadline) -> deadline = min(own timeout,
 * parent's deadline) -> per attempt: balancer pick (excluding suspect nodes and the instances this
 * call already failed on) -> the endpoint's circuit breaker -> the action's caller-side bulkhead
 * -> send (a direct function call when the endpoint is this node, else the transport) with the
 * remaining deadline -> record latency and outcome in the endpoint set (EWMA, in-flight) and the
 * breaker. A retryable failure is retried on ANOTHER instance after a jittered backoff, within the
 * deadline and the node's retry budget: errors proving the call never ran (breaker open, bulkhead
 * full, node draining, action not there) for every action; timeouts and dead instances only for
 * idempotent actions. The path is synchronous until something is asynchronous: a call served by a
 * synchronous handler on this node returns its value with no promise (the gateway benchmark's case).
 *
 * SERVE PATH (`handle`): refuse while draining (PP_ERR_SHUTTING_DOWN, retryable) -> serve-side
 * bulkhead -> validate params against the compiled schema (PP_ERR_VALIDATION naming the field) ->
 * handler with a context carrying the remaining deadline -> any non-catalogue error becomes
 * PP_ERR_INTERNAL (logged with its stack; the caller sees no internals).
 *
 * DISCOVERY over the transport's broadcast topics `$sys.announce|heartbeat|leave|discover`: a node
 * announces its services on start (and when asked), heartbeats every heartbeatIntervalMs, and says
 * leave on stop. Heartbeats feed the phi-accrual failure detector from resilience/, checked every
 * checkIntervalMs: 'suspect' nodes are avoided by the balancers, 'dead' ones leave the registry and
 * their pending calls fail at once (PP_ERR_UNAVAILABLE) so they can be retried elsewhere. A node is
 * dead at most deadAfterMs + checkIntervalMs after its last heartbeat.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { BALANCER_NAMES, type BalancerName, type Endpoint } from '../balance/index.js';
import { invariant, isPowerplantError, ppError, requireArg, type PowerplantError } from '../errors/index.js';
import {
  Bulkhead, Deadline, FailureDetector, REJECTED, RetryBudget, backoffDelayMs,
  type CircuitBreaker, type CircuitBreakerOptions, type CircuitState, type FailureDetectorOptions, type NodeStatusChange, type RetryBudgetOptions,
} from '../resilience/index.js';
import { createLogger, silentLogger, MetricsRegistry, type Logger, type LogOptions, type Counter, type CounterSeries, type Histogram, type HistogramSeries } from '../observe/index.js';
import { createTransport, PendingCalls, isToken, type CallMeta, type Transport, type Unsubscribe } from '../transport/index.js';
import { Registry, type NodeInfo, type Route, type ServiceDescriptor } from './registry.js';
import type {
  CallOptions, CheckActionName, CheckTopic, Context, ParamsOf, PayloadOf, ResultOf, ServiceDef, AnyAction, AnyEvent, TSchema,
} from './types.js';
import { compileValidator, type Validator } from './validate.js';

export interface CallDefaults {
  /** Total budget of a call across retries. Default 10_000 ms. */
  timeoutMs?: number;
  /** Budget of one attempt (capped by what is left of the total). Default: no separate cap. */
  attemptTimeoutMs?: number;
  /** Attempts per call, first included. Default 3. 1 disables retries. */
  maxAttempts?: number;
  /** Backoff before retry i: uniform in [0, min(retryMaxDelayMs, retryBaseDelayMs * 2^i)). Defaults 5 / 100 ms. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Node-wide retry budget (Finagle style); false disables it. Default ratio 0.2 + 10 retries/s. */
  retryBudget?: RetryBudgetOptions | false;
  /** Per-endpoint circuit breaker options. */
  breaker?: Omit<CircuitBreakerOptions, 'name' | 'onStateChange'>;
  /** Calls in flight from this node to one action at most (caller-side bulkhead, no queue). Default 1_000. */
  maxConcurrentPerAction?: number;
  /** Default strategy. Default 'p2c'. */
  balancer?: BalancerName;
  /**
   * A call to an action no known node offers waits this long for one to be discovered (a node that
   * has just started has not heard the others' announcements yet), never past its deadline; then
   * PP_ERR_NO_ENDPOINT. At most maxConcurrentPerAction calls wait at once. 0 fails at once. Default 1_000 ms.
   */
  discoveryWaitMs?: number;
}

export interface NodeConfig {
  /** Token (letters, digits, '_', '-'). Default `<host>-<pid>-<random>`. */
  nodeId?: string;
  /** A URL (`inproc://`, `inproc://bus`, `nats://127.0.0.1:4222`) or a transport instance. Default `inproc://`. */
  transport?: string | Transport;
  /** Cluster namespace (subject prefix). Default 'default'. */
  namespace?: string;
  services?: readonly ServiceDef<string, Record<string, AnyAction>>[];
  /** A pino logger, options for one, or false for none. Default: info level to stdout. */
  logger?: Logger | LogOptions | false;
  /** Default 1_000 ms. */
  heartbeatIntervalMs?: number;
  /** How often the failure detector is evaluated. Default 250 ms. */
  checkIntervalMs?: number;
  /** Phi-accrual detector options; deadAfterMs (hard bound) defaults to 5 x heartbeatIntervalMs. */
  detector?: Omit<FailureDetectorOptions, 'onStatusChange' | 'clock'>;
  call?: CallDefaults;
  /** Requests this node serves at once; beyond, PP_ERR_BULKHEAD_FULL (retryable: another instance may have room). Default 1_000. */
  maxConcurrentRequests?: number;
  /** On stop, in-flight requests get this long to finish. Default 5_000 ms. */
  drainTimeoutMs?: number;
  /** Validate handler results against their schema (bugs surface as PP_ERR_INTERNAL). Default false. */
  validateResults?: boolean;
  /** Nodes the registry holds at most. Default 1_000. */
  maxNodes?: number;
}

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

export type NodeState = 'new' | 'starting' | 'running' | 'draining' | 'stopped';

interface LocalAction {
  fullName: string;
  def: AnyAction;
  params: Validator;
  result: Validator | undefined;
  servedOk: CounterSeries;
}

interface ActionCallState {
  bulkhead: Bulkhead;
  ok: CounterSeries;
  duration: HistogramSeries;
  retries: CounterSeries;
}

interface AnnounceMsg { nodeId: string; instanceId: string; services: ServiceDescriptor[] }

/**
 * Announcements come from other processes (other versions, other bugs): their shape is checked
 * with a compiled schema before anything reaches the registry; a bad one is dropped and logged.
 */
const ANNOUNCE_SCHEMA = Type.Object({
  nodeId: Type.String({ minLength: 1, maxLength: 128 }),
  instanceId: Type.String({ minLength: 1, maxLength: 64 }),
  services: Type.Array(Type.Object({
    name: Type.String({ maxLength: 64 }),
    version: Type.Integer(),
    actions: Type.Array(Type.Object({
      name: Type.String({ maxLength: 129 }),
      idempotent: Type.Boolean(),
      balancer: Type.Optional(Type.Union(BALANCER_NAMES.map((n) => Type.Literal(n)))),
      keyParam: Type.Optional(Type.String({ maxLength: 128 })),
      timeoutMs: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    }), { maxItems: 10_000 }),
    events: Type.Array(Type.Object({ topic: Type.String({ maxLength: 256 }), group: Type.String({ maxLength: 128 }) }), { maxItems: 10_000 }),
  }), { maxItems: 1_000 }),
});
const announceValidator = compileValidator(ANNOUNCE_SCHEMA, 'announce');
interface BeatMsg { nodeId: string; instanceId: string }

/** Errors that prove the call never ran on the instance: safe to retry for any action. */
const NOT_EXECUTED: ReadonlySet<string> = new Set(['PP_ERR_CIRCUIT_OPEN', 'PP_ERR_BULKHEAD_FULL', 'PP_ERR_SHUTTING_DOWN', 'PP_ERR_NO_ENDPOINT', 'PP_ERR_RATE_LIMITED']);

const SYS_ANNOUNCE = '$sys.announce';
const SYS_HEARTBEAT = '$sys.heartbeat';
const SYS_LEAVE = '$sys.leave';
const SYS_DISCOVER = '$sys.discover';
const BREAKER_CODE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

function defaultNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40);
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The context handed to handlers. A class so the per-request cost is its fields only. */
class CallContext implements Context {
  private deadlineObj: Deadline | undefined;
  constructor(
    private readonly node: ServiceNode,
    readonly name: string,
    readonly deadlineAtMs: number,
    readonly requestId: string | undefined,
    readonly callerNodeId: string | undefined,
  ) {}

  get nodeId(): string {
    return this.node.nodeId;
  }

  get logger(): Logger {
    return this.node.logger;
  }

  get deadline(): Deadline {
    this.deadlineObj ??= new Deadline(this.deadlineAtMs);
    return this.deadlineObj;
  }

  call<N extends string>(name: N & CheckActionName<N>, params: ParamsOf<N>, opts?: CallOptions): Promise<ResultOf<N>> {
    return this.node.invoke(name, params, opts, this) as Promise<ResultOf<N>>;
  }

  callDynamic(name: string, params: unknown, opts?: CallOptions): Promise<unknown> {
    return this.node.invoke(name, params, opts, this);
  }

  emit<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void {
    this.node.emitDynamic(topic, payload);
  }

  broadcast<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void {
    this.node.broadcastDynamic(topic, payload);
  }

  emitDynamic(topic: string, payload: unknown): void {
    this.node.emitDynamic(topic, payload);
  }

  broadcastDynamic(topic: string, payload: unknown): void {
    this.node.broadcastDynamic(topic, payload);
  }
}

/** One call in progress on the caller side: its budget, and the bookkeeping of its current attempt. */
class OutgoingCall {
  attempts = 0;
  exclude: Set<string> | undefined = undefined;
  lastErr: PowerplantError | undefined = undefined;
  ep: Endpoint | undefined = undefined;
  breaker: CircuitBreaker | undefined = undefined;
  permit = 0;
  sentMs = 0;
  constructor(
    readonly name: string,
    readonly params: unknown,
    readonly route: Route,
    readonly cs: ActionCallState,
    readonly startMs: number,
    readonly deadlineAtMs: number,
    readonly idempotent: boolean,
    readonly key: string | undefined,
    readonly requestId: string | undefined,
  ) {}
}

export class ServiceNode {
  readonly nodeId: string;
  readonly instanceId = randomBytes(6).toString('hex');
  readonly namespace: string;
  readonly transport: Transport;
  readonly logger: Logger;
  readonly metrics = new MetricsRegistry();
  readonly registry: Registry;
  readonly detector: FailureDetector;
  readonly heartbeatIntervalMs: number;
  readonly checkIntervalMs: number;

  private stateValue: NodeState = 'new';
  private readonly services: readonly ServiceDef<string, Record<string, AnyAction>>[];
  private readonly localActions = new Map<string, LocalAction>();
  private readonly callStates = new Map<string, ActionCallState>();
  private readonly suspects = new Set<string>();
  private readonly unsubscribers: Unsubscribe[] = [];
  private readonly localPending: PendingCalls;
  private readonly serveBulkhead: Bulkhead;
  private readonly retryBudget: RetryBudget | undefined;
  private readonly callTimeoutMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryBaseDelayMs: number;
  private readonly retryMaxDelayMs: number;
  private readonly maxConcurrentPerAction: number;
  private readonly drainTimeoutMs: number;
  private readonly discoveryWaitMs: number;
  /** Calls waiting for an action to be discovered, by action; woken by announcements. */
  private readonly routeWaiters = new Map<string, Set<() => void>>();
  private routeWaiterCount = 0;
  private readonly validateResults: boolean;
  /** Shared meta for calls without a request id: no object per call. */
  private readonly plainMeta: CallMeta;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private checkTimer: ReturnType<typeof setInterval> | undefined;
  private lastDiscoverMs = -Infinity;
  private readonly createdAtMs = performance.now();

  private readonly callsTotal: Counter;
  private readonly callDuration: Histogram;
  private readonly retriesTotal: Counter;
  private readonly servedTotal: Counter;
  private readonly eventsDropped: Counter;
  private readonly nodesLeft: Counter;

  constructor(config: NodeConfig = {}) {
    this.nodeId = config.nodeId ?? defaultNodeId();
    requireArg(isToken(this.nodeId), 'nodeId', 'must be 1-128 letters, digits, "_" or "-"');
    this.namespace = config.namespace ?? 'default';
    this.services = config.services ?? [];
    const names = new Set<string>();
    for (const s of this.services) {
      requireArg(!names.has(s.name), 'services', `service '${s.name}' is listed twice`);
      names.add(s.name);
    }
    const log = config.logger;
    this.logger = log === false ? silentLogger() : log !== undefined && 'info' in log ? log : createLogger({ ...(log ?? {}), name: 'powerplant' });
    this.transport = typeof config.transport === 'object'
      ? config.transport
      : createTransport(config.transport ?? 'inproc://', { nodeId: this.nodeId, namespace: this.namespace });
    requireArg(this.transport.nodeId === this.nodeId, 'transport', 'the transport must be built with the same nodeId');

    this.heartbeatIntervalMs = config.heartbeatIntervalMs ?? 1_000;
    this.checkIntervalMs = config.checkIntervalMs ?? 250;
    requireArg(this.heartbeatIntervalMs >= 10, 'heartbeatIntervalMs', 'must be >= 10');
    requireArg(this.checkIntervalMs >= 5, 'checkIntervalMs', 'must be >= 5');
    this.detector = new FailureDetector({
      deadAfterMs: 5 * this.heartbeatIntervalMs,
      firstHeartbeatEstimateMs: this.heartbeatIntervalMs,
      ...config.detector,
      onStatusChange: (change) => this.onNodeStatus(change),
    });

    const call = config.call ?? {};
    this.callTimeoutMs = call.timeoutMs ?? 10_000;
    this.attemptTimeoutMs = call.attemptTimeoutMs ?? Infinity;
    this.maxAttempts = call.maxAttempts ?? 3;
    this.retryBaseDelayMs = call.retryBaseDelayMs ?? 5;
    this.retryMaxDelayMs = call.retryMaxDelayMs ?? 100;
    this.maxConcurrentPerAction = call.maxConcurrentPerAction ?? 1_000;
    this.discoveryWaitMs = call.discoveryWaitMs ?? 1_000;
    requireArg(this.discoveryWaitMs >= 0 && this.discoveryWaitMs <= 2_147_483_647, 'call.discoveryWaitMs', 'must be in [0, 2147483647]');
    requireArg(this.callTimeoutMs > 0 && this.callTimeoutMs <= 2_147_483_647, 'call.timeoutMs', 'must be in (0, 2147483647]');
    requireArg(this.attemptTimeoutMs > 0, 'call.attemptTimeoutMs', 'must be > 0');
    requireArg(Number.isInteger(this.maxAttempts) && this.maxAttempts >= 1 && this.maxAttempts <= 10, 'call.maxAttempts', 'must be an integer in [1, 10]');
    this.retryBudget = call.retryBudget === false ? undefined : new RetryBudget(call.retryBudget ?? {});
    const breaker: CircuitBreakerOptions = { minimumThroughput: 10, openMs: 2_000, ...call.breaker };
    this.registry = new Registry(call.balancer ?? 'p2c', breaker, config.maxNodes ?? 1_000, (action, nodeId, to) => {
      this.logger.warn({ action, nodeId, to }, 'circuit breaker state change');
    });
    this.serveBulkhead = new Bulkhead({ maxConcurrent: config.maxConcurrentRequests ?? 1_000, maxQueue: 0, name: `${this.nodeId}:serve` });
    this.localPending = new PendingCalls({ maxPending: 100_000, tickMs: 5 });
    this.drainTimeoutMs = config.drainTimeoutMs ?? 5_000;
    this.validateResults = config.validateResults ?? false;
    this.plainMeta = { callerNodeId: this.nodeId };

    const m = this.metrics;
    this.callsTotal = m.counter('pp_calls_total', 'Calls made by this node, by action and outcome (ok or error code).', ['action', 'outcome']);
    this.callDuration = m.histogram('pp_call_duration_ms', 'Duration of calls made by this node (all attempts), ms.', ['action']);
    this.retriesTotal = m.counter('pp_call_retries_total', 'Retries (attempts after the first), by action.', ['action']);
    this.servedTotal = m.counter('pp_served_total', 'Requests served by this node, by action and outcome.', ['action', 'outcome']);
    this.eventsDropped = m.counter('pp_events_dropped_total', 'Events dropped before their handler (invalid payload, handler error, draining).', ['topic', 'reason']);
    this.nodesLeft = m.counter('pp_registry_nodes_left_total', 'Nodes removed from the registry, by reason.', ['reason']);
    for (const svc of this.services) {
      for (const [actionName, def] of Object.entries(svc.actions)) {
        const fullName = `${svc.name}.${actionName}`;
        this.localActions.set(fullName, {
          fullName, def,
          params: compileValidator(def.params, 'params'),
          result: def.result === undefined ? undefined : compileValidator(def.result, 'result'),
          servedOk: this.servedTotal.labels(fullName, 'ok'),
        });
      }
    }

    m.gauge('pp_registry_nodes', 'Nodes in the registry (this one included).', [], () => [[[], this.registry.nodes.size]]);
    m.gauge('pp_registry_endpoints', 'Endpoints (action x node) in the registry.', [], () => [[[], this.registry.endpointCount()]]);
    m.gauge('pp_breaker_state', 'Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open.', ['action', 'node'], () => this.breakerSamples());
    m.gauge('pp_in_flight', 'Requests being served by this node.', [], () => [[[], this.inFlight]]);
    m.gauge('pp_transport', 'Transport counters (frames, drops, timeouts).', ['counter'], () =>
      Object.entries(this.transport.stats()).map(([k, v]) => [[k], v] as const));
  }

  get state(): NodeState {
    return this.stateValue;
  }

  health(): NodeHealth {
    return {
      nodeId: this.nodeId, live: this.stateValue !== 'stopped', ready: this.stateValue === 'running', state: this.stateValue,
      registryNodes: this.registry.nodes.size, inFlight: this.inFlight,
    };
  }

  /**
   * What this node knows of the cluster, for status pages and `powerplant status`: itself, every
   * node in its registry (alive or suspect) with the services it offers, and per service the
   * instances and, per action, each endpoint's in-flight calls, latency estimate and breaker state
   * as seen from this node. A snapshot: cheap, no I/O.
   */
  status(): NodeStatus {
    const nodes = [...this.registry.nodes.values()].map((n) => ({
      nodeId: n.nodeId, instanceId: n.instanceId, local: n.local, status: n.status,
      services: n.services.map((s) => ({ name: s.name, version: s.version })),
    }));
    const services = new Map<string, ServiceStatus>();
    for (const n of this.registry.nodes.values()) {
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
    for (const [name, route] of this.registry.routes) {
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
      node: { ...this.health(), namespace: this.namespace, instanceId: this.instanceId, transport: this.transport.kind, uptimeMs: Math.round(performance.now() - this.createdAtMs) },
      nodes: nodes.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)),
      services: [...services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    };
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  async start(): Promise<void> {
    requireArg(this.stateValue === 'new', 'state', `node '${this.nodeId}' can start once (state: ${this.stateValue})`);
    this.stateValue = 'starting';
    try {
      await this.transport.connect();
      const t = this.transport;
      this.unsubscribers.push(
        t.subscribe(SYS_ANNOUNCE, (p) => this.onAnnounce(p)),
        t.subscribe(SYS_HEARTBEAT, (p) => this.onHeartbeat(p)),
        t.subscribe(SYS_LEAVE, (p) => this.onLeave(p)),
        t.subscribe(SYS_DISCOVER, (p) => this.onDiscover(p)),
      );
      for (const svc of this.services) {
        for (const [topic, def] of Object.entries(svc.events)) this.subscribeEvent(svc.name, topic, def);
      }
      await t.flush();
      // Ask the others to announce before the started hooks run: a hook that calls another service
      // then finds it (calls wait up to discoveryWaitMs for an action to be discovered).
      t.publish(SYS_DISCOVER, { nodeId: this.nodeId });
      for (const svc of this.services) await svc.started?.(new CallContext(this, '', Infinity, undefined, undefined));
      this.registry.upsert({ nodeId: this.nodeId, instanceId: this.instanceId, services: this.describe(), local: true, status: 'alive' });
      t.serve(this.serveRemote);
      this.stateValue = 'running';
      this.wakeRouteWaiters();
      this.announce();
      this.heartbeatTimer = setInterval(() => this.transport.publish(SYS_HEARTBEAT, { nodeId: this.nodeId, instanceId: this.instanceId }), this.heartbeatIntervalMs);
      this.checkTimer = setInterval(() => this.detector.check(), this.checkIntervalMs);
      this.heartbeatTimer.unref();
      this.checkTimer.unref();
      this.logger.info({ nodeId: this.nodeId, transport: t.kind, services: this.services.map((s) => s.name) }, 'node started');
    } catch (err) {
      this.stateValue = 'stopped';
      await this.transport.close();
      throw err;
    }
  }

  /**
   * Graceful stop: tell the cluster we leave, refuse new requests (PP_ERR_SHUTTING_DOWN, which
   * callers retry elsewhere), let in-flight ones finish for up to drainTimeoutMs, run `stopped`
   * hooks, close the transport. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stateValue === 'stopped' || this.stateValue === 'draining') return;
    if (this.stateValue === 'new') {
      this.stateValue = 'stopped';
      return;
    }
    this.stateValue = 'draining';
    this.wakeRouteWaiters(true);
    clearInterval(this.heartbeatTimer);
    clearInterval(this.checkTimer);
    this.transport.publish(SYS_LEAVE, { nodeId: this.nodeId, instanceId: this.instanceId });
    if (this.inFlight > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        timer = setTimeout(resolve, this.drainTimeoutMs);
      });
      clearTimeout(timer);
      this.drained = undefined;
      if (this.inFlight > 0) this.logger.warn({ inFlight: this.inFlight, drainTimeoutMs: this.drainTimeoutMs }, 'drain timed out; abandoning in-flight requests');
    }
    for (const svc of this.services) {
      try {
        await svc.stopped?.(new CallContext(this, '', Infinity, undefined, undefined));
      } catch (err) {
        this.logger.error({ err, service: svc.name }, 'stopped hook failed');
      }
    }
    for (const u of this.unsubscribers.splice(0)) u();
    await this.transport.flush();
    await this.transport.close();
    this.localPending.rejectAll(ppError('PP_ERR_SHUTTING_DOWN', { message: `node '${this.nodeId}' stopped` }));
    this.stateValue = 'stopped';
    this.logger.info({ nodeId: this.nodeId }, 'node stopped');
  }

  /** Resolves when every named action has at least one endpoint (e.g. after remote nodes announced). */
  async waitFor(actions: readonly string[], timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!actions.every((a) => (this.registry.routes.get(a)?.set.size ?? 0) > 0)) {
      if (performance.now() > deadline) {
        const missing = actions.filter((a) => (this.registry.routes.get(a)?.set.size ?? 0) === 0);
        throw ppError('PP_ERR_TIMEOUT', { message: `actions not discovered within ${timeoutMs} ms: ${missing.join(', ')}` });
      }
      await sleep(10);
    }
  }

  // ---- calls ---------------------------------------------------------------------------------

  /** A type-checked call (see ServiceRegistry). */
  call<N extends string>(name: N & CheckActionName<N>, params: ParamsOf<N>, opts?: CallOptions): Promise<ResultOf<N>> {
    return this.invoke(name, params, opts, undefined) as Promise<ResultOf<N>>;
  }

  /** An unchecked call by name. */
  callDynamic(name: string, params: unknown, opts?: CallOptions): Promise<unknown> {
    return this.invoke(name, params, opts, undefined);
  }

  /** A type-checked balanced event (see Context.emit). */
  emit<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void {
    this.emitDynamic(topic, payload);
  }

  /** A type-checked broadcast event (see Context.broadcast). */
  broadcast<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void {
    this.broadcastDynamic(topic, payload);
  }

  /** An unchecked balanced event. */
  emitDynamic(topic: string, payload: unknown): void {
    this.transport.publish(`e.${topic}`, payload);
  }

  /** An unchecked broadcast event. */
  broadcastDynamic(topic: string, payload: unknown): void {
    this.transport.publish(`b.${topic}`, payload);
  }

  /** Schemas of an action this node hosts (the gateway serializes results with them); undefined otherwise. */
  actionSchemas(name: string): { params: TSchema; result: TSchema | undefined } | undefined {
    const la = this.localActions.get(name);
    return la === undefined ? undefined : { params: la.def.params, result: la.def.result };
  }

  /** @internal `dispatch` as a promise. */
  invoke(name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined): Promise<unknown> {
    try {
      const out = this.dispatch(name, params, opts, parent, undefined);
      return out instanceof Promise ? out : Promise.resolve(out);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * @internal The call path (see the file comment). Returns the result ITSELF when the call was
   * served synchronously (an endpoint on this node with a synchronous handler), a promise
   * otherwise; the failure of a synchronous call is thrown. The gateway uses this form so that an
   * in-process action answers an HTTP request with no promise at all. `requestId` (when given)
   * overrides `opts.requestId`, which saves the gateway an options object per request.
   */
  dispatch(name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined, requestId: string | undefined): unknown {
    const startMs = performance.now();
    const route = this.registry.routes.get(name);
    if (route === undefined) return this.awaitRoute(name, params, opts, parent, requestId, startMs);
    return this.begin(route, name, params, opts, parent, requestId, startMs);
  }

  private begin(route: Route, name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined,
    requestId: string | undefined, startMs: number): unknown {
    const d = route.descriptor;
    let deadlineAtMs = startMs + (opts?.timeoutMs ?? d.timeoutMs ?? this.callTimeoutMs);
    if (parent !== undefined && parent.deadlineAtMs < deadlineAtMs) deadlineAtMs = parent.deadlineAtMs;
    let key = opts?.key;
    if (key === undefined && d.keyParam !== undefined && typeof params === 'object' && params !== null) {
      const v: unknown = (params as Record<string, unknown>)[d.keyParam];
      if (v !== undefined) key = String(v);
    }
    this.retryBudget?.recordRequest();
    const c = new OutgoingCall(name, params, route, this.callState(name), startMs, deadlineAtMs, opts?.idempotent ?? d.idempotent, key,
      requestId ?? opts?.requestId ?? parent?.requestId);
    return this.attempt(c, startMs);
  }

  /**
   * No node offers `name` (yet): a node that has just started may not have heard the others'
   * announcements. Wait for the action to appear, at most discoveryWaitMs and never past the
   * call's deadline; woken by the announcement itself, not by polling. Bounded: at most
   * maxConcurrentPerAction calls wait at once; beyond, or when waiting is off, fail at once.
   */
  private awaitRoute(name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined,
    requestId: string | undefined, startMs: number): Promise<unknown> {
    let deadlineAtMs = startMs + (opts?.timeoutMs ?? this.callTimeoutMs);
    if (parent !== undefined && parent.deadlineAtMs < deadlineAtMs) deadlineAtMs = parent.deadlineAtMs;
    const waitMs = Math.min(this.discoveryWaitMs, deadlineAtMs - startMs);
    const canWait = waitMs >= 1 && (this.stateValue === 'running' || this.stateValue === 'starting') && this.routeWaiterCount < this.maxConcurrentPerAction;
    if (!canWait) throw this.noEndpoint(name);
    return new Promise<void>((resolve) => {
      let set = this.routeWaiters.get(name);
      if (set === undefined) {
        set = new Set();
        this.routeWaiters.set(name, set);
      }
      const waiters = set;
      const done = (): void => {
        clearTimeout(timer);
        if (waiters.delete(done)) this.routeWaiterCount--;
        if (waiters.size === 0 && this.routeWaiters.get(name) === waiters) this.routeWaiters.delete(name);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      waiters.add(done);
      this.routeWaiterCount++;
    }).then(() => {
      const route = this.registry.routes.get(name);
      if (route === undefined) throw this.noEndpoint(name);
      return this.begin(route, name, params, opts, parent, requestId, startMs);
    });
  }

  private noEndpoint(name: string): PowerplantError {
    const err = ppError('PP_ERR_NO_ENDPOINT', { message: `no node offers '${name}'`, retryAfterMs: this.heartbeatIntervalMs, data: { action: name } });
    this.callsTotal.labels('(unknown)', err.code).inc();
    return err;
  }

  /** Wakes the calls waiting for actions that now have an endpoint (all of them when `all`). */
  private wakeRouteWaiters(all = false): void {
    if (this.routeWaiterCount === 0) return;
    for (const [name, set] of [...this.routeWaiters]) {
      if (!all && !this.registry.routes.has(name)) continue;
      this.routeWaiters.delete(name);
      for (const wake of [...set]) wake();
    }
  }

  /**
   * One attempt of call `c`, started at `nowMs`; on a retryable failure, the next attempts. Returns
   * the result (synchronous local handler), a promise of it, or throws the final error.
   */
  private attempt(c: OutgoingCall, nowMs: number): unknown {
    const route = c.route;
    for (;;) {
      const remainingMs = c.deadlineAtMs - nowMs;
      if (remainingMs <= 0) throw this.fail(c, c.lastErr ?? ppError('PP_ERR_TIMEOUT', { message: `'${c.name}': deadline exceeded` }), nowMs);
      // Avoid suspect nodes and the instances this call already failed on, unless nothing else is left.
      let ep = route.balancer.pick(c.key, c.exclude ?? (this.suspects.size > 0 ? this.suspects : undefined));
      if (ep === undefined && c.exclude === undefined && this.suspects.size > 0) ep = route.balancer.pick(c.key);
      if (ep === undefined) {
        throw this.fail(c, c.lastErr ?? ppError('PP_ERR_NO_ENDPOINT', { message: `no instance of '${c.name}' is available`, retryAfterMs: this.heartbeatIntervalMs }), nowMs);
      }
      const breaker = route.breakers.get(ep.id);
      invariant(breaker !== undefined, 'every endpoint has a breaker');
      const permit = breaker.acquire();
      if (permit === REJECTED) {
        // Not an attempt: nothing was sent. Exclusion makes this loop end after at most set.size rounds.
        c.lastErr = breaker.openError();
        (c.exclude ??= new Set(this.suspects)).add(ep.id);
        continue;
      }
      const cs = c.cs;
      if (!cs.bulkhead.tryAcquire()) {
        breaker.onIgnore(permit);
        throw this.fail(c, ppError('PP_ERR_BULKHEAD_FULL', {
          message: `'${c.name}': ${this.maxConcurrentPerAction} calls already in flight from this node`, retryAfterMs: 10,
        }), nowMs);
      }
      const attemptMs = remainingMs < this.attemptTimeoutMs ? remainingMs : this.attemptTimeoutMs;
      route.set.onStart(ep);
      // Attempts of one call never overlap: the call object holds the current one's bookkeeping.
      c.ep = ep;
      c.breaker = breaker;
      c.permit = permit;
      c.sentMs = nowMs;
      let out: unknown;
      if (ep.id === this.nodeId) {
        // Served right here: a function call, no transport.
        try {
          out = this.serve(c.name, c.params, attemptMs, c.requestId, this.nodeId);
        } catch (e) {
          return this.attemptFailed(c, e);
        }
        if (!(out instanceof Promise)) return this.attemptSucceeded(c, out);
        out = this.raceLocal(out, attemptMs);
      } else {
        const meta: CallMeta = c.requestId === undefined ? this.plainMeta : { requestId: c.requestId, callerNodeId: this.nodeId };
        out = this.transport.request(ep.id, c.name, c.params, attemptMs, meta);
      }
      return (out as Promise<unknown>).then((v) => this.attemptSucceeded(c, v), (e: unknown) => this.attemptFailed(c, e));
    }
  }

  private attemptSucceeded(c: OutgoingCall, value: unknown): unknown {
    const endMs = performance.now();
    c.route.set.onFinish(c.ep as Endpoint, endMs - c.sentMs, true);
    (c.breaker as CircuitBreaker).onSuccess(c.permit);
    c.cs.bulkhead.release();
    c.cs.ok.inc();
    c.cs.duration.observe(endMs - c.startMs);
    return value;
  }

  /** Books a failed attempt, then throws the final error or returns the retry (a value or a promise). */
  private attemptFailed(c: OutgoingCall, e: unknown): unknown {
    const err = isPowerplantError(e) ? e : ppError('PP_ERR_INTERNAL', { message: 'call failed', cause: e });
    const endMs = performance.now();
    const ep = c.ep as Endpoint;
    c.route.set.onFinish(ep, endMs - c.sentMs, false);
    (c.breaker as CircuitBreaker).onFailure(err, c.permit);
    c.cs.bulkhead.release();
    c.lastErr = err;
    const retry = err.retryable && (c.idempotent || NOT_EXECUTED.has(err.code)) && c.attempts + 1 < this.maxAttempts
      && (this.retryBudget === undefined || this.retryBudget.tryWithdraw());
    if (!retry) throw this.fail(c, err, endMs);
    c.cs.retries.inc();
    (c.exclude ??= new Set(this.suspects)).add(ep.id);
    const delayMs = Math.min(backoffDelayMs(c.attempts, this.retryBaseDelayMs, this.retryMaxDelayMs), Math.max(0, c.deadlineAtMs - endMs - 1));
    c.attempts++;
    if (delayMs >= 1) return sleep(delayMs).then(() => this.attempt(c, performance.now()));
    return this.attempt(c, endMs);
  }

  private fail(c: OutgoingCall, err: PowerplantError, nowMs: number): PowerplantError {
    this.callsTotal.labels(c.name, err.code).inc();
    c.cs.duration.observe(nowMs - c.startMs);
    return err;
  }

  private callState(name: string): ActionCallState {
    let cs = this.callStates.get(name);
    if (cs === undefined) {
      cs = {
        bulkhead: new Bulkhead({ maxConcurrent: this.maxConcurrentPerAction, maxQueue: 0, name: `call:${name}` }),
        ok: this.callsTotal.labels(name, 'ok'),
        duration: this.callDuration.labels(name),
        retries: this.retriesTotal.labels(name),
      };
      this.callStates.set(name, cs);
    }
    return cs;
  }

  /**
   * An asynchronous handler on this node is raced against its deadline on the shared wheel, like a
   * remote call. (A synchronous one needs nothing: it cannot overrun.)
   */
  private raceLocal(out: Promise<unknown>, timeoutMs: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.localPending.full()) {
        out.then(undefined, () => {}); // settles later; nobody waits for it
        reject(this.localPending.fullError());
        return;
      }
      const id = this.localPending.add(this.nodeId, timeoutMs, resolve, reject);
      out.then(
        (value) => this.localPending.settle(id, true, value),
        (err: unknown) => this.localPending.settle(id, false, err),
      );
    });
  }

  // ---- serving --------------------------------------------------------------------------------

  /** The transport's request handler: always a promise. */
  private readonly serveRemote = (name: string, params: unknown, timeoutMs: number, meta: CallMeta | undefined): Promise<unknown> => {
    try {
      const out = this.serve(name, params, timeoutMs, meta?.requestId, meta?.callerNodeId);
      return out instanceof Promise ? out : Promise.resolve(out);
    } catch (err) {
      return Promise.reject(err);
    }
  };

  /**
   * Serves one request: the result, a promise of it, or a synchronous throw (always a catalogue
   * error). Synchronous where the handler is, so in-process calls skip the promise machinery.
   */
  private serve(name: string, params: unknown, timeoutMs: number, requestId: string | undefined, callerNodeId: string | undefined): unknown {
    if (this.stateValue !== 'running') {
      throw ppError('PP_ERR_SHUTTING_DOWN', { message: `node '${this.nodeId}' is ${this.stateValue}`, retryAfterMs: 0 });
    }
    const la = this.localActions.get(name);
    if (la === undefined) throw ppError('PP_ERR_NO_ENDPOINT', { message: `node '${this.nodeId}' does not offer '${name}'` });
    if (!(timeoutMs > 0)) throw ppError('PP_ERR_TIMEOUT', { message: `'${name}': deadline passed before the request arrived` });
    if (!this.serveBulkhead.tryAcquire()) {
      this.servedTotal.labels(name, 'PP_ERR_BULKHEAD_FULL').inc();
      throw ppError('PP_ERR_BULKHEAD_FULL', { message: `node '${this.nodeId}' serves ${this.serveBulkhead.maxConcurrent} requests already`, retryAfterMs: 10 });
    }
    this.inFlight++;
    let out: unknown;
    try {
      const invalid = la.params.check(params);
      if (invalid !== undefined) throw invalid;
      const ctx = new CallContext(this, name, performance.now() + timeoutMs, requestId, callerNodeId);
      out = la.def.handler(ctx, params);
    } catch (e) {
      throw this.serveFailed(la, e, requestId);
    }
    if (out instanceof Promise) {
      return out.then((value: unknown) => this.serveSucceeded(la, value, requestId), (e: unknown) => { throw this.serveFailed(la, e, requestId); });
    }
    return this.serveSucceeded(la, out, requestId);
  }

  /** Bookkeeping of a successful request; returns the result (or throws if it fails validation). */
  private serveSucceeded(la: LocalAction, value: unknown, requestId: string | undefined): unknown {
    if (this.validateResults && la.result !== undefined) {
      const bad = la.result.check(value);
      if (bad !== undefined) throw this.serveFailed(la, ppError('PP_ERR_INTERNAL', { message: `'${la.fullName}' returned an invalid result (${bad.message})` }), requestId);
    }
    la.servedOk.inc();
    this.release();
    return value;
  }

  /** Bookkeeping of a failed request; returns the catalogue error to throw. */
  private serveFailed(la: LocalAction, e: unknown, requestId: string | undefined): PowerplantError {
    const err = this.toCatalogue(e, la.fullName, requestId);
    this.servedTotal.labels(la.fullName, err.code).inc();
    this.release();
    return err;
  }

  private release(): void {
    this.serveBulkhead.release();
    this.inFlight--;
    invariant(this.inFlight >= 0, 'in-flight count non-negative');
    if (this.inFlight === 0) this.drained?.();
  }

  private toCatalogue(e: unknown, name: string, requestId: string | undefined): PowerplantError {
    if (isPowerplantError(e)) return e;
    // A handler bug: log the details here, send the caller only a code.
    this.logger.error({ err: e, action: name, requestId }, 'action handler threw a non-catalogue error');
    return ppError('PP_ERR_INTERNAL', { message: `'${name}' failed` });
  }

  private subscribeEvent(service: string, topic: string, def: AnyEvent): void {
    const validator = def.params === undefined ? undefined : compileValidator(def.params, 'payload');
    const deliver = (payload: unknown): void => {
      if (this.stateValue !== 'running') {
        this.eventsDropped.labels(topic, 'not-running').inc();
        return;
      }
      const invalid = validator?.check(payload);
      if (invalid !== undefined) {
        this.eventsDropped.labels(topic, 'invalid').inc();
        this.logger.warn({ topic, service, field: invalid.field }, 'event dropped: invalid payload');
        return;
      }
      const ctx = new CallContext(this, topic, performance.now() + this.callTimeoutMs, undefined, undefined);
      Promise.resolve()
        .then(() => def.handler(ctx, payload))
        .catch((err: unknown) => {
          this.eventsDropped.labels(topic, 'handler-error').inc();
          this.logger.error({ err, topic, service }, 'event handler failed');
        });
    };
    this.unsubscribers.push(
      this.transport.subscribe(`e.${topic}`, deliver, def.group ?? service),
      this.transport.subscribe(`b.${topic}`, deliver),
    );
  }

  // ---- discovery ------------------------------------------------------------------------------

  private describe(): ServiceDescriptor[] {
    return this.services.map((svc) => ({
      name: svc.name,
      version: svc.version,
      actions: Object.entries(svc.actions).map(([a, def]) => ({
        name: `${svc.name}.${a}`, idempotent: def.idempotent ?? false,
        ...(def.balancer === undefined ? {} : { balancer: def.balancer }),
        ...(def.keyParam === undefined ? {} : { keyParam: def.keyParam }),
        ...(def.timeoutMs === undefined ? {} : { timeoutMs: def.timeoutMs }),
      })),
      events: Object.entries(svc.events).map(([topic, def]) => ({ topic, group: def.group ?? svc.name })),
    }));
  }

  private announce(): void {
    const msg: AnnounceMsg = { nodeId: this.nodeId, instanceId: this.instanceId, services: this.describe() };
    this.transport.publish(SYS_ANNOUNCE, msg);
  }

  private onAnnounce(p: unknown): void {
    const invalid = announceValidator.check(p);
    if (invalid !== undefined) {
      this.logger.warn({ field: invalid.field }, 'malformed announcement dropped');
      return;
    }
    const msg = p as AnnounceMsg;
    if (msg.nodeId === this.nodeId || !this.listening()) return;
    const known = this.registry.nodes.get(msg.nodeId);
    if (known !== undefined && known.instanceId !== msg.instanceId) this.dropNode(msg.nodeId, 'restarted');
    const info: NodeInfo = { nodeId: msg.nodeId, instanceId: msg.instanceId, services: msg.services, local: false, status: 'alive' };
    const outcome = this.registry.upsert(info);
    if (outcome === 'full') {
      this.logger.warn({ nodeId: msg.nodeId }, 'registry full (maxNodes): node ignored');
      return;
    }
    this.suspects.delete(msg.nodeId);
    this.detector.heartbeat(msg.nodeId);
    this.wakeRouteWaiters();
    if (outcome === 'added') this.logger.info({ nodeId: msg.nodeId, services: msg.services.map((s) => s.name) }, 'node joined');
  }

  private onHeartbeat(p: unknown): void {
    const msg = p as Partial<BeatMsg> | null;
    if (msg === null || typeof msg !== 'object' || typeof msg.nodeId !== 'string' || msg.nodeId === this.nodeId || !this.listening()) return;
    const known = this.registry.nodes.get(msg.nodeId);
    if (known === undefined || known.instanceId !== msg.instanceId) {
      // We missed its announcement (joined later, or it was declared dead and came back): ask.
      const now = performance.now();
      if (now - this.lastDiscoverMs >= this.heartbeatIntervalMs) {
        this.lastDiscoverMs = now;
        this.transport.publish(SYS_DISCOVER, { nodeId: this.nodeId });
      }
      return;
    }
    this.detector.heartbeat(msg.nodeId);
  }

  /** Discovery messages are taken from the moment the node asks for announcements until it drains. */
  private listening(): boolean {
    return this.stateValue === 'running' || this.stateValue === 'starting';
  }

  private onLeave(p: unknown): void {
    const msg = p as Partial<BeatMsg> | null;
    if (msg === null || typeof msg !== 'object' || typeof msg.nodeId !== 'string' || msg.nodeId === this.nodeId) return;
    const known = this.registry.nodes.get(msg.nodeId);
    if (known !== undefined && known.instanceId === msg.instanceId) this.dropNode(msg.nodeId, 'left');
  }

  private onDiscover(p: unknown): void {
    const msg = p as { nodeId?: unknown } | null;
    if (msg === null || typeof msg !== 'object' || msg.nodeId === this.nodeId || this.stateValue !== 'running') return;
    this.announce();
  }

  private onNodeStatus(change: NodeStatusChange): void {
    const info = this.registry.nodes.get(change.nodeId);
    if (info === undefined) return;
    if (change.to === 'dead') {
      this.dropNode(change.nodeId, 'dead');
      this.logger.warn({ nodeId: change.nodeId, silentMs: Math.round(change.silentMs), phi: change.phi }, 'node declared dead');
    } else if (change.to === 'suspect') {
      info.status = 'suspect';
      this.suspects.add(change.nodeId);
      this.logger.info({ nodeId: change.nodeId, silentMs: Math.round(change.silentMs) }, 'node suspect');
    } else {
      info.status = 'alive';
      this.suspects.delete(change.nodeId);
    }
  }

  private dropNode(nodeId: string, reason: 'dead' | 'left' | 'restarted'): void {
    if (!this.registry.remove(nodeId)) return;
    this.detector.remove(nodeId);
    this.suspects.delete(nodeId);
    this.nodesLeft.labels(reason).inc();
    // A dead or restarted node will never answer the calls it had: fail them now so they can be
    // retried on another instance instead of waiting for their deadlines. A node that LEFT is
    // draining: it still answers what it accepted, so its calls are left to finish.
    if (reason !== 'left') this.transport.abandonCallsTo(nodeId, ppError('PP_ERR_UNAVAILABLE', { message: `node '${nodeId}' ${reason}`, data: { nodeId } }));
    if (reason !== 'dead') this.logger.info({ nodeId, reason }, 'node left the registry');
  }

  private *breakerSamples(): Iterable<readonly [readonly string[], number]> {
    for (const route of this.registry.routes.values()) {
      for (const [nodeId, b] of route.breakers) yield [[route.descriptor.name, nodeId], BREAKER_CODE[b.state]] as const;
    }
  }
}

/** Builds a node; call `start()` to join the cluster. */
export function createNode(config: NodeConfig = {}): ServiceNode {
  return new ServiceNode(config);
}
