import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startShop, type Shop } from '../../examples/shop/index.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from '../../examples/shop/seed-data.js';
import { ShopHttp, expectError, expectStatus, newUser, seedCategoryOf, seedPriceCents, seedSku, signIn } from '../helpers/shop-http.js';
import { waitUntil } from '../helpers/wait.js';

// examples/shop with analytics on (embedded): GET /admin/sales answers from the DuckDB mirrors of
// the orders and products tables, grouped by product, category or day, with the mirror's freshness;
// admin only; bad parameters are 400 naming the field.
interface Report {
  groupBy: string;
  from: number;
  to: number;
  groups: { key: string; orders: number; units: number; revenueCents: number }[];
  freshness: { lagRecords: number; lagMs: number; commitToVisibleP99Ms: number };
  queryMs: number;
}

describe('examples/shop: GET /admin/sales on the analytics mirrors', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pp-shop-sales-'));
  let shop: Shop;
  let http: ShopHttp;
  let admin: string;
  let user: string;

  beforeAll(async () => {
    shop = await startShop({ dataDir, port: 0, shards: 2, logger: false, analytics: true, sessionSecret: `test-secret-sales-${process.pid}` });
    http = new ShopHttp(shop.url);
    admin = (await signIn(http, ADMIN_EMAIL, ADMIN_PASSWORD)).token;
    user = (await newUser(http, 'sales')).token;
  });
  afterAll(async () => {
    await shop?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('groups the placed orders by product, category and day, with the freshness of the mirror', async () => {
    for (const items of [[{ sku: seedSku(1), qty: 2 }, { sku: seedSku(2), qty: 1 }], [{ sku: seedSku(1), qty: 3 }]]) {
      expectStatus(await http.post('/orders', { items }, { token: user }), 201);
    }
    const report = async (q: string): Promise<Report> => {
      const r = await http.get<Report>(`/admin/sales?${q}`, { token: admin });
      expectStatus(r, 200);
      return r.body;
    };
    await waitUntil(async () => (await report('groupBy=product')).groups.find((g) => g.key === seedSku(1))?.units === 5, 15_000, 'the orders to reach the mirror');
    const byProduct = await report('groupBy=product');
    expect(byProduct.groups.find((g) => g.key === seedSku(1))).toEqual({ key: seedSku(1), orders: 2, units: 5, revenueCents: 5 * seedPriceCents(1) });
    expect(byProduct.groups.find((g) => g.key === seedSku(2))).toEqual({ key: seedSku(2), orders: 1, units: 1, revenueCents: seedPriceCents(2) });
    expect(byProduct.freshness.lagRecords).toBeGreaterThanOrEqual(0);
    expect(byProduct.freshness.commitToVisibleP99Ms).toBeGreaterThanOrEqual(0);
    const byCategory = await report('groupBy=category');
    const c1 = byCategory.groups.find((g) => g.key === seedCategoryOf(1))!;
    expect(c1.units).toBeGreaterThanOrEqual(5);
    const byDay = await report(`groupBy=day&from=${Date.now() - 86_400_000}&to=${Date.now() + 60_000}`);
    const today = new Date().toISOString().slice(0, 10);
    expect(byDay.groups.map((g) => g.key)).toContain(today);
    expect(byDay.groups.reduce((n, g) => n + g.units, 0)).toBe(6);
    // a range without orders
    expect((await report('groupBy=product&from=0&to=1000')).groups).toEqual([]);
  });

  it('is admin only, and names a bad parameter', async () => {
    expectError(await http.get('/admin/sales?groupBy=product'), 401, 'PP_ERR_UNAUTHORIZED');
    expectError(await http.get('/admin/sales?groupBy=product', { token: user }), 403, 'PP_ERR_FORBIDDEN');
    expectError(await http.get('/admin/sales?groupBy=colour', { token: admin }), 400, 'PP_ERR_VALIDATION', 'params.groupBy');
    expectError(await http.get('/admin/sales', { token: admin }), 400, 'PP_ERR_VALIDATION', 'params.groupBy');
    expectError(await http.get('/admin/sales?groupBy=day&from=abc', { token: admin }), 400, 'PP_ERR_VALIDATION', 'params.from');
    expectError(await http.get('/admin/sales?groupBy=day&from=2000&to=1000', { token: admin }), 400, 'PP_ERR_VALIDATION', 'params.from');
  });
});
