import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PRODUCT_KEYS, expectError, expectStatus, newUser, seedCategoryOf, seedPriceCents, seedSku, signIn, startTestShop, walkPages,
  type Category, type HttpResult, type Page, type Product, type ShopHttp, type TestShop,
} from '../helpers/shop-http.js';
import { waitUntil } from '../helpers/wait.js';

// examples/shop over HTTP on the embedded default: categories, product pages, product details and
// the admin update, search, inventory, and the gateway's own answers (unknown route, wrong method,
// body too large, platform endpoints). CONTRACT.md is the spec.
describe('examples/shop: catalog, search, inventory, gateway', () => {
  let shop: TestShop;
  let http: ShopHttp;
  let adminToken: string;
  /** All 2,000 products as the category listings return them before any update (the search oracle). */
  const catalog: Product[] = [];

  beforeAll(async () => {
    shop = await startTestShop('catalog');
    http = shop.http;
    adminToken = (await signIn(http, 'admin@example.com', 'admin-password')).token;
  });
  afterAll(async () => {
    await shop?.stop();
  });

  function expectSeedProduct(p: Product, i: number): void {
    expect(Object.keys(p).sort()).toEqual(PRODUCT_KEYS);
    expect(p.id).toBe(seedSku(i));
    expect(p.categoryId).toBe(seedCategoryOf(i));
    expect(p.priceCents).toBe(seedPriceCents(i));
    expect(p.name).toMatch(new RegExp(`^[A-Z][a-z]+ [A-Z][a-z]+ ${i}$`));
    expect(typeof p.description).toBe('string');
  }

  const idNum = (id: string): number => Number(id.slice(1));

  /** An over-long or badly encoded id in the path: 404 (unknown id) or 400, in the contract's error body. */
  function expectOddId(r: HttpResult): void {
    expect([400, 404], `${r.status} ${r.text.slice(0, 200)}`).toContain(r.status);
    expectError(r, r.status, r.status === 404 ? 'PP_ERR_NOT_FOUND' : 'PP_ERR_VALIDATION');
  }

  describe('GET /categories', () => {
    it('lists all 20 categories c01..c20 by id as {id, name}', async () => {
      const r = await http.get<{ items: Category[] }>('/categories');
      expectStatus(r, 200);
      expect(Object.keys(r.body)).toEqual(['items']);
      expect(r.body.items.map((c) => c.id)).toEqual(Array.from({ length: 20 }, (_, k) => `c${String(k + 1).padStart(2, '0')}`));
      for (const c of r.body.items) {
        expect(Object.keys(c).sort()).toEqual(['id', 'name']);
        expect(c.name.length).toBeGreaterThan(0);
      }
      expect(new Set(r.body.items.map((c) => c.name)).size).toBe(20);
    });
  });

  describe('GET /categories/:id/products', () => {
    it('walks a whole category with limit 7: each of its 100 products exactly once, in id order, the last page without a cursor', async () => {
      const { items, pages } = await walkPages<Product>(http, '/categories/c07/products', 7);
      expect(pages.length).toBe(15); // 14 full pages of 7, then 2
      expect(pages.at(-1)?.length).toBe(2);
      const expected = Array.from({ length: 100 }, (_, k) => seedSku(7 + 20 * k));
      expect(items.map((p) => p.id)).toEqual(expected);
      for (const p of items) expectSeedProduct(p, idNum(p.id));
    });

    it('serves 20 per page by default, with a cursor that continues where the page ended', async () => {
      const r = await http.get<Page<Product>>('/categories/c01/products');
      expectStatus(r, 200);
      expect(r.body.items.map((p) => p.id)).toEqual(Array.from({ length: 20 }, (_, k) => seedSku(1 + 20 * k)));
      expect(typeof r.body.cursor).toBe('string');
      const next = await http.get<Page<Product>>(`/categories/c01/products?cursor=${encodeURIComponent(r.body.cursor ?? '')}`);
      expectStatus(next, 200);
      expect(next.body.items.map((p) => p.id)).toEqual(Array.from({ length: 20 }, (_, k) => seedSku(401 + 20 * k)));
    });

    it('reads the whole catalog (20 categories, limit 100): 2,000 seeded products, each once, in its category', async () => {
      catalog.length = 0;
      for (let c = 1; c <= 20; c++) {
        const cat = `c${String(c).padStart(2, '0')}`;
        const { items } = await walkPages<Product>(http, `/categories/${cat}/products`, 100);
        expect(items.length).toBe(100);
        for (const p of items) {
          expect(p.categoryId).toBe(cat);
          expectSeedProduct(p, idNum(p.id));
        }
        catalog.push(...items);
      }
      expect(new Set(catalog.map((p) => p.id)).size).toBe(2_000);
    });

    it('answers an unknown category with 404', async () => {
      for (const id of ['c21', 'c00', 'c1', 'C01', 'nope']) {
        expectError(await http.get(`/categories/${id}/products`), 404, 'PP_ERR_NOT_FOUND');
      }

    });

    it('rejects limits outside 1..100 and non-integer limits with 400 params.limit', async () => {
      for (const limit of ['0', '101', '1000', '-1', 'abc', '1.5', '1e2x', '99999999999999999999']) {
        expectError(await http.get(`/categories/c01/products?limit=${limit}`), 400, 'PP_ERR_VALIDATION', 'params.limit');
      }
      for (const limit of ['1', '100']) expectStatus(await http.get(`/categories/c01/products?limit=${limit}`), 200);
      const twice = await http.get('/categories/c01/products?limit=1&limit=2');
      expectError(twice, 400, 'PP_ERR_VALIDATION', 'params.limit');
    });

    it('answers a garbage cursor with 400 params.cursor (or a well-formed page), never a 500', async () => {
      for (const cursor of ['!!!', 'not-a-cursor', 'x'.repeat(3_000), '%00', 'eyJ9', 'p99999']) {
        const r = await http.get<Page<Product>>(`/categories/c01/products?cursor=${encodeURIComponent(cursor)}`);
        if (r.status === 200) {
          expect(Array.isArray(r.body.items)).toBe(true);
          for (const p of r.body.items) expect(p.categoryId).toBe('c01');
        } else {
          expectError(r, 400, 'PP_ERR_VALIDATION', 'params.cursor');
        }
      }
    });
  });

  describe('GET /products/:id', () => {
    it('returns the seeded product', async () => {
      for (const i of [1, 17, 1_000, 2_000]) {
        const r = await http.get<Product>(`/products/${seedSku(i)}`);
        expectStatus(r, 200);
        expectSeedProduct(r.body, i);
        // The same values as the listing.
        expect(r.body).toEqual(catalog.find((p) => p.id === seedSku(i)));
      }
    });

    it('answers unknown ids with 404 (odd ones with 404 or 400), never a 500', async () => {
      for (const id of ['p00000', 'p02001', 'p99999', 'P00001', 'p1', 'o00000000000000000000']) {
        expectError(await http.get(`/products/${id}`), 404, 'PP_ERR_NOT_FOUND');
      }
      for (const id of ['x'.repeat(65), 'x'.repeat(100), '%00', '..%2F..%2Fetc', "p00001'%20OR%20'1'='1", '%F0%9F%98%80']) {
        expectOddId(await http.get(`/products/${id}`));
      }
    });
  });

  describe('GET /search', () => {
    function oracle(q: string, limit: number): string[] {
      const ql = q.toLowerCase();
      return catalog
        .filter((p) => p.name.split(/\s+/).some((w) => w.toLowerCase().startsWith(ql)))
        .map((p) => p.id)
        .sort()
        .slice(0, limit);
    }

    function words(): { adjective: string; noun: string } {
      const [adjective, noun] = (catalog.find((p) => p.id === 'p00017')?.name ?? '').split(' ') as [string, string];
      return { adjective, noun };
    }

    it('returns {items} whose names all have a word starting with q (any case), by id, at most limit, exactly the matching ones', async () => {
      expect(catalog.length).toBe(2_000);
      const { adjective, noun } = words();
      const qs = [adjective.slice(0, 3).toLowerCase(), noun.slice(0, 2).toUpperCase(), noun, adjective.toLowerCase(), noun.slice(1, 4)];
      for (const q of qs) {
        for (const limit of [1, 7, 100]) {
          const r = await http.get<{ items: Product[] }>(`/search?q=${encodeURIComponent(q)}&limit=${limit}`);
          expectStatus(r, 200);
          expect(Object.keys(r.body)).toEqual(['items']);
          expect(r.body.items.length).toBeLessThanOrEqual(limit);
          for (const p of r.body.items) {
            expect(Object.keys(p).sort()).toEqual(PRODUCT_KEYS);
            expect(p.name.split(/\s+/).some((w) => w.toLowerCase().startsWith(q.toLowerCase())), `${p.name} for q=${q}`).toBe(true);
          }
          expect(r.body.items.map((p) => p.id), `q=${q} limit=${limit}`).toEqual(oracle(q, limit));
        }
      }
      // At least the first queries found something (the test would be empty otherwise).
      expect(oracle(qs[0] ?? '', 100).length).toBeGreaterThan(0);
    });

    it('is case-insensitive and defaults to at most 20 items', async () => {
      const { noun } = words();
      const lower = await http.get<{ items: Product[] }>(`/search?q=${encodeURIComponent(noun.toLowerCase())}`);
      const upper = await http.get<{ items: Product[] }>(`/search?q=${encodeURIComponent(noun.toUpperCase())}`);
      expectStatus(lower, 200);
      expect(upper.body).toEqual(lower.body);
      expect(lower.body.items.length).toBeLessThanOrEqual(20);
      expect(lower.body.items.map((p) => p.id)).toEqual(oracle(noun, 20));
    });

    it('treats wildcard and quote characters as text (no LIKE/SQL surprises): nothing matches them', async () => {
      for (const q of ['%', '_', '*', "'", '"', '\\', '%a', 'a%', '_a', '.', "' OR '1'='1", '%%', '[a-z]', '(', ')', '; DROP TABLE products']) {
        const r = await http.get<{ items: Product[] }>(`/search?q=${encodeURIComponent(q)}&limit=100`);
        expectStatus(r, 200);
        expect(r.body.items.map((p) => p.id), `q=${q}`).toEqual(oracle(q, 100));
      }
      const none = await http.get<{ items: Product[] }>('/search?q=zzqxj');
      expectStatus(none, 200);
      expect(none.body).toEqual({ items: [] });
    });

    it('rejects a missing, empty or over-long q and a bad limit with 400 naming the field', async () => {
      expectError(await http.get('/search'), 400, 'PP_ERR_VALIDATION', 'params.q');
      expectError(await http.get('/search?limit=5'), 400, 'PP_ERR_VALIDATION', 'params.q');
      expectError(await http.get('/search?q='), 400, 'PP_ERR_VALIDATION', 'params.q');
      expectError(await http.get(`/search?q=${'a'.repeat(51)}`), 400, 'PP_ERR_VALIDATION', 'params.q');
      expectError(await http.get('/search?q=a&q=b'), 400, 'PP_ERR_VALIDATION', 'params.q');
      const fifty = await http.get<{ items: Product[] }>(`/search?q=${'a'.repeat(50)}`);
      expectStatus(fifty, 200);
      expect(fifty.body.items).toEqual([]);
      for (const limit of ['0', '101', '1000', '-5', 'ten', '2.5']) {
        expectError(await http.get(`/search?q=a&limit=${limit}`), 400, 'PP_ERR_VALIDATION', 'params.limit');
      }
    });
  });

  describe('GET /inventory/:sku', () => {
    it('returns {sku, available} with the seeded stock of 1,000,000', async () => {
      for (const sku of ['p00001', 'p01234', 'p02000']) {
        const r = await http.get<{ sku: string; available: number }>(`/inventory/${sku}`);
        expectStatus(r, 200);
        expect(r.body).toEqual({ sku, available: 1_000_000 });
      }
    });

    it('answers an unknown sku with 404', async () => {
      for (const sku of ['p00000', 'p02001', 'c01', 'nope']) {
        expectError(await http.get(`/inventory/${sku}`), 404, 'PP_ERR_NOT_FOUND');
      }
      for (const sku of ['x'.repeat(65), '%00']) expectOddId(await http.get(`/inventory/${sku}`));
    });
  });

  describe('PUT /products/:id (admin)', () => {
    const put = (id: string, body: unknown, token?: string): ReturnType<ShopHttp['put']> =>
      http.put(`/products/${id}`, body, token === undefined ? {} : { token });

    async function listing(cat: string): Promise<Product[]> {
      return (await walkPages<Product>(http, `/categories/${cat}/products`, 100)).items;
    }

    it('updates a product: 200 Product, and GET /products/:id and the category listing show it at once', async () => {
      // Read first so both the product and the listing page are cached, then update.
      expectStatus(await http.get('/products/p01987'), 200);
      expect((await listing('c07')).find((p) => p.id === 'p01987')).toBeDefined();
      const next = { name: 'Quixotic Zeppelin 1987', categoryId: 'c07', priceCents: 4_242, description: 'Freshly renamed.' };
      const r = await put('p01987', next, adminToken);
      expectStatus(r, 200);
      expect(r.body).toEqual({ id: 'p01987', ...next });
      expect((await http.get<Product>('/products/p01987')).body).toEqual({ id: 'p01987', ...next });
      const c07 = await listing('c07');
      expect(c07.find((p) => p.id === 'p01987')).toEqual({ id: 'p01987', ...next });
      expect(c07.length).toBe(100);
      // The rest of the category is unaffected: the same products in the same order.
      expect(c07.map((p) => p.id)).toEqual(Array.from({ length: 100 }, (_, k) => seedSku(7 + 20 * k)));
    });

    it('moves a product between categories: it leaves the old listing and joins the new one in id order', async () => {
      expectStatus(await http.get('/products/p01999'), 200);
      await listing('c19');
      await listing('c02');
      const moved = { name: 'Wandering Lamp 1999', categoryId: 'c02', priceCents: 12_345, description: 'Moved.' };
      const r = await put('p01999', moved, adminToken);
      expectStatus(r, 200);
      expect(r.body).toEqual({ id: 'p01999', ...moved });
      expect((await http.get<Product>('/products/p01999')).body).toEqual({ id: 'p01999', ...moved });
      const c19 = await listing('c19');
      const c02 = await listing('c02');
      expect(c19.map((p) => p.id)).not.toContain('p01999');
      expect(c19.length).toBe(99);
      expect(c02.length).toBe(101);
      const ids02 = c02.map((p) => p.id);
      expect(ids02).toEqual([...ids02].sort());
      expect(c02.find((p) => p.id === 'p01999')).toEqual({ id: 'p01999', ...moved });
      // And back.
      expectStatus(await put('p01999', { ...moved, categoryId: 'c19' }, adminToken), 200);
      expect((await listing('c02')).map((p) => p.id)).not.toContain('p01999');
      expect((await listing('c19')).find((p) => p.id === 'p01999')).toEqual({ id: 'p01999', ...moved, categoryId: 'c19' });
    });

    it('makes the new name findable by search', async () => {
      const r = await put('p01986', { name: 'Xylophonic Kettle 1986', categoryId: 'c06', priceCents: 999, description: '' }, adminToken);
      expectStatus(r, 200);
      await waitUntil(async () => {
        const s = await http.get<{ items: Product[] }>('/search?q=xylophon');
        return s.status === 200 && s.body.items.some((p) => p.id === 'p01986');
      }, 10_000, 'search to find the renamed product');
      const s = await http.get<{ items: Product[] }>('/search?q=xylophon');
      expect(s.body.items).toEqual([{ id: 'p01986', name: 'Xylophonic Kettle 1986', categoryId: 'c06', priceCents: 999, description: '' }]);
    });

    it('forbids non-admins (403) and anonymous callers (401), and changes nothing', async () => {
      const before = (await http.get<Product>('/products/p00500')).body;
      const body = { name: 'Hijacked', categoryId: 'c01', priceCents: 1, description: 'x' };
      const user = await newUser(http, 'notadmin');
      expectError(await put('p00500', body, user.token), 403, 'PP_ERR_FORBIDDEN');
      const seeded = await signIn(http, 'user9@example.com', 'password-9');
      expectError(await put('p00500', body, seeded.token), 403, 'PP_ERR_FORBIDDEN');
      expectError(await put('p00500', body), 401, 'PP_ERR_UNAUTHORIZED');
      expect((await http.get<Product>('/products/p00500')).body).toEqual(before);
    });

    it('answers an unknown category with 404 and changes nothing', async () => {
      const before = (await http.get<Product>('/products/p00501')).body;
      for (const categoryId of ['c21', 'c00', 'nope']) {
        expectError(await put('p00501', { ...before, id: undefined, categoryId }, adminToken), 404, 'PP_ERR_NOT_FOUND');
      }
      expect((await http.get<Product>('/products/p00501')).body).toEqual(before);
    });

    it('answers an unknown product id with 404 or creates nothing odd, never a 500', async () => {
      const r = await put('p09999', { name: 'Ghost Lamp 9999', categoryId: 'c01', priceCents: 100, description: '' }, adminToken);
      expect([200, 201, 404], r.text.slice(0, 200)).toContain(r.status);
      if (r.status === 404) {
        expectError(r, 404, 'PP_ERR_NOT_FOUND');
        expectError(await http.get('/products/p09999'), 404, 'PP_ERR_NOT_FOUND');
      }
    });

    it('rejects missing fields, wrong types and bad values with 400 naming the field, and changes nothing', async () => {
      const before = (await http.get<Product>('/products/p00502')).body;
      const ok = { name: before.name, categoryId: before.categoryId, priceCents: before.priceCents, description: before.description };
      const cases: [unknown, string][] = [
        [{ categoryId: ok.categoryId, priceCents: 1, description: '' }, 'params.name'],
        [{ name: 'n', priceCents: 1, description: '' }, 'params.categoryId'],
        [{ name: 'n', categoryId: ok.categoryId, description: '' }, 'params.priceCents'],
        [{ name: 'n', categoryId: ok.categoryId, priceCents: 1 }, 'params.description'],
        [{ ...ok, name: 5 }, 'params.name'],
        [{ ...ok, categoryId: 7 }, 'params.categoryId'],
        [{ ...ok, priceCents: '100' }, 'params.priceCents'],
        [{ ...ok, priceCents: null }, 'params.priceCents'],
        [{ ...ok, priceCents: 1.5 }, 'params.priceCents'],
        [{ ...ok, priceCents: -1 }, 'params.priceCents'],
        [{ ...ok, description: { text: 'x' } }, 'params.description'],
      ];
      for (const [body, field] of cases) expectError(await put('p00502', body, adminToken), 400, 'PP_ERR_VALIDATION', field);
      expectError(await http.request('PUT', '/products/p00502', { token: adminToken, raw: '{"name":"x",' }), 400, 'PP_ERR_VALIDATION');
      expectError(await http.request('PUT', '/products/p00502', { token: adminToken, raw: '[]' }), 400, 'PP_ERR_VALIDATION');
      expect((await http.get<Product>('/products/p00502')).body).toEqual(before);
    });

    it('does not 500 on over-long strings', async () => {
      const r = await put('p00503', { name: 'n'.repeat(10_000), categoryId: 'c03', priceCents: 1, description: 'd'.repeat(200_000) }, adminToken);
      expect([200, 400], r.text.slice(0, 200)).toContain(r.status);
      if (r.status === 400) expectError(r, 400, 'PP_ERR_VALIDATION');
    });
  });

  describe('the gateway', () => {
    it('answers unknown routes with 404 PP_ERR_NOT_FOUND', async () => {
      for (const path of ['/nope', '/products', '/categories/c01', '/users/u000000000000', '/me/nope', '/orders/o1/items', '/', '/search/x']) {
        expectError(await http.get(path), 404, 'PP_ERR_NOT_FOUND');
      }
    });

    it('answers a wrong method on a known path with 404 (no such route), never a 500', async () => {
      for (const [method, path] of [
        ['DELETE', '/products/p00001'], ['POST', '/products/p00001'], ['PATCH', '/products/p00001'],
        ['POST', '/categories'], ['PUT', '/categories/c01/products'], ['DELETE', '/me'], ['POST', '/me'],
        ['GET', '/sessions'], ['GET', '/users'], ['DELETE', '/orders'], ['PUT', '/messages'], ['POST', '/inventory/p00001'],
      ] as const) {
        const r = await http.request(method, path, method === 'GET' || method === 'DELETE' ? {} : { json: {} });
        expectError(r, 404, 'PP_ERR_NOT_FOUND');
      }
    });

    it('answers a body over the gateway limit with 413 PP_ERR_TOO_LARGE', async () => {
      const big = JSON.stringify({ email: 'big@example.com', password: 'password-big', name: 'B', bio: 'x'.repeat(4 * 1024 * 1024) });
      expectError(await http.request('POST', '/users', { raw: big }), 413, 'PP_ERR_TOO_LARGE');
      const admin = await http.request('PUT', '/products/p00001', { token: adminToken, raw: big });
      expectError(admin, 413, 'PP_ERR_TOO_LARGE');
      expectError(await http.request('POST', '/sessions', { raw: big }), 413, 'PP_ERR_TOO_LARGE');
    });

    it('answers over-long path ids and malformed percent-encoding on every route with an id with 404 or 400 in the contract\'s error body', async () => {
      const user = await newUser(http, 'oddpath');
      const odd = ['x'.repeat(101), 'x'.repeat(5_000), '%E0%A4%A', '%', '%zz'];
      const seen: string[] = [];
      for (const id of odd) {
        for (const [path, token] of [
          [`/products/${id}`, undefined], [`/categories/${id}/products`, undefined], [`/inventory/${id}`, undefined], [`/orders/${id}`, user.token],
        ] as const) {
          const r = await http.get(path, token === undefined ? {} : { token });
          const ok = (r.status === 400 || r.status === 404) && (r.body as { error?: { code?: string } }).error?.code?.startsWith('PP_ERR_') === true;
          if (!ok) seen.push(`GET ${path.slice(0, 30)}… -> ${r.status} ${r.text.slice(0, 80)}`);
          else expectOddId(r);
        }
        const put = await http.put(`/products/${id}`, { name: 'n', categoryId: 'c01', priceCents: 1, description: '' }, { token: adminToken });
        if (!((put.status === 400 || put.status === 404) && put.text.includes('"PP_ERR_'))) seen.push(`PUT /products/${id.slice(0, 12)}… -> ${put.status} ${put.text.slice(0, 80)}`);
      }
      expect(seen).toEqual([]);
    });

    it('echoes a sane client request id in the header and the error body', async () => {
      const r = await http.get('/products/p02001', { headers: { 'x-request-id': 'shop-e2e-req-1' } });
      expect(expectError(r, 404, 'PP_ERR_NOT_FOUND').requestId).toBe('shop-e2e-req-1');
    });

    it('serves the platform endpoints /health, /metrics and /status', async () => {
      const h = await http.get('/health');
      expectStatus(h, 200);
      const m = await http.get('/metrics');
      expectStatus(m, 200);
      expect(m.text).toContain('pp_http_requests_total');
      const s = await http.get('/status');
      expectStatus(s, 200);
      expect(s.headers.get('content-type') ?? '').toContain('application/json');
    });
  });

  it('never answered any request in this file with a 5xx', () => {
    expect(http.sent.length).toBeGreaterThan(100);
    expect(http.serverErrors()).toEqual([]);
  });
});
