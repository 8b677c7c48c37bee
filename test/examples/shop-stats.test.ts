/**
 * The shop's live statistics (examples/shop/stats.ts) end to end on the embedded engines: orders
 * (through the orders table's change feed) and catalog reads (as view events) flow through two
 * stream jobs into tables served at GET /stats/categories (sales per category per "minute",
 * tumbling) and GET /trending (views and ordered units over a sliding "hour"). The test shrinks the
 * minute to 1 s and the hour to 4 s; windows close on event time, so a later order moves it on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startShop, type Shop } from '../../examples/shop/index.js';
import { expectError, expectStatus, newUser, ShopHttp } from '../helpers/shop-http.js';
import { waitUntil } from '../helpers/wait.js';

interface CategorySales { minuteMs: number; items: { categoryId: string; minute: number; units: number; cents: number }[] }
interface Trending { window: { start: number; end: number } | null; items: { sku: string; views: number; units: number; score: number }[] }

describe('examples/shop: live statistics on stream jobs', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pp-shop-stats-'));
  let shop: Shop;
  let http: ShopHttp;
  beforeAll(async () => {
    shop = await startShop({ dataDir, port: 0, sessionSecret: 'test-secret-stats', stats: { minuteMs: 1000, hourMs: 4000, slideMs: 1000, viewFlushMs: 500 } });
    http = new ShopHttp(shop.url);
  });
  afterAll(async () => {
    await shop?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('sales per category per minute and trending products, from orders and catalog reads', async () => {
    const empty = await http.get<CategorySales>('/stats/categories');
    expectStatus(empty, 200);
    expect(empty.body).toEqual({ minuteMs: 1000, items: [] });
    const u = await newUser(http, 'stats');
    for (let i = 0; i < 3; i++) expectStatus(await http.get('/products/p00001'), 200);
    expectStatus(await http.get('/products/p00002'), 200);
    // p00001 and p00021 are both in category c01, p00002 in c02 (the seed).
    const items = [{ sku: 'p00001', qty: 2 }, { sku: 'p00021', qty: 1 }, { sku: 'p00002', qty: 1 }];
    expectStatus(await http.post('/orders', { items }, { token: u.token }), 201);
    await new Promise((r) => setTimeout(r, 1600));
    // Later events move event time past the first minute on the same partitions.
    for (let i = 0; i < 2; i++) expectStatus(await http.get('/products/p00001'), 200);
    expectStatus(await http.post('/orders', { items }, { token: u.token }), 201);

    await waitUntil(async () => {
      const r = await http.get<CategorySales>('/stats/categories?minutes=10');
      return r.status === 200 && r.body.items.some((i) => i.categoryId === 'c01') && r.body.items.some((i) => i.categoryId === 'c02');
    }, 20_000, 'the first minute of sales');
    const sales = (await http.get<CategorySales>('/stats/categories?minutes=10')).body;
    const c01 = sales.items.filter((i) => i.categoryId === 'c01');
    expect(c01[c01.length - 1]!.units).toBe(3); // the first minute: 2 × p00001 + 1 × p00021
    expect(c01[c01.length - 1]!.minute % 1000).toBe(0);

    await waitUntil(async () => {
      const r = await http.get<Trending>('/trending?limit=5');
      return r.status === 200 && r.body.items.some((i) => i.sku === 'p00001');
    }, 20_000, 'a trending window');
    const t = (await http.get<Trending>('/trending?limit=5')).body;
    expect(t.window!.end - t.window!.start).toBe(4000);
    const top = t.items.find((i) => i.sku === 'p00001')!;
    expect(top.units).toBeGreaterThanOrEqual(2);
    expect(top.views).toBeGreaterThanOrEqual(3);
    expect(top.score).toBe(top.views + 10 * top.units);
    expect(t.items[0]!.score).toBeGreaterThanOrEqual(t.items[t.items.length - 1]!.score);
    // The jobs report on the node's /metrics.
    const m = await http.get<string>('/metrics');
    expect(m.text).toMatch(/pp_stream_records_total\{job="shop_sales",operator="source",dir="out"\} \d+/);
    expect(m.text).toMatch(/pp_stream_watermark_delay_ms\{job="shop_trending"\}/);
    // And in /status (what `powerplant status` prints as its streams table).
    const st = await http.get<{ streams?: { job: string; partitions: unknown[]; counters: { recordsIn: number } }[] }>('/status');
    expectStatus(st, 200);
    expect(st.body.streams?.map((j) => j.job).sort()).toEqual(['shop_sales', 'shop_trending']);
    expect(st.body.streams?.every((j) => j.partitions.length === 4 && j.counters.recordsIn > 0)).toBe(true);
  }, 60_000);

  it('bad query parameters are a 400 naming the field', async () => {
    expectError(await http.get('/stats/categories?minutes=0'), 400, 'PP_ERR_VALIDATION', 'params.minutes');
    expectError(await http.get('/trending?limit=x'), 400, 'PP_ERR_VALIDATION', 'params.limit');
  });
});
