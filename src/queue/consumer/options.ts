/**
 * What a subscriber configures: the options of `queue.subscribe`, their defaults, and their
 * validation (a typed PP_ERR_INVALID_ARGUMENT naming the field, before anything starts).
 */
import { requireArg } from '../../errors/index.js';
import { backoffDelayMs } from '../../resilience/index.js';
import { renamedOptions } from '../../util/index.js';
import type { ReadFrom } from '../engines/base.js';
import type { Delivery } from './delivery.js';

export type Backoff =
  | { readonly baseDelayMs: number; readonly delayMsMax: number }
  | readonly number[]
  | { readonly baseDelayMs: number; /** @deprecated use delayMsMax */ readonly maxDelayMs: number };

export interface SubscribeOptions<T = unknown> {
  /** Consumer group: each group gets every message; members of a group share partitions. */
  readonly group: string;
  /** Resolves = ack; throws/rejects = failure (redelivered with backoff, then dead-lettered). */
  readonly handler: (msg: Delivery<T>) => unknown;
  /** Handlers running at once in this member. Default 16, max 10000. */
  readonly concurrency?: number;
  /** A delivery not settled within this is failed and redelivered, in ms. Default 30000. */
  readonly ackWaitMs?: number;
  /** Deliveries of one record before it is dead-lettered. Default 5, max 1000. */
  readonly deliveriesMax?: number;
  /** Delay before a redelivery: exponential with full jitter, or a list (last entry repeats). Default {100, 30000}. */
  readonly backoff?: Backoff;
  /** Topic receiving records that failed deliveriesMax times (created when missing); false = drop them (reported via onError). Default `<topic>-dlq`. */
  readonly deadLetter?: string | false;
  /** Where a group without a committed offset starts. Default 'earliest'. */
  readonly from?: ReadFrom;
  /** Records read ahead per partition (window bound). Default 1024, max 100000. */
  readonly readAheadMax?: number;
  /** Membership heartbeat, lease renewal and offset commit period, in ms. Default 500. */
  readonly heartbeatMs?: number;
  /**
   * A member silent this long loses its partitions (the lease), in ms; also how long a crashed
   * member's partitions wait before another member takes them. Default 3000 (or 6 heartbeats when
   * heartbeatMs is over 500); >= 3 heartbeats.
   */
  readonly sessionTimeoutMs?: number;
  /** Errors that do not stop the subscription (dead letters dropped, commit failures, engine errors). */
  readonly onError?: (err: unknown) => void;
  /**
   * For a consumer that keeps its input offsets with its results (a stream job commits them in
   * the same store transaction): called when this member takes a partition over, before its first
   * record is read; resolves to the offset to read from, or undefined for the group's committed
   * offset. A rejection gives the partition back (claimed again next heartbeat) and is reported
   * through onError.
   */
  readonly onAssign?: (partition: number) => Promise<number | undefined> | number | undefined;
  /**
   * 'key' (default): records with the same key are handled one at a time in offset order, other
   * records concurrently. 'partition': every record of a partition one at a time, in offset order
   * (a consumer whose state depends on the partition's order, such as a stream job's watermark).
   */
  readonly order?: 'key' | 'partition';
  /** Called once for each partition this member gives up (released, lost to another member, or closed), after its worker stopped. */
  readonly onRelease?: (partition: number) => void;
  /** @deprecated use deliveriesMax */
  readonly maxDeliver?: number;
}

export const SUBSCRIBE_DEFAULTS = {
  concurrency: 16,
  ackWaitMs: 30_000,
  deliveriesMax: 5,
  backoff: { baseDelayMs: 100, delayMsMax: 30_000 },
  readAheadMax: 1024,
  heartbeatMs: 500,
  sessionTimeoutMs: 3000,
} as const;

/** Heartbeats per session when sessionTimeoutMs is not given and heartbeatMs is longer than its default. */
const SESSION_HEARTBEATS = 6;

/** Subscribe options with the defaults applied and every value checked. */
export interface ResolvedSubscribeOptions {
  readonly group: string;
  readonly handler: (msg: Delivery<unknown>) => unknown;
  readonly concurrency: number;
  readonly ackWaitMs: number;
  readonly deliveriesMax: number;
  readonly backoff: Backoff;
  readonly deadLetter: string | false;
  readonly from: ReadFrom;
  readonly readAheadMax: number;
  readonly heartbeatMs: number;
  readonly sessionTimeoutMs: number;
  readonly onError: ((err: unknown) => void) | undefined;
  readonly onAssign: ((partition: number) => Promise<number | undefined> | number | undefined) | undefined;
  readonly onRelease: ((partition: number) => void) | undefined;
  readonly order: 'key' | 'partition';
}

const GROUP_RE = /^[A-Za-z0-9_-]{1,100}$/;

/** Applies the defaults and validates every option of a subscription to `topic`. */
export function resolveSubscribeOptions(topic: string, options: SubscribeOptions<unknown>): ResolvedSubscribeOptions {
  requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object');
  requireArg(typeof options.group === 'string' && GROUP_RE.test(options.group), 'group', 'must match [A-Za-z0-9_-]{1,100}');
  requireArg(typeof options.handler === 'function', 'handler', 'must be a function');
  const given = renamedOptions(options, { deliveriesMax: 'maxDeliver' });
  const o = { ...SUBSCRIBE_DEFAULTS, ...given, backoff: renamedBackoff(given.backoff ?? SUBSCRIBE_DEFAULTS.backoff) };
  if (options.sessionTimeoutMs === undefined && Number.isInteger(o.heartbeatMs)) o.sessionTimeoutMs = Math.max(SUBSCRIBE_DEFAULTS.sessionTimeoutMs, SESSION_HEARTBEATS * o.heartbeatMs);
  requireArg(o.order === undefined || o.order === 'key' || o.order === 'partition', 'order', "must be 'key' or 'partition'");
  requireArg(o.onAssign === undefined || typeof o.onAssign === 'function', 'onAssign', 'must be a function');
  requireArg(o.onRelease === undefined || typeof o.onRelease === 'function', 'onRelease', 'must be a function');
  requireArg(Number.isInteger(o.concurrency) && o.concurrency >= 1 && o.concurrency <= 10_000, 'concurrency', 'must be an integer in [1, 10000]');
  requireArg(Number.isInteger(o.ackWaitMs) && o.ackWaitMs >= 10 && o.ackWaitMs <= 86_400_000, 'ackWaitMs', 'must be an integer in [10, 86400000]');
  requireArg(Number.isInteger(o.deliveriesMax) && o.deliveriesMax >= 1 && o.deliveriesMax <= 1000, 'deliveriesMax', 'must be an integer in [1, 1000]');
  requireArg(Number.isInteger(o.readAheadMax) && o.readAheadMax >= 1 && o.readAheadMax <= 100_000, 'readAheadMax', 'must be an integer in [1, 100000]');
  requireArg(Number.isInteger(o.heartbeatMs) && o.heartbeatMs >= 10 && o.heartbeatMs <= 60_000, 'heartbeatMs', 'must be an integer in [10, 60000]');
  requireArg(Number.isInteger(o.sessionTimeoutMs) && o.sessionTimeoutMs >= 3 * o.heartbeatMs, 'sessionTimeoutMs', 'must be an integer >= 3 * heartbeatMs');
  checkBackoff(o.backoff);
  requireArg(o.deadLetter === undefined || o.deadLetter === false || (typeof o.deadLetter === 'string' && o.deadLetter !== topic), 'deadLetter', 'must be a topic name other than the topic itself, or false');
  return {
    group: o.group,
    handler: o.handler,
    concurrency: o.concurrency,
    ackWaitMs: o.ackWaitMs,
    deliveriesMax: o.deliveriesMax,
    backoff: o.backoff,
    deadLetter: o.deadLetter ?? `${topic}-dlq`,
    from: o.from ?? 'earliest',
    readAheadMax: o.readAheadMax,
    heartbeatMs: o.heartbeatMs,
    sessionTimeoutMs: o.sessionTimeoutMs,
    onError: o.onError,
    onAssign: o.onAssign,
    onRelease: o.onRelease,
    order: o.order ?? 'key',
  };
}

/** An exponential backoff under its deprecated name (maxDelayMs) in the current one (delayMsMax). */
function renamedBackoff(b: Backoff): Backoff {
  if (Array.isArray(b) || typeof b !== 'object' || b === null) return b;
  return renamedOptions(b as { baseDelayMs: number; delayMsMax?: number; maxDelayMs?: number }, { delayMsMax: 'maxDelayMs' }, 'backoff.') as Backoff;
}

function checkBackoff(b: unknown): void {
  if (Array.isArray(b)) {
    requireArg(b.length >= 1 && b.length <= 100 && b.every((x) => Number.isFinite(x) && x >= 0 && x <= 86_400_000), 'backoff', 'a list must hold 1..100 delays in [0, 86400000] ms');
    return;
  }
  const x = b as { baseDelayMs?: unknown; delayMsMax?: unknown } | null;
  requireArg(
    typeof x === 'object' && x !== null && typeof x.baseDelayMs === 'number' && typeof x.delayMsMax === 'number' && x.baseDelayMs >= 0 && x.delayMsMax >= x.baseDelayMs && x.delayMsMax <= 86_400_000,
    'backoff',
    'must be { baseDelayMs, delayMsMax } with 0 <= base <= max <= 86400000, or a list of delays',
  );
}

/** The delay before retry number `retryIndex` (0 = the first redelivery), in ms. */
export function backoffDelay(b: Backoff, retryIndex: number): number {
  if (Array.isArray(b)) return (b as readonly number[])[Math.min(retryIndex, b.length - 1)]!;
  const x = b as { baseDelayMs: number; delayMsMax: number };
  return backoffDelayMs(retryIndex, x.baseDelayMs, x.delayMsMax);
}
