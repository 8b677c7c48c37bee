/**
 * The lock contract: leases with a TTL and a fencing token, on the store (store.ts) or on Redis
 * (redis.ts). Both pass one conformance suite (test/tx/locks.conformance.ts).
 *
 * A lease is a time-bounded lock: it lapses at `expiresAtMs` unless renewed, after which anyone may
 * take the name. A holder cannot know it was paused past its lease (a GC pause, SIGSTOP, a slow
 * disk), so a lease alone never makes a write safe: every acquisition of a name gets a FENCING
 * TOKEN, strictly greater than every token handed out for that name before, and writes that must
 * not come from a stale holder carry it (fence.ts refuses a token lower than the highest seen).
 *
 * Errors (catalogue): PP_ERR_LOCK_HELD (another owner holds a live lease; retryable, with
 * retryAfterMs = the time to its expiry), PP_ERR_NOT_HOLDER (renew / release by someone who no
 * longer holds it: expired, taken over, released, or never held), PP_ERR_FENCED (fence.ts: a
 * stale token's write). Bad arguments are PP_ERR_INVALID_ARGUMENT naming the argument.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ppError, requireArg } from '../../errors/index.js';

/** A held lock. Immutable: `renew` returns a new one. */
export interface Lease {
  readonly name: string;
  /** Who holds it (given to `acquire`, or generated per acquisition). */
  readonly owner: string;
  /** The fencing token of this acquisition: strictly increasing per name, >= 1. */
  readonly token: number;
  /**
   * Epoch ms (this process's clock) until which the lease is held, measured from just BEFORE the
   * request that took or renewed it, so it never overstates what the service granted.
   */
  readonly expiresAtMs: number;
}

export interface AcquireOptions {
  /** How long the lease lasts unless renewed, ms (1..ttlMsMax). */
  readonly ttlMs: number;
  /** Holder id (1..OWNER_CHARS_MAX characters). Default: `<host>-<pid>-<random>`, new per call. */
  readonly owner?: string;
  /**
   * How long to wait for a held lock, ms (0..waitMsMax). Default 0: PP_ERR_LOCK_HELD at once. The
   * wait polls with capped exponential backoff and jitter (never past the holder's expiry).
   */
  readonly waitMs?: number;
}

export interface LockService {
  /** 'store' or 'redis'. */
  readonly kind: string;
  /** Takes the lock with a new fencing token, or PP_ERR_LOCK_HELD once `waitMs` ran out. */
  acquire(name: string, options: AcquireOptions): Promise<Lease>;
  /** Extends a live lease to `ttlMs` from now (same token); PP_ERR_NOT_HOLDER when it is not held by it. */
  renew(lease: Lease, ttlMs: number): Promise<Lease>;
  /** Gives the lock up; PP_ERR_NOT_HOLDER when the lease is not the live one (expired, taken over, released). */
  release(lease: Lease): Promise<void>;
  /** The live lease on `name`, if any (what the service recorded; for status pages and tests). */
  holder(name: string): Promise<Lease | undefined>;
  /** Releases what the service owns (a Redis connection it opened; nothing for the store). */
  close(): Promise<void>;
}

export interface LockLimits {
  /** Longest lease, ms. Default 1 hour. */
  readonly ttlMsMax?: number;
  /** Longest `waitMs` an acquire may ask for, ms. Default 60 s. */
  readonly waitMsMax?: number;
  /** Cap of the backoff between polls while waiting, ms. Default 100. */
  readonly pollMsMax?: number;
}

export const LOCK_DEFAULTS = { ttlMsMax: 3_600_000, waitMsMax: 60_000, pollMsMax: 100 } as const;
/** The bound on the configurable bounds (24 days: setTimeout's range). */
export const LOCK_MS_MAX_LIMIT = 2_000_000_000;
export const LOCK_NAME_CHARS_MAX = 200;
export const OWNER_CHARS_MAX = 200;
/** Conflicting read-modify-write rounds (someone else wrote in between) before giving up. */
export const CAS_ROUNDS_MAX = 64;

export function resolveLimits(given: LockLimits | undefined): Required<LockLimits> {
  const l = { ...LOCK_DEFAULTS, ...(given ?? {}) };
  for (const k of ['ttlMsMax', 'waitMsMax', 'pollMsMax'] as const) {
    requireArg(Number.isSafeInteger(l[k]) && l[k] >= 1 && l[k] <= LOCK_MS_MAX_LIMIT, k, `must be an integer in [1, ${LOCK_MS_MAX_LIMIT}]`);
  }
  return l;
}

// Characters a name or owner may not contain: C0 controls and DEL (names land in keys and logs).
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function checkName(name: unknown, field = 'name'): asserts name is string {
  requireArg(typeof name === 'string' && name.length > 0 && name.length <= LOCK_NAME_CHARS_MAX, field, `must be a string of 1..${LOCK_NAME_CHARS_MAX} characters`);
  requireArg(!CONTROL_RE.test(name) && !LONE_SURROGATE_RE.test(name), field, 'must not contain control characters or lone surrogates');
}

export function checkOwner(owner: unknown, field = 'owner'): asserts owner is string {
  requireArg(typeof owner === 'string' && owner.length > 0 && owner.length <= OWNER_CHARS_MAX, field, `must be a string of 1..${OWNER_CHARS_MAX} characters`);
  requireArg(!CONTROL_RE.test(owner) && !LONE_SURROGATE_RE.test(owner), field, 'must not contain control characters or lone surrogates');
}

export function checkTtl(ttlMs: unknown, limits: Required<LockLimits>, field = 'ttlMs'): asserts ttlMs is number {
  requireArg(Number.isSafeInteger(ttlMs) && (ttlMs as number) >= 1 && (ttlMs as number) <= limits.ttlMsMax, field, `must be an integer in [1, ${limits.ttlMsMax}] (ttlMsMax)`);
}

/** Validates acquire's arguments; returns the owner and the wait. */
export function checkAcquire(name: unknown, options: unknown, limits: Required<LockLimits>): { owner: string; ttlMs: number; waitMs: number } {
  checkName(name);
  requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object with ttlMs');
  const o = options as AcquireOptions;
  checkTtl(o.ttlMs, limits, 'options.ttlMs');
  const waitMs = o.waitMs ?? 0;
  requireArg(Number.isSafeInteger(waitMs) && waitMs >= 0 && waitMs <= limits.waitMsMax, 'options.waitMs', `must be an integer in [0, ${limits.waitMsMax}] (waitMsMax)`);
  const owner = o.owner ?? defaultOwner();
  checkOwner(owner, 'options.owner');
  return { owner, ttlMs: o.ttlMs, waitMs };
}

export function checkLease(lease: unknown): asserts lease is Lease {
  requireArg(typeof lease === 'object' && lease !== null, 'lease', 'must be a Lease from acquire');
  const l = lease as Lease;
  checkName(l.name, 'lease.name');
  checkOwner(l.owner, 'lease.owner');
  requireArg(Number.isSafeInteger(l.token) && l.token >= 1, 'lease.token', 'must be an integer >= 1');
}

export function defaultOwner(): string {
  return `${hostname().slice(0, 60)}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export function heldError(name: string, expiresAtMs: number, nowMs: number): Error {
  const retryAfterMs = Math.max(1, expiresAtMs - nowMs);
  return ppError('PP_ERR_LOCK_HELD', { message: `lock "${name}" is held by another owner (for ${retryAfterMs} ms more at most)`, retryAfterMs, data: { name } });
}

export function notHolderError(lease: Lease, why: string): Error {
  return ppError('PP_ERR_NOT_HOLDER', { message: `lock "${lease.name}": ${lease.owner} (token ${lease.token}) does not hold it: ${why}`, data: { name: lease.name, token: lease.token } });
}

/**
 * Polls `attempt` until it returns a lease or the wait runs out. `attempt` returns the held lock's
 * expiry (epoch ms) when it is held; between polls: capped exponential backoff with full jitter,
 * never sleeping past the expiry or the deadline.
 */
export async function acquireWithWait(
  name: string,
  waitMs: number,
  pollMsMax: number,
  attempt: () => Promise<Lease | { heldUntilMs: number }>,
): Promise<Lease> {
  const deadline = Date.now() + waitMs;
  let backoffMs = 2;
  for (;;) {
    const r = await attempt();
    if ('token' in r) return r;
    const now = Date.now();
    if (now >= deadline) throw heldError(name, r.heldUntilMs, now);
    const cap = Math.min(backoffMs, pollMsMax, deadline - now, Math.max(1, r.heldUntilMs - now));
    await new Promise((res) => setTimeout(res, 1 + Math.floor(Math.random() * cap)));
    backoffMs = Math.min(backoffMs * 2, pollMsMax);
  }
}
