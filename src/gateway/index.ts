/**
 * HTTP gateway on Fastify: routes map to actions (`GET /products/:id` -> `catalog.get`).
 *
 * Routes come in two forms (routes.ts): typed, `route({...})` / `routeFor<Principal>()`, whose
 * action name and params mapper tsc checks against ServiceRegistry like `ctx.call`; and dynamic,
 * plain objects, for routes loaded at run time.
 *
 * Authentication is a hook (`auth: (req) => principal | undefined`), run only for routes that
 * declare `auth: 'required' | 'optional'`; a required route without a principal is 401, a route's
 * `authorize(principal)` saying no is 403, both before any service is called; the params mapper
 * gets the principal (`params(req, principal)`).
 *
 * Status mapping comes from the error catalogue (`PowerplantError.status`), so the gateway has no
 * table of its own: PP_ERR_VALIDATION -> 400 with `error.field` naming the bad field; NOT_FOUND ->
 * 404 (also for unknown routes); TIMEOUT -> 504; CIRCUIT_OPEN / NO_ENDPOINT / BULKHEAD_FULL /
 * SHUTTING_DOWN / UNAVAILABLE -> 503 with `Retry-After` (seconds, from the error's retryAfterMs,
 * at least 1); RATE_LIMITED -> 429 with Retry-After. A non-catalogue error is a bug: 500
 * PP_ERR_INTERNAL. Every 5xx body says only the catalogue's message for its code (what the error
 * itself says may quote a driver, a path, a URL); the detail is logged once. A 4xx keeps its
 * message: ours, naming the field.
 *
 * Every response carries `x-request-id` (the client's, when it sent a sane one, else generated),
 * and the id travels with the call into every service it reaches. Requests Node itself would
 * answer with an empty body (an unknown `Expect`, HTTP/1.1 without `Host`) get the catalogue's
 * 400 body too (edge.ts). `/health` (+ `/health/live`,
 * `/health/ready`), `/metrics` (Prometheus text: the node's calls, latency histograms per action,
 * breaker states, registry size, plus HTTP requests per route) and `/status` (JSON: nodes, services,
 * endpoints, plus sections the application adds, e.g. the store's partitions) are built in.
 *
 * Logs: pino, one JSON line per 5xx (error) and per 4xx (debug); access logs are opt-in
 * (`accessLog: true`) because a line per request costs ~10% of the gateway's throughput.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Kind } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ERRORS, isPowerplantError, ppError, requireArg, type PowerplantError } from '../errors/index.js';
import { PROMETHEUS_CONTENT_TYPE, type Counter, type CounterSeries, type Logger } from '../observe/index.js';
import type { Clock } from '../resilience/index.js';
import type { ServiceNode } from '../service/index.js';
import { renamedOptions } from '../util/index.js';
import { edgeServerFactory, type EdgeRefusal } from './edge.js';
import { checkIdempotencyOptions, RouteKeys, type GatewayIdempotencyOptions } from './idempotency.js';
import { checkLimit, ClientBuckets } from './rate-limit.js';
import { redactLocations } from './redact.js';
import type { GatewayRoute, RouteRateLimit } from './routes.js';

export { route, routeFor } from './routes.js';
export { redactLocations, redactLocation } from './redact.js';
export { REPLAYED_HEADER, type GatewayIdempotencyOptions, type RouteIdempotency } from './idempotency.js';
export type { GatewayRoute, TypedRoute, RouteBase, RouteAuth, RouteRateLimit, HttpMethod, NoExtraKeys } from './routes.js';

/** Resolves the caller of a request (see GatewayOptions.auth). */
export type AuthHook<P> = (req: FastifyRequest) => P | undefined | Promise<P | undefined>;

export interface GatewayOptions<P = unknown> {
  /** Typed (`route()`, `routeFor<P>()`) or dynamic (plain objects): see routes.ts. */
  routes: readonly GatewayRoute<P>[];
  /**
   * Authentication at the edge: resolves the principal (the caller: a session, a user, an API
   * client) of a request to a route that declares `auth`. Return undefined for a request without
   * credentials; throw a catalogue error (PP_ERR_UNAUTHORIZED) for bad ones, which is answered as
   * it is. Called once per such request, before the params mapper and before any service; never
   * for a route without `auth`. May return a promise (a session store); a synchronous result keeps
   * the request synchronous.
   */
  auth?: AuthHook<P>;
  /**
   * Rate limiting: a token bucket per client per route (resilience's TokenBucket), 429
   * PP_ERR_RATE_LIMITED with Retry-After (the bucket's time to its next token) beyond it. Off by
   * default; a route's own `rateLimit` overrides the numbers or turns it off for that route.
   */
  rateLimit?: RateLimitOptions<P>;
  /**
   * Idempotency keys (the `Idempotency-Key` header, gateway/idempotency.ts): `{ keys: await
   * openIdempotency(store) }`. Off by default; when set, POST / PUT / PATCH / DELETE routes honour
   * the header unless a route says `idempotency: false` (a route may also make it 'required').
   */
  idempotency?: GatewayIdempotencyOptions<P>;
  /** Default: the node's logger. */
  logger?: Logger;
  /** One JSON line per request (method, url, status, ms, request id). Default false. */
  accessLog?: boolean;
  /** Header read for and written with the request id. Default 'x-request-id'. */
  requestIdHeader?: string;
  /** Largest request body, bytes (413 beyond). Default 1 MiB. */
  bodyBytesMax?: number;
  /** Default '/metrics'; false to disable. */
  metricsPath?: string | false;
  /** Default '/health'; false to disable. */
  healthPath?: string | false;
  /**
   * Default '/status'; false to disable. Answers `node.status()` (this node, the nodes and services
   * it knows, endpoints with in-flight calls and breaker states) merged with `status()`'s sections,
   * for `powerplant status`. It shows the topology: see `statusAccess` for who sees what.
   */
  statusPath?: string | false;
  /** Extra sections of the status body (e.g. `{ partitions: store.describe() }`); errors answer 503. */
  status?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /**
   * Who may read `/status`:
   * - 'redacted' (default): anyone, with every location in it (URLs, filesystem paths: see
   *   gateway/redact.ts) redacted, except for a caller `admin` accepts, who gets them whole;
   * - 'admin': admins only (401 without credentials, 403 for a principal `admin` refuses);
   * - 'public': anyone, whole (for a status port no client can reach).
   */
  statusAccess?: 'redacted' | 'admin' | 'public';
  /** Who may read `/metrics`: 'public' (default: Prometheus scrapers rarely send credentials) or 'admin'. */
  metricsAccess?: 'public' | 'admin';
  /**
   * Whether a principal (from `auth`, run on /status and /metrics when this is set) is an admin, for
   * `statusAccess` / `metricsAccess`. Needed by 'admin' access; without it 'redacted' redacts for all.
   */
  admin?: (principal: P) => boolean;
  /** @deprecated use bodyBytesMax */
  bodyLimitBytes?: number;
}

export interface RateLimitOptions<P = unknown> extends RouteRateLimit {
  /**
   * The client a request counts against. Default: the principal when the route resolved one and
   * it is a string, else the remote address (`req.ip`: the socket's peer, or what Fastify's
   * trustProxy makes of X-Forwarded-For). With an object principal, pass e.g.
   * `(req, p) => p?.userId ?? req.ip`.
   */
  key?: (req: FastifyRequest, principal: P | undefined) => string;
  /**
   * Most client buckets kept per route (the least recently seen is evicted beyond; see
   * gateway/rate-limit.ts for what that means for fairness). Default 10,000.
   */
  clientsMax?: number;
  /** Time source of the buckets (tests drive it by hand). Default monotonic. */
  clock?: Clock;
}

/** Longest path parameter (Fastify's default). */
const PARAM_CHARS_MAX = 100;

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export interface Gateway {
  readonly app: FastifyInstance;
  /** Listens; returns the address (`http://127.0.0.1:port`). Port 0 picks a free one. */
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

function retryAfterSeconds(err: PowerplantError): number {
  return Math.max(1, Math.ceil((err.retryAfterMs ?? 1_000) / 1_000));
}

/**
 * TypeBox kinds fast-json-stringify serializes exactly as JSON.stringify would for a value that
 * matches the schema. Anything else (unions: FJS would validate each branch per response; Date,
 * Uint8Array, bigint; refs; custom kinds) keeps JSON.stringify.
 */
const PLAIN_KINDS: ReadonlySet<string> = new Set(['Object', 'Array', 'String', 'Number', 'Integer', 'Boolean', 'Null', 'Literal']);

export function isPlainJsonSchema(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false;
  const s = schema as Record<string | symbol, unknown>;
  const kind = s[Kind];
  if (typeof kind !== 'string' || !PLAIN_KINDS.has(kind) || '$ref' in s || 'patternProperties' in s) return false;
  if (kind === 'Object') {
    if (typeof s.additionalProperties === 'object') return false;
    return Object.values((s.properties ?? {}) as Record<string, unknown>).every(isPlainJsonSchema);
  }
  if (kind === 'Array') return !Array.isArray(s.items) && isPlainJsonSchema(s.items);
  return true;
}

export function createGateway<P = unknown>(node: ServiceNode, given: GatewayOptions<P>): Gateway {
  const options = renamedOptions(given, { bodyBytesMax: 'bodyLimitBytes' });
  const logger = options.logger ?? node.logger;
  const idHeader = (options.requestIdHeader ?? 'x-request-id').toLowerCase();
  const accessLog = options.accessLog ?? false;
  let idCounter = 0;
  const idPrefix = `${node.nodeId}-${Date.now().toString(36)}-`;
  // Scan rawHeaders rather than read `raw.headers`: Node builds that object lazily, and touching
  // it on every request cost ~1 us in the gateway profile.
  const requestIdOf = (rawHeaders: readonly string[]): string => {
    const given = rawHeader(rawHeaders, idHeader);
    if (given !== undefined && REQUEST_ID_RE.test(given)) return given;
    idCounter = idCounter >= Number.MAX_SAFE_INTEGER ? 0 : idCounter + 1;
    return idPrefix + idCounter.toString(36);
  };

  // What Node would answer by itself with an empty body (see edge.ts), in the catalogue's body.
  const refuse = (raw: IncomingMessage, res: ServerResponse, why: EdgeRefusal): void => {
    const id = requestIdOf(raw.rawHeaders);
    const err = why === 'host'
      ? ppError('PP_ERR_VALIDATION', { field: 'headers.host', message: 'headers.host: an HTTP/1.1 request needs a Host header' })
      : ppError('PP_ERR_VALIDATION', { field: 'headers.expect', message: 'headers.expect: the only expectation served is 100-continue' });
    count('(framework)', err.status);
    logger.debug({ reqId: id, route: '(framework)', code: err.code, field: err.field }, 'request rejected');
    const body = JSON.stringify(errorBody(err, id));
    res.writeHead(err.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), [idHeader]: id, connection: 'close' });
    res.end(body);
  };

  const app = Fastify({
    bodyLimit: options.bodyBytesMax ?? 1024 * 1024,
    genReqId: (raw) => requestIdOf(raw.rawHeaders),
    serverFactory: edgeServerFactory(refuse),
    // Our own errors are formatted below; Fastify's default 404/500 bodies would not name codes.
    return503OnClosing: true,
    // Errors raised before routing (a path Fastify cannot decode, a path parameter over its
    // length limit) get the same JSON error body as everything else.
    frameworkErrors: (e, req, reply) => {
      const err = e.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? ppError('PP_ERR_VALIDATION', { field: 'params', message: `params: a path parameter is longer than ${PARAM_CHARS_MAX} characters` })
        : e.code === 'FST_ERR_BAD_URL'
          ? ppError('PP_ERR_VALIDATION', { field: 'url', message: 'url: the path is not valid percent-encoding' })
          : e;
      const r = reply as unknown as FastifyReply;
      void r.send(sendError(req as unknown as FastifyRequest, r, err, '(framework)'));
    },
    routerOptions: { maxParamLength: PARAM_CHARS_MAX },
  });

  // Per-route latency is the node's pp_call_duration_ms{action} (one observation per call): a
  // second, HTTP-level histogram measured the same interval at the cost of two clock reads and an
  // observation per request.
  const httpRequests = node.metrics.counter('pp_http_requests_total', 'HTTP requests through the gateway, by route and status.', ['route', 'status']);
  const counters = new Map<string, CounterSeries>();
  const count = (route: string, status: number): void => {
    const key = `${status} ${route}`;
    let c = counters.get(key);
    if (c === undefined) {
      c = httpRequests.labels(route, String(status));
      counters.set(key, c);
    }
    c.inc();
  };

  // One JSON line per 5xx, at error: the detail (the error with its message, cause chain and stack:
  // a driver's or an engine's text lives there) under `err`, once; pino's own `msg` says what
  // happened. The client gets the catalogue's message for the code: a 5xx message is never ours
  // to vouch for (it may quote a driver, a path, a URL). A 4xx message is ours (it names the field
  // and what was wrong with it) and goes to the client as it is.
  const sendError = (req: FastifyRequest, reply: FastifyReply, e: unknown, route: string): object => {
    const err = isPowerplantError(e) ? e : ppError('PP_ERR_INTERNAL', { cause: e });
    count(route, err.status);
    reply.code(err.status);
    reply.header(idHeader, req.id);
    if (err.status === 503 || err.status === 429) reply.header('retry-after', retryAfterSeconds(err));
    if (err.status >= 500) {
      logger.error({ reqId: req.id, route, code: err.code, status: err.status, err: e }, 'request failed');
      return {
        error: {
          code: err.code, message: ERRORS[err.code].message, requestId: req.id,
          ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
        },
      };
    }
    logger.debug({ reqId: req.id, route, code: err.code, field: err.field }, 'request rejected');
    return errorBody(err, req.id);
  };

  const authHook = options.auth;
  const rl = options.rateLimit;
  if (rl !== undefined) {
    checkLimit(rl.ratePerSec, rl.burst, 'rateLimit');
    requireArg(rl.clientsMax === undefined || (Number.isInteger(rl.clientsMax) && rl.clientsMax >= 1), 'rateLimit.clientsMax', 'must be an integer >= 1');
  }
  const idem = options.idempotency;
  if (idem !== undefined) checkIdempotencyOptions(idem as GatewayIdempotencyOptions<never>);
  const clientsMax = rl?.clientsMax ?? DEFAULT_CLIENTS_MAX;
  const clientKey = rl?.key ?? defaultClientKey;
  // Registered with the first limited route, so a gateway without limits shows no empty families.
  let limitCounters: { limited: Counter; evicted: Counter } | undefined;
  const limitMetrics = (): { limited: Counter; evicted: Counter } => (limitCounters ??= {
    limited: node.metrics.counter('pp_http_rate_limited_total', 'Requests the gateway\'s rate limiter refused (429), by route.', ['route']),
    evicted: node.metrics.counter('pp_http_rate_limit_evictions_total', 'Client buckets evicted before they had refilled (more clients than rateLimit.clientsMax within burst / rate seconds), by route.', ['route']),
  });

  options.routes.forEach((r, i) => {
    requireArg(/^[A-Za-z][\w-]*\.[A-Za-z][\w-]*$/.test(r.action), 'routes.action', `'${r.action}' is not service.action`);
    const mode = r.auth;
    requireArg(mode === undefined || mode === 'required' || mode === 'optional', `routes[${i}].auth`, "must be 'required' or 'optional'");
    requireArg(mode === undefined || authHook !== undefined, `routes[${i}].auth`, 'needs the gateway\'s `auth` hook (GatewayOptions.auth) to resolve the principal');
    requireArg(r.authorize === undefined || mode !== undefined, `routes[${i}].authorize`, "needs auth: 'required' or 'optional'");
    const label = `${r.method} ${r.url}`;
    const action = r.action;
    const okSeries = httpRequests.labels(label, String(r.status ?? 200));
    const okStatus = r.status ?? 200;
    const toParams = r.params;
    const authorize = r.authorize;
    if (r.rateLimit !== undefined && r.rateLimit !== false) checkLimit(r.rateLimit.ratePerSec, r.rateLimit.burst, `routes[${i}].rateLimit`);
    const limit: RouteRateLimit | undefined = r.rateLimit === false ? undefined : (r.rateLimit ?? rl);
    const idemMode = r.idempotency ?? (idem !== undefined && r.method !== 'GET' ? 'optional' : false);
    requireArg(idemMode === false || idemMode === 'optional' || idemMode === 'required', `routes[${i}].idempotency`, "must be 'optional', 'required' or false");
    requireArg(idemMode === false || idem !== undefined, `routes[${i}].idempotency`, 'needs the gateway\'s `idempotency` option (GatewayOptions.idempotency: { keys })');
    const keys = idemMode === false ? undefined : new RouteKeys<P>(idem!, r.method, idemMode);
    const buckets = limit === undefined ? undefined : new ClientBuckets(limit.ratePerSec, limit.burst, clientsMax, rl?.clock, limitMetrics().evicted.labels(label));
    const limitedSeries = buckets === undefined ? undefined : limitMetrics().limited.labels(label);
    // The call's options carry the request id, so they are built per request (a small object:
    // ~5 ns against 20-60 us of server CPU per request, measured when dispatch took this form).
    const timeoutMs = r.timeoutMs;
    const resultSchema = r.resultSchema === false ? undefined : (r.resultSchema ?? node.actionSchemas(action)?.result);
    const schema = resultSchema !== undefined && isPlainJsonSchema(resultSchema) ? { response: { [okStatus]: resultSchema } } : undefined;

    const succeeded = (req: FastifyRequest, reply: FastifyReply, result: unknown): unknown => {
      if (okStatus !== 200) reply.code(okStatus);
      okSeries.inc();
      if (accessLog) logger.info({ reqId: req.id, route: label, status: okStatus, ms: reply.elapsedTime }, 'request');
      return result ?? null;
    };

    // Not `async`: an in-process action with a synchronous handler answers without a promise
    // (node.dispatch returns the value itself); otherwise the promise goes to Fastify. A route
    // without auth (or a limit) IS this function: Fastify calls it with two arguments.
    const run = (req: FastifyRequest, reply: FastifyReply, principal?: P): unknown => {
      reply.header(idHeader, req.id);
      let out: unknown;
      try {
        let params: unknown;
        try {
          params = toParams === undefined ? defaultParams(req) : toParams(req, principal);
        } catch (e) {
          throw isPowerplantError(e) ? e : ppError('PP_ERR_VALIDATION', { field: 'params', message: 'request cannot be mapped to params' });
        }
        out = keys === undefined
          ? node.dispatch(action, params, { timeoutMs, requestId: req.id })
          : keys.call(req, reply, principal, () => node.dispatch(action, params, { timeoutMs, requestId: req.id }));
      } catch (e) {
        return sendError(req, reply, e, label);
      }
      if (!(out instanceof Promise)) return succeeded(req, reply, out);
      return out.then((v: unknown) => succeeded(req, reply, v), (e: unknown) => sendError(req, reply, e, label));
    };

    // Once the principal is resolved (undefined: no credentials; `authError`: bad ones): the rate
    // limit (by principal or address: failed attempts count too), then 401 / 403, all before any
    // service is called; else the mapper and the call.
    const admit = (req: FastifyRequest, reply: FastifyReply, principal: P | undefined, authError?: { e: unknown }): unknown => {
      if (buckets !== undefined) {
        const refused = buckets.take(clientKey(req, principal));
        if (refused !== undefined) {
          limitedSeries?.inc();
          return sendError(req, reply, refused, label);
        }
      }
      if (authError !== undefined) return sendError(req, reply, authError.e, label);
      if (principal === undefined) {
        if (mode === 'required') return sendError(req, reply, ppError('PP_ERR_UNAUTHORIZED', { message: 'this route needs an authenticated caller' }), label);
      } else if (authorize !== undefined && !authorize(principal)) {
        return sendError(req, reply, ppError('PP_ERR_FORBIDDEN', { message: `not allowed: ${label}` }), label);
      }
      return run(req, reply, principal);
    };

    const handler = mode === undefined || authHook === undefined
      ? (buckets === undefined ? run : (req: FastifyRequest, reply: FastifyReply): unknown => admit(req, reply, undefined))
      : (req: FastifyRequest, reply: FastifyReply): unknown => {
        let got: P | undefined | Promise<P | undefined>;
        try {
          got = authHook(req);
        } catch (e) {
          return admit(req, reply, undefined, { e });
        }
        if (got instanceof Promise) return got.then((p) => admit(req, reply, p), (e: unknown) => admit(req, reply, undefined, { e }));
        return admit(req, reply, got);
      };

    app.route({ method: r.method, url: r.url, ...(schema === undefined ? {} : { schema }), handler });
  });

  const healthPath = options.healthPath ?? '/health';
  if (healthPath !== false) {
    app.get(healthPath, async (_req, reply) => {
      const h = node.health();
      reply.code(h.ready ? 200 : 503);
      return h;
    });
    app.get(`${healthPath}/live`, async (_req, reply) => {
      const h = node.health();
      reply.code(h.live ? 200 : 503);
      return { live: h.live };
    });
    app.get(`${healthPath}/ready`, async (_req, reply) => {
      const h = node.health();
      reply.code(h.ready ? 200 : 503);
      return { ready: h.ready };
    });
  }
  const statusAccess = options.statusAccess ?? 'redacted';
  const metricsAccess = options.metricsAccess ?? 'public';
  const isAdmin = options.admin;
  requireArg(['redacted', 'admin', 'public'].includes(statusAccess), 'statusAccess', "must be 'redacted', 'admin' or 'public'");
  requireArg(['public', 'admin'].includes(metricsAccess), 'metricsAccess', "must be 'public' or 'admin'");
  requireArg((statusAccess !== 'admin' && metricsAccess !== 'admin') || (authHook !== undefined && isAdmin !== undefined), 'admin',
    "statusAccess / metricsAccess 'admin' needs the `auth` hook and an `admin` predicate");
  /**
   * What the caller of a built-in endpoint may see: 'whole' or 'redacted'; throws 401 / 403 when it
   * may see nothing. The auth hook runs only when an admin could be told apart (`admin` is set).
   */
  const access = async (req: FastifyRequest, mode: 'redacted' | 'admin' | 'public'): Promise<'whole' | 'redacted'> => {
    if (mode === 'public') return 'whole';
    const principal = authHook === undefined || isAdmin === undefined ? undefined : await authHook(req);
    if (principal !== undefined && isAdmin?.(principal) === true) return 'whole';
    if (mode === 'redacted') return 'redacted';
    throw principal === undefined
      ? ppError('PP_ERR_UNAUTHORIZED', { message: 'this endpoint needs an authenticated admin' })
      : ppError('PP_ERR_FORBIDDEN', { message: 'this endpoint is for admins' });
  };

  const statusPath = options.statusPath ?? '/status';
  if (statusPath !== false) {
    const extra = options.status;
    const label = `GET ${statusPath}`;
    app.get(statusPath, async (req, reply) => {
      reply.header(idHeader, req.id);
      let view: 'whole' | 'redacted';
      try {
        view = await access(req, statusAccess);
      } catch (e) {
        return sendError(req, reply, e, label);
      }
      let sections: Record<string, unknown> = {};
      try {
        if (extra !== undefined) sections = await extra();
      } catch (e) {
        return sendError(req, reply, ppError('PP_ERR_UNAVAILABLE', { message: 'status: a section could not be built', cause: e }), label);
      }
      const doc = { ...node.status(), ...sections };
      return view === 'whole' ? doc : redactLocations(doc);
    });
  }
  const metricsPath = options.metricsPath ?? '/metrics';
  if (metricsPath !== false) {
    const label = `GET ${metricsPath}`;
    app.get(metricsPath, async (req, reply) => {
      if (metricsAccess !== 'public') {
        try {
          await access(req, metricsAccess);
        } catch (e) {
          return sendError(req, reply, e, label);
        }
      }
      reply.header('content-type', PROMETHEUS_CONTENT_TYPE);
      return node.metrics.render();
    });
  }

  app.setNotFoundHandler((req, reply) => {
    void reply.send(sendError(req, reply, ppError('PP_ERR_NOT_FOUND', { message: `no route ${req.method} ${req.url.split('?')[0] ?? ''}` }), '(no route)'));
  });

  // Fastify's own errors: unparsable JSON, a body over the limit, an unsupported media type; and a
  // result the response schema cannot serialize (a handler breaking its declared result: a bug).
  app.setErrorHandler((e: { statusCode?: number; code?: string; message: string }, req, reply) => {
    let err: PowerplantError;
    if (isPowerplantError(e)) err = e;
    else if (e.statusCode === 413) err = ppError('PP_ERR_TOO_LARGE', { field: 'body', message: 'body: larger than the gateway accepts' });
    else if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) err = ppError('PP_ERR_VALIDATION', { field: 'body', message: `body: ${e.message}` });
    else err = ppError('PP_ERR_INTERNAL', { cause: e }); // logged once, by sendError
    void reply.send(sendError(req, reply, err, '(error)'));
  });

  return {
    app,
    async listen(port = 0, host = '127.0.0.1'): Promise<string> {
      return app.listen({ port, host });
    },
    close: () => app.close(),
  };
}

const DEFAULT_CLIENTS_MAX = 10_000;

/** The principal when it is a string, else the remote address (see RateLimitOptions.key). */
function defaultClientKey(req: FastifyRequest, principal: unknown): string {
  return typeof principal === 'string' ? principal : req.ip;
}

/** The body of a 4xx: `{ error: { code, message, requestId, field?, retryAfterMs? } }`. */
function errorBody(err: PowerplantError, requestId: string): object {
  return {
    error: {
      code: err.code, message: err.message, requestId,
      ...(err.field === undefined ? {} : { field: err.field }),
      ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
    },
  };
}

/** Value of header `lowerName` in Node's flat [name, value, ...] list; undefined when absent. */
function rawHeader(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}

/** `{ ...body, ...query, ...params }` without copying when only path params exist (the common GET). */
function defaultParams(req: FastifyRequest): unknown {
  const params = req.params as Record<string, unknown> | undefined;
  const query = req.query as Record<string, unknown> | undefined;
  const body = req.body;
  const hasBody = typeof body === 'object' && body !== null && !Array.isArray(body);
  let hasQuery = false;
  for (const _k in query) {
    hasQuery = true;
    break;
  }
  if (!hasBody && !hasQuery) return params ?? {};
  return { ...(hasBody ? body : {}), ...(hasQuery ? query : {}), ...params };
}
