/**
 * notifier: consumes the order-created topic (fed by the orders table's outbox, see index.ts) with
 * a consumer group and writes one notification per order. The notification id is derived from
 * the orderId (`n` + its hex), so a redelivered or re-published event stores it once.
 */
import { Type } from '@sinclair/typebox';
import { action, defineService, isPowerplantError, type queue as queueLib } from 'powerplant';
import { Cursor, DEFAULT_LIMIT, Limit, Notification, PageOf, UserId, type NotificationRow } from '../schema.js';
import { rethrowCursor, type ShopDeps } from './deps.js';

export const NotificationPage = PageOf(Notification);

/** The order-created event's payload (what the outbox route publishes). */
export interface OrderCreatedEvent {
  readonly userId: string;
  readonly orderId: string;
  readonly totalCents: number;
  readonly createdAt: number;
}

export function notificationIdOf(orderId: string): string {
  return 'n' + orderId.slice(1);
}

export function notifierService(d: ShopDeps) {
  const notifications = d.tables.notifications;
  const topic = d.topics.orderCreated;
  let sub: queueLib.Subscription | undefined;

  return defineService({
    name: 'notifier',
    actions: {
      list: action({
        params: Type.Object({ userId: UserId, limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
        result: NotificationPage,
        idempotent: true,
        handler: async (_ctx, { userId, limit = DEFAULT_LIMIT, cursor }) => {
          const page = await notifications
            .query({ index: 'recent', where: { userId }, order: 'desc', limit, ...(cursor === undefined ? {} : { cursor }) })
            .catch(rethrowCursor);
          const items = page.items.map(({ row: r }) => ({ id: r.id, kind: r.kind, orderId: r.orderId, totalCents: r.totalCents, createdAt: r.createdAt }));
          return page.cursor === undefined ? { items } : { items, cursor: page.cursor };
        },
      }),
    },
    async started(ctx) {
      sub = await d.queue.subscribe<OrderCreatedEvent>(topic, {
        group: 'notifier',
        concurrency: 64,
        onError: (err) => ctx.logger.warn({ err, topic }, 'notifier: consumer error'),
        handler: async (msg) => {
          const e = msg.value;
          const row: NotificationRow = { userId: e.userId, id: notificationIdOf(e.orderId), kind: 'order-created', orderId: e.orderId, totalCents: e.totalCents, createdAt: e.createdAt };
          try {
            await notifications.insert(row);
          } catch (err) {
            if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err; // stored already: a redelivery
          }
        },
      });
    },
    async stopped() {
      await sub?.close();
      sub = undefined;
    },
  });
}
