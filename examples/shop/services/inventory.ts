/**
 * inventory: stock per SKU (the table is partitioned by SKU). Reserve and release are
 * compare-and-set loops on the row's version, idempotent per (order, attempt): the row remembers
 * the last RECENT_MAX operations applied to it — `+<orderId>.<attempt>.<qty>` reserved,
 * `-<orderId>.<attempt>` released — so a retried call (a timeout retried on another instance, a
 * retried order) applies once, whatever quantity it names:
 * - reserve: a reservation already held for (order, attempt) is kept as it is (applied: false,
 *   held: true); one already released stays released (held: false: that attempt is over, see
 *   orders.ts); otherwise the quantity is taken, or 409 when the stock is short;
 * - release: gives back exactly what (order, attempt) holds, once, and records the release even
 *   when nothing was held, so a reservation of that attempt arriving later is refused.
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

/** An order's attempt number (orders.ts: a new one after an aborted attempt's stock was given back). */
const Attempt = Type.Integer({ minimum: 1, maximum: 1_000_000 });
const Reserve = Type.Object({ sku: AnyId, qty: Type.Integer({ minimum: 1, maximum: 100 }), orderId: OrderId, attempt: Attempt }, { additionalProperties: false });
const Release = Type.Object({ sku: AnyId, orderId: OrderId, attempt: Attempt }, { additionalProperties: false });
/** `held`: whether (order, attempt) holds a reservation of this SKU after the call. */
const ChangeResult = Type.Object({ sku: Type.String(), available: Type.Integer(), applied: Type.Boolean(), held: Type.Boolean() });
type ChangeResultT = { sku: string; available: number; applied: boolean; held: boolean };

/** Changes written in one compare-and-set at most. */
const GROUP_MAX = 256;

interface PendingChange {
  /** `<orderId>.<attempt>` */
  readonly tag: string;
  /** > 0: reserve this many; 0: release what the tag holds. */
  readonly qty: number;
  readonly resolve: (r: ChangeResultT) => void;
  readonly reject: (e: unknown) => void;
}

function remember(recent: readonly string[], op: string): string[] {
  const out = recent.length >= RECENT_MAX ? recent.slice(recent.length - RECENT_MAX + 1) : recent.slice();
  out.push(op);
  return out;
}

/** The latest op of `tag` (`+tag.qty` or `-tag`), or undefined. */
function lastOpOf(recent: readonly string[], tag: string): string | undefined {
  for (let i = recent.length - 1; i >= 0; i--) {
    const e = recent[i]!;
    if (e.startsWith(tag, 1) && (e.length === tag.length + 1 || e.charCodeAt(tag.length + 1) === 46 /* . */)) return e;
  }
  return undefined;
}

/** The quantity a `+tag.qty` op reserved. */
function qtyOf(op: string): number {
  return Number(op.slice(op.lastIndexOf('.') + 1));
}

export function inventoryService(d: ShopDeps) {
  const inventory = d.tables.inventory;
  /** Per SKU: changes waiting for the write in progress (absent: no write in progress). */
  const waiting = new Map<string, PendingChange[]>();

  /** Queues one change of `sku` (reserve qty > 0, or release qty 0) behind the write in progress. */
  function change(sku: string, tag: string, qty: number): Promise<ChangeResultT> {
    return new Promise<ChangeResultT>((resolve, reject) => {
      const p: PendingChange = { tag, qty, resolve, reject };
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
          const last = lastOpOf(recent, p.tag);
          if (p.qty > 0) {
            if (last !== undefined) {
              // Held already (a retry: kept as it is, whatever qty it names), or released: that
              // attempt is over and reserves nothing any more.
              outcomes.push({ sku, available, applied: false, held: last.charCodeAt(0) === 43 /* + */ });
            } else if (available < p.qty) {
              outcomes.push(ppError('PP_ERR_CONFLICT', { field: 'params.qty', message: `not enough stock for '${sku}' (${available} available, ${p.qty} asked)` }));
            } else {
              available -= p.qty;
              recent = remember(recent, `+${p.tag}.${p.qty}`);
              changed = true;
              outcomes.push({ sku, available, applied: true, held: true });
            }
          } else if (last !== undefined && last.charCodeAt(0) === 45 /* - */) {
            outcomes.push({ sku, available, applied: false, held: false });
          } else {
            // Gives back what is held (nothing if the reservation never arrived) and records the
            // release, so that a late reservation of this attempt is refused.
            const back = last === undefined ? 0 : qtyOf(last);
            available += back;
            recent = remember(recent, `-${p.tag}`);
            changed = true;
            outcomes.push({ sku, available, applied: back > 0, held: false });
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
        params: Reserve,
        result: ChangeResult,
        idempotent: true,
        keyParam: 'sku',
        handler: (_ctx, { sku, qty, orderId, attempt }) => change(sku, `${orderId}.${attempt}`, qty),
      }),
      release: action({
        params: Release,
        result: ChangeResult,
        idempotent: true,
        keyParam: 'sku',
        handler: (_ctx, { sku, orderId, attempt }) => change(sku, `${orderId}.${attempt}`, 0),
      }),
    },
  });
}
