/**
 * inventory: stock per SKU (the table is partitioned by SKU). Reading is this service's action;
 * taking and giving back stock are steps of the checkout workflow (checkout.ts), transactions on
 * the stock rows that the platform applies exactly once — there is no hand-rolled idempotency
 * here any more.
 */
import { Type } from '@sinclair/typebox';
import { action, defineService, ppError } from 'powerplant';
import { AnyId, Stock } from '../schema.js';
import type { ShopDeps } from './deps.js';

export function inventoryService(d: ShopDeps) {
  const inventory = d.tables.inventory;
  return defineService({
    name: 'inventory',
    actions: {
      get: action({
        params: Type.Object({ sku: AnyId }),
        result: Stock,
        idempotent: true,
        handler: async (_ctx, { sku }) => {
          const cur = await inventory.get(sku);
          if (cur === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.sku', message: `params.sku: no stock for '${sku}'` });
          return { sku, available: cur.row.available };
        },
      }),
    },
  });
}
