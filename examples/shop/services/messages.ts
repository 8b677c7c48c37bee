/**
 * messages: send (checks the recipient, publishes to the queue topic keyed by recipient with the
 * message id as dedup id; resolves once the queue holds it durably) and the inbox (a consumer
 * group, declared on the service, stores each message into the recipient's inbox: an insert, so a
 * redelivery stores it once).
 */
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { action, defineService, isPowerplantError, ppError } from 'powerplant';
import { Message, MessageId, PageOf, Text, UserId, type InboxRow, type Message as MessageT } from '../schema.js';
import { consumeIntoTable, recentPage, UserPageParams, type ShopDeps } from './deps.js';

export const MessagePage = PageOf(Message);

export function messagesService(d: ShopDeps) {
  const inbox = d.tables.inbox;
  const topic = d.topics.messages;

  return defineService({
    name: 'messages',
    actions: {
      send: action({
        params: Type.Object(
          { from: UserId, to: Type.String({ minLength: 1, maxLength: 64 }), text: Text({ minLength: 1, maxLength: 2000 }) },
          { additionalProperties: false },
        ),
        result: Type.Object({ messageId: MessageId }),
        handler: async (ctx, { from, to, text }) => {
          try {
            if (!/^u[0-9a-f]{12}$/.test(to)) throw ppError('PP_ERR_NOT_FOUND');
            await ctx.call('users.get', { userId: to });
          } catch (err) {
            if (isPowerplantError(err, 'PP_ERR_NOT_FOUND') || isPowerplantError(err, 'PP_ERR_VALIDATION')) {
              throw ppError('PP_ERR_NOT_FOUND', { field: 'params.to', message: `params.to: no user '${to}'` });
            }
            throw err;
          }
          const messageId = 'm' + randomBytes(10).toString('hex');
          const m: MessageT = { messageId, from, to, text, sentAt: Date.now() };
          await d.queue.publish(topic, m, { key: to, id: messageId });
          return { messageId };
        },
      }),
      inbox: action({
        params: UserPageParams,
        result: MessagePage,
        idempotent: true,
        handler: (_ctx, p) => recentPage(inbox, p, (r) => ({ messageId: r.messageId, from: r.from, to: r.to, text: r.text, sentAt: r.sentAt })),
      }),
    },
    consumers: {
      [topic]: consumeIntoTable<MessageT, InboxRow>(d.queue, 'inbox', inbox,
        (m) => ({ userId: m.to, messageId: m.messageId, from: m.from, to: m.to, text: m.text, sentAt: m.sentAt })),
    },
  });
}
