/**
 * orders: place (prices from catalog, then the checkout WORKFLOW of checkout.ts: stock, payment,
 * order row, capture, each step once), list (a user's recent orders through the `recent` index,
 * one shard), get. The order-created event is not published here: index.ts runs a transactional
 * outbox over the orders table's change feed, fed by the checkout's capture step.
 *
 * Idempotency: the orderId is derived from (userId, idempotencyKey) — sha256 -> `o` + 20 hex — and
 * the checkout workflow's id from the orderId, so the platform's workflows do the rest: starting
 * an id that exists runs nothing again, and every request with the key waits for that one
 * checkout's outcome (concurrent retries, a retry after a crash, a retry on another node). The
 * key is bound to the request's items (a fingerprint in the workflow's input): the same key with
 * other items is 409 naming params.idempotencyKey. A checkout that ended without an order (out of
 * stock, payment declined) is not remembered as the key's answer: the next request with the key
 * starts attempt n + 1 (workflow id `<orderId>.<n>`).
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { action, defineService, PowerplantError, ppError, type Context, type WorkflowDef } from 'powerplant';
import { AnyId, Order, OrderId, PageOf, Text, UserId, type Order as OrderT, type OrderItem, type OrderRow } from '../schema.js';
import { toOrder, type CheckoutInput, type CheckoutOutput } from './checkout.js';
import { recentPage, UserPageParams, type ShopDeps } from './deps.js';

export const OrderPage = PageOf(Order);

export function orderIdOf(userId: string, idempotencyKey: string): string {
  return 'o' + createHash('sha256').update(userId).update('\n').update(idempotencyKey).digest('hex').slice(0, 20);
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

/** Checkout attempts one key may have (each after one that ended without an order). */
const ATTEMPTS_MAX = 50;
/** How long a request waits for its checkout (the action's own timeout is 10 s). */
const CHECKOUT_WAIT_MS = 9_000;
const ENDED_WITHOUT_ORDER = new Set(['failed', 'compensated', 'cancelled']);

/** SHA-256 of the items in canonical form (sorted by SKU; quantities), hex. */
export function fingerprintOf(items: readonly { sku: string; qty: number }[]): string {
  const canonical = items.map((i) => [i.sku, i.qty] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

function keyConflict(): Error {
  return ppError('PP_ERR_CONFLICT', { field: 'params.idempotencyKey', message: 'params.idempotencyKey: already used for an order with other items' });
}

/** The checkout's error as the order's answer: a payment step that kept failing is a 402. */
function checkoutError(err: unknown): unknown {
  if (!(err instanceof PowerplantError) || err.code !== 'PP_ERR_STEP_FAILED') return err;
  if ((err.data as { step?: string } | undefined)?.step === 'authorize') {
    return ppError('PP_ERR_PAYMENT_DECLINED', { message: 'the payment could not be authorized (the provider did not answer)' });
  }
  // Another step gave up (its work was undone): no order; the same key may be tried again.
  return ppError('PP_ERR_UNAVAILABLE', { message: 'the checkout could not finish and was undone; try again', retryAfterMs: 500 });
}

export function ordersService(d: ShopDeps, checkout: WorkflowDef<CheckoutInput, CheckoutOutput>) {
  const { orders } = d.tables;

  /** The order, if it is this request's (same items); 409 for the same key with other items. */
  function sameRequest(row: OrderRow, fingerprint: string): OrderT {
    if (fingerprintOf(row.items) !== fingerprint) throw keyConflict();
    return toOrder(row);
  }

  async function place(ctx: Context, userId: string, items: readonly { sku: string; qty: number }[], idempotencyKey: string): Promise<OrderT> {
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.sku)) throw ppError('PP_ERR_VALIDATION', { field: `params.items.${i}.sku`, message: `params.items.${i}.sku: '${it.sku}' appears twice` });
      seen.add(it.sku);
    });
    const fingerprint = fingerprintOf(items);
    const orderId = orderIdOf(userId, idempotencyKey);
    const existing = await orders.get({ userId, orderId });
    if (existing !== undefined && existing.row.paidAt !== undefined) return sameRequest(existing.row, fingerprint);

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

    for (let n = 1; n <= ATTEMPTS_MAX; n++) {
      const id = n === 1 ? orderId : `${orderId}.${n}`;
      const h = await d.workflows.start(checkout, { userId, orderId, lines, fingerprint }, { id });
      // An earlier attempt of this key that ended without an order: the next one is this request's.
      if (!h.created && ENDED_WITHOUT_ORDER.has((await d.workflows.state(id)) ?? '')) continue;
      let out: CheckoutOutput;
      try {
        out = await h.result({ timeoutMs: CHECKOUT_WAIT_MS });
      } catch (err) {
        throw checkoutError(err);
      }
      if (out.fingerprint !== fingerprint) throw keyConflict();
      return out.order;
    }
    throw ppError('PP_ERR_CONFLICT', { field: 'params.idempotencyKey', message: `params.idempotencyKey: ${ATTEMPTS_MAX} checkouts with this key ended without an order; use a new key` });
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
