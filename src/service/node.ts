/**
 * A node: hosts services, finds the others, and makes calls through balancer + resilience. This
 * file is the facade; the parts, one responsibility each, share a `NodeCore` (core.ts):
 *
 *   caller.ts      the call path: balancing, breakers, bulkheads, retries, the discovery wait
 *   server.ts      the serve path: validation, handlers, event subscriptions
 *   membership.ts  discovery: announce, heartbeat, leave, discover, the failure detector
 *   status.ts      health(), status(), the metrics
 *   consumers.ts   the services' queue consumers, subscribed while the node runs
 *   context.ts     the context handlers get
 *
 * LIFECYCLE. start(): connect the transport -> subscribe to discovery and to the services' events
 * -> ask the others to announce -> `started` hooks (their calls wait for discovery) -> register
 * this node's own services and serve requests -> 'running' -> queue consumers subscribe -> announce,
 * heartbeat. A step that fails unwinds what the earlier ones did (consumers closed, the `stopped`
 * hooks of the services whose `started` hook ran, the transport closed) and start() rejects with its
 * error; the node is then 'stopped'. stop(): 'draining' (new requests refused) -> leave -> in-flight
 * requests drain (bounded) -> consumers close -> `stopped` hooks -> unsubscribe, close the
 * transport -> 'stopped'. Why consumers go where they go: consumers.ts.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ppError, requireArg } from '../errors/index.js';
import type { CircuitBreakerOptions, FailureDetector, FailureDetectorOptions } from '../resilience/index.js';
import { createLogger, silentLogger, MetricsRegistry, type Logger, type LogOptions } from '../observe/index.js';
import { createTransport, isToken, type Transport, type Unsubscribe } from '../transport/index.js';
import { renamedOptions } from '../util/index.js';
import { Caller, type CallDefaults } from './caller.js';
import { Consumers } from './consumers.js';
import { CallContext } from './context.js';
import { NodeCore, type NodeState } from './core.js';
import { Membership } from './membership.js';
import { Registry } from './registry.js';
import { Server } from './server.js';
import { NodeMetrics, nodeHealth, nodeStatus, registerGauges, type NodeHealth, type NodeStatus } from './status.js';
import type { CallOptions, CheckActionName, CheckTopic, ParamsOf, PayloadOf, ResultOf, ServiceDef, AnyAction, TSchema } from './types.js';

export type { CallDefaults } from './caller.js';
export type { NodeState } from './core.js';
export type { NodeHealth, NodeStatus, ServiceStatus } from './status.js';

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
  concurrentRequestsMax?: number;
  /** On stop, in-flight requests get this long to finish. Default 5_000 ms. */
  drainTimeoutMs?: number;
  /** Validate handler results against their schema (bugs surface as PP_ERR_INTERNAL). Default false. */
  validateResults?: boolean;
  /** Nodes the registry holds at most. Default 1_000. */
  nodesMax?: number;
  /** @deprecated use concurrentRequestsMax */
  maxConcurrentRequests?: number;
  /** @deprecated use nodesMax */
  maxNodes?: number;
}

function defaultNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40);
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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

  private readonly core: NodeCore;
  private readonly caller: Caller;
  private readonly server: Server;
  private readonly membership: Membership;
  private readonly consumers: Consumers;
  private readonly services: readonly ServiceDef<string, Record<string, AnyAction>>[];
  private readonly unsubscribers: Unsubscribe[] = [];
  private readonly drainTimeoutMs: number;
  private readonly createdAtMs = performance.now();

  constructor(given: NodeConfig = {}) {
    const config = renamedOptions(given, { concurrentRequestsMax: 'maxConcurrentRequests', nodesMax: 'maxNodes' });
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

    const call = renamedOptions(config.call ?? {}, { attemptsMax: 'maxAttempts', retryDelayMsMax: 'retryMaxDelayMs', concurrentPerActionMax: 'maxConcurrentPerAction' }, 'call.');
    // The default throughputMin must not meet the deprecated name of a user's own (renamedOptions would see both).
    const breaker: CircuitBreakerOptions = { throughputMin: 10, openMs: 2_000, ...renamedOptions(call.breaker ?? {}, { throughputMin: 'minimumThroughput' }, 'call.breaker.') };
    this.registry = new Registry(call.balancer ?? 'p2c', breaker, config.nodesMax ?? 1_000, (action, nodeId, to) => {
      this.logger.warn({ action, nodeId, to }, 'circuit breaker state change');
    });
    this.core = new NodeCore(this.nodeId, this.instanceId, this.namespace, this.transport, this.registry, this.logger);
    const metrics = new NodeMetrics(this.metrics);
    this.caller = new Caller(this.core, metrics, call, this.heartbeatIntervalMs);
    this.membership = new Membership(this.core, metrics, this.services, {
      heartbeatIntervalMs: this.heartbeatIntervalMs, checkIntervalMs: this.checkIntervalMs, detector: config.detector,
      onRoutesChanged: () => this.caller.wakeRouteWaiters(),
    });
    this.detector = this.membership.detector;
    this.drainTimeoutMs = config.drainTimeoutMs ?? 5_000;
    this.server = new Server(this.core, this.caller, metrics, this.services, {
      concurrentRequestsMax: config.concurrentRequestsMax ?? 1_000,
      validateResults: config.validateResults ?? false,
      eventTimeoutMs: this.caller.callTimeoutMs,
    });
    this.caller.server = this.server;
    this.consumers = new Consumers(this.services, this.caller, this.logger, this.caller.callTimeoutMs);
    registerGauges(this.metrics, this.core, () => this.server.inFlight);
  }

  get state(): NodeState {
    return this.core.state;
  }

  health(): NodeHealth {
    return nodeHealth(this.core, this.server.inFlight);
  }

  /**
   * What this node knows of the cluster, for status pages and `powerplant status` (see status.ts).
   * A snapshot: cheap, no I/O.
   */
  status(): NodeStatus {
    return nodeStatus(this.core, this.health(), performance.now() - this.createdAtMs);
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  async start(): Promise<void> {
    const core = this.core;
    requireArg(core.state === 'new', 'state', `node '${this.nodeId}' can start once (state: ${core.state})`);
    core.state = 'starting';
    let hooksRun = 0;
    let ran = false;
    try {
      await this.transport.connect();
      const t = this.transport;
      this.unsubscribers.push(...this.membership.subscribe(), ...this.server.subscribeEvents());
      await t.flush();
      // Ask the others to announce before the started hooks run: a hook that calls another service
      // then finds it (calls wait up to discoveryWaitMs for an action to be discovered).
      this.membership.askToAnnounce();
      for (const svc of this.services) {
        await svc.started?.(this.lifecycleContext());
        hooksRun++;
      }
      this.membership.registerSelf();
      t.serve(this.server.serveRemote);
      core.state = 'running';
      ran = true;
      this.caller.wakeRouteWaiters();
      await this.consumers.start();
      this.membership.join();
      this.logger.info({ nodeId: this.nodeId, transport: t.kind, services: this.services.map((s) => s.name), consumers: this.consumers.size }, 'node started');
    } catch (err) {
      await this.unwind(hooksRun, ran);
      throw err;
    }
  }

  /**
   * Undoes a start that failed after `hooksRun` `started` hooks ran (and after the node had been
   * 'running' when `ran`): nothing is served from here on, requests that got in drain, consumers
   * close, those services' `stopped` hooks run, the transport closes.
   */
  private async unwind(hooksRun: number, ran: boolean): Promise<void> {
    this.core.state = 'stopped';
    this.caller.wakeRouteWaiters(true);
    if (ran) {
      this.membership.leave(); // it may have answered a discover while running
      await this.server.drain(this.drainTimeoutMs);
    }
    await this.consumers.close();
    await this.runStoppedHooks(hooksRun);
    for (const u of this.unsubscribers.splice(0)) u();
    await this.transport.close();
    this.caller.rejectPending(ppError('PP_ERR_SHUTTING_DOWN', { message: `node '${this.nodeId}' did not start` }));
  }

  /** The `stopped` hooks of the first `count` services, in order; a failing hook is logged, the rest still run. */
  private async runStoppedHooks(count: number): Promise<void> {
    for (const svc of this.services.slice(0, count)) {
      try {
        await svc.stopped?.(this.lifecycleContext());
      } catch (err) {
        this.logger.error({ err, service: svc.name }, 'stopped hook failed');
      }
    }
  }

  /**
   * Graceful stop: tell the cluster we leave, refuse new requests (PP_ERR_SHUTTING_DOWN, which
   * callers retry elsewhere), let in-flight ones finish for up to drainTimeoutMs, close the queue
   * consumers, run `stopped` hooks, close the transport. Idempotent.
   */
  async stop(): Promise<void> {
    const core = this.core;
    if (core.state === 'stopped' || core.state === 'draining') return;
    if (core.state === 'new') {
      core.state = 'stopped';
      return;
    }
    core.state = 'draining';
    this.caller.wakeRouteWaiters(true);
    this.membership.leave();
    await this.server.drain(this.drainTimeoutMs);
    await this.consumers.close();
    await this.runStoppedHooks(this.services.length);
    for (const u of this.unsubscribers.splice(0)) u();
    await this.transport.flush();
    await this.transport.close();
    this.caller.rejectPending(ppError('PP_ERR_SHUTTING_DOWN', { message: `node '${this.nodeId}' stopped` }));
    core.state = 'stopped';
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

  /** The context of `started` / `stopped` hooks: no deadline, no request. */
  private lifecycleContext(): CallContext {
    return new CallContext(this.caller, '', Infinity, undefined, undefined);
  }

  // ---- calls ---------------------------------------------------------------------------------

  /** A type-checked call (see ServiceRegistry). */
  call<N extends string>(name: N & CheckActionName<N>, params: ParamsOf<N>, opts?: CallOptions): Promise<ResultOf<N>> {
    return this.caller.invoke(name, params, opts, undefined) as Promise<ResultOf<N>>;
  }

  /** An unchecked call by name. */
  callDynamic(name: string, params: unknown, opts?: CallOptions): Promise<unknown> {
    return this.caller.invoke(name, params, opts, undefined);
  }

  /** A type-checked balanced event (see Context.emit). */
  emit<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void {
    this.caller.emitDynamic(topic, payload);
  }

  /** A type-checked broadcast event (see Context.broadcast). */
  broadcast<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void {
    this.caller.broadcastDynamic(topic, payload);
  }

  /** An unchecked balanced event. */
  emitDynamic(topic: string, payload: unknown): void {
    this.caller.emitDynamic(topic, payload);
  }

  /** An unchecked broadcast event. */
  broadcastDynamic(topic: string, payload: unknown): void {
    this.caller.broadcastDynamic(topic, payload);
  }

  /** Schemas of an action this node hosts (the gateway serializes results with them); undefined otherwise. */
  actionSchemas(name: string): { params: TSchema; result: TSchema | undefined } | undefined {
    return this.server.actionSchemas(name);
  }

  /**
   * An unchecked call by name that returns the result ITSELF when it was served synchronously (an
   * endpoint on this node with a synchronous handler), else a promise of it; the failure of a
   * synchronous call is thrown, not returned as a rejected promise. For callers that answer without
   * a promise when they can: the gateway, where an in-process action then answers an HTTP request
   * with no promise at all. Everyone else uses `call` / `callDynamic`, which always return a promise.
   * `opts` as for `callDynamic`; `opts.requestId` is the correlation id the call and every call it
   * makes carry (the gateway passes the HTTP request's id: one small object per request, measured
   * at ~5 ns against ~330 ns for the in-process call itself).
   */
  dispatch(name: string, params: unknown, opts?: CallOptions): unknown {
    return this.caller.dispatch(name, params, opts, undefined);
  }
}

/** Builds a node; call `start()` to join the cluster. */
export function createNode(config: NodeConfig = {}): ServiceNode {
  return new ServiceNode(config);
}
