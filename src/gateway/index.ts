/**
 * HTTP gateway on Fastify: routes map to actions (`GET /products/:id` -> `catalog.get`).
 *
 * Status mapping comes from the error catalogue (`PowerplantError.status`), so the gateway has no
 * table of its own: PP_ERR_VALIDATION -> 400 with `error.field` naming the bad field; NOT_FOUND ->
 * 404 (also for unknown routes); TIMEOUT -> 504; CIRCUIT_OPEN / NO_ENDPOINT / BULKHEAD_FULL /
 * SHUTTING_DOWN / UNAVAILABLE -> 503 with `Retry-After` (seconds, from the error's retryAfterMs,
 * at least 1); RATE_LIMITED -> 429 with Retry-After. A non-catalogue error is a bug: 500, logged
 * with its stack, the body says only `PP_ERR_INTERNAL`.
 *
 * Every response carries `x-request-id` (the client's, when it sent a sane one, else generated),
 * and the id travels with the call into every service it reaches. `/health` (+ `/health/live`,
 * `/health/ready`), `/metrics` (Prometheus text: the node's calls, latency histograms per action,
 * breaker states, registry size, plus HTTP requests per route) and `/status` (JSON: nodes, services,
 * endpoints, plus sections the application adds, e.g. the store's partitions) are built in.
 *
 * Logs: pino, one JSON line per 5xx (error) and per 4xx (debug); access logs are opt-in
 * (`accessLog: true`) because a line per request costs ~10% of the gateway's throughput.
 */
import { Kind, type TSchema } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isPowerplantError, ppError, requireArg, type PowerplantError } from '../errors/index.js';
import { PROMETHEUS_CONTENT_TYPE, type CounterSeries, type Logger } from '../observe/index.js';
import type { ServiceNode } from '../service/index.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface GatewayRoute {
  method: HttpMethod;
  /** Fastify path syntax: `/products/:id`. */
  url: string;
  /** `service.action` */
  action: string;
  /**
   * Builds the action's params from the request. Default: path params, over query-string, over
   * the JSON body (objects only): `{ ...body, ...query, ...params }`. Values from the path and
   * query are strings; convert here when the schema wants numbers.
   */
  params?: (req: FastifyRequest) => unknown;
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
}

export interface GatewayOptions {
  routes: readonly GatewayRoute[];
  /** Default: the node's logger. */
  logger?: Logger;
  /** One JSON line per request (method, url, status, ms, request id). Default false. */
  accessLog?: boolean;
  /** Header read for and written with the request id. Default 'x-request-id'. */
  requestIdHeader?: string;
  /** Largest request body, bytes (413 beyond). Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Default '/metrics'; false to disable. */
  metricsPath?: string | false;
  /** Default '/health'; false to disable. */
  healthPath?: string | false;
  /**
   * Default '/status'; false to disable. Answers `node.status()` (this node, the nodes and services
   * it knows, endpoints with in-flight calls and breaker states) merged with `status()`'s sections,
   * for `powerplant status`. It shows the topology: keep it off the public internet.
   */
  statusPath?: string | false;
  /** Extra sections of the status body (e.g. `{ partitions: store.describe() }`); errors answer 503. */
  status?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
}

/** Longest path parameter (Fastify's default). */
const MAX_PARAM_LENGTH = 100;

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

export function createGateway(node: ServiceNode, options: GatewayOptions): Gateway {
  const logger = options.logger ?? node.logger;
  const idHeader = (options.requestIdHeader ?? 'x-request-id').toLowerCase();
  const accessLog = options.accessLog ?? false;
  let idCounter = 0;
  const idPrefix = `${node.nodeId}-${Date.now().toString(36)}-`;

  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    genReqId: (raw) => {
      // Scan rawHeaders rather than read `raw.headers`: Node builds that object lazily, and
      // touching it on every request cost ~1 us in the gateway profile.
      const given = rawHeader(raw.rawHeaders, idHeader);
      if (given !== undefined && REQUEST_ID_RE.test(given)) return given;
      idCounter = idCounter >= Number.MAX_SAFE_INTEGER ? 0 : idCounter + 1;
      return idPrefix + idCounter.toString(36);
    },
    // Our own errors are formatted below; Fastify's default 404/500 bodies would not name codes.
    return503OnClosing: true,
    // Errors raised before routing (a path Fastify cannot decode, a path parameter over its
    // length limit) get the same JSON error body as everything else.
    frameworkErrors: (e, req, reply) => {
      const err = e.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? ppError('PP_ERR_VALIDATION', { field: 'params', message: `params: a path parameter is longer than ${MAX_PARAM_LENGTH} characters` })
        : e.code === 'FST_ERR_BAD_URL'
          ? ppError('PP_ERR_VALIDATION', { field: 'url', message: 'url: the path is not valid percent-encoding' })
          : e;
      const r = reply as unknown as FastifyReply;
      void r.send(sendError(req as unknown as FastifyRequest, r, err, '(framework)'));
    },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
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

  const sendError = (req: FastifyRequest, reply: FastifyReply, e: unknown, route: string): object => {
    let err: PowerplantError;
    if (isPowerplantError(e)) {
      err = e;
    } else {
      logger.error({ reqId: req.id, route, err: e }, 'gateway: non-catalogue error');
      err = ppError('PP_ERR_INTERNAL', { message: 'internal error' });
    }
    count(route, err.status);
    reply.code(err.status);
    reply.header(idHeader, req.id);
    if (err.status === 503 || err.status === 429) reply.header('retry-after', retryAfterSeconds(err));
    if (err.status >= 500) logger.error({ reqId: req.id, route, code: err.code, msg: err.message }, 'request failed');
    else logger.debug({ reqId: req.id, route, code: err.code, field: err.field }, 'request rejected');
    return {
      error: {
        code: err.code, message: err.message, requestId: req.id,
        ...(err.field === undefined ? {} : { field: err.field }),
        ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
      },
    };
  };

  for (const r of options.routes) {
    requireArg(/^[A-Za-z][\w-]*\.[A-Za-z][\w-]*$/.test(r.action), 'routes.action', `'${r.action}' is not service.action`);
    const label = `${r.method} ${r.url}`;
    const action = r.action;
    const okSeries = httpRequests.labels(label, String(r.status ?? 200));
    const okStatus = r.status ?? 200;
    const toParams = r.params;
    // One options object per route, shared by its requests (the request id goes in separately).
    const callOpts = r.timeoutMs === undefined ? undefined : { timeoutMs: r.timeoutMs };
    const resultSchema = r.resultSchema === false ? undefined : (r.resultSchema ?? node.actionSchemas(action)?.result);
    const schema = resultSchema !== undefined && isPlainJsonSchema(resultSchema) ? { response: { [okStatus]: resultSchema } } : undefined;

    const succeeded = (req: FastifyRequest, reply: FastifyReply, result: unknown): unknown => {
      if (okStatus !== 200) reply.code(okStatus);
      okSeries.inc();
      if (accessLog) logger.info({ reqId: req.id, route: label, status: okStatus, ms: reply.elapsedTime }, 'request');
      return result ?? null;
    };

    app.route({
      method: r.method,
      url: r.url,
      ...(schema === undefined ? {} : { schema }),
      // Not `async`: an in-process action with a synchronous handler answers without a promise
      // (node.dispatch returns the value itself); otherwise the promise goes to Fastify.
      handler: (req, reply) => {
        reply.header(idHeader, req.id);
        let out: unknown;
        try {
          let params: unknown;
          try {
            params = toParams === undefined ? defaultParams(req) : toParams(req);
          } catch (e) {
            throw isPowerplantError(e) ? e : ppError('PP_ERR_VALIDATION', { field: 'params', message: 'request cannot be mapped to params' });
          }
          out = node.dispatch(action, params, { timeoutMs: callOpts?.timeoutMs, requestId: req.id });
        } catch (e) {
          return sendError(req, reply, e, label);
        }
        if (!(out instanceof Promise)) return succeeded(req, reply, out);
        return out.then((v: unknown) => succeeded(req, reply, v), (e: unknown) => sendError(req, reply, e, label));
      },
    });
  }

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
  const statusPath = options.statusPath ?? '/status';
  if (statusPath !== false) {
    const extra = options.status;
    app.get(statusPath, async (req, reply) => {
      reply.header(idHeader, req.id);
      let sections: Record<string, unknown> = {};
      try {
        if (extra !== undefined) sections = await extra();
      } catch (e) {
        logger.error({ reqId: req.id, err: e }, 'gateway: status provider failed');
        return sendError(req, reply, ppError('PP_ERR_UNAVAILABLE', { message: 'status: a section could not be built' }), `GET ${statusPath}`);
      }
      return { ...node.status(), ...sections };
    });
  }
  const metricsPath = options.metricsPath ?? '/metrics';
  if (metricsPath !== false) {
    app.get(metricsPath, async (_req, reply) => {
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
    else {
      logger.error({ reqId: req.id, err: e }, 'gateway: unexpected error');
      err = ppError('PP_ERR_INTERNAL');
    }
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
