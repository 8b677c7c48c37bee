/**
 * The shop's request mix (CONTRACT.md's API), for the platform's load generator: `powerplant bench
 * examples/shop` (index.ts re-exports `loadMix`) and `npm run bench -- shop` (bench/shop.ts) drive
 * it with `runMix` (src/cli/loadgen.ts, the generic closed loop, windows, histograms and table).
 *
 * SETUP. `GET /categories` (a failure here is "no shop at <url>"), every category's product pages
 * (`limit=100`, following the cursor, bounded) for product ids and names, search prefixes from
 * the names' words (2-4 letters), and `POST /sessions` for `users` seed users
 * (`user<n>@example.com` / `password-<n>`, default min(connections, 100); scrypt makes sign-ins
 * slow, so they run 8 at a time, spread over the connections, and each virtual connection reuses
 * the token of user (i mod users) + 1). Every setup request is bounded (the generator's
 * SETUP_TIMEOUT_MS) and a failure names what failed.
 *
 * MIX (weights, default): browse 80 % = `GET /products/:id` 60 + `GET /categories/:id/products` 20;
 * recent orders and search 15 % = `GET /orders` 7.5 + `GET /search?q=<prefix>` 7.5; place order
 * 5 % = `POST /orders` with 1-3 distinct SKUs, qty 1, a unique idempotencyKey. Each virtual
 * connection has its own seeded PRNG (sfc32, from the generator). Product ids (and the SKUs ordered)
 * follow a Zipf law with exponent ZIPF_EXPONENT = 0.99 (YCSB's constant) over the discovered
 * products: P(rank r) ∝ 1/r^0.99, ranks assigned to products by a seeded shuffle so the hot ones
 * are spread over categories and shards (with 2,000 products the hottest gets ~12 % of product
 * reads, the top 20 ~43 %). Categories and search prefixes are uniform.
 *
 * HOT PATH. Every GET is a request object built once in setup (one per product, category page and
 * search prefix, shared by the connections; `GET /orders` one per connection, with its token), so
 * a GET allocates nothing here; an order builds its body (the SKUs and a unique key).
 */
import { randomBytes } from 'node:crypto';
import type { LoadMix, LoadRequest, MixResult, SetupContext, SetupHttp } from 'powerplant';
import { seededRandom, ZipfSampler } from 'powerplant/util';

export type EndpointName = 'product' | 'category' | 'orders' | 'search' | 'placeOrder';

/** What the mix adds to the generator's result (and its JSON). */
export interface ShopMixInfo {
  /** Users signed in (0 when neither orders endpoint runs). */
  users: number;
  /** Products discovered. */
  products: number;
  zipfExponent: number;
}

export type ShopMixResult = MixResult<EndpointName> & ShopMixInfo;

export const ENDPOINT_NAMES: readonly EndpointName[] = ['product', 'category', 'orders', 'search', 'placeOrder'];
export const ENDPOINT_LABELS: Readonly<Record<EndpointName, string>> = {
  product: 'GET /products/:id',
  category: 'GET /categories/:id/products',
  orders: 'GET /orders',
  search: 'GET /search?q=',
  placeOrder: 'POST /orders',
};
export const DEFAULT_WEIGHTS: Readonly<Record<EndpointName, number>> = {
  product: 60, category: 20, orders: 7.5, search: 7.5, placeOrder: 5,
};

export const ZIPF_EXPONENT = 0.99;
const SIGN_IN_CONCURRENCY = 8;
const DISCOVERY_CONCURRENCY = 4;
const PAGES_PER_CATEGORY_MAX = 200;
const PRODUCTS_MAX = 100_000;
const SEARCH_PREFIXES_MAX = 1_000;

interface ShopCatalog {
  categoryIds: string[];
  /** Product ids in Zipf rank order (hottest first). */
  productIdsByRank: string[];
  searchPrefixes: string[];
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** `http.request`, with a failure (not an abort) named by `what`. */
async function ask(http: SetupHttp, ctx: SetupContext<EndpointName>, what: string, method: 'GET' | 'POST', path: string, body?: unknown): ReturnType<SetupHttp['request']> {
  try {
    return await http.request(method, path, body === undefined ? {} : { body });
  } catch (err) {
    ctx.signal?.throwIfAborted();
    throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Categories, every product (id and name) through the category pages, and search prefixes. */
async function discover(http: SetupHttp, ctx: SetupContext<EndpointName>): Promise<ShopCatalog> {
  const { url, basePath } = ctx;
  const cats = await ask(http, ctx, `no shop at ${url}: GET /categories failed`, 'GET', `${basePath}/categories`);
  const catsBody = cats.json();
  if (cats.status !== 200 || !isRecord(catsBody) || !Array.isArray(catsBody.items)) {
    throw new Error(`no shop at ${url}: GET /categories answered ${cats.status} ${snippet(cats.text)} (expected 200 {"items":[…]})`);
  }
  const categoryIds = catsBody.items.flatMap((c: unknown) => (isRecord(c) && typeof c.id === 'string' ? [c.id] : []));
  if (categoryIds.length === 0) throw new Error(`the shop at ${url} lists no categories (GET /categories)`);

  const products = new Map<string, string>();
  await http.forEach(categoryIds.length, DISCOVERY_CONCURRENCY, async (ci) => {
    const id = categoryIds[ci]!;
    let cursor: string | undefined;
    for (let page = 0; page < PAGES_PER_CATEGORY_MAX && products.size < PRODUCTS_MAX; page++) {
      const path = `${basePath}/categories/${encodeURIComponent(id)}/products?limit=100${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const res = await ask(http, ctx, `cannot list the products of category ${id} (GET ${path})`, 'GET', path);
      const body = res.json();
      if (res.status !== 200 || !isRecord(body) || !Array.isArray(body.items)) {
        throw new Error(`cannot list the products of category ${id} (GET ${path}): ${res.status} ${snippet(res.text)}`);
      }
      for (const p of body.items as unknown[]) {
        if (isRecord(p) && typeof p.id === 'string') products.set(p.id, typeof p.name === 'string' ? p.name : '');
      }
      cursor = typeof body.cursor === 'string' && body.items.length > 0 ? body.cursor : undefined;
      if (cursor === undefined) break;
    }
  });
  if (products.size === 0) throw new Error(`the shop at ${url} has no products (GET /categories/:id/products of ${categoryIds.length} categories)`);

  const rows = [...products].map(([id, name]) => ({ id, name })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // Seeded Fisher-Yates: the Zipf ranks land on products spread over categories (and shards).
  const random = seededRandom(ctx.seed | 0);
  const ids = rows.map((r) => r.id);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const prefixes = new Set<string>();
  for (const r of rows) {
    for (const word of r.name.split(/\s+/)) {
      if (!/^[A-Za-z]{2,}$/.test(word)) continue;
      for (let len = 2; len <= Math.min(4, word.length); len++) prefixes.add(word.slice(0, len).toLowerCase());
    }
  }
  // Names without words (a shop that is not the seed's): fall back to a common letter.
  const searchPrefixes = [...prefixes].sort().slice(0, SEARCH_PREFIXES_MAX);
  if (searchPrefixes.length === 0) searchPrefixes.push('a');
  return { categoryIds, productIdsByRank: ids, searchPrefixes };
}

/** Signs in seed users 1..n (8 at a time, spread over the connections); returns their tokens. */
async function signIn(http: SetupHttp, ctx: SetupContext<EndpointName>, n: number): Promise<string[]> {
  const tokens: string[] = new Array<string>(n);
  await http.forEach(n, SIGN_IN_CONCURRENCY, async (i) => {
    const email = `user${i + 1}@example.com`;
    const res = await ask(http, ctx, `cannot sign in ${email}`, 'POST', `${ctx.basePath}/sessions`, { email, password: `password-${i + 1}` });
    const body = res.json();
    if (res.status !== 201 && res.status !== 200) throw new Error(`cannot sign in ${email}: ${res.status} ${snippet(res.text)}`);
    if (!isRecord(body) || typeof body.token !== 'string') throw new Error(`cannot sign in ${email}: ${res.status} without a token: ${snippet(res.text)}`);
    tokens[i] = body.token;
  });
  return tokens;
}

/** The shop's mix: `powerplant bench examples/shop`. */
export const loadMix: LoadMix<EndpointName, ShopMixInfo> = {
  name: 'shop',
  description: 'browse 80% (product 60, category page 20), recent orders and search 15%, place order 5%',
  endpoints: ENDPOINT_NAMES.map((name) => ({ name, label: ENDPOINT_LABELS[name], weight: DEFAULT_WEIGHTS[name] })),

  async setup(http, ctx) {
    const catalog = await discover(http, ctx);
    const needTokens = ctx.weights.orders > 0 || ctx.weights.placeOrder > 0;
    const users = ctx.users;
    const tokens = needTokens ? await signIn(http, ctx, users) : [];
    const base = ctx.basePath;
    const ids = catalog.productIdsByRank;
    const get = (path: string): LoadRequest => ({ method: 'GET', path });
    const productGets = ids.map((id) => get(`${base}/products/${encodeURIComponent(id)}`));
    const categoryGets = catalog.categoryIds.map((id) => get(`${base}/categories/${encodeURIComponent(id)}/products`));
    const searchGets = catalog.searchPrefixes.map((q) => get(`${base}/search?q=${encodeURIComponent(q)}`));
    const ordersPath = `${base}/orders`;
    const zipf = new ZipfSampler(ids.length, ZIPF_EXPONENT);
    const runId = randomBytes(4).toString('hex');

    return {
      summary: `${ids.length} products (Zipf ${ZIPF_EXPONENT}), ${needTokens ? users : 0} signed-in users`,
      info: { users: needTokens ? users : 0, products: ids.length, zipfExponent: ZIPF_EXPONENT },
      connection(index, random) {
        const token = tokens[index % users];
        const recentOrders: LoadRequest = { method: 'GET', path: ordersPath, headers: token === undefined ? null : ['authorization', `Bearer ${token}`] };
        const postHeaders = token === undefined ? null : ['authorization', `Bearer ${token}`, 'content-type', 'application/json'];
        let orderCounter = 0;
        const orderBody = (): string => {
          const n = 1 + Math.floor(random() * 3);
          const picked: string[] = [];
          for (let tries = 0; picked.length < n && tries < 10; tries++) {
            const id = ids[zipf.rank(random())]!;
            if (!picked.includes(id)) picked.push(id);
          }
          const items = picked.map((sku) => `{"sku":${JSON.stringify(sku)},"qty":1}`).join(',');
          return `{"items":[${items}],"idempotencyKey":"bench-${runId}-${index}-${orderCounter++}"}`;
        };
        return (endpoint) => {
          switch (endpoint) {
            case 'product':
              return productGets[zipf.rank(random())]!;
            case 'category':
              return categoryGets[Math.floor(random() * categoryGets.length)]!;
            case 'orders':
              return recentOrders;
            case 'search':
              return searchGets[Math.floor(random() * searchGets.length)]!;
            case 'placeOrder':
              return { method: 'POST', path: ordersPath, headers: postHeaders, body: orderBody() };
          }
        };
      },
    };
  },
};
