/**
 * orders: place (prices from catalog, stock reserved per SKU through inventory, released again
 * if a later step fails), list (a user's recent orders through the `recent` index, one shard),
 * get. The order-created event is not published here: index.ts runs a transactional outbox over
 * the orders table's change feed, so an order row and its event commit together or not at all.
 *
 * Idempotency: the orderId is derived from (userId, idempotencyKey) — sha256 -> `o` + 20 hex — and
 * the order row is inserted with "must not exist"; reservations are idempotent per orderId. So
 * placing the same (userId, idempotencyKey) twice returns the first order and reserves once. The
 * action REQUIRES an idempotencyKey (the gateway route fills a random one per HTTP request when
 * the client sent none), which is what makes `idempotent: true` true: a call retried after a
 * timeout on another instance carries the same key, hence the same order.
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { action, defineService, isPowerplantError, PowerplantError, ppError, type Context } from 'powerplant';
import { AnyId, Order, OrderId, PageOf, Text, UserId, type Order as OrderT, type OrderItem, type OrderRow } from '../schema.js';
import { recentPage, UserPageParams, type ShopDeps } from './deps.js';

export const OrderPage = PageOf(Order);

export function orderIdOf(userId: string, idempotencyKey: string): string {
  return 'o' + createHash('sha256').update(userId).update('\n').update(idempotencyKey).digest('hex').slice(0, 20);
}

function toOrder(r: OrderRow): OrderT {
  return { orderId: r.orderId, userId: r.userId, items: r.items, totalCents: r.totalCents, status: r.status, createdAt: r.createdAt };
}

/** An error from item `i`'s call, re-labelled with the item's field (`params.items.N.sku`). */
function itemError(err: unknown, i: number): unknown {
  if (!(err instanceof PowerplantError)) return err;
  if (err.code === 'PP_ERR_NOT_FOUND') return ppError('PP_ERR_NOT_FOUND', { field: `params.items.${i}.sku`, message: `params.items.${i}.sku: ${err.message.replace(/^params\.\w+: /, '')}` });
  if (err.code === 'PP_ERR_CONFLICT') return ppError('PP_ERR_CONFLICT', { field: `params.items.${i}.qty`, message: err.message });
  return err;
}

const PlaceParams = Type.Object(
  {
    userId: UserId,
    items: Type.Array(Type.Object({ sku: AnyId, qty: Type.Integer({ minimum: 1, maximum: 100 }) }, { additionalProperties: false }), { minItems: 1, maxItems: 20 }),
    idempotencyKey: Text({ minLength: 1, maxLength: 64 }),
  },
  { additionalProperties: false },
);

export function ordersService(d: ShopDeps) {
  const orders = d.tables.orders;

  async function place(ctx: Context, userId: string, items: readonly { sku: string; qty: number }[], idempotencyKey: string): Promise<OrderT> {
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.sku)) throw ppError('PP_ERR_VALIDATION', { field: `params.items.${i}.sku`, message: `params.items.${i}.sku: '${it.sku}' appears twice` });
      seen.add(it.sku);
    });
    const orderId = orderIdOf(userId, idempotencyKey);
    const existing = await orders.get({ userId, orderId });
    if (existing !== undefined) return toOrder(existing.row);

    // Prices (through the catalog's cache), all items at once.
    const products = await Promise.allSettled(items.map((it) => ctx.call('catalog.get', { id: it.sku })));
    products.forEach((r, i) => {
      if (r.status === 'rejected') throw itemError(r.reason, i);
    });
    const lines: OrderItem[] = items.map((it, i) => ({
      sku: it.sku,
      qty: it.qty,
      priceCents: (products[i] as PromiseFulfilledResult<{ priceCents: number }>).value.priceCents,
    }));

    // Reserve every SKU (in parallel: each is its own row, usually on its own shard); on any
    // failure give back what was taken and report the first failing item.
    const reserved = await Promise.allSettled(lines.map((l) => ctx.call('inventory.reserve', { sku: l.sku, qty: l.qty, orderId })));
    const failed = reserved.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) {
      await releaseAll(ctx, lines, reserved, orderId);
      throw itemError((reserved[failed] as PromiseRejectedResult).reason, failed);
    }

    const row: OrderRow = { userId, orderId, items: lines, totalCents: lines.reduce((s, l) => s + l.qty * l.priceCents, 0), status: 'placed', createdAt: Date.now() };
    try {
      await orders.insert(row);
    } catch (err) {
      if (isPowerplantError(err, 'PP_ERR_CONFLICT')) {
        // A concurrent or earlier attempt with the same key wrote it first: that one is the order
        // (reservations are per orderId, so nothing was taken twice).
        const first = await orders.get({ userId, orderId });
        if (first !== undefined) return toOrder(first.row);
      }
      await releaseAll(ctx, lines, reserved, orderId);
      throw err;
    }
    return toOrder(row);
  }

  async function releaseAll(ctx: Context, lines: readonly OrderItem[], reserved: readonly PromiseSettledResult<unknown>[], orderId: string): Promise<void> {
    await Promise.all(
      lines.map(async (l, i) => {
        if (reserved[i]!.status !== 'fulfilled') return;
        try {
          await ctx.call('inventory.release', { sku: l.sku, qty: l.qty, orderId });
        } catch (err) {
          ctx.logger.error({ err, sku: l.sku, orderId }, 'orders: releasing a reservation failed (stock stays reserved)');
        }
      }),
    );
  }

  return defineService({
    name: 'orders',
    actions: {
      place: action({
        params: PlaceParams,
        result: Order,
        idempotent: true,
        timeoutMs: 10_000,
        handler: (ctx, p) => place(ctx, p.userId, p.items, p.idempotencyKey),
      }),
      list: action({
        params: UserPageParams,
        result: OrderPage,
        idempotent: true,
        handler: (_ctx, p) => recentPage(orders, p, toOrder),
      }),
      get: action({
        params: Type.Object({ userId: UserId, orderId: AnyId }),
        result: Order,
        idempotent: true,
        handler: async (_ctx, { userId, orderId }) => {
          const o = OrderIdRe.test(orderId) ? await orders.get({ userId, orderId }) : undefined;
          if (o === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.id', message: `params.id: no order '${orderId}'` });
          return toOrder(o.row);
        },
      }),
    },
  });
}

const OrderIdRe = new RegExp(OrderId.pattern!);
