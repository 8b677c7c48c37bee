/**
 * Invalidation bus on Redis pub/sub (`redis://`). One subscriber connection (ioredis resubscribes
 * after a reconnect; the cache then clears its L1, see base.ts) and one publisher connection that
 * fails fast while Redis is down. Messages are JSON on one channel per cache (`<prefix>inv`).
 */
import type { Redis } from 'ioredis';
import { redisClient } from '../tiers/index.js';
import { isInvalidationMessage, type InvalidationBus, type InvalidationMessage } from './base.js';

export interface RedisBusOptions {
  /** Channel name. Default 'pp:cache:inv'. */
  channel?: string;
  commandTimeoutMs?: number;
  reconnectDelayMsMax?: number;
  /** @deprecated use reconnectDelayMsMax */
  reconnectMaxMs?: number;
}

export class RedisBus implements InvalidationBus {
  readonly kind = 'redis';
  readonly channel: string;
  private readonly sub: Redis;
  private readonly pub: Redis;
  private readyOnce = false;
  private lost = false;
  /** Messages on the channel that were not invalidation messages (dropped). */
  malformed = 0;

  constructor(url: string, options: RedisBusOptions = {}) {
    this.channel = options.channel ?? 'pp:cache:inv';
    // The subscriber queues its SUBSCRIBE until connected; the publisher fails fast.
    this.sub = redisClient(url, { ...options, offlineQueue: true, name: 'pp-cache-bus-sub' });
    this.pub = redisClient(url, { ...options, name: 'pp-cache-bus-pub' });
  }

  async start(handler: (msg: InvalidationMessage) => void, onReconnect: () => void): Promise<void> {
    this.sub.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      let m: unknown;
      try {
        m = JSON.parse(text);
      } catch {
        this.malformed++;
        return;
      }
      if (isInvalidationMessage(m)) handler(m);
      else this.malformed++;
    });
    this.sub.on('close', () => {
      if (this.readyOnce) this.lost = true;
    });
    this.sub.on('ready', () => {
      if (this.lost) {
        this.lost = false;
        onReconnect();
      }
      this.readyOnce = true;
    });
    const subscribed = this.sub.subscribe(this.channel).catch(() => {});
    await Promise.all([this.sub.connect().catch(() => {}), this.pub.connect().catch(() => {})]);
    // Resolves once subscribed when Redis is up; when it is down the SUBSCRIBE stays queued.
    if (this.sub.status === 'ready') await subscribed;
  }

  async publish(msg: InvalidationMessage): Promise<void> {
    await this.pub.publish(this.channel, JSON.stringify(msg));
  }

  async close(): Promise<void> {
    await Promise.all([this.sub, this.pub].map(async (c) => {
      try {
        await c.quit();
      } catch {
        c.disconnect();
      }
    }));
  }
}
