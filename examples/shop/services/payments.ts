/**
 * payments: the shop's side of a card payment, in front of a SIMULATED provider (there is no real
 * one on this machine). The provider keeps one record per order (the `payments` table stands in
 * for its database) and behaves like a real one where it matters to the checkout:
 *  - every call is idempotent by order id: authorizing an order twice returns the first
 *    authorization, capturing or voiding twice is a no-op;
 *  - it takes time (`latencyMs`), declines some authorizations (`declineRate`: recorded, answered
 *    PP_ERR_PAYMENT_DECLINED, 402), times out on some calls (`timeoutRate`: nothing happens,
 *    PP_ERR_TIMEOUT) and "crashes" on some after acting (`crashRate`: the record is written, the
 *    answer lost, PP_ERR_UNAVAILABLE — a retry finds the record);
 *  - a void of an order never authorized records the void, so an authorization arriving late
 *    for it is refused (the checkout compensated already).
 * Which calls decline, time out or crash is decided by a hash of (seed, order id, operation, the
 * call's number for that order), so a run is reproducible given its seed.
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { action, defineService, isPowerplantError, ppError } from 'powerplant';
import { OrderId, PaymentId, UserId, type PaymentRow } from '../schema.js';
import type { PaymentsConfig, ShopDeps } from './deps.js';

export const DEFAULT_PAYMENTS: PaymentsConfig = { latencyMs: 0, declineRate: 0, timeoutRate: 0, crashRate: 0, seed: 1 };

const Payment = Type.Object({ paymentId: Type.String(), orderId: Type.String(), authId: Type.String(), state: Type.String(), amountCents: Type.Integer() });
/** Calls remembered per order for the draws (bounded: the oldest orders are forgotten). */
const CALLS_KEPT_MAX = 100_000;

export function paymentsService(d: ShopDeps) {
  const table = d.tables.payments;
  const cfg = d.payments;
  const calls = new Map<string, number>();

  /** Uniform in [0, 1) for this (order, operation)'s next call. */
  function draw(orderId: string, op: string): number {
    const k = `${orderId}:${op}`;
    const n = (calls.get(k) ?? 0) + 1;
    if (calls.size >= CALLS_KEPT_MAX) calls.delete(calls.keys().next().value!);
    calls.set(k, n);
    return createHash('sha256').update(`${cfg.seed}:${k}:${n}`).digest().readUInt32BE(0) / 2 ** 32;
  }

  async function provider(orderId: string, op: string): Promise<{ crash: boolean }> {
    if (cfg.latencyMs > 0) await new Promise((r) => setTimeout(r, cfg.latencyMs));
    if (draw(orderId, `${op}:timeout`) < cfg.timeoutRate) throw ppError('PP_ERR_TIMEOUT', { message: `payment provider: ${op} timed out` });
    return { crash: draw(orderId, `${op}:crash`) < cfg.crashRate };
  }

  const lost = (op: string): Error => ppError('PP_ERR_UNAVAILABLE', { message: `payment provider: connection reset during ${op}` });
  const view = (r: PaymentRow) => ({ paymentId: r.paymentId, orderId: r.orderId, authId: r.authId, state: r.state, amountCents: r.amountCents });

  /** Moves the record from one of `from` to `to` (compare-and-set); the record as it ends. */
  async function move(paymentId: string, from: readonly string[], to: string): Promise<PaymentRow | undefined> {
    for (let i = 0; i < 16; i++) {
      const cur = await table.get(paymentId);
      if (cur === undefined || !from.includes(cur.row.state)) return cur?.row;
      try {
        await table.update(paymentId, { state: to, updatedAt: Date.now() }, { version: cur.version });
        return { ...cur.row, state: to };
      } catch (err) {
        if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
      }
    }
    throw ppError('PP_ERR_UNAVAILABLE', { message: `payment ${paymentId} is contended, try again` });
  }

  return defineService({
    name: 'payments',
    actions: {
      authorize: action({
        params: Type.Object({ paymentId: PaymentId, orderId: OrderId, userId: UserId, amountCents: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }) }, { additionalProperties: false }),
        result: Payment,
        idempotent: true,
        handler: async (_ctx, p) => {
          const { crash } = await provider(p.paymentId, 'authorize');
          let row = (await table.get(p.paymentId))?.row;
          if (row === undefined) {
            const declined = draw(p.paymentId, 'authorize:decline') < cfg.declineRate;
            const fresh: PaymentRow = {
              paymentId: p.paymentId,
              orderId: p.orderId,
              userId: p.userId,
              amountCents: p.amountCents,
              state: declined ? 'declined' : 'authorized',
              authId: 'a' + createHash('sha256').update(`${cfg.seed}:${p.paymentId}`).digest('hex').slice(0, 16),
              updatedAt: Date.now(),
            };
            try {
              await table.insert(fresh);
              row = fresh;
            } catch (err) {
              if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
              row = (await table.get(p.paymentId))?.row;
              if (row === undefined) throw lost('authorize');
            }
          }
          if (crash) throw lost('authorize');
          if (row.state === 'declined') throw ppError('PP_ERR_PAYMENT_DECLINED', { message: 'the card was declined' });
          if (row.state === 'voided') throw ppError('PP_ERR_PAYMENT_DECLINED', { message: 'this payment was voided' });
          return view(row);
        },
      }),
      capture: action({
        params: Type.Object({ paymentId: PaymentId }, { additionalProperties: false }),
        result: Payment,
        idempotent: true,
        handler: async (_ctx, { paymentId }) => {
          const { crash } = await provider(paymentId, 'capture');
          const row = await move(paymentId, ['authorized'], 'captured');
          if (row === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.paymentId', message: `params.paymentId: no payment '${paymentId}'` });
          if (row.state !== 'captured') throw ppError('PP_ERR_CONFLICT', { message: `payment ${paymentId} is ${row.state}, it cannot be captured` });
          if (crash) throw lost('capture');
          return view(row);
        },
      }),
      void: action({
        params: Type.Object({ paymentId: PaymentId, orderId: OrderId, userId: UserId }, { additionalProperties: false }),
        result: Payment,
        idempotent: true,
        handler: async (_ctx, { paymentId, orderId, userId }) => {
          await provider(paymentId, 'void');
          let row = await move(paymentId, ['authorized'], 'voided');
          if (row === undefined) {
            // Never authorized (or the authorization was lost): record the void so a late one is refused.
            const tomb: PaymentRow = { paymentId, orderId, userId, amountCents: 0, state: 'voided', authId: '', updatedAt: Date.now() };
            await table.insert(tomb).catch((err: unknown) => {
              if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
            });
            row = (await table.get(paymentId))?.row ?? tomb;
            if (row.state === 'authorized') row = (await move(paymentId, ['authorized'], 'voided')) ?? row;
          }
          if (row.state === 'captured') throw ppError('PP_ERR_CONFLICT', { message: `payment ${paymentId} was captured; refunds are not modeled` });
          return view(row);
        },
      }),
      get: action({
        params: Type.Object({ paymentId: PaymentId }),
        result: Payment,
        idempotent: true,
        handler: async (_ctx, { paymentId }) => {
          const row = await table.get(paymentId);
          if (row === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.paymentId', message: `params.paymentId: no payment '${paymentId}'` });
          return view(row.row);
        },
      }),
    },
  });
}
