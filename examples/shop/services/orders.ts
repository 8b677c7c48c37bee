/**
 * orders: place (prices from catalog, stock reserved per SKU through inventory, given back again
 * if a later step fails), list (a user's recent orders through the `recent` index, one shard),
 * get. The order-created event is not published here: index.ts runs a transactional outbox over
 * the orders table's change feed, so an order row and its event commit together or not at all.
 *
 * Idempotency: the orderId is derived from (userId, idempotencyKey) — sha256 -> `o` + 20 hex. The
 * action REQUIRES an idempotencyKey (the gateway route fills a random one per HTTP request when
 * the client sent none), which is what makes `idempotent: true` true: a call retried after a
 * timeout on another instance carries the same key, hence the same order.
 *
 * A key is bound to its request: the first attempt claims (userId, orderId) in `orderKeys` with the
 * fingerprint of its items (insert: one claim wins); the same key with other items is 409 naming
 * params.idempotencyKey and reserves nothing. Requests with the same key and items — concurrent
 * retries, a retry after a crash — cooperate on one attempt of the order:
 *   open(n)     reserve every SKU for (orderId, n): idempotent per (orderId, n), so a reservation
 *               is taken once however many requests make it;
 *   -> placing  all held: compare-and-set on the claim, then the order row is written (by whoever
 *               gets there; "must not exist", so once) — nothing is ever released after this;
 *   -> aborting a reservation failed: compare-and-set, then every SKU of the items is released for
 *               (orderId, n) (a release also refuses a late reservation of n);
 *   -> aborted  once all are given back; the next request with the key opens attempt n + 1.
 * The compare-and-sets make placing and aborting exclusive, so under any interleaving the order
 * row holds exactly what is reserved, and a request that got no order holds nothing — unless a
 * node dies mid-way, in which case the next request with the key finishes its work.
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { action, defineService, isPowerplantError, PowerplantError, ppError, type Context } from 'powerplant';
import { AnyId, Order, OrderId, PageOf, Text, UserId, type Order as OrderT, type OrderItem, type OrderKeyRow, type OrderRow } from '../schema.js';
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

/** Rounds of the claim's state machine one request goes through at most (each follows a decision). */
const ROUNDS_MAX = 8;

type Claim = { row: OrderKeyRow; version: number };

/** SHA-256 of the items in canonical form (sorted by SKU; quantities), hex. */
export function fingerprintOf(items: readonly { sku: string; qty: number }[]): string {
  const canonical = items.map((i) => [i.sku, i.qty] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

function keyConflict(): Error {
  return ppError('PP_ERR_CONFLICT', { field: 'params.idempotencyKey', message: 'params.idempotencyKey: already used for an order with other items' });
}

export function ordersService(d: ShopDeps) {
  const { orders, orderKeys } = d.tables;

  /** The order, if it is this request's (same items); 409 for the same key with other items. */
  function sameRequest(row: OrderRow, fingerprint: string): OrderT {
    if (fingerprintOf(row.items) !== fingerprint) throw keyConflict();
    return toOrder(row);
  }

  async function readClaim(userId: string, orderId: string): Promise<Claim> {
    const c = await orderKeys.get({ userId, orderId });
    if (c === undefined) throw ppError('PP_ERR_UNAVAILABLE', { message: `order ${orderId}: its claim is not readable yet, try again`, retryAfterMs: 50 });
    return c;
  }

  /** Claims the key for this request's items, or reads the claim there is: 409 when it is for other items. */
  async function claimKey(userId: string, orderId: string, fingerprint: string): Promise<Claim> {
    const row: OrderKeyRow = { userId, orderId, fingerprint, attempt: 1, state: 'open' };
    try {
      const w = await orderKeys.insert(row);
      return { row, version: w.version };
    } catch (err) {
      if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
    }
    const c = await readClaim(userId, orderId);
    if (c.row.fingerprint !== fingerprint) throw keyConflict();
    return c;
  }

  /** Compare-and-set of the claim; undefined when another request moved it first. */
  async function moveClaim(c: Claim, patch: Partial<OrderKeyRow>): Promise<Claim | undefined> {
    try {
      const w = await orderKeys.update({ userId: c.row.userId, orderId: c.row.orderId }, patch, { version: c.version });
      return { row: { ...c.row, ...patch }, version: w.version };
    } catch (err) {
      if (isPowerplantError(err, 'PP_ERR_CONFLICT')) return undefined;
      throw err;
    }
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
    if (existing !== undefined) return sameRequest(existing.row, fingerprint);

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

    let claim = await claimKey(userId, orderId, fingerprint);
    for (let round = 0; round < ROUNDS_MAX; round++) {
      const { state, attempt } = claim.row;
      let moved: Claim | undefined;
      if (state === 'placing') return writeOrder(userId, orderId, lines, fingerprint);
      if (state === 'aborting') {
        await releaseAll(ctx, lines, orderId, attempt);
        moved = await moveClaim(claim, { state: 'aborted' });
      } else if (state === 'aborted') {
        moved = await moveClaim(claim, { state: 'open', attempt: attempt + 1 });
      } else {
        // Reserve every SKU (in parallel: each is its own row, usually on its own shard).
        const reserved = await Promise.allSettled(lines.map((l) => ctx.call('inventory.reserve', { sku: l.sku, qty: l.qty, orderId, attempt })));
        const failed = reserved.findIndex((r) => r.status === 'rejected' || !r.value.held);
        if (failed < 0) {
          moved = await moveClaim(claim, { state: 'placing' });
          if (moved !== undefined) return writeOrder(userId, orderId, lines, fingerprint);
        } else {
          moved = await moveClaim(claim, { state: 'aborting' });
          if (moved !== undefined) {
            // This request decided: give back what attempt `attempt` holds, then report the first failing item.
            await releaseAll(ctx, lines, orderId, attempt);
            await moveClaim(moved, { state: 'aborted' });
            const r = reserved[failed]!;
            throw r.status === 'rejected'
              ? itemError(r.reason, failed)
              : ppError('PP_ERR_UNAVAILABLE', { message: `order ${orderId}: a concurrent attempt gave its stock back, try again`, retryAfterMs: 50 });
          }
        }
      }
      // Another request with this key moved the claim first: follow its decision.
      claim = moved ?? (await readClaim(userId, orderId));
    }
    throw ppError('PP_ERR_UNAVAILABLE', { message: `order ${orderId}: too many concurrent attempts, try again`, retryAfterMs: 50 });
  }

  /** Writes the order row of a claim in 'placing' (its stock is held); the first writer wins. */
  async function writeOrder(userId: string, orderId: string, lines: OrderItem[], fingerprint: string): Promise<OrderT> {
    const row: OrderRow = { userId, orderId, items: lines, totalCents: lines.reduce((s, l) => s + l.qty * l.priceCents, 0), status: 'placed', createdAt: Date.now() };
    try {
      await orders.insert(row);
      return toOrder(row);
    } catch (err) {
      if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
    }
    // A concurrent request with this key wrote it first: that one is the order (nothing is released).
    const first = await orders.get({ userId, orderId });
    if (first === undefined) throw ppError('PP_ERR_UNAVAILABLE', { message: `order ${orderId}: not readable yet, try again`, retryAfterMs: 50 });
    return sameRequest(first.row, fingerprint);
  }

  /**
   * Releases every SKU of `lines` for (orderId, attempt) — also those whose reservation failed
   * (it may have been applied, its answer lost) and those another request reserved. Throws
   * PP_ERR_UNAVAILABLE when a release failed: the claim stays 'aborting' and the next request with
   * the key releases again (idempotent) before anything new is reserved.
   */
  async function releaseAll(ctx: Context, lines: readonly OrderItem[], orderId: string, attempt: number): Promise<void> {
    const results = await Promise.allSettled(lines.map((l) => ctx.call('inventory.release', { sku: l.sku, orderId, attempt })));
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed < 0) return;
    const err = (results[failed] as PromiseRejectedResult).reason as unknown;
    ctx.logger.error({ err, sku: lines[failed]!.sku, orderId, attempt }, 'orders: releasing a reservation failed (the next request with this key releases it)');
    throw ppError('PP_ERR_UNAVAILABLE', { message: `order ${orderId}: giving stock back failed, try again`, retryAfterMs: 100 });
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
