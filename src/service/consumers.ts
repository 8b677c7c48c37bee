/**
 * The queue consumers a node's services declare (`consumers: { <topic>: consumer({...}) }`), tied
 * to the node's lifecycle: subscribed once the node runs, closed when it stops.
 *
 * WHEN. start(): after the `started` hooks (they set up what handlers need, as the hand-wired
 * consumers they replace did) and after the node is 'running' (a delivery can arrive before
 * `subscribe` resolves, and its handler must find the node as a request would: local actions
 * served, events delivered), but before the node announces itself, so a subscription that fails
 * unwinds a node the cluster has not heard of. stop(): after in-flight requests drained (their
 * handlers may still publish), before the `stopped` hooks (which may close what handlers use);
 * `Subscription.close()` waits, up to the consumer's ackWaitMs, for running handlers and commits.
 *
 * Handlers get a context like an event handler's (name = the topic, deadline = the node's call
 * timeout, capped by the consumer's ackWaitMs when it sets one: past it the delivery is redelivered
 * anyway). Errors that do not stop a subscription go to the declaration's `onError`, else to the
 * node's logger. service/ uses queue/ only through its types: the queue is the application's (it opens
 * and closes it); the node only subscribes.
 */
import type { Subscription } from '../queue/index.js';
import { CallContext, type ContextHost } from './context.js';
import type { Logger } from '../observe/index.js';
import type { AnyAction, AnyConsumer, ServiceDef } from './types.js';

interface Declared {
  service: string;
  topic: string;
  def: AnyConsumer;
}

export class Consumers {
  private readonly declared: Declared[] = [];
  private readonly open: Subscription[] = [];

  constructor(
    services: readonly ServiceDef<string, Record<string, AnyAction>>[],
    private readonly host: ContextHost,
    private readonly logger: Logger,
    private readonly callTimeoutMs: number,
  ) {
    for (const svc of services) {
      for (const [topic, def] of Object.entries(svc.consumers)) this.declared.push({ service: svc.name, topic, def });
    }
  }

  get size(): number {
    return this.declared.length;
  }

  /** Subscribes every declared consumer, in declaration order; on a failure, closes those opened and throws. */
  async start(): Promise<void> {
    for (const { service, topic, def } of this.declared) {
      const { queue, group = service, handler, onError, ...options } = def;
      const timeoutMs = def.ackWaitMs === undefined ? this.callTimeoutMs : Math.min(this.callTimeoutMs, def.ackWaitMs);
      const { host, logger } = this;
      try {
        this.open.push(await queue.subscribe(topic, {
          ...options,
          group,
          handler: (delivery) => handler(new CallContext(host, topic, performance.now() + timeoutMs, undefined, undefined), delivery),
          // Errors that do not stop the subscription (a dead letter dropped, a commit that failed):
          // the queue drops them unless told; a node logs them unless the declaration says otherwise.
          onError: onError ?? ((err: unknown) => logger.warn({ err, service, topic, group }, 'queue consumer error')),
        }));
      } catch (err) {
        this.logger.error({ err, service, topic }, 'consumer did not start');
        await this.close();
        throw err;
      }
    }
  }

  /** Closes every open subscription (at once; each waits for its running handlers); failures are logged. */
  async close(): Promise<void> {
    const subs = this.open.splice(0);
    const results = await Promise.allSettled(subs.map((s) => s.close()));
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.logger.error({ err: r.reason, topic: subs[i]?.topic, group: subs[i]?.group }, 'consumer did not close cleanly');
    });
  }
}
