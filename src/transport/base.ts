/**
 * The transport contract: how nodes talk. Every implementation (one file each: `inproc.ts`,
 * `nats.ts`) passes the same conformance suite (test/transport/conformance.ts); `index.ts`
 * resolves a URL (`inproc://name`, `nats://host:port`) to an implementation.
 *
 * Two patterns:
 *  - request/reply addressed to ONE node (the caller's balancer already chose it). The remaining
 *    deadline travels with the request as a duration (`timeoutMs`): peers do not share a clock.
 *  - events on a topic: a subscriber with a `group` shares the topic with the other members of
 *    that group (each event goes to one of them, like NATS queue groups); a subscriber without a
 *    group gets every event (broadcast).
 *
 * Errors cross a transport as catalogue errors (`PowerplantError`, rebuilt with `errorFromJSON`),
 * so the caller's retry logic sees the same `code` and `retryable` whatever the transport.
 */
import type { PowerplantError } from '../errors/index.js';

/** Request metadata carried next to the params. Small and flat: it is encoded on every call. */
export interface CallMeta {
  /** Correlates logs across hops (the gateway sets it from `x-request-id`). */
  requestId?: string;
  /** The node that made the call (set by the runtime). */
  callerNodeId?: string;
}

/**
 * Serves one request. Positional arguments rather than an object so the NATS receive path does
 * not allocate a wrapper per request. Resolve with the result; reject with a catalogue error.
 */
export type RequestHandler = (action: string, params: unknown, timeoutMs: number, meta: CallMeta | undefined) => Promise<unknown>;

/** Receives one event. Must not throw (a throw is caught and counted as `eventHandlerErrors`). */
export type EventHandler = (payload: unknown, topic: string) => void;

export type Unsubscribe = () => void;

export interface TransportStats {
  requestsSent: number;
  requestsReceived: number;
  repliesReceived: number;
  eventsPublished: number;
  eventsReceived: number;
  /** Physical messages (NATS messages; in-process: deliveries). Less than requests when batching works. */
  framesSent: number;
  framesReceived: number;
  /** Frames or envelopes that failed to decode or had a wrong shape: dropped, never thrown. */
  droppedMalformed: number;
  /** Frames with an envelope version this node does not speak: dropped. */
  droppedUnknownVersion: number;
  /** Replies for calls that had already timed out or been abandoned. */
  droppedLateReplies: number;
  timeouts: number;
  eventHandlerErrors: number;
  /** Calls waiting for a reply now. */
  pendingCalls: number;
}

export interface Transport {
  readonly kind: 'inproc' | 'nats';
  readonly nodeId: string;
  /** Isolates clusters sharing one bus or NATS server (subject prefix). */
  readonly namespace: string;
  /** Largest encoded params/result/event payload accepted, in bytes (PP_ERR_TOO_LARGE beyond). */
  readonly payloadBytesMax: number;

  connect(): Promise<void>;
  /** Sets the handler for requests addressed to this node (one per transport). */
  serve(handler: RequestHandler): void;
  /**
   * Sends a request to `targetNodeId` and resolves with its result. Rejects with the remote
   * catalogue error, PP_ERR_TIMEOUT after `timeoutMs`, PP_ERR_BULKHEAD_FULL when `pendingCallsMax`
   * are already waiting, PP_ERR_UNAVAILABLE when the target is known to be gone.
   */
  request(targetNodeId: string, action: string, params: unknown, timeoutMs: number, meta?: CallMeta): Promise<unknown>;
  /** Publishes an event on `topic` (fire and forget; delivery is at most once). */
  publish(topic: string, payload: unknown): void;
  /** Subscribes to `topic`; with `group`, one member of the group receives each event. */
  subscribe(topic: string, handler: EventHandler, group?: string): Unsubscribe;
  /** Resolves once the subscriptions and publishes made so far are in effect at the broker. */
  flush(): Promise<void>;
  /** Rejects every pending call to `nodeId` with `err` (a dead node will never answer). Returns how many. */
  abandonCallsTo(nodeId: string, err: PowerplantError): number;
  stats(): TransportStats;
  /** Stops serving, rejects pending calls with PP_ERR_SHUTTING_DOWN and disconnects. Idempotent. */
  close(): Promise<void>;
}

export interface TransportOptions {
  nodeId: string;
  /** Default 'default'. Letters, digits, '_' and '-'. */
  namespace?: string;
  /** Default 1 MiB (NATS's default max_payload). */
  payloadBytesMax?: number;
  /** Calls waiting for replies at most. Default 10,000. */
  pendingCallsMax?: number;
  /** Resolution of the shared deadline sweep. Default 5 ms (a call times out at most this late). */
  timerTickMs?: number;
  /** @deprecated use payloadBytesMax */
  maxPayloadBytes?: number;
  /** @deprecated use pendingCallsMax */
  maxPendingCalls?: number;
}

/** The deprecated names of TransportOptions (read through util's renamedOptions). */
export const TRANSPORT_RENAMED = { payloadBytesMax: 'maxPayloadBytes', pendingCallsMax: 'maxPendingCalls' } as const;

export function newStats(): TransportStats {
  return {
    requestsSent: 0, requestsReceived: 0, repliesReceived: 0, eventsPublished: 0, eventsReceived: 0, framesSent: 0, framesReceived: 0,
    droppedMalformed: 0, droppedUnknownVersion: 0, droppedLateReplies: 0, timeouts: 0, eventHandlerErrors: 0, pendingCalls: 0,
  };
}

const TOKEN_RE = /^[A-Za-z0-9_-]{1,128}$/;
const TOPIC_RE = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;

/** Node ids, namespaces and groups become NATS subject tokens: no dots, spaces or wildcards. */
export function isToken(s: string): boolean {
  return TOKEN_RE.test(s);
}

/** Topics may be dotted (`order.created`), never wildcards. */
export function isTopic(s: string): boolean {
  return s.length <= 256 && TOPIC_RE.test(s);
}

export const DEFAULT_PAYLOAD_BYTES_MAX = 1024 * 1024;
export const DEFAULT_PENDING_CALLS_MAX = 10_000;
