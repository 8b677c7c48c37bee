/**
 * Idempotency keys on the store: the first result of a request is stored under its key and
 * replayed for every later request with the same key, so a client (or a platform retry) can send
 * a request again without doing its effect twice. The gateway uses it for the `Idempotency-Key`
 * header (gateway/idempotency.ts), `idempotentAction` for actions (the key is a param).
 *
 * One kv row per (scope, key), in namespace `pptx_idem` (configurable), keyed by the SHA-256
 * of scope + key (so any key length and character fits the store's key bound):
 *
 *     pending  { s: 'p', f: fingerprint }            kv TTL = leaseMs, renewed while running
 *     done     { s: 'd', f, ok: true, v: result }    kv TTL = ttlMs (retention)
 *              { s: 'd', f, ok: false, e: error }
 *
 * run(): the row absent -> insert `pending` by compare-and-set on "absent" (one of several
 * concurrent requests wins; the others read again) and run the work; while it runs, its lease is
 * renewed every leaseMs / 3. Its result, or a NON-retryable catalogue error, replaces the row
 * (CAS on the pending row's version) and is replayed from then on. A retryable error (overload,
 * unavailable: the work did not happen or may be retried) deletes the row, so the next request
 * runs it again; a timeout (PP_ERR_TIMEOUT: the work may still be running or have run) leaves the
 * pending row to lapse with its lease, so a retry within it gets PP_ERR_IN_PROGRESS rather than a
 * second run; a foreign (non-catalogue) error is a bug, not stored either (deleted).
 * The row present with another fingerprint -> PP_ERR_CONFLICT naming the key (the same key was
 * used for a different request). Present and done -> the stored outcome, `replayed: true`.
 * Present and pending -> wait (polls with capped backoff) up to `waitMs` for it to finish, then
 * PP_ERR_IN_PROGRESS (retryable, 409). A process that dies mid-request leaves a pending row that
 * lapses after leaseMs; the next request then runs the work again (at-least-once across crashes:
 * work whose effect must not repeat after a crash makes that effect idempotent itself, e.g. a
 * store write conditional on a row the first attempt wrote).
 *
 * Results are stored as msgpack (the store's value encoding): JSON-like values replay equal;
 * a result over the store's valueBytesMax cannot be stored, is returned once, and the key is
 * released (logged by nobody: the caller sees `stored: false`).
 */
import { createHash } from 'node:crypto';
import { errorFromJSON, isPowerplantError, ppError, requireArg, type PowerplantError } from '../errors/index.js';
import type { Static, TSchema } from '@sinclair/typebox';
import type { ActionDef } from '../service/index.js';
import type { Kv, Store } from '../store/index.js';
import { canonicalJson } from '../util/index.js';

/** One request under an idempotency key. */
export interface IdempotentRequest {
  /** Namespace of the key: who may share it (e.g. the caller's user id, the route). '' = global. */
  readonly scope: string;
  /** The client's key: 1..keyCharsMax visible ASCII characters (0x21..0x7e). */
  readonly key: string;
  /** What the request was (`fingerprintOf(...)`): the same key with another fingerprint is a conflict. */
  readonly fingerprint: string;
  /** How errors about the key name it (`headers.idempotency-key`, `params.idempotencyKey`). Default 'idempotencyKey'. */
  readonly field?: string;
  /** Overrides the guard's retention / lease / wait for this request. */
  readonly ttlMs?: number;
  readonly leaseMs?: number;
  readonly waitMs?: number;
}

/** What `run` resolves to: the outcome of the work (first run or replay). Errors are returned, not thrown. */
export type IdempotentOutcome<T> =
  | { readonly ok: true; readonly value: T; readonly replayed: boolean; readonly stored: boolean }
  | { readonly ok: false; readonly error: unknown; readonly replayed: boolean; readonly stored: boolean };

/** The contract the gateway and `idempotentAction` use; `IdempotencyKeys` is the store's implementation. */
export interface IdempotencyGuard {
  /**
   * Runs `work` at most once per (scope, key) while its result is retained, or replays the stored
   * outcome. Throws (rejects) only for the key itself: PP_ERR_CONFLICT (another fingerprint),
   * PP_ERR_IN_PROGRESS (the first is still running past waitMs), PP_ERR_VALIDATION (a bad key),
   * or the store's own failure.
   */
  run<T>(request: IdempotentRequest, work: () => T | Promise<T>): Promise<IdempotentOutcome<T>>;
}

export interface IdempotencyOptions {
  /** kv namespace of the records. Default 'pptx_idem'. */
  readonly namespace?: string;
  /** How long a finished request's outcome is kept and replayed, ms. Default 24 h. */
  readonly ttlMs?: number;
  /** How long a running request holds its key without renewing (a crashed holder's key frees after it), ms. Default 30 s. */
  readonly leaseMs?: number;
  /** How long a duplicate waits for the first to finish before PP_ERR_IN_PROGRESS, ms. Default 10 s. */
  readonly waitMs?: number;
  /** Cap of the backoff between a waiting duplicate's polls, ms. Default 50. */
  readonly pollMsMax?: number;
  /** Longest key, characters. Default 255. */
  readonly keyCharsMax?: number;
}

export const IDEMPOTENCY_DEFAULTS = { ttlMs: 24 * 3600_000, leaseMs: 30_000, waitMs: 10_000, pollMsMax: 50, keyCharsMax: 255 } as const;
/** Bounds on the configurable bounds. */
export const IDEMPOTENCY_TTL_MS_MAX_LIMIT = 365 * 24 * 3600_000;
export const IDEMPOTENCY_WAIT_MS_MAX_LIMIT = 600_000;
export const IDEMPOTENCY_KEY_CHARS_MAX_LIMIT = 1024;
const SCOPE_CHARS_MAX = 1024;
const FINGERPRINT_CHARS_MAX = 256;
const KEY_RE = /^[\x21-\x7e]+$/;

type Row =
  | { readonly s: 'p'; readonly f: string }
  | { readonly s: 'd'; readonly f: string; readonly ok: true; readonly v: unknown }
  | { readonly s: 'd'; readonly f: string; readonly ok: false; readonly e: unknown };

/** SHA-256 (base64url) of the canonical JSON of the parts: a request's fingerprint. */
export function fingerprintOf(...parts: readonly unknown[]): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('base64url');
}

function checkMs(v: unknown, field: string, min: number, max: number): number {
  requireArg(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max, field, `must be an integer in [${min}, ${max}]`);
  return v as number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class IdempotencyKeys implements IdempotencyGuard {
  readonly #kv: Kv<Row>;
  readonly #o: Required<Omit<IdempotencyOptions, 'namespace'>>;

  /** Use `openIdempotency(store)`. */
  constructor(kv: Kv<Row>, options: IdempotencyOptions) {
    this.#kv = kv;
    const o = { ...IDEMPOTENCY_DEFAULTS, ...options };
    checkMs(o.ttlMs, 'ttlMs', 1, IDEMPOTENCY_TTL_MS_MAX_LIMIT);
    checkMs(o.leaseMs, 'leaseMs', 30, IDEMPOTENCY_TTL_MS_MAX_LIMIT);
    checkMs(o.waitMs, 'waitMs', 0, IDEMPOTENCY_WAIT_MS_MAX_LIMIT);
    checkMs(o.pollMsMax, 'pollMsMax', 1, IDEMPOTENCY_WAIT_MS_MAX_LIMIT);
    checkMs(o.keyCharsMax, 'keyCharsMax', 1, IDEMPOTENCY_KEY_CHARS_MAX_LIMIT);
    this.#o = { ttlMs: o.ttlMs, leaseMs: o.leaseMs, waitMs: o.waitMs, pollMsMax: o.pollMsMax, keyCharsMax: o.keyCharsMax };
  }

  /** The options in force (defaults filled in). */
  get options(): Readonly<Required<Omit<IdempotencyOptions, 'namespace'>>> {
    return this.#o;
  }

  /** Validates a key as a client sent it: a typed 400 naming `field` when it is not one. */
  checkKey(key: unknown, field = 'idempotencyKey'): asserts key is string {
    const max = this.#o.keyCharsMax;
    if (typeof key !== 'string' || key.length === 0 || key.length > max || !KEY_RE.test(key)) {
      throw ppError('PP_ERR_VALIDATION', { field, message: `${field}: an idempotency key is 1..${max} visible ASCII characters (no spaces)` });
    }
  }

  #rowKey(scope: string, key: string): string {
    return 'i' + createHash('sha256').update(scope).update('\n').update(key).digest('base64url');
  }

  async run<T>(request: IdempotentRequest, work: () => T | Promise<T>): Promise<IdempotentOutcome<T>> {
    requireArg(typeof request === 'object' && request !== null, 'request', 'must be an object');
    const field = request.field ?? 'idempotencyKey';
    this.checkKey(request.key, field);
    requireArg(typeof request.scope === 'string' && request.scope.length <= SCOPE_CHARS_MAX, 'request.scope', `must be a string of at most ${SCOPE_CHARS_MAX} characters`);
    requireArg(typeof request.fingerprint === 'string' && request.fingerprint.length > 0 && request.fingerprint.length <= FINGERPRINT_CHARS_MAX, 'request.fingerprint', `must be a string of 1..${FINGERPRINT_CHARS_MAX} characters`);
    requireArg(typeof work === 'function', 'work', 'must be a function');
    const ttlMs = request.ttlMs === undefined ? this.#o.ttlMs : checkMs(request.ttlMs, 'request.ttlMs', 1, IDEMPOTENCY_TTL_MS_MAX_LIMIT);
    const leaseMs = request.leaseMs === undefined ? this.#o.leaseMs : checkMs(request.leaseMs, 'request.leaseMs', 30, IDEMPOTENCY_TTL_MS_MAX_LIMIT);
    const waitMs = request.waitMs === undefined ? this.#o.waitMs : checkMs(request.waitMs, 'request.waitMs', 0, IDEMPOTENCY_WAIT_MS_MAX_LIMIT);
    const k = this.#rowKey(request.scope, request.key);
    const f = request.fingerprint;
    const deadline = Date.now() + waitMs;
    let backoffMs = 2;
    for (;;) {
      const cur = await this.#kv.get(k);
      if (cur === undefined) {
        let version: number;
        try {
          version = (await this.#kv.cas(k, 0, { s: 'p', f }, { ttlMs: leaseMs })).version;
        } catch (err) {
          if (isPowerplantError(err, 'PP_ERR_CONFLICT')) continue; // a concurrent duplicate won: read it
          throw err;
        }
        return this.#execute(k, version, f, ttlMs, leaseMs, work);
      }
      const row = cur.value;
      if (row.f !== f) {
        throw ppError('PP_ERR_CONFLICT', { field, message: `${field}: the idempotency key "${request.key}" was already used for a different request`, data: { idempotencyKey: request.key } });
      }
      if (row.s === 'd') {
        return row.ok ? { ok: true, value: row.v as T, replayed: true, stored: true } : { ok: false, error: errorFromJSON(row.e), replayed: true, stored: true };
      }
      const now = Date.now();
      if (now >= deadline) {
        throw ppError('PP_ERR_IN_PROGRESS', {
          field,
          message: `${field}: a request with the idempotency key "${request.key}" is still in progress`,
          retryAfterMs: Math.max(1, Math.min(1_000, (cur.expiresAtMs ?? now + 1_000) - now)),
          data: { idempotencyKey: request.key },
        });
      }
      await sleep(1 + Math.floor(Math.random() * Math.min(backoffMs, this.#o.pollMsMax, deadline - now)));
      backoffMs = Math.min(backoffMs * 2, this.#o.pollMsMax);
    }
  }

  async #execute<T>(k: string, version0: number, f: string, ttlMs: number, leaseMs: number, work: () => T | Promise<T>): Promise<IdempotentOutcome<T>> {
    let version = version0;
    let held = true;
    // Renewals run one after another (a chain), so the final write sees the last version.
    let renewals: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      renewals = renewals.then(async () => {
        if (!held) return;
        try {
          version = (await this.#kv.cas(k, version, { s: 'p', f }, { ttlMs: leaseMs })).version;
        } catch {
          held = false; // lapsed and taken over (or the store is failing): the final write will not land
        }
      });
    }, Math.max(10, Math.floor(leaseMs / 3)));
    timer.unref();
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await work() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    clearInterval(timer);
    await renewals;
    const err = outcome.ok ? undefined : outcome.error;
    let row: Row | undefined;
    if (outcome.ok) row = { s: 'd', f, ok: true, v: outcome.value ?? null };
    else if (isPowerplantError(err) && !err.retryable) row = { s: 'd', f, ok: false, e: (err as PowerplantError).toJSON() };
    let stored = false;
    if (held) {
      try {
        if (row !== undefined) {
          await this.#kv.cas(k, version, row, { ttlMs });
          stored = true;
        } else if (!isPowerplantError(err, 'PP_ERR_TIMEOUT')) {
          await this.#kv.delete(k, { version });
        }
      } catch {
        // Not storable (over valueBytesMax) or the lease was lost: free the key if it is still ours.
        if (row !== undefined) await this.#kv.delete(k, { version }).catch(() => undefined);
      }
    }
    return outcome.ok ? { ok: true, value: outcome.value, replayed: false, stored } : { ok: false, error: err, replayed: false, stored };
  }
}

/** Idempotency keys on `store` (creates the namespace on first use). */
export async function openIdempotency(store: Store, options: IdempotencyOptions = {}): Promise<IdempotencyKeys> {
  const kv = await store.kv<Row>(options.namespace ?? 'pptx_idem');
  return new IdempotencyKeys(kv, options);
}

export interface IdempotentActionOptions<P> {
  /** The param carrying the key (e.g. 'idempotencyKey'); a call without it runs as usual. */
  readonly keyParam: string;
  /** Who may share a key: e.g. `(p) => p.userId`. Default: one scope per action. */
  readonly scope?: (params: P) => string;
  /** Per-action overrides of the guard's retention / lease / wait. */
  readonly ttlMs?: number;
  readonly leaseMs?: number;
  readonly waitMs?: number;
}

/**
 * The action with idempotency keys: a call whose `params[keyParam]` is set runs the handler at
 * most once per (action, scope, key) while retained; later calls with the same key and the same
 * other params get the first outcome (result or non-retryable error) again; the same key with
 * other params is PP_ERR_CONFLICT naming `params.<keyParam>`. Runs on the serving node, so it
 * holds whichever instance a retry lands on, and a caller's timeout does not free the key.
 */
export function idempotentAction<P extends TSchema, R extends TSchema>(
  guard: IdempotencyGuard,
  def: ActionDef<P, R>,
  options: IdempotentActionOptions<Static<P>>,
): ActionDef<P, R> {
  requireArg(typeof guard === 'object' && guard !== null && typeof guard.run === 'function', 'guard', 'must be an IdempotencyGuard (openIdempotency(store))');
  requireArg(typeof options === 'object' && options !== null && typeof options.keyParam === 'string' && options.keyParam.length > 0, 'options.keyParam', 'must name the param that carries the key');
  const { keyParam, scope } = options;
  const field = `params.${keyParam}`;
  const inner = def.handler.bind(def);
  return {
    ...def,
    handler: async (ctx, params) => {
      const p = params as Record<string, unknown>;
      const key = p[keyParam];
      if (key === undefined) return inner(ctx, params);
      const rest: Record<string, unknown> = { ...p };
      delete rest[keyParam];
      const out = await guard.run({
        scope: `${ctx.name}\n${scope === undefined ? '' : scope(params)}`,
        key: key as string,
        fingerprint: fingerprintOf(ctx.name, rest),
        field,
        ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
        ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
        ...(options.waitMs === undefined ? {} : { waitMs: options.waitMs }),
      }, () => inner(ctx, params));
      if (!out.ok) throw out.error;
      return out.value;
    },
  };
}
