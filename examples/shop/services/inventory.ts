/**
 * inventory: stock per SKU (the table is partitioned by SKU). Reserve and release are
 * compare-and-set loops on the row's version, idempotent per order: the row remembers the last
 * RECENT_MAX order operations applied to it (`+<orderId>` reserved, `-<orderId>` released), so a
 * retried call (a timeout retried on another instance, a retried order) applies once.
 *
 * Contention: changes of one SKU are routed to one instance (`keyParam: 'sku'`: consistent hash
 * with bounded load over the instances) and run one after another there, so the compare-and-set
 * only races with another instance during a membership change. Without that, concurrent orders of
 * a popular SKU retry each other's lost races while every commit waits for its fsync.
 */
import { Type } from '@sinclair/typebox';
import { action, defineService, isPowerplantError, ppError } from 'powerplant';
import { AnyId, OrderId, RECENT_MAX, Stock, type StockRow } from '../schema.js';
import type { ShopDeps } from './deps.js';

/** CAS attempts before giving up (each lost race means another writer made progress). */
const CAS_ATTEMPTS_MAX = 64;

const Change = Type.Object({ sku: AnyId, qty: Type.Integer({ minimum: 1, maximum: 100 }), orderId: OrderId }, { additionalProperties: false });
const ChangeResult = Type.Object({ sku: Type.String(), available: Type.Integer(), applied: Type.Boolean() });

function remember(recent: readonly string[], op: string): string[] {
  const out = recent.length >= RECENT_MAX ? recent.slice(recent.length - RECENT_MAX + 1) : recent.slice();
  out.push(op);
  return out;
}

function lastOpOf(recent: readonly string[], orderId: string): string | undefined {
  for (let i = recent.length - 1; i >= 0; i--) {
    const e = recent[i]!;
    if (e.length === orderId.length + 1 && e.endsWith(orderId)) return e;
  }
  return undefined;
}

export function inventoryService(d: ShopDeps) {
  const inventory = d.tables.inventory;
  /** Per SKU: the tail of the chain of changes running on this instance (removed when idle). */
  const tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` after the changes of `sku` already queued here. */
  function serialized<T>(sku: string, fn: () => Promise<T>): Promise<T> {
    const prev = tails.get(sku);
    const run = prev === undefined ? fn() : prev.then(fn, fn);
    const tail = run.then(() => undefined, () => undefined);
    tails.set(sku, tail);
    void tail.then(() => {
      if (tails.get(sku) === tail) tails.delete(sku);
    });
    return run;
  }

  /** Applies `delta` once per (orderId, direction); 409 when it would take stock below zero. */
  async function change(sku: string, delta: number, orderId: string): Promise<{ sku: string; available: number; applied: boolean }> {
    const op = (delta < 0 ? '+' : '-') + orderId;
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const cur = await inventory.get(sku);
      if (cur === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.sku', message: `params.sku: no stock for '${sku}'` });
      const row: StockRow = cur.row;
      // The latest op of this order decides: reserve -> release -> reserve (an order retried after
      // its compensation) must reserve again.
      if (lastOpOf(row.recent, orderId) === op) return { sku, available: row.available, applied: false };
      const available = row.available + delta;
      if (available < 0) {
        throw ppError('PP_ERR_CONFLICT', { field: 'params.qty', message: `not enough stock for '${sku}' (${row.available} available, ${-delta} asked)` });
      }
      try {
        await inventory.update(sku, { available, recent: remember(row.recent, op) }, { version: cur.version });
        return { sku, available, applied: true };
      } catch (err) {
        if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
        // Lost the race to another writer: read again.
      }
    }
    throw ppError('PP_ERR_UNAVAILABLE', { message: `stock of '${sku}' is too contended, try again`, retryAfterMs: 50 });
  }

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
      reserve: action({
        params: Change,
        result: ChangeResult,
        idempotent: true,
        keyParam: 'sku',
        handler: (_ctx, { sku, qty, orderId }) => serialized(sku, () => change(sku, -qty, orderId)),
      }),
      release: action({
        params: Change,
        result: ChangeResult,
        idempotent: true,
        keyParam: 'sku',
        handler: (_ctx, { sku, qty, orderId }) => serialized(sku, () => change(sku, qty, orderId)),
      }),
    },
  });
}
