/**
 * notifier: consumes the order-created topic (fed by the orders table's outbox, see index.ts) with
 * a consumer group declared on the service and writes one notification per order. The notification id is derived from
 * the orderId (`n` + its hex), so a redelivered or re-published event stores it once.
 */
import { action, defineService } from 'powerplant';
import { Notification, PageOf, type NotificationRow } from '../schema.js';
import { consumeIntoTable, recentPage, UserPageParams, type ShopDeps } from './deps.js';

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

  return defineService({
    name: 'notifier',
    actions: {
      list: action({
        params: UserPageParams,
        result: NotificationPage,
        idempotent: true,
        handler: (_ctx, p) => recentPage(notifications, p, (r) => ({ id: r.id, kind: r.kind, orderId: r.orderId, totalCents: r.totalCents, createdAt: r.createdAt })),
      }),
    },
    consumers: {
      [topic]: consumeIntoTable<OrderCreatedEvent, NotificationRow>(d.queue, 'notifier', notifications,
        (e) => ({ userId: e.userId, id: notificationIdOf(e.orderId), kind: 'order-created', orderId: e.orderId, totalCents: e.totalCents, createdAt: e.createdAt })),
    },
  });
}
