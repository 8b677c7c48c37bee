/**
 * The invalidation-bus contract: how a node tells the others to drop keys from their L1.
 * Delivery is at most once and unordered across publishers (Redis pub/sub, NATS core); what a
 * lost message costs is bounded by the entry TTL, and a bus that reconnects tells the cache
 * (`onReconnect`), which then clears its L1 (it may have missed invalidations while cut off).
 * One file per implementation (redis.ts, transport.ts); index.ts resolves a URL or a Transport.
 */

export interface InvalidationMessage {
  /** The node that published it (its own messages are ignored). */
  readonly origin: string;
  readonly namespace: string;
  readonly keys?: readonly string[];
  readonly tags?: readonly string[];
  /** The whole namespace. */
  readonly clear?: boolean;
}

export interface InvalidationBus {
  readonly kind: string;
  /** Starts delivering messages to `handler`; `onReconnect` after a connection was lost and regained. */
  start(handler: (msg: InvalidationMessage) => void, onReconnect: () => void): Promise<void>;
  /** Resolves once the message was handed to the broker (not when others applied it). */
  publish(msg: InvalidationMessage): Promise<void>;
  close(): Promise<void>;
}

/** Validates a decoded message's shape (anything else on the channel is dropped). */
export function isInvalidationMessage(m: unknown): m is InvalidationMessage {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  const strings = (v: unknown): boolean => v === undefined || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
  return typeof o.origin === 'string' && typeof o.namespace === 'string' && strings(o.keys) && strings(o.tags) && (o.clear === undefined || typeof o.clear === 'boolean');
}
