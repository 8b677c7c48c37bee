/**
 * `defineService`, `action`, `event`, `consumer`: build service definitions. Checks names and options when the
 * definition is created (a typo fails at import time, not on the first call).
 *
 * Why `action({...})` around each action: TypeScript cannot infer a separate generic (params and
 * result schema) per entry of an object literal AND use it to type that entry's handler; the
 * helper is a generic function per action, which it can. Without it `params` in the handler would
 * be `unknown`.
 */
import type { TSchema, TUnknown } from '@sinclair/typebox';
import { BALANCER_NAMES } from '../balance/index.js';
import { requireArg } from '../errors/index.js';
import { isToken, isTopic } from '../transport/index.js';
import type { ActionDef, AnyAction, AnyConsumer, AnyEvent, ConsumerDef, Context, EventDef, ServiceDef } from './types.js';

/** Service and action names: a token each; the full action name is `service.action`. */
const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/**
 * The queue's rule for topic and group names (queue/queue.ts TOPIC_RE, queue/consumer.ts GROUP_RE),
 * checked here too so a bad consumer declaration fails at import time; queue/ does not export its
 * checks, and the queue checks again (with the rest of the subscribe options) when the node starts.
 */
const QUEUE_NAME_RE = /^[A-Za-z0-9_-]{1,100}$/;

export function action<P extends TSchema, R extends TSchema = TUnknown>(def: ActionDef<P, R>): ActionDef<P, R> {
  return def;
}

export function event<P extends TSchema = TUnknown>(def: EventDef<P>): EventDef<P> {
  return def;
}

/** A queue consumer (see ConsumerDef); the helper lets `T`, the message type, be named once. */
export function consumer<T = unknown>(def: ConsumerDef<T>): ConsumerDef<T> {
  return def;
}

export interface ServiceInput<N extends string, A extends Record<string, AnyAction>, E extends Record<string, AnyEvent> = Record<string, AnyEvent>> {
  name: N;
  /** Integer >= 1; announced with the service (informational for now: calls do not pick by version). */
  version?: number;
  actions?: A;
  /** Subscriptions, by topic; `event({...})` around each so its payload type is inferred. */
  events?: E;
  /** Queue consumers, by topic; `consumer({...})` around each. Subscribed while the node runs. */
  consumers?: Record<string, AnyConsumer>;
  started?: (ctx: Context) => void | Promise<void>;
  stopped?: (ctx: Context) => void | Promise<void>;
}

export function defineService<const N extends string, A extends Record<string, AnyAction> = Record<never, AnyAction>,
  E extends Record<string, AnyEvent> = Record<never, AnyEvent>>(
  input: ServiceInput<N, A, E>,
): ServiceDef<N, A, E> {
  requireArg(typeof input.name === 'string' && NAME_RE.test(input.name), 'name', 'must be a letter then up to 63 letters, digits, "_" or "-" (no dots)');
  const version = input.version ?? 1;
  requireArg(Number.isInteger(version) && version >= 1, 'version', 'must be an integer >= 1');
  const actions = (input.actions ?? {}) as A;
  for (const [name, def] of Object.entries(actions)) {
    const field = `actions.${name}`;
    requireArg(NAME_RE.test(name), field, 'action names are a letter then up to 63 letters, digits, "_" or "-"');
    requireArg(typeof def.handler === 'function', `${field}.handler`, 'must be a function');
    requireArg(typeof def.params === 'object' && def.params !== null, `${field}.params`, 'must be a TypeBox / JSON Schema object');
    requireArg(def.timeoutMs === undefined || (def.timeoutMs > 0 && def.timeoutMs <= 2_147_483_647), `${field}.timeoutMs`, 'must be in (0, 2147483647]');
    requireArg(def.balancer === undefined || BALANCER_NAMES.includes(def.balancer), `${field}.balancer`, `must be one of ${BALANCER_NAMES.join(', ')}`);
    requireArg(def.keyParam === undefined || (typeof def.keyParam === 'string' && def.keyParam.length > 0), `${field}.keyParam`, 'must be a param name');
  }
  const events = (input.events ?? {}) as E;
  for (const [topic, def] of Object.entries(events)) {
    const field = `events.${topic}`;
    requireArg(isTopic(topic) && !topic.startsWith('$'), field, 'topics are dot-separated tokens and may not start with "$" (reserved)');
    requireArg(typeof def.handler === 'function', `${field}.handler`, 'must be a function');
    requireArg(def.group === undefined || isToken(def.group), `${field}.group`, 'must be 1-128 letters, digits, "_" or "-"');
  }
  const consumers = input.consumers ?? {};
  requireArg(typeof consumers === 'object' && consumers !== null, 'consumers', 'must be an object of topic -> consumer({...})');
  for (const [topic, def] of Object.entries(consumers)) {
    const field = `consumers.${topic}`;
    requireArg(QUEUE_NAME_RE.test(topic), field, 'queue topics are 1-100 letters, digits, "_" or "-"');
    requireArg(typeof def === 'object' && def !== null, field, 'must be consumer({ queue, handler, ... })');
    requireArg(typeof def.handler === 'function', `${field}.handler`, 'must be a function');
    requireArg(typeof def.queue === 'object' && def.queue !== null && typeof def.queue.subscribe === 'function', `${field}.queue`, 'must be an open Queue');
    requireArg(def.group === undefined || (typeof def.group === 'string' && QUEUE_NAME_RE.test(def.group)), `${field}.group`, 'must be 1-100 letters, digits, "_" or "-"');
  }
  return Object.freeze({ name: input.name, version, actions, events, consumers, started: input.started, stopped: input.stopped });
}
