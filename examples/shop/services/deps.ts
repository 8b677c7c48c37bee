/**
 * What the shop's services share: the tables, caches and queue one node opened (index.ts builds
 * it). Services are factories over it, so each node opens its engines once and the services'
 * types stay nameable for the ServiceRegistry.
 */
import type { KeyObject } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { ppError, type Cache, type KeyOf, type Kv, type Queue, type ReadThrough, type Store, type Table } from 'powerplant';
import type {
  CategoryRow, EmailRow, InboxRow, NotificationRow, OrderRow, Preferences, Product, ProductRow, StockRow, TermRow, UserRow,
} from '../schema.js';

export interface ShopTables {
  users: Table<UserRow>;
  emails: Table<Static<typeof EmailRow>>;
  categories: Table<Static<typeof CategoryRow>>;
  products: Table<Static<typeof ProductRow>>;
  productTerms: Table<Static<typeof TermRow>>;
  inventory: Table<StockRow>;
  orders: Table<OrderRow>;
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
  readonly productCache: Cache<Product>;
  /** Derived pages (category listings, search results, the category list): L1 only, dropped on any product write. */
  readonly pages: Cache<unknown>;
  readonly queue: Queue;
  readonly topics: { readonly orderCreated: string; readonly messages: string };
  readonly sessionKey: KeyObject;
}

/** A cursor the store rejected (malformed, or from another listing) as a 400 naming `params.cursor`. */
export function rethrowCursor(err: unknown): never {
  if (err instanceof Error && (err as { code?: string }).code === 'PP_ERR_INVALID_ARGUMENT' && (err as { field?: string }).field === 'cursor') {
    throw ppError('PP_ERR_VALIDATION', { field: 'params.cursor', message: 'params.cursor: malformed or from another listing' });
  }
  throw err;
}
