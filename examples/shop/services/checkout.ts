/**
 * The checkout, as a durable workflow of the platform (src/tx): every step is checkpointed in the
 * store with its own writes, runs once, and a node that dies mid-checkout is replaced by another
 * that resumes it from the last step (its lease lapses; the takeover is fenced).
 *
 *   reserve    one transaction over the items' stock rows (on their shards: two-phase commit when
 *              they are on several): every SKU has enough, or nothing is taken (409 naming
 *              params.items.N.qty). Compensation: the stock is given back.
 *   authorize  payments.authorize (idempotent by order id); a decline is PP_ERR_PAYMENT_DECLINED
 *              (402); timeouts and lost answers are retried, and a provider that keeps timing out
 *              is a 402 too — after voiding what an unanswered attempt may have authorized.
 *              Compensation: the authorization is voided.
 *   write      the order row (status placed). Compensation: the row is removed.
 *   capture    payments.capture (retried until the provider answers: the order exists, the money
 *              is authorized), and the order row's paidAt, committed with the checkpoint. The
 *              order-created event follows from that write (the outbox in index.ts).
 * A step that fails runs the compensations of the steps before it, newest first, each once.
 */
import { defineWorkflow, ppError, type ServiceNode, type WorkflowDef } from 'powerplant';
import type { Order, OrderItem, OrderRow } from '../schema.js';
import type { ShopDeps } from './deps.js';

export interface CheckoutInput {
  readonly userId: string;
  readonly orderId: string;
  readonly lines: readonly OrderItem[];
  /** Of the request's items (orders.ts): a replay with other items under the same key is a 409. */
  readonly fingerprint: string;
}

export interface CheckoutOutput {
  readonly order: Order;
  readonly fingerprint: string;
}

export function toOrder(r: OrderRow): Order {
  return { orderId: r.orderId, userId: r.userId, items: r.items, totalCents: r.totalCents, status: r.status, createdAt: r.createdAt };
}

/** The node whose services the steps call; set once it exists (the workflow is defined before it). */
export interface NodeRef {
  node: ServiceNode | undefined;
}

export function checkoutWorkflow(d: ShopDeps, ref: NodeRef): WorkflowDef<CheckoutInput, CheckoutOutput> {
  const { inventory, orders } = d.tables;
  const call = (name: string, params: unknown): Promise<unknown> => {
    const node = ref.node;
    if (node === undefined) return Promise.reject(ppError('PP_ERR_UNAVAILABLE', { message: 'the shop node is starting' }));
    return node.callDynamic(name, params, { timeoutMs: 5000 });
  };

  return defineWorkflow({
    name: 'checkout',
    async run(ctx, input: CheckoutInput): Promise<CheckoutOutput> {
      const { userId, orderId, lines } = input;
      await ctx.step(
        'reserve',
        async (tx) => {
          for (const [i, l] of lines.entries()) {
            const s = await tx.get(inventory, l.sku);
            if (s === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: `params.items.${i}.sku`, message: `params.items.${i}.sku: no stock for '${l.sku}'` });
            if (s.row.available < l.qty) {
              throw ppError('PP_ERR_CONFLICT', { field: `params.items.${i}.qty`, message: `params.items.${i}.qty: not enough stock for '${l.sku}' (${s.row.available} available, ${l.qty} asked)` });
            }
            await tx.update(inventory, l.sku, { available: s.row.available - l.qty });
          }
        },
        {
          // A popular SKU is a hot row: its transactions conflict and retry (with backoff).
          txRetries: 200,
          compensate: async (_out, tx) => {
            for (const l of lines) {
              const s = await tx.get(inventory, l.sku);
              if (s !== undefined) await tx.update(inventory, l.sku, { available: s.row.available + l.qty });
            }
          },
        },
      );
      const totalCents = lines.reduce((s, l) => s + l.qty * l.priceCents, 0);
      const paymentId = ctx.id;
      const voidPayment = async (): Promise<void> => {
        await call('payments.void', { paymentId, orderId, userId });
      };
      try {
        await ctx.step('authorize', () => call('payments.authorize', { paymentId, orderId, userId, amountCents: totalCents }), {
          retries: 3,
          backoffMs: 20,
          compensate: voidPayment,
        });
      } catch (err) {
        // An attempt may have authorized and lost its answer: void whatever the provider holds
        // (a void of nothing records one, so a late authorization is refused), then fail.
        await ctx.step('void-unconfirmed', voidPayment, { retries: 10_000, backoffMs: 50, backoffMaxMs: 1000 });
        throw err;
      }
      const row: OrderRow = { userId, orderId, items: [...lines], totalCents, status: 'placed', createdAt: Date.now() };
      await ctx.step('write', (tx) => tx.insert(orders, row), {
        compensate: (_out, tx) => tx.delete(orders, { userId, orderId }),
      });
      await ctx.step(
        'capture',
        async (tx) => {
          await call('payments.capture', { paymentId });
          await tx.update(orders, { userId, orderId }, { paidAt: Date.now() });
        },
        // Past the point of no return (the order is written, the money authorized): capture is
        // retried until the provider answers; the request may time out meanwhile, the checkout
        // does not (a retry of the request with its key finds it).
        { retries: 10_000, backoffMs: 50, backoffMaxMs: 1000 },
      );
      return { order: toOrder(row), fingerprint: input.fingerprint };
    },
  });
}
