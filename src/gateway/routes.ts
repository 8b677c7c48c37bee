/**
 * What a gateway route is, in two forms.
 *
 * TYPED (`route({...})`, or `routeFor<Principal>()` when the route needs the caller): the action is
 * looked up in `ServiceRegistry` exactly as `ctx.call` looks it up (service/types.ts), so a
 * misspelt service or action is a tsc error, and the params mapper must return that action's
 * params type (`ParamsOf<N>`): a missing, misnamed or wrongly typed param is a tsc error too. One
 * generic per route (`route` is called once per route, like `action()`), never a union over the
 * registry: the lookup stays lazy, so the routes of a module do not make its services' types
 * circular.
 *
 * DYNAMIC (a plain `GatewayRoute` object): any `service.action` string and any params, checked only
 * at run time (by the action's schema on the serving node). For routes that are data, not code:
 * `powerplant start <module>` loads a module's routes at run time, a proxy forwards names it reads
 * from a config file.
 *
 * The mapper sees the request and the principal (see GatewayOptions.auth): with `auth: 'required'`
 * the principal is there (a request without one got 401 before the mapper ran), with 'optional' it
 * may be undefined, and a route without `auth` never resolves one (the hook is not even called).
 */
import type { TSchema } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { CheckActionName, ParamsOf } from '../service/index.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Whether a route needs the caller: 'required' (401 without a principal) or 'optional'. */
export type RouteAuth = 'required' | 'optional';

/** A route's own token bucket, per client (see GatewayOptions.rateLimit for the key and bounds). */
export interface RouteRateLimit {
  /** Tokens per second each client gets on this route (> 0). */
  ratePerSec: number;
  /** Largest burst a client may send at once (>= 1). */
  burst: number;
}

/** The parts of a route that do not depend on its action's type. */
export interface RouteBase {
  method: HttpMethod;
  /** Fastify path syntax: `/products/:id`. */
  url: string;
  /** Call timeout for this route, ms (default: the action's / node's). */
  timeoutMs?: number;
  /** Success status. Default 200. */
  status?: number;
  /**
   * Schema of a success body: serialized by Fastify with fast-json-stringify instead of
   * JSON.stringify (properties the schema does not declare are left out, as in any Fastify
   * response schema). Default: the action's `result` schema when this node hosts the action and
   * the schema is plain JSON (see isPlainJsonSchema); false: always JSON.stringify.
   */
  resultSchema?: TSchema | false;
  /**
   * This route's rate limit: overrides GatewayOptions.rateLimit's numbers (and turns limiting on
   * for this route even when the gateway has none); false: never limited. Default: the gateway's.
   */
  rateLimit?: RouteRateLimit | false;
  /**
   * The `Idempotency-Key` header (see gateway/idempotency.ts): 'optional' (honoured when sent),
   * 'required' (400 without one), false (ignored). Default: 'optional' for POST, PUT, PATCH and
   * DELETE when the gateway has `idempotency`, false for GET and on a gateway without it.
   */
  idempotency?: 'optional' | 'required' | false;
}

/** A route in its dynamic form: any action name, params unchecked until the action validates them. */
export interface GatewayRoute<P = unknown> extends RouteBase {
  /** `service.action` */
  action: string;
  /** Default: none (the auth hook is not called; the mapper gets undefined). */
  auth?: RouteAuth;
  /**
   * Whether the principal may use this route; false answers 403 PP_ERR_FORBIDDEN before any
   * service is called. Runs only when there is a principal (with `auth: 'optional'` an anonymous
   * caller is not asked).
   */
  authorize?: (principal: P) => boolean;
  /**
   * Builds the action's params from the request (and the principal, when the route has `auth`).
   * Default: path params, over query-string, over the JSON body (objects only):
   * `{ ...body, ...query, ...params }`. Values from the path and query are strings; convert here
   * when the schema wants numbers. A non-catalogue error thrown here is a 400 naming `params`.
   */
  params?: (req: FastifyRequest, principal: P | undefined) => unknown;
}

interface TypedBase<N extends string> extends RouteBase {
  /** A registered `service.action` (ServiceRegistry); anything else is a tsc error. */
  action: N & CheckActionName<N>;
}

/**
 * `R` when it has no keys `T` lacks; otherwise those keys become `never`, so the mapper's object
 * fails to type-check naming them. (An object literal RETURNED from a callback is not checked for
 * excess properties the way an argument is: the mapper's result type is inferred, then held to this.)
 */
export type NoExtraKeys<R, T> = R & { [K in Exclude<keyof R, keyof T>]: never };

/** The typed form: the mapper's principal argument follows `auth`, its result is the action's params. */
export type TypedRoute<N extends string, P, R = ParamsOf<N>> = TypedBase<N> & (
  | { auth: 'required'; authorize?: (principal: P) => boolean; params?: (req: FastifyRequest, principal: P) => NoExtraKeys<R, ParamsOf<N>> }
  | { auth: 'optional'; authorize?: (principal: P) => boolean; params?: (req: FastifyRequest, principal: P | undefined) => NoExtraKeys<R, ParamsOf<N>> }
  | { auth?: undefined; authorize?: undefined; params?: (req: FastifyRequest) => NoExtraKeys<R, ParamsOf<N>> }
);

/**
 * A type-checked route whose principal type is `P`: `const route = routeFor<Session>()`, then
 * `route({ method: 'GET', url: '/me', action: 'users.get', auth: 'required', params: (_req, s) => ({ userId: s.uid }) })`.
 * (Curried because TypeScript cannot infer the action name while the principal type is given.)
 */
export function routeFor<P>(): <const N extends string, R extends ParamsOf<N> = ParamsOf<N>>(r: TypedRoute<N, P, R>) => GatewayRoute<P> {
  return (r) => r as GatewayRoute<P>;
}

/** A type-checked route (see the file header); for routes with `auth`, `routeFor<P>()` types the principal. */
export const route: <const N extends string, R extends ParamsOf<N> = ParamsOf<N>>(r: TypedRoute<N, unknown, R>) => GatewayRoute = routeFor<unknown>();
