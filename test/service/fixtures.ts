/**
 * Services shared by the service and gateway tests, registered in ServiceRegistry so their calls
 * are type-checked (the registry is global to the compilation: names here are prefixed `t` to stay
 * clear of the example application's services).
 */
import { Type } from '@sinclair/typebox';
import { action, defineService, event, ppError } from './imports.js';

export const Product = Type.Object({ id: Type.String(), name: Type.String(), priceCents: Type.Integer({ minimum: 0 }) });

const products = new Map([['p1', { id: 'p1', name: 'Lamp', priceCents: 1999 }], ['p2', { id: 'p2', name: 'Desk', priceCents: 24900 }]]);

export const tcatalog = defineService({
  name: 'tcatalog',
  version: 1,
  actions: {
    get: action({
      params: Type.Object({ id: Type.String({ minLength: 1 }) }),
      result: Product,
      idempotent: true,
      handler: (_ctx, { id }) => {
        const p = products.get(id);
        if (p === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.id', message: `no product '${id}'` });
        return p;
      },
    }),
    count: action({ params: Type.Object({}), result: Type.Integer(), idempotent: true, handler: () => products.size }),
  },
});

export const torders = defineService({
  name: 'torders',
  actions: {
    quote: action({
      params: Type.Object({ productId: Type.String(), qty: Type.Integer({ minimum: 1, maximum: 100 }) }),
      result: Type.Object({ totalCents: Type.Integer(), remainingMs: Type.Number() }),
      handler: async (ctx, p) => {
        const product = await ctx.call('tcatalog.get', { id: p.productId });
        // A service emitting an event it subscribes to itself: the typed emit must not make its type circular.
        ctx.emit('torder.placed', { orderId: `q-${p.productId}` });
        return { totalCents: product.priceCents * p.qty, remainingMs: ctx.deadline.remainingMs() };
      },
    }),
  },
  events: {
    'torder.placed': event({ params: Type.Object({ orderId: Type.String() }), handler: () => {} }),
  },
});

declare module '../../src/service/index.js' {
  interface ServiceRegistry {
    tcatalog: typeof tcatalog;
    torders: typeof torders;
  }
}
