/**
 * What the shop's services share: the tables, caches and queue one node opened (index.ts builds
 * it). Services are factories over it, so each node opens its engines once and the services'
 * types stay nameable for the ServiceRegistry.
 */
import type { KeyObject } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { cache as cacheLib, ppError, type store as storeLib, type Cache, type Kv, type Queue, type Store, type Table } from 'powerplant';
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
  readonly products: cacheLib.ReadThrough<storeLib.KeyOf<Product>, Product>;
  readonly productCache: Cache<Product>;
  /** Derived pages (category listings, search results, the category list): L1 only, dropped on any product write. */
  readonly pages: Cache<unknown>;
  readonly queue: Queue;
  readonly topics: { readonly orderCreated: string; readonly messages: string };
  readonly sessionKey: KeyObject;
}

/**
 * The fresh L1 value of `key`, synchronously, or undefined (absent, stale, negative). Lets a
 * handler answer a cache hit with no promise at all: the node then answers the gateway
 * synchronously (no timing-wheel entry, no microtask hop). A miss falls back to `getOrLoad`.
 * (Cache has no synchronous peek in its API; this reads its public L1 the way getOrLoad does.)
 */
export function peekFresh<V>(c: Cache<V>, key: string): V | undefined {
  const l1 = c.l1;
  const slot = l1.lookup(key);
  if (slot < 0 || Date.now() >= l1.staleAtOf(slot) || (l1.flagsOf(slot) & cacheLib.FLAG_NEGATIVE) !== 0) return undefined;
  return l1.valueAt(slot) as V;
}

/** A cursor the store rejected (malformed, or from another listing) as a 400 naming `params.cursor`. */
export function rethrowCursor(err: unknown): never {
  if (err instanceof Error && (err as { code?: string }).code === 'PP_ERR_INVALID_ARGUMENT' && (err as { field?: string }).field === 'cursor') {
    throw ppError('PP_ERR_VALIDATION', { field: 'params.cursor', message: 'params.cursor: malformed or from another listing' });
  }
  throw err;
}
