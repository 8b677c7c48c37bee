/**
 * Transports: resolve a URL to an implementation.
 *     inproc://            the default in-process bus      inproc://<name>  a named bus
 *     nats://host:port     NATS (comma-separated servers: nats://a:4222,b:4222)
 */
import { requireArg } from '../errors/index.js';
import type { Transport, TransportOptions } from './base.js';
import { InprocTransport } from './inproc.js';
import { NatsTransport, type NatsTransportOptions } from './nats.js';

export type { CallMeta, EventHandler, RequestHandler, Transport, TransportOptions, TransportStats, Unsubscribe } from './base.js';
export { DEFAULT_PAYLOAD_BYTES_MAX, DEFAULT_PENDING_CALLS_MAX, isToken, isTopic } from './base.js';
export { ENVELOPE_VERSION, decodeFrame, buildFrame, encodeRequest, encodeOk, encodeError, encodeEvent } from './codec.js';
export type { FrameVisitor, DecodeResult } from './codec.js';
export { InprocTransport } from './inproc.js';
export { NatsTransport } from './nats.js';
export type { NatsTransportOptions } from './nats.js';
export { PendingCalls } from './pending.js';

/** Builds the transport a URL names. */
export function createTransport(url: string, options: NatsTransportOptions): Transport {
  if (url.startsWith('inproc://')) {
    const bus = url.slice('inproc://'.length);
    return new InprocTransport(bus === '' ? 'default' : bus, options);
  }
  if (url.startsWith('nats://')) {
    const servers = url.split(',').map((s) => (s.startsWith('nats://') ? s : `nats://${s}`));
    return new NatsTransport(servers, options);
  }
  requireArg(false, 'transport', `unknown transport URL '${url}' (expected inproc://[bus] or nats://host:port)`);
}

export type { TransportOptions as BaseTransportOptions };
