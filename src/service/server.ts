/**
 * The serving side of a node: the actions it hosts and the events it subscribes to.
 *
 * SERVE PATH (`serve`): refuse while not running (PP_ERR_SHUTTING_DOWN, retryable) -> serve-side
 * bulkhead -> validate params against the compiled schema (PP_ERR_VALIDATION naming the field) ->
 * handler with a context carrying the remaining deadline -> any non-catalogue error becomes
 * PP_ERR_INTERNAL (logged with its stack; the caller sees no internals). Synchronous where the
 * handler is: a call from this node to a synchronous handler gets its value with no promise.
 * `serveRemote` is the same as the transport's request handler (always a promise).
 *
 * EVENTS: each subscription is a balanced subscription (`e.<topic>`, the group) and a broadcast
 * one (`b.<topic>`); a payload is validated, then handed to the handler on a later microtask with
 * a context; a failure is logged and counted, never sent anywhere (events are at most once).
 */
import { invariant, isPowerplantError, ppError, type PowerplantError } from '../errors/index.js';
import { Bulkhead } from '../resilience/index.js';
import type { CounterSeries } from '../observe/index.js';
import type { CallMeta, Unsubscribe } from '../transport/index.js';
import { CallContext, type ContextHost } from './context.js';
import type { NodeCore } from './core.js';
import type { NodeMetrics } from './status.js';
import type { AnyAction, AnyEvent, ServiceDef, TSchema } from './types.js';
import { compileValidator, type Validator } from './validate.js';

interface LocalAction {
  fullName: string;
  def: AnyAction;
  params: Validator;
  result: Validator | undefined;
  servedOk: CounterSeries;
}

export interface ServerOptions {
  /** Requests served at once; beyond, PP_ERR_BULKHEAD_FULL. */
  concurrentRequestsMax: number;
  validateResults: boolean;
  /** Deadline given to event handlers' contexts (the node's call timeout). */
  eventTimeoutMs: number;
}

export class Server {
  /** Requests being served now. */
  inFlight = 0;
  private readonly localActions = new Map<string, LocalAction>();
  private readonly bulkhead: Bulkhead;
  private readonly validateResults: boolean;
  private readonly eventTimeoutMs: number;
  private drained: (() => void) | undefined;

  constructor(
    private readonly core: NodeCore,
    /** Where handler contexts call out (the node's caller). */
    private readonly host: ContextHost,
    private readonly metrics: NodeMetrics,
    private readonly services: readonly ServiceDef<string, Record<string, AnyAction>>[],
    options: ServerOptions,
  ) {
    this.bulkhead = new Bulkhead({ concurrentMax: options.concurrentRequestsMax, queueMax: 0, name: `${core.nodeId}:serve` });
    this.validateResults = options.validateResults;
    this.eventTimeoutMs = options.eventTimeoutMs;
    for (const svc of services) {
      for (const [actionName, def] of Object.entries(svc.actions)) {
        const fullName = `${svc.name}.${actionName}`;
        this.localActions.set(fullName, {
          fullName, def,
          params: compileValidator(def.params, 'params'),
          result: def.result === undefined ? undefined : compileValidator(def.result, 'result'),
          servedOk: metrics.servedTotal.labels(fullName, 'ok'),
        });
      }
    }
  }

  /** Schemas of an action this node hosts; undefined otherwise. */
  actionSchemas(name: string): { params: TSchema; result: TSchema | undefined } | undefined {
    const la = this.localActions.get(name);
    return la === undefined ? undefined : { params: la.def.params, result: la.def.result };
  }

  /** The transport's request handler: always a promise. */
  readonly serveRemote = (name: string, params: unknown, timeoutMs: number, meta: CallMeta | undefined): Promise<unknown> => {
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
  serve(name: string, params: unknown, timeoutMs: number, requestId: string | undefined, callerNodeId: string | undefined): unknown {
    const state = this.core.state;
    if (state !== 'running') {
      throw ppError('PP_ERR_SHUTTING_DOWN', { message: `node '${this.core.nodeId}' is ${state}`, retryAfterMs: 0 });
    }
    const la = this.localActions.get(name);
    if (la === undefined) throw ppError('PP_ERR_NO_ENDPOINT', { message: `node '${this.core.nodeId}' does not offer '${name}'` });
    if (!(timeoutMs > 0)) throw ppError('PP_ERR_TIMEOUT', { message: `'${name}': deadline passed before the request arrived` });
    if (!this.bulkhead.tryAcquire()) {
      this.metrics.servedTotal.labels(name, 'PP_ERR_BULKHEAD_FULL').inc();
      throw ppError('PP_ERR_BULKHEAD_FULL', { message: `node '${this.core.nodeId}' serves ${this.bulkhead.concurrentMax} requests already (concurrentRequestsMax)`, retryAfterMs: 10 });
    }
    this.inFlight++;
    let out: unknown;
    try {
      const invalid = la.params.check(params);
      if (invalid !== undefined) throw invalid;
      const ctx = new CallContext(this.host, name, performance.now() + timeoutMs, requestId, callerNodeId);
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
    this.metrics.servedTotal.labels(la.fullName, err.code).inc();
    this.release();
    return err;
  }

  private release(): void {
    this.bulkhead.release();
    this.inFlight--;
    invariant(this.inFlight >= 0, 'in-flight count non-negative');
    if (this.inFlight === 0) this.drained?.();
  }

  private toCatalogue(e: unknown, name: string, requestId: string | undefined): PowerplantError {
    if (isPowerplantError(e)) return e;
    // A handler bug: log the details here, send the caller only a code.
    this.core.logger.error({ err: e, action: name, requestId }, 'action handler threw a non-catalogue error');
    return ppError('PP_ERR_INTERNAL', { message: `'${name}' failed` });
  }

  /**
   * Waits until no request is in flight, at most `timeoutMs` (the node is draining: nothing new is
   * admitted). Logs what was abandoned when the wait ran out.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.drained = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    this.drained = undefined;
    if (this.inFlight > 0) this.core.logger.warn({ inFlight: this.inFlight, drainTimeoutMs: timeoutMs }, 'drain timed out; abandoning in-flight requests');
  }

  /** Subscribes every service's events on the transport; returns the ways to unsubscribe. */
  subscribeEvents(): Unsubscribe[] {
    const out: Unsubscribe[] = [];
    for (const svc of this.services) {
      for (const [topic, def] of Object.entries(svc.events)) this.subscribeEvent(svc.name, topic, def, out);
    }
    return out;
  }

  private subscribeEvent(service: string, topic: string, def: AnyEvent, out: Unsubscribe[]): void {
    const validator = def.params === undefined ? undefined : compileValidator(def.params, 'payload');
    const { eventsDropped } = this.metrics;
    const deliver = (payload: unknown): void => {
      if (this.core.state !== 'running') {
        eventsDropped.labels(topic, 'not-running').inc();
        return;
      }
      const invalid = validator?.check(payload);
      if (invalid !== undefined) {
        eventsDropped.labels(topic, 'invalid').inc();
        this.core.logger.warn({ topic, service, field: invalid.field }, 'event dropped: invalid payload');
        return;
      }
      const ctx = new CallContext(this.host, topic, performance.now() + this.eventTimeoutMs, undefined, undefined);
      Promise.resolve()
        .then(() => def.handler(ctx, payload))
        .catch((err: unknown) => {
          eventsDropped.labels(topic, 'handler-error').inc();
          this.core.logger.error({ err, topic, service }, 'event handler failed');
        });
    };
    const t = this.core.transport;
    out.push(
      t.subscribe(`e.${topic}`, deliver, def.group ?? service),
      t.subscribe(`b.${topic}`, deliver),
    );
  }
}
