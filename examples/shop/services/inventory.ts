/**
 * inventory: stock per SKU (the table is partitioned by SKU). Reserve and release are
 * compare-and-set loops on the row's version, idempotent per order: the row remembers the last
 * RECENT_MAX order operations applied to it (`+<orderId>` reserved, `-<orderId>` released), so a
 * retried call (a timeout retried on another instance, a retried order) applies once.
 *
 * Contention: changes of one SKU are routed to one instance (`keyParam: 'sku'`: consistent hash
 * with bounded load over the instances), and there the changes that arrive while one is being
 * written are COALESCED: the next write applies all of them in order (each still checked against
 * the stock left by the ones before it, each answered on its own) in one compare-and-set. A
 * popular SKU then costs one write per commit round, not one per order, and the compare-and-set
 * only races with another instance during a membership change.
 */
import { Type } from '@sinclair/typebox';
import { action, defineService, isPowerplantError, ppError } from 'powerplant';
import { AnyId, OrderId, RECENT_MAX, Stock } from '../schema.js';
import type { ShopDeps } from './deps.js';

/** CAS attempts before giving up (each lost race means another writer made progress). */
const CAS_ATTEMPTS_MAX = 64;

const Change = Type.Object({ sku: AnyId, qty: Type.Integer({ minimum: 1, maximum: 100 }), orderId: OrderId }, { additionalProperties: false });
const ChangeResult = Type.Object({ sku: Type.String(), available: Type.Integer(), applied: Type.Boolean() });
type ChangeResultT = { sku: string; available: number; applied: boolean };

/** Changes written in one compare-and-set at most. */
const GROUP_MAX = 256;

interface PendingChange {
  readonly delta: number;
  readonly orderId: string;
  readonly resolve: (r: ChangeResultT) => void;
  readonly reject: (e: unknown) => void;
}

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
  /** Per SKU: changes waiting for the write in progress (absent: no write in progress). */
  const waiting = new Map<string, PendingChange[]>();

  /** Applies `delta` once per (orderId, direction); 409 when it would take stock below zero. */
  function change(sku: string, delta: number, orderId: string): Promise<ChangeResultT> {
    return new Promise<ChangeResultT>((resolve, reject) => {
      const p: PendingChange = { delta, orderId, resolve, reject };
      const queue = waiting.get(sku);
      if (queue !== undefined) {
        queue.push(p);
        return;
      }
      waiting.set(sku, []);
      void drain(sku, [p]);
    });
  }

  /** Writes `first`, then everything that queued up meanwhile, until nothing is left. */
  async function drain(sku: string, first: PendingChange[]): Promise<void> {
    let group = first;
    for (;;) {
      await applyGroup(sku, group);
      const next = waiting.get(sku)!;
      if (next.length === 0) {
        waiting.delete(sku);
        return;
      }
      group = next.splice(0, GROUP_MAX);
    }
  }

  /** One compare-and-set for the whole group (retried on a lost race); settles every change. */
  async function applyGroup(sku: string, group: readonly PendingChange[]): Promise<void> {
    try {
      for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
        const cur = await inventory.get(sku);
        if (cur === undefined) {
          const err = ppError('PP_ERR_NOT_FOUND', { field: 'params.sku', message: `params.sku: no stock for '${sku}'` });
          for (const p of group) p.reject(err);
          return;
        }
        let { available, recent } = cur.row;
        const outcomes: (ChangeResultT | Error)[] = [];
        let changed = false;
        for (const p of group) {
          const op = (p.delta < 0 ? '+' : '-') + p.orderId;
          // The latest op of this order decides: reserve -> release -> reserve (an order retried
          // after its compensation) must reserve again.
          if (lastOpOf(recent, p.orderId) === op) {
            outcomes.push({ sku, available, applied: false });
          } else if (available + p.delta < 0) {
            outcomes.push(ppError('PP_ERR_CONFLICT', { field: 'params.qty', message: `not enough stock for '${sku}' (${available} available, ${-p.delta} asked)` }));
          } else {
            available += p.delta;
            recent = remember(recent, op);
            changed = true;
            outcomes.push({ sku, available, applied: true });
          }
        }
        if (changed) {
          try {
            await inventory.update(sku, { available, recent }, { version: cur.version });
          } catch (err) {
            if (isPowerplantError(err, 'PP_ERR_CONFLICT')) continue; // lost the race to another writer: read again
            throw err;
          }
        }
        group.forEach((p, i) => {
          const o = outcomes[i]!;
          if (o instanceof Error) p.reject(o);
          else p.resolve(o);
        });
        return;
      }
      throw ppError('PP_ERR_UNAVAILABLE', { message: `stock of '${sku}' is too contended, try again`, retryAfterMs: 50 });
    } catch (err) {
      for (const p of group) p.reject(err);
    }
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
        handler: (_ctx, { sku, qty, orderId }) => change(sku, -qty, orderId),
      }),
      release: action({
        params: Change,
        result: ChangeResult,
        idempotent: true,
        keyParam: 'sku',
        handler: (_ctx, { sku, qty, orderId }) => change(sku, qty, orderId),
      }),
    },
  });
}
