/**
 * What the shop's services share: the tables, caches and queue one node opened (index.ts builds
 * it). Services are factories over it, so each node opens its engines once and the services'
 * types stay nameable for the ServiceRegistry.
 */
import type { KeyObject } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { consumer, isPowerplantError, ppError, type Cache, type KeyOf, type Kv, type Queue, type ReadThrough, type service, type Store, type Table, type Transactions, type Workflows } from 'powerplant';
import { Cursor, DEFAULT_LIMIT, Limit, UserId } from '../schema.js';
import type {
  CategoryRow, EmailRow, InboxRow, NotificationRow, OrderRow, PaymentRow, Preferences, Product, ProductRow, StockRow, TermRow, TransferRow, UserRow, WalletRow,
} from '../schema.js';

export interface ShopTables {
  users: Table<UserRow>;
  emails: Table<Static<typeof EmailRow>>;
  categories: Table<Static<typeof CategoryRow>>;
  products: Table<Static<typeof ProductRow>>;
  productTerms: Table<Static<typeof TermRow>>;
  inventory: Table<StockRow>;
  orders: Table<OrderRow>;
  wallets: Table<WalletRow>;
  transfers: Table<TransferRow>;
  payments: Table<PaymentRow>;
  inbox: Table<InboxRow>;
  notifications: Table<NotificationRow>;
}

export interface ShopDeps {
  readonly namespace: string;
  readonly store: Store;
  readonly tables: ShopTables;
  readonly preferences: Kv<Preferences>;
  /** Products by id, read through the cache (L1, + Redis L2 when configured), invalidated from the feed. */
  readonly products: ReadThrough<KeyOf<Product>, Product>;
  /** Derived pages (category listings, search results, the category list): L1 only, dropped on any product write. */
  readonly pages: Cache<unknown>;
  readonly queue: Queue;
  readonly topics: { readonly orderCreated: string; readonly messages: string };
  readonly sessionKey: KeyObject;
  /** The platform's transactions (sign-up, product updates, wallet transfers, checkout steps). */
  readonly txs: Transactions;
  /** The platform's durable workflows (checkout). */
  readonly workflows: Workflows;
  /** The simulated payment provider's behaviour (services/payments.ts). */
  readonly payments: PaymentsConfig;
  /** Store credit a new user's wallet starts with, in cents. */
  readonly signUpCreditCents: number;
}

/**
 * How the simulated payment provider behaves, decided per (seed, orderId, call) so a run is
 * reproducible: a share of authorizations declined, a share of calls that time out (nothing
 * recorded), a share that "crash" after recording (the answer is lost; a retry finds the record).
 */
export interface PaymentsConfig {
  readonly latencyMs: number;
  readonly declineRate: number;
  readonly timeoutRate: number;
  readonly crashRate: number;
  readonly seed: number;
}

/** A cursor the store rejected (forged, malformed, from another listing) as a 400 naming `params.cursor`, with the store's reason. */
export function rethrowCursor(err: unknown): never {
  if (err instanceof Error && (err as { code?: string }).code === 'PP_ERR_VALIDATION' && (err as { field?: string }).field === 'cursor') {
    throw ppError('PP_ERR_VALIDATION', { field: 'params.cursor', message: `params.${err.message}` });
  }
  throw err;
}

/** Params of a user's newest-first list (`GET /orders`, `/messages`, `/notifications`). */
export const UserPageParams = Type.Object({ userId: UserId, limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false });

/**
 * One page of a user's rows, newest first, through the table's `recent` index (userId, time): one
 * shard, since the tables are partitioned by userId. A bad cursor is a 400 naming params.cursor.
 */
export async function recentPage<R extends { userId: string }, T>(
  table: Table<R>,
  p: { userId: string; limit?: number; cursor?: string },
  toItem: (row: R) => T,
): Promise<{ items: T[]; cursor?: string }> {
  const where = { userId: p.userId } as Partial<R>;
  const page = await table
    .query({ index: 'recent', where, order: 'desc', limit: p.limit ?? DEFAULT_LIMIT, ...(p.cursor === undefined ? {} : { cursor: p.cursor }) })
    .catch(rethrowCursor);
  const items = page.items.map((v) => toItem(v.row));
  return page.cursor === undefined ? { items } : { items, cursor: page.cursor };
}

/**
 * A queue consumer (declared on a service, subscribed while its node runs) that stores each
 * message as a row of `table` — once: the row's key comes from the message, so a redelivery's
 * insert conflicts and is acknowledged as done.
 */
export function consumeIntoTable<M, R extends Record<string, unknown>>(
  queue: Queue, group: string, table: Table<R>, toRow: (m: M) => R,
): service.ConsumerDef<M> {
  return consumer<M>({
    queue,
    group,
    concurrency: 64,
    handler: async (_ctx, msg) => {
      try {
        await table.insert(toRow(msg.value));
      } catch (err) {
        if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err; // stored already: a redelivery
      }
    },
  });
}
