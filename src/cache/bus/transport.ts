/**
 * Invalidation bus over a Powerplant `Transport` (src/transport): NATS core pub/sub
 * (`nats://`) or the in-process bus. The cache publishes on one topic (default `cache.inv`)
 * without a group, so every node receives every message. The transport's own namespace
 * separates clusters. The Transport interface does not report reconnects, so this bus never
 * calls `onReconnect` (NATS buffers publishes across a short reconnect; lost messages are bounded
 * by the entry TTL).
 */
import type { Transport, Unsubscribe } from '../../transport/index.js';
import { isInvalidationMessage, type InvalidationBus, type InvalidationMessage } from './base.js';

export class TransportBus implements InvalidationBus {
  readonly kind: string;
  private unsubscribe: Unsubscribe | undefined;
  malformed = 0;

  constructor(private readonly transport: Transport, readonly topic = 'cache.inv') {
    this.kind = `transport:${transport.kind}`;
  }

  async start(handler: (msg: InvalidationMessage) => void): Promise<void> {
    this.unsubscribe = this.transport.subscribe(this.topic, (payload) => {
      if (isInvalidationMessage(payload)) handler(payload);
      else this.malformed++;
    });
    await this.transport.flush();
  }

  publish(msg: InvalidationMessage): Promise<void> {
    this.transport.publish(this.topic, msg);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    // The transport belongs to the caller (the service node): not closed here.
    return Promise.resolve();
  }
}
