/**
 * The types of the service API: definitions (actions and events with JSON Schema params via
 * TypeBox), the call context, and the type-level registry that checks `ctx.call` at compile time.
 *
 * HOW CALLS ARE TYPE-CHECKED. An application registers its services once, by augmenting
 * `ServiceRegistry` with one property per service, keyed by the service's name:
 *
 *     declare module 'powerplant/service' {    // not 'powerplant': an augmentation does not reach
 *                                              // an interface the root only re-exports
 *       interface ServiceRegistry { catalog: typeof catalog; orders: typeof orders }
 *     }
 *
 * `ctx.call('catalog.get', p)` then splits the name at the dot, looks up `ServiceRegistry['catalog']`
 * and checks `p` against `Static<params>` of action `get`; an unknown service or action makes the
 * name argument an error object type, so tsc rejects it. The lookup is LAZY (by key, never a union
 * of every action name): a service whose handlers call other services does not make its own type
 * depend on itself, which a union over the whole registry would (TS2502, circular initializer).
 * The one case that still is circular: a handler calling an action of its OWN service and returning
 * the result unannotated; annotate that handler's return type.
 */
import type { Static, TSchema, TUnknown } from '@sinclair/typebox';
import type { BalancerName } from '../balance/index.js';
import type { Deadline } from '../resilience/index.js';
import type { Logger } from '../observe/index.js';
import type { Delivery, Queue, SubscribeOptions } from '../queue/index.js';

/** Augment this interface (see above) to type-check calls. Keys are service names. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface ServiceRegistry {}

/** Options of one call. */
export interface CallOptions {
  /** Total budget of the call across retries, ms. Default: the action's, else the node's (10 s). Capped by the parent's deadline. */
  timeoutMs?: number;
  /** Overrides the action's `idempotent` flag for this call (whether timeouts may be retried). */
  idempotent?: boolean;
  /** Sticky routing key (consistent hash); overrides the action's `keyParam`. */
  key?: string;
  /** Correlation id; inherited from the parent context when called from a handler. */
  requestId?: string;
}

/** What an action handler (and an event handler, and the lifecycle hooks) gets. */
export interface Context {
  readonly nodeId: string;
  /** The action (`svc.act`), event topic or queue topic being handled; '' in lifecycle hooks. */
  readonly name: string;
  readonly requestId: string | undefined;
  readonly callerNodeId: string | undefined;
  /** The absolute deadline of this request; nested calls never get more than what is left. */
  readonly deadline: Deadline;
  readonly logger: Logger;
  /** A type-checked call: `name` must be a registered `service.action`, `params` its params type. */
  call<N extends string>(name: N & CheckActionName<N>, params: ParamsOf<N>, opts?: CallOptions): Promise<ResultOf<N>>;
  /** An unchecked call by name (gateways, tools, services not in the registry). */
  callDynamic(name: string, params: unknown, opts?: CallOptions): Promise<unknown>;
  /**
   * Balanced event: one instance of each subscribing service (group) receives it. Type-checked:
   * `topic` must be an event some service in ServiceRegistry subscribes to, `payload` must fit the
   * params of every such subscription (each validates on receipt and drops what does not fit).
   */
  emit<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void;
  /** Broadcast event: every instance of every subscribing service receives it. Type-checked like emit. */
  broadcast<T extends string>(topic: T & CheckTopic<T>, payload: PayloadOf<T>): void;
  /** Unchecked emit (topics with subscribers outside the registry). */
  emitDynamic(topic: string, payload: unknown): void;
  /** Unchecked broadcast. */
  broadcastDynamic(topic: string, payload: unknown): void;
}

export interface ActionDef<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  /** JSON Schema (TypeBox) of the params: validated on the serving node before the handler runs. */
  params: P;
  /** JSON Schema of the result: gives the caller its type; validated only with `validateResults`. */
  result?: R;
  /**
   * Safe to run twice. Only idempotent calls are retried after a timeout or an instance dying
   * mid-call (the first attempt may have run). Errors that prove the call did not run (breaker
   * open, bulkhead full, node draining) are retried for every action. Default false.
   */
  idempotent?: boolean;
  /** Default total timeout for calls to this action, ms. */
  timeoutMs?: number;
  /** Balancer for this action on every caller. Default the node's (p2c). */
  balancer?: BalancerName;
  /** Sticky routing: the param whose value is the consistent-hash key (implies balancer 'consistent-hash'). */
  keyParam?: string;
  /** Method syntax on purpose: bivariant params let `ActionDef<TObject<…>>` sit in a record of actions. */
  handler(ctx: Context, params: Static<P>): Promise<Static<R>> | Static<R>;
}

export interface EventDef<P extends TSchema = TSchema> {
  /** Payload schema; an invalid payload is dropped and counted, the handler never sees it. */
  params?: P;
  /** Balanced-event group; default the service name (one instance of the service gets each emit). */
  group?: string;
  handler(ctx: Context, payload: Static<P>): void | Promise<void>;
}

/**
 * A queue consumer declared on a service (`consumers: { <topic>: consumer({...}) }`): the node
 * joins `group` on the topic when it starts and leaves when it stops (see docs/services.md). The
 * other fields are the queue's subscribe options (concurrency, ackWaitMs, deliveriesMax, backoff,
 * deadLetter, from, readAheadMax, heartbeatMs, sessionTimeoutMs, onError), with their defaults.
 */
export interface ConsumerDef<T = unknown> extends Omit<SubscribeOptions<T>, 'group' | 'handler'> {
  /** The queue the topic lives on: an open `Queue` the application owns (the node never closes it). */
  readonly queue: Pick<Queue, 'subscribe'>;
  /** Consumer group. Default the service name: the service's instances share the topic's partitions. */
  readonly group?: string;
  /**
   * Resolves = ack; throws / rejects = failure (redelivered with backoff, then dead-lettered), as
   * the queue's own handler. `ctx` is a context like an event handler's (name = the topic).
   * Method syntax on purpose: bivariant, so a `ConsumerDef<Message>` sits in a record of consumers.
   */
  handler(ctx: Context, delivery: Delivery<T>): unknown;
}

export type AnyAction = ActionDef<TSchema, TSchema>;
export type AnyEvent = EventDef<TSchema>;
export type AnyConsumer = ConsumerDef<unknown>;

export interface ServiceDef<N extends string = string, A extends Record<string, AnyAction> = Record<string, AnyAction>,
  E extends Record<string, AnyEvent> = Record<string, AnyEvent>> {
  readonly name: N;
  readonly version: number;
  readonly actions: A;
  /** Subscriptions: topic -> handler (the payload type of `emit(topic)` comes from these). */
  readonly events: Readonly<E>;
  /** Queue consumers: topic -> consumer, subscribed while the node runs. */
  readonly consumers: Readonly<Record<string, AnyConsumer>>;
  /** Runs when the node starts, before it serves requests and before its consumers subscribe. */
  readonly started: ((ctx: Context) => void | Promise<void>) | undefined;
  /** Runs when the node stops, after in-flight calls drained and its consumers closed. */
  readonly stopped: ((ctx: Context) => void | Promise<void>) | undefined;
}

// ---- type-level registry lookups ----------------------------------------------------------------

interface ActionSchemas {
  params: TSchema;
  result?: TSchema;
}

type ServiceAt<S> = S extends keyof ServiceRegistry
  ? ServiceRegistry[S] extends { actions: Record<string, ActionSchemas> } ? ServiceRegistry[S] : never
  : never;

/** The action definition a `service.action` name refers to, or never. */
export type ActionAt<N> = N extends `${infer S}.${infer A}`
  ? S extends keyof ServiceRegistry
    ? A extends keyof ServiceAt<S>['actions'] ? ServiceAt<S>['actions'][A] : never
    : never
  : never;

export type ParamsOf<N> = ActionAt<N> extends { params: infer P extends TSchema } ? Static<P> : never;
export type ResultOf<N> = ActionAt<N> extends { result?: infer R } ? (R extends TSchema ? Static<R> : unknown) : never;

/** `N` itself when it names a registered action; otherwise an object type no string matches. */
export type CheckActionName<N> = [ActionAt<N>] extends [never] ? { 'unknown action: not in ServiceRegistry': N } : N;

// Events are declared by their SUBSCRIBERS, under any service: a topic is looked up in every
// registered service (a union over the registry). Emitting does not feed a handler's return type,
// so this does not make a service's type depend on itself the way an action lookup would.
type EventsOf<S> = S extends { readonly events: infer E } ? E : never;

/** The subscriptions (EventDef) to topic `T` across ServiceRegistry, as a union; never when none. */
export type EventAt<T> = {
  [S in keyof ServiceRegistry]: T extends keyof EventsOf<ServiceRegistry[S]> ? EventsOf<ServiceRegistry[S]>[T] : never
}[keyof ServiceRegistry];

type PayloadOfEvent<E> = E extends { params?: infer P } ? ([P] extends [TSchema] ? Static<P> : unknown) : unknown;
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** What `emit(T, payload)` accepts: a payload every subscription to `T` accepts. */
export type PayloadOf<T> = [EventAt<T>] extends [never] ? never : UnionToIntersection<PayloadOfEvent<EventAt<T>>>;

/** `T` itself when some registered service subscribes to it; otherwise an object type no string matches. */
export type CheckTopic<T> = [EventAt<T>] extends [never] ? { 'unknown event: no service in ServiceRegistry subscribes to it': T } : T;

export type { Static, TSchema, TUnknown };
