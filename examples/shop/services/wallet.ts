/**
 * wallet: store credit. Every user has a wallet (made in the sign-up's transaction). A transfer
 * moves credit from the caller to another user in ONE platform transaction: both balances and the
 * transfer's record commit together — by two-phase commit when the two wallets are on different
 * shards (the table is partitioned by user) — so credit is never created, lost or moved twice.
 * The transfer id (default: one per HTTP request) makes a retried transfer a replay of the first.
 */
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { action, defineService, ppError } from 'powerplant';
import { Text, Transfer, UserId, Wallet } from '../schema.js';
import type { ShopDeps } from './deps.js';

export const TransferId = Text({ minLength: 1, maxLength: 64 });

export function walletService(d: ShopDeps) {
  const { wallets, transfers } = d.tables;
  return defineService({
    name: 'wallet',
    actions: {
      get: action({
        params: Type.Object({ userId: UserId }),
        result: Wallet,
        idempotent: true,
        handler: async (_ctx, { userId }) => {
          const w = await wallets.get(userId);
          if (w === undefined) throw ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: 'session token names no user' });
          return { userId, balanceCents: w.row.balanceCents };
        },
      }),
      transfer: action({
        params: Type.Object(
          { userId: UserId, toUserId: UserId, amountCents: Type.Integer({ minimum: 1, maximum: 100_000_000 }), transferId: Type.Optional(TransferId) },
          { additionalProperties: false },
        ),
        result: Transfer,
        idempotent: true,
        handler: async (_ctx, p) => {
          if (p.toUserId === p.userId) throw ppError('PP_ERR_VALIDATION', { field: 'params.toUserId', message: 'params.toUserId: a transfer goes to another user' });
          const transferId = p.transferId ?? `t${randomBytes(10).toString('hex')}`;
          return d.txs.run(async (tx) => {
            const done = await tx.get(transfers, { userId: p.userId, transferId });
            const from = await tx.get(wallets, p.userId);
            if (from === undefined) throw ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: 'session token names no user' });
            if (done !== undefined) {
              const t = done.row;
              if (t.toUserId !== p.toUserId || t.amountCents !== p.amountCents) {
                throw ppError('PP_ERR_CONFLICT', { field: 'params.transferId', message: 'params.transferId: already used for another transfer' });
              }
              return { transferId, from: t.userId, to: t.toUserId, amountCents: t.amountCents, balanceCents: from.row.balanceCents, createdAt: t.createdAt };
            }
            const to = await tx.get(wallets, p.toUserId);
            if (to === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.toUserId', message: `params.toUserId: no user '${p.toUserId}'` });
            if (from.row.balanceCents < p.amountCents) {
              throw ppError('PP_ERR_CONFLICT', { field: 'params.amountCents', message: `params.amountCents: ${p.amountCents} exceeds the balance (${from.row.balanceCents})` });
            }
            const balanceCents = from.row.balanceCents - p.amountCents;
            await tx.update(wallets, p.userId, { balanceCents });
            await tx.update(wallets, p.toUserId, { balanceCents: to.row.balanceCents + p.amountCents });
            const createdAt = Date.now();
            await tx.insert(transfers, { userId: p.userId, transferId, toUserId: p.toUserId, amountCents: p.amountCents, createdAt });
            return { transferId, from: p.userId, to: p.toUserId, amountCents: p.amountCents, balanceCents, createdAt };
          }, { retries: 200 });
        },
      }),
    },
  });
}
