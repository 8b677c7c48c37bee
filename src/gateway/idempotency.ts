/**
 * The `Idempotency-Key` header on routes (the IETF httpapi draft's header, as Stripe and others
 * use it): a route that accepts it runs its action through an `IdempotencyGuard` (tx's
 * `openIdempotency(store)`), so the first answer (a success, or a non-retryable error) is stored
 * and replayed, with `Idempotent-Replayed: true`, for every later request with the same key.
 *
 * A key belongs to a scope (default: the principal when it is a string, the canonical JSON of an
 * object principal, '' for anonymous routes; `scope` overrides it: `(req, me) => me?.uid ?? ''`),
 * so two callers never see each other's answers. The request's fingerprint is the SHA-256 of the
 * canonical JSON of [method, URL (path and query), body]; the same key with another fingerprint
 * is 409 PP_ERR_CONFLICT naming the header. A duplicate that arrives while the first runs waits
 * (bounded by waitMs) and gets its answer, or 409 PP_ERR_IN_PROGRESS (retryable, Retry-After).
 * A malformed key (or none on a route that requires one) is 400 naming the header.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ppError, requireArg } from '../errors/index.js';
import type { IdempotencyGuard, IdempotentRequest } from '../tx/index.js';
import { canonicalJson } from '../util/index.js';

/** Whether a route takes the key: 'optional' (used when sent), 'required' (400 without), false (ignored). */
export type RouteIdempotency = 'optional' | 'required' | false;

export interface GatewayIdempotencyOptions<P = unknown> {
  /** Where outcomes are kept: `await openIdempotency(store)` from powerplant/tx, or another guard. */
  readonly keys: IdempotencyGuard;
  /** Header that carries the key. Default 'idempotency-key'. */
  readonly header?: string;
  /** Who may share a key (see the file comment). */
  readonly scope?: (req: FastifyRequest, principal: P | undefined) => string;
  /** Override the guard's retention / lease / wait for the gateway's requests. */
  readonly ttlMs?: number;
  readonly leaseMs?: number;
  readonly waitMs?: number;
}

export const REPLAYED_HEADER = 'idempotent-replayed';
const HEADER_RE = /^[a-z0-9-]{1,64}$/;

export function checkIdempotencyOptions(o: GatewayIdempotencyOptions<never>): void {
  requireArg(typeof o === 'object' && o !== null && typeof o.keys === 'object' && o.keys !== null && typeof o.keys.run === 'function', 'idempotency.keys', 'must be an IdempotencyGuard (openIdempotency(store) from powerplant/tx)');
  requireArg(o.header === undefined || (typeof o.header === 'string' && HEADER_RE.test(o.header.toLowerCase())), 'idempotency.header', 'must be a header name (letters, digits, "-")');
  requireArg(o.scope === undefined || typeof o.scope === 'function', 'idempotency.scope', 'must be a function (req, principal) => string');
}

function defaultScope(principal: unknown): string {
  if (principal === undefined || principal === null) return '';
  return typeof principal === 'string' ? principal : canonicalJson(principal);
}

/** One route's use of the guard. */
export class RouteKeys<P> {
  readonly #o: GatewayIdempotencyOptions<P>;
  readonly #mode: 'optional' | 'required';
  readonly #header: string;
  readonly #field: string;
  readonly #method: string;

  constructor(o: GatewayIdempotencyOptions<P>, method: string, mode: 'optional' | 'required') {
    this.#o = o;
    this.#mode = mode;
    this.#header = (o.header ?? 'idempotency-key').toLowerCase();
    this.#field = `headers.${this.#header}`;
    this.#method = method;
  }

  /**
   * Runs `dispatch` under the request's key: its value / promise as is when the request has none
   * (and the route does not require one), else a promise of the first (or replayed) outcome.
   */
  call(req: FastifyRequest, reply: FastifyReply, principal: P | undefined, dispatch: () => unknown): unknown {
    const raw = req.headers[this.#header];
    if (raw === undefined) {
      if (this.#mode === 'required') throw ppError('PP_ERR_VALIDATION', { field: this.#field, message: `${this.#field}: this route needs an idempotency key` });
      return dispatch();
    }
    if (typeof raw !== 'string') throw ppError('PP_ERR_VALIDATION', { field: this.#field, message: `${this.#field}: send one idempotency key, not several` });
    const scope = this.#o.scope === undefined ? defaultScope(principal) : this.#o.scope(req, principal);
    requireArg(typeof scope === 'string', 'idempotency.scope', 'must return a string');
    const request: IdempotentRequest = {
      scope: `http\n${scope}`,
      key: raw,
      fingerprint: createHash('sha256').update(canonicalJson([this.#method, req.url, req.body ?? null])).digest('base64url'),
      field: this.#field,
      ...(this.#o.ttlMs === undefined ? {} : { ttlMs: this.#o.ttlMs }),
      ...(this.#o.leaseMs === undefined ? {} : { leaseMs: this.#o.leaseMs }),
      ...(this.#o.waitMs === undefined ? {} : { waitMs: this.#o.waitMs }),
    };
    return this.#o.keys.run(request, dispatch).then((o) => {
      if (o.replayed) reply.header(REPLAYED_HEADER, 'true');
      if (!o.ok) throw o.error;
      return o.value;
    });
  }
}
