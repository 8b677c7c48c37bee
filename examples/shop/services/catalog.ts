/**
 * catalog: categories, products (read through the cache, invalidated from the store's change
 * feed on every node), category listings and search (cached briefly as derived pages, dropped on
 * any product write).
 *
 * Hot paths (GET /products/:id, the category page, search): a fresh L1 hit is answered
 * synchronously (`Cache.peek`), so the node hands the gateway a value, not a promise.
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { action, defineService, ppError } from 'powerplant';
import { nameTerms } from '../seed-data.js';
import { AnyId, Category, Cursor, DEFAULT_LIMIT, ItemsOf, Limit, PageOf, Product, Text, type Category as CategoryT, type Product as ProductT } from '../schema.js';
import { rethrowCursor, type ShopDeps } from './deps.js';

const PAGE_TTL_MS = 10_000;
const CATEGORIES_KEY = 'categories';

export const CategoryPage = PageOf(Product);
export const SearchResult = ItemsOf(Product);
export const CategoryList = ItemsOf(Category);

type PageT = { items: ProductT[]; cursor?: string };

/** Exclusive upper bound of the strings starting with `prefix` (prefix + its last code point + 1). */
function prefixEnd(prefix: string): string {
  const last = prefix.codePointAt(prefix.length - 1)!;
  const cut = last > 0xffff ? prefix.length - 2 : prefix.length - 1;
  return prefix.slice(0, cut) + String.fromCodePoint(last + 1);
}

const TERM_RE = /^[\p{L}\p{N}]+$/u;

/**
 * A cursor's part of a page's cache key. Cursors the store hands out are short (a few dozen
 * characters) and are used as they are; a long one (the contract allows 1,024 characters, the
 * cache's keys are at most 1,024 too) is replaced by its SHA-256, so any cursor within the contract's
 * bound makes a valid key and is judged by the store (400 naming params.cursor when it is bad).
 */
const CURSOR_KEY_CHARS_MAX = 128;
function cursorKey(cursor: string): string {
  // '=' and '#' mark the two forms, so a short cursor can never spell a long one's key.
  return cursor.length <= CURSOR_KEY_CHARS_MAX ? `=${cursor}` : `#${createHash('sha256').update(cursor).digest('base64url')}`;
}

export function catalogService(d: ShopDeps) {
  const { tables, pages } = d;

  async function loadProduct(id: string): Promise<ProductT> {
    const p = await d.products.get(id);
    if (p === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.id', message: `params.id: no product '${id}'` });
    return p;
  }

  async function categoryIds(): Promise<Map<string, CategoryT>> {
    const list = (await pages.getOrLoad(CATEGORIES_KEY, async () => {
      const out: CategoryT[] = [];
      let cursor: string | undefined;
      do {
        const page = await tables.categories.query({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
        for (const it of page.items) out.push({ id: it.row.id, name: it.row.name });
        cursor = page.cursor;
      } while (cursor !== undefined);
      return out;
    }, { ttlMs: 60_000 })) as CategoryT[];
    return new Map(list.map((c) => [c.id, c]));
  }

  async function loadCategoryPage(id: string, limit: number, cursor: string | undefined): Promise<PageT> {
    if (!(await categoryIds()).has(id)) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.id', message: `params.id: no category '${id}'` });
    const page = await tables.products
      .query({ index: 'byCategory', where: { categoryId: id }, limit, ...(cursor === undefined ? {} : { cursor }) })
      .catch(rethrowCursor);
    const items = page.items.map((v) => v.row);
    return page.cursor === undefined ? { items } : { items, cursor: page.cursor };
  }

  async function loadSearch(term: string, limit: number): Promise<{ items: ProductT[] }> {
    // Every (word, product) row whose word starts with `term`, across shards; then by product id.
    const ids = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await tables.productTerms.query({ range: { gte: term, lt: prefixEnd(term) }, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      for (const it of page.items) ids.add(it.row.productId);
      cursor = page.cursor;
    } while (cursor !== undefined);
    const first = [...ids].sort().slice(0, limit);
    const rows = await Promise.all(first.map((id) => d.products.get(id)));
    return { items: rows.filter((r): r is ProductT => r !== undefined) };
  }

  return defineService({
    name: 'catalog',
    actions: {
      get: action({
        params: Type.Object({ id: AnyId }),
        result: Product,
        idempotent: true,
        handler: (_ctx, { id }): ProductT | Promise<ProductT> => d.products.peek(id) ?? loadProduct(id),
      }),
      categories: action({
        params: Type.Object({}),
        result: CategoryList,
        idempotent: true,
        handler: async () => ({ items: [...(await categoryIds()).values()].sort((a, b) => (a.id < b.id ? -1 : 1)) }),
      }),
      categoryProducts: action({
        params: Type.Object({ id: AnyId, limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
        result: CategoryPage,
        idempotent: true,
        handler: (_ctx, { id, limit = DEFAULT_LIMIT, cursor }): PageT | Promise<PageT> => {
          const key = `cat|${id}|${limit}|${cursor === undefined ? '' : cursorKey(cursor)}`;
          return (pages.peek(key) as PageT | undefined) ?? (pages.getOrLoad(key, () => loadCategoryPage(id, limit, cursor), { ttlMs: PAGE_TTL_MS }) as Promise<PageT>);
        },
      }),
      search: action({
        params: Type.Object({ q: Type.String({ minLength: 1, maxLength: 50 }), limit: Type.Optional(Limit) }, { additionalProperties: false }),
        result: SearchResult,
        idempotent: true,
        handler: (_ctx, { q, limit = DEFAULT_LIMIT }): { items: ProductT[] } | Promise<{ items: ProductT[] }> => {
          const term = q.toLowerCase();
          // Terms are letters and digits only: anything else matches nothing (and never reaches the store).
          if (!TERM_RE.test(term)) return { items: [] };
          const key = `search|${term}|${limit}`;
          return (pages.peek(key) as { items: ProductT[] } | undefined) ??
            (pages.getOrLoad(key, () => loadSearch(term, limit), { ttlMs: PAGE_TTL_MS }) as Promise<{ items: ProductT[] }>);
        },
      }),
      put: action({
        params: Type.Object(
          {
            id: AnyId,
            name: Text({ minLength: 1, maxLength: Product.properties.name.maxLength! }),
            categoryId: AnyId,
            priceCents: Product.properties.priceCents,
            description: Text({ maxLength: Product.properties.description.maxLength! }),
          },
          { additionalProperties: false },
        ),
        result: Product,
        // Safe to repeat: the same params write the same row and the same terms.
        idempotent: true,
        handler: async (_ctx, p) => {
          // PUT changes a product; it does not create one (a product has stock and search terms
          // from the seed, which a PUT would not give it): an unknown id is 404.
          const before = (await tables.products.get(p.id))?.row;
          if (before === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.id', message: `params.id: no product '${p.id}'` });
          if (!(await categoryIds()).has(p.categoryId)) {
            throw ppError('PP_ERR_NOT_FOUND', { field: 'params.categoryId', message: `params.categoryId: no category '${p.categoryId}'` });
          }
          const row: ProductT = { id: p.id, categoryId: p.categoryId, name: p.name, description: p.description, priceCents: p.priceCents };
          // One transaction: the product and its search terms change together (never a product
          // findable by its old name, or a new name not findable). The cache drops the key on
          // every node from the change feed; this node drops it at once below.
          await d.txs.run(async (tx) => {
            const cur = await tx.get(tables.products, p.id);
            if (cur === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.id', message: `params.id: no product '${p.id}'` });
            tx.upsert(tables.products, row);
            const oldTerms = nameTerms(cur.row.name);
            const newTerms = nameTerms(row.name);
            for (const term of oldTerms) if (!newTerms.includes(term)) tx.delete(tables.productTerms, { term, productId: p.id });
            for (const term of newTerms) if (!oldTerms.includes(term)) tx.upsert(tables.productTerms, { term, productId: p.id });
          });
          await d.products.invalidate(p.id);
          // This node at once; the others when the products change reaches them through the feed.
          pages.clearLocal();
          return row;
        },
      }),
    },
  });
}
