/**
 * The calling side of a node: calls (through balancer + resilience) and events going out.
 *
 * CALL PATH (`dispatch`): look up the action's Route (none yet: wait for it to be discovered, at
 * most discoveryWaitMs and within the deadline) -> deadline = min(own timeout, parent's deadline)
 * -> per attempt: balancer pick (excluding suspect nodes and the instances this call already failed
 * on) -> the endpoint's circuit breaker -> the action's caller-side bulkhead -> send (a direct
 * function call when the endpoint is this node, else the transport) with the remaining deadline ->
 * record latency and outcome in the endpoint set (EWMA, in-flight) and the breaker.
 *
 * RETRIES: a failed attempt is retried on ANOTHER instance when it is SAFE and the node's
 * `RetryPolicy` (resilience/) allows it. Safe: the error proves the call never ran (breaker open,
 * bulkhead full, node draining, action not there, rate limited) for every action; timeouts and dead
 * instances only for idempotent actions. Allowed: retryable, attempts left, the full-jitter backoff
 * ends before the deadline, the node's retry budget has one. The policy is asked attempt by attempt
 * (it has no loop of its own), so the path stays synchronous until something is asynchronous: a
 * call served by a synchronous handler on this node returns its value with no promise (the gateway
 * benchmark's case), and a retry with a backoff under 1 ms runs at once.
 */
import type { BalancerName, Endpoint } from '../balance/index.js';
import { invariant, isPowerplantError, ppError, requireArg, type PowerplantError } from '../errors/index.js';
import {
  Bulkhead, REJECTED, RETRY_STOP, RetryBudget, RetryPolicy, type CircuitBreaker, type CircuitBreakerOptions, type RetryBudgetOptions,
} from '../resilience/index.js';
import type { CounterSeries, HistogramSeries, Logger } from '../observe/index.js';
import { PendingCalls, type CallMeta, type Transport } from '../transport/index.js';
import type { ContextHost, CallContext } from './context.js';
import type { NodeCore } from './core.js';
import type { Registry, Route } from './registry.js';
import type { Server } from './server.js';
import type { NodeMetrics } from './status.js';
import type { CallOptions } from './types.js';

export interface CallDefaults {
  /** Total budget of a call across retries. Default 10_000 ms. */
  timeoutMs?: number;
  /** Budget of one attempt (capped by what is left of the total). Default: no separate cap. */
  attemptTimeoutMs?: number;
  /** Attempts per call, first included. Default 3. 1 disables retries. */
  attemptsMax?: number;
  /** Backoff before retry i: uniform in [0, min(retryDelayMsMax, retryBaseDelayMs * 2^i)). Defaults 5 / 100 ms. */
  retryBaseDelayMs?: number;
  retryDelayMsMax?: number;
  /** Node-wide retry budget (Finagle style); false disables it. Default ratio 0.2 + 10 retries/s. */
  retryBudget?: RetryBudgetOptions | false;
  /** Per-endpoint circuit breaker options. */
  breaker?: Omit<CircuitBreakerOptions, 'name' | 'onStateChange'>;
  /** Calls in flight from this node to one action at most (caller-side bulkhead, no queue). Default 1_000. */
  concurrentPerActionMax?: number;
  /** Default strategy. Default 'p2c'. */
  balancer?: BalancerName;
  /**
   * A call to an action no known node offers waits this long for one to be discovered (a node that
   * has just started has not heard the others' announcements yet), never past its deadline; then
   * PP_ERR_NO_ENDPOINT. At most concurrentPerActionMax calls wait at once. 0 fails at once. Default 1_000 ms.
   */
  discoveryWaitMs?: number;
  /** @deprecated use attemptsMax */
  maxAttempts?: number;
  /** @deprecated use retryDelayMsMax */
  retryMaxDelayMs?: number;
  /** @deprecated use concurrentPerActionMax */
  maxConcurrentPerAction?: number;
}

/** Errors that prove the call never ran on the instance: safe to retry for any action. */
const NOT_EXECUTED: ReadonlySet<string> = new Set(['PP_ERR_CIRCUIT_OPEN', 'PP_ERR_BULKHEAD_FULL', 'PP_ERR_SHUTTING_DOWN', 'PP_ERR_NO_ENDPOINT', 'PP_ERR_RATE_LIMITED']);

interface ActionCallState {
  bulkhead: Bulkhead;
  ok: CounterSeries;
  duration: HistogramSeries;
  retries: CounterSeries;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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

export class Caller implements ContextHost {
  readonly nodeId: string;
  readonly logger: Logger;
  /**
   * The serving side of the same node, bound once by the facade right after both are built (the two
   * refer to each other: a call to this node is served there; a handler's ctx.call comes out here).
   */
  server!: Server;
  readonly callTimeoutMs: number;
  readonly concurrentPerActionMax: number;
  private readonly registry: Registry;
  private readonly transport: Transport;
  private readonly suspects: Set<string>;
  private readonly callStates = new Map<string, ActionCallState>();
  private readonly localPending: PendingCalls;
  private readonly retry: RetryPolicy;
  private readonly attemptTimeoutMs: number;
  private readonly discoveryWaitMs: number;
  /** retryAfterMs of PP_ERR_NO_ENDPOINT: an announcement or heartbeat may bring one by then. */
  private readonly heartbeatIntervalMs: number;
  /** Calls waiting for an action to be discovered, by action; woken by announcements. */
  private readonly routeWaiters = new Map<string, Set<() => void>>();
  private routeWaiterCount = 0;
  /** Shared meta for calls without a request id: no object per call. */
  private readonly plainMeta: CallMeta;

  constructor(private readonly core: NodeCore, private readonly metrics: NodeMetrics, call: CallDefaults, heartbeatIntervalMs: number) {
    this.nodeId = core.nodeId;
    this.logger = core.logger;
    this.registry = core.registry;
    this.transport = core.transport;
    this.suspects = core.suspects;
    this.heartbeatIntervalMs = heartbeatIntervalMs;
    this.callTimeoutMs = call.timeoutMs ?? 10_000;
    this.attemptTimeoutMs = call.attemptTimeoutMs ?? Infinity;
    const attemptsMax = call.attemptsMax ?? 3;
    this.concurrentPerActionMax = call.concurrentPerActionMax ?? 1_000;
    this.discoveryWaitMs = call.discoveryWaitMs ?? 1_000;
    requireArg(this.discoveryWaitMs >= 0 && this.discoveryWaitMs <= 2_147_483_647, 'call.discoveryWaitMs', 'must be in [0, 2147483647]');
    requireArg(this.callTimeoutMs > 0 && this.callTimeoutMs <= 2_147_483_647, 'call.timeoutMs', 'must be in (0, 2147483647]');
    requireArg(this.attemptTimeoutMs > 0, 'call.attemptTimeoutMs', 'must be > 0');
    requireArg(Number.isInteger(attemptsMax) && attemptsMax >= 1 && attemptsMax <= 10, 'call.attemptsMax', 'must be an integer in [1, 10]');
    const baseDelayMs = call.retryBaseDelayMs ?? 5;
    const delayMsMax = call.retryDelayMsMax ?? 100;
    requireArg(baseDelayMs >= 0 && Number.isFinite(baseDelayMs), 'call.retryBaseDelayMs', 'must be a finite number >= 0');
    requireArg(delayMsMax >= 0 && Number.isFinite(delayMsMax), 'call.retryDelayMsMax', 'must be a finite number >= 0');
    // One policy per node: the budget is node-wide (every call from here deposits and withdraws).
    this.retry = new RetryPolicy({
      attemptsMax, baseDelayMs, delayMsMax,
      ...(call.retryBudget === false ? {} : { budget: new RetryBudget(call.retryBudget ?? {}) }),
    });
    this.localPending = new PendingCalls({ pendingMax: 100_000, tickMs: 5 });
    this.plainMeta = { callerNodeId: this.nodeId };
  }

  /** ContextHost: `dispatch` as a promise. */
  invoke(name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined): Promise<unknown> {
    try {
      const out = this.dispatch(name, params, opts, parent);
      return out instanceof Promise ? out : Promise.resolve(out);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The call path (see the file comment). Returns the result ITSELF when the call was served
   * synchronously (an endpoint on this node with a synchronous handler), a promise otherwise; the
   * failure of a synchronous call is thrown. The request id is `opts.requestId`, else the parent's.
   */
  dispatch(name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined): unknown {
    const startMs = performance.now();
    const route = this.registry.routes.get(name);
    if (route === undefined) return this.awaitRoute(name, params, opts, parent, startMs);
    return this.begin(route, name, params, opts, parent, startMs);
  }

  /** ContextHost: an unchecked balanced event. */
  emitDynamic(topic: string, payload: unknown): void {
    this.transport.publish(`e.${topic}`, payload);
  }

  /** ContextHost: an unchecked broadcast event. */
  broadcastDynamic(topic: string, payload: unknown): void {
    this.transport.publish(`b.${topic}`, payload);
  }

  /** Fails the local calls still waiting (the node stopped). */
  rejectPending(err: PowerplantError): void {
    this.localPending.rejectAll(err);
  }

  private begin(route: Route, name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined, startMs: number): unknown {
    const d = route.descriptor;
    let deadlineAtMs = startMs + (opts?.timeoutMs ?? d.timeoutMs ?? this.callTimeoutMs);
    if (parent !== undefined && parent.deadlineAtMs < deadlineAtMs) deadlineAtMs = parent.deadlineAtMs;
    let key = opts?.key;
    if (key === undefined && d.keyParam !== undefined && typeof params === 'object' && params !== null) {
      const v: unknown = (params as Record<string, unknown>)[d.keyParam];
      if (v !== undefined) key = String(v);
    }
    this.retry.begin();
    const c = new OutgoingCall(name, params, route, this.callState(name), startMs, deadlineAtMs, opts?.idempotent ?? d.idempotent, key,
      opts?.requestId ?? parent?.requestId);
    return this.attempt(c, startMs);
  }

  /**
   * No node offers `name` (yet): a node that has just started may not have heard the others'
   * announcements. Wait for the action to appear, at most discoveryWaitMs and never past the
   * call's deadline; woken by the announcement itself, not by polling. Bounded: at most
   * concurrentPerActionMax calls wait at once; beyond, or when waiting is off, fail at once.
   */
  private awaitRoute(name: string, params: unknown, opts: CallOptions | undefined, parent: CallContext | undefined, startMs: number): Promise<unknown> {
    let deadlineAtMs = startMs + (opts?.timeoutMs ?? this.callTimeoutMs);
    if (parent !== undefined && parent.deadlineAtMs < deadlineAtMs) deadlineAtMs = parent.deadlineAtMs;
    const waitMs = Math.min(this.discoveryWaitMs, deadlineAtMs - startMs);
    const canWait = waitMs >= 1 && this.core.listening() && this.routeWaiterCount < this.concurrentPerActionMax;
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
      return this.begin(route, name, params, opts, parent, startMs);
    });
  }

  private noEndpoint(name: string): PowerplantError {
    const err = ppError('PP_ERR_NO_ENDPOINT', { message: `no node offers '${name}'`, retryAfterMs: this.heartbeatIntervalMs, data: { action: name } });
    this.metrics.callsTotal.labels('(unknown)', err.code).inc();
    return err;
  }

  /** Wakes the calls waiting for actions that now have an endpoint (all of them when `all`). */
  wakeRouteWaiters(all = false): void {
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
          message: `'${c.name}': ${this.concurrentPerActionMax} calls already in flight from this node (call.concurrentPerActionMax)`, retryAfterMs: 10,
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
          out = this.server.serve(c.name, c.params, attemptMs, c.requestId, this.nodeId);
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
    // Safe to run again (it proved it never ran, or the action is idempotent)? Then the policy
    // decides: retryable, attempts left, a backoff ending before the deadline, the budget. A budget
    // refusal surfaces the last error itself, not a wrapper (see docs/services.md).
    const delayMs = c.idempotent || NOT_EXECUTED.has(err.code) ? this.retry.next(err, c.attempts, c.deadlineAtMs - endMs) : RETRY_STOP;
    if (delayMs < 0) throw this.fail(c, err, endMs);
    c.cs.retries.inc();
    (c.exclude ??= new Set(this.suspects)).add(ep.id);
    c.attempts++;
    if (delayMs >= 1) return sleep(delayMs).then(() => this.attempt(c, performance.now()));
    return this.attempt(c, endMs);
  }

  private fail(c: OutgoingCall, err: PowerplantError, nowMs: number): PowerplantError {
    this.metrics.callsTotal.labels(c.name, err.code).inc();
    c.cs.duration.observe(nowMs - c.startMs);
    return err;
  }

  private callState(name: string): ActionCallState {
    let cs = this.callStates.get(name);
    if (cs === undefined) {
      const m = this.metrics;
      cs = {
        bulkhead: new Bulkhead({ concurrentMax: this.concurrentPerActionMax, queueMax: 0, name: `call:${name}` }),
        ok: m.callsTotal.labels(name, 'ok'),
        duration: m.callDuration.labels(name),
        retries: m.retriesTotal.labels(name),
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
}
