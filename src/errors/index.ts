/**
 * The coded error catalogue. Every error Powerplant raises on purpose is a `PowerplantError` with a
 * stable `code` from this table, a human message, whether a caller may retry it, and the HTTP
 * status the gateway maps it to. Codes are part of the public API: never rename one, only add.
 *
 * `retryable` means "the same request may succeed if sent again, possibly to another instance":
 * timeouts, overload and unavailability are retryable; bad input and conflicts are not.
 */

export interface ErrorSpec {
  /** The default message; `details.message` or the constructor's message overrides it. */
  readonly message: string;
  readonly retryable: boolean;
  /** HTTP status the gateway answers with. */
  readonly status: number;
}

export const ERRORS = {
  // ---- input -------------------------------------------------------------------------------
  PP_ERR_INVALID_ARGUMENT: { message: 'invalid argument', retryable: false, status: 400 },
  PP_ERR_VALIDATION: { message: 'validation failed', retryable: false, status: 400 },
  PP_ERR_TOO_LARGE: { message: 'value exceeds the configured maximum size', retryable: false, status: 413 },
  PP_ERR_NOT_FOUND: { message: 'not found', retryable: false, status: 404 },
  PP_ERR_CONFLICT: { message: 'version conflict', retryable: false, status: 409 },
  PP_ERR_UNAUTHORIZED: { message: 'unauthorized', retryable: false, status: 401 },
  PP_ERR_FORBIDDEN: { message: 'forbidden', retryable: false, status: 403 },
  PP_ERR_UNSERIALIZABLE: { message: 'value cannot be serialized', retryable: false, status: 400 },

  // ---- partitioning ------------------------------------------------------------------------
  PP_ERR_NO_SHARDS: { message: 'the partition map has no shards', retryable: false, status: 503 },
  PP_ERR_UNKNOWN_SHARD: { message: 'unknown shard', retryable: false, status: 400 },
  PP_ERR_DUPLICATE_SHARD: { message: 'shard already present', retryable: false, status: 400 },
  PP_ERR_PARTITION_UNMAPPED: { message: 'no partition holds this value', retryable: false, status: 400 },
  PP_ERR_STALE_EPOCH: { message: 'partition map epoch is stale', retryable: true, status: 503 },

  // ---- state layer (store) ----------------------------------------------------------------
  PP_ERR_UNKNOWN_INDEX: { message: 'unknown index', retryable: false, status: 400 },
  PP_ERR_UNKNOWN_COLUMN: { message: 'unknown column', retryable: false, status: 400 },
  PP_ERR_MISSING_PARTITION_KEY: { message: 'the partition key is missing', retryable: false, status: 400 },
  PP_ERR_MISSING_KEY: { message: 'the primary key is missing', retryable: false, status: 400 },
  PP_ERR_INCOMPATIBLE_SCHEMA: { message: 'incompatible schema change', retryable: false, status: 409 },
  PP_ERR_FEED_TRUNCATED: { message: 'the change feed no longer holds this position', retryable: false, status: 410 },
  PP_ERR_OVERLOADED: { message: 'write queue is full', retryable: true, status: 503 },
  PP_ERR_CLOSED: { message: 'the store is closed', retryable: false, status: 503 },

  // ---- message queue -----------------------------------------------------------------------
  PP_ERR_UNKNOWN_TOPIC: { message: 'unknown topic', retryable: false, status: 404 },
  PP_ERR_CORRUPT: { message: 'stored data failed its checksum', retryable: false, status: 500 },

  // ---- load balancing ----------------------------------------------------------------------
  PP_ERR_NO_ENDPOINT: { message: 'no endpoint available', retryable: true, status: 503 },

  // ---- resilience --------------------------------------------------------------------------
  PP_ERR_TIMEOUT: { message: 'deadline exceeded', retryable: true, status: 504 },
  PP_ERR_ABORTED: { message: 'operation aborted', retryable: false, status: 499 },
  PP_ERR_CIRCUIT_OPEN: { message: 'circuit breaker is open', retryable: true, status: 503 },
  PP_ERR_BULKHEAD_FULL: { message: 'bulkhead is full', retryable: true, status: 503 },
  PP_ERR_RATE_LIMITED: { message: 'rate limit exceeded', retryable: true, status: 429 },
  PP_ERR_RETRY_BUDGET_EXHAUSTED: { message: 'retry budget exhausted', retryable: false, status: 503 },
  PP_ERR_RETRIES_EXHAUSTED: { message: 'all retry attempts failed', retryable: false, status: 503 },

  // ---- transactions, locks, workflows, idempotency -----------------------------------------
  PP_ERR_TX_ABORTED: { message: 'the transaction was aborted', retryable: true, status: 409 },
  PP_ERR_TX_TOO_LARGE: { message: 'the transaction exceeds its size bound', retryable: false, status: 413 },
  PP_ERR_FENCED: { message: 'the fencing token is stale: another holder took the lease', retryable: false, status: 409 },
  PP_ERR_LOCK_HELD: { message: 'the lock is held by another owner', retryable: true, status: 409 },
  PP_ERR_NOT_HOLDER: { message: 'the caller does not hold this lock', retryable: false, status: 409 },
  PP_ERR_STEP_FAILED: { message: 'a workflow step failed', retryable: false, status: 500 },
  PP_ERR_NONDETERMINISM: { message: 'the workflow did not replay the steps it recorded', retryable: false, status: 500 },
  PP_ERR_CANCELLED: { message: 'the workflow was cancelled', retryable: false, status: 409 },
  PP_ERR_IN_PROGRESS: { message: 'a request with this idempotency key is still in progress', retryable: true, status: 409 },
  PP_ERR_PAYMENT_DECLINED: { message: 'the payment was declined', retryable: false, status: 402 },

  // ---- streams and analytics ---------------------------------------------------------------
  PP_ERR_STATE_TOO_LARGE: { message: 'keyed state exceeds its bound', retryable: false, status: 413 },
  PP_ERR_QUERY_INVALID: { message: 'the query is not valid', retryable: false, status: 400 },
  PP_ERR_QUERY_LIMIT: { message: 'the query exceeded its limit', retryable: false, status: 422 },
  PP_ERR_MIRROR_STOPPED: { message: 'the mirror stopped', retryable: false, status: 503 },

  // ---- runtime -----------------------------------------------------------------------------
  PP_ERR_UNAVAILABLE: { message: 'service unavailable', retryable: true, status: 503 },
  PP_ERR_SHUTTING_DOWN: { message: 'node is shutting down', retryable: true, status: 503 },
  PP_ERR_INTERNAL: { message: 'internal error', retryable: false, status: 500 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorDetails {
  /** Overrides the catalogue message. */
  message?: string;
  /** The offending field or parameter, for validation errors (`"params.id"`). */
  field?: string;
  /** Server-suggested wait before retrying (gateway sends it as Retry-After). */
  retryAfterMs?: number;
  /** Structured context, safe to send to a client. */
  data?: Record<string, unknown>;
  cause?: unknown;
}

export class PowerplantError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly status: number;
  readonly field: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, details: ErrorDetails = {}) {
    const spec: ErrorSpec = ERRORS[code];
    super(details.message ?? spec.message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PowerplantError';
    this.code = code;
    this.retryable = spec.retryable;
    this.status = spec.status;
    this.field = details.field;
    this.retryAfterMs = details.retryAfterMs;
    this.data = details.data;
  }

  /** A plain object safe to serialise to a client or across a transport. */
  toJSON(): { code: ErrorCode; message: string; retryable: boolean; field?: string; retryAfterMs?: number; data?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.field === undefined ? {} : { field: this.field }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      ...(this.data === undefined ? {} : { data: this.data }),
    };
  }
}

/** Builds a catalogue error: `ppError('PP_ERR_NOT_FOUND', { message: 'no product 42' })`. */
export function ppError(code: ErrorCode, details?: ErrorDetails): PowerplantError {
  return new PowerplantError(code, details);
}

export function isPowerplantError(err: unknown, code?: ErrorCode): err is PowerplantError {
  return err instanceof PowerplantError && (code === undefined || err.code === code);
}

/**
 * Whether an error may be retried. Catalogue errors carry their own answer; any other error is
 * treated as not retryable unless it sets `retryable: true` itself (so foreign errors opt in).
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof PowerplantError) return err.retryable;
  if (typeof err === 'object' && err !== null && 'retryable' in err) {
    return (err as { retryable: unknown }).retryable === true;
  }
  return false;
}

/** Rebuilds a catalogue error from its JSON form (e.g. received over a transport). */
export function errorFromJSON(json: unknown): PowerplantError {
  if (typeof json === 'object' && json !== null && 'code' in json) {
    const j = json as { code: unknown; message?: unknown; field?: unknown; retryAfterMs?: unknown; data?: unknown };
    if (typeof j.code === 'string' && Object.hasOwn(ERRORS, j.code)) {
      return new PowerplantError(j.code as ErrorCode, {
        ...(typeof j.message === 'string' ? { message: j.message } : {}),
        ...(typeof j.field === 'string' ? { field: j.field } : {}),
        ...(typeof j.retryAfterMs === 'number' ? { retryAfterMs: j.retryAfterMs } : {}),
        ...(typeof j.data === 'object' && j.data !== null ? { data: j.data as Record<string, unknown> } : {}),
      });
    }
  }
  return new PowerplantError('PP_ERR_INTERNAL', { message: 'malformed remote error', data: { received: typeof json } });
}

/** Throws PP_ERR_INVALID_ARGUMENT naming the argument when `ok` is false. For public API checks. */
export function requireArg(ok: boolean, field: string, message: string): asserts ok {
  if (!ok) throw new PowerplantError('PP_ERR_INVALID_ARGUMENT', { field, message: `${field}: ${message}` });
}

/** Internal invariant. A failure is a Powerplant bug, never a user's: it names the invariant. */
export function invariant(ok: boolean, what: string): asserts ok {
  if (!ok) throw new PowerplantError('PP_ERR_INTERNAL', { message: `invariant violated: ${what}` });
}
