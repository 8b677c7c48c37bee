import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NOTIFICATION_KEYS, ORDER_ID_RE, ORDER_KEYS, expectError, expectStatus, newUser, seedPriceCents, seedSku, startTestShop, walkPages,
  type Notification, type Order, type Page, type ShopHttp, type TestShop,
} from '../helpers/shop-http.js';
import { waitUntil } from '../helpers/wait.js';

// examples/shop over HTTP on the embedded default: placing orders (validation, stock reservation,
// idempotency, concurrency), recent orders, one order, and the order-created notification that
// travels through the queue to the notifier. CONTRACT.md is the spec.
describe('examples/shop: orders, inventory reservations, notifications', () => {
  let shop: TestShop;
  let http: ShopHttp;

  beforeAll(async () => {
    shop = await startTestShop('orders');
    http = shop.http;
  });
  afterAll(async () => {
    await shop?.stop();
  });

  const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 3));

  async function available(sku: string): Promise<number> {
    const r = await http.get<{ sku: string; available: number }>(`/inventory/${sku}`);
    expectStatus(r, 200);
    expect(r.body.sku).toBe(sku);
    return r.body.available;
  }

  const order = (token: string, body: unknown): ReturnType<ShopHttp['post']> => http.post<Order>('/orders', body, { token });

  /** The Order the contract promises for these items (unit prices from the seed). */
  function expectOrder(o: Order, userId: string, items: { sku: string; qty: number }[]): void {
    expect(Object.keys(o).sort()).toEqual(ORDER_KEYS);
    expect(o.orderId).toMatch(ORDER_ID_RE);
    expect(o.userId).toBe(userId);
    expect(o.status).toBe('placed');
    expect(Number.isInteger(o.createdAt)).toBe(true);
    const want = items.map((i) => ({ sku: i.sku, qty: i.qty, priceCents: seedPriceCents(Number(i.sku.slice(1))) }));
    const bySku = (a: { sku: string }, b: { sku: string }): number => a.sku.localeCompare(b.sku);
    expect([...o.items].sort(bySku)).toEqual([...want].sort(bySku));
    expect(o.totalCents).toBe(want.reduce((s, i) => s + i.qty * i.priceCents, 0));
  }

  describe('POST /orders, GET /orders, GET /orders/:id', () => {
    it('places an order: 201 Order with seed prices and the total, stock reserved, readable at once by id and in the list', async () => {
      const u = await newUser(http, 'order');
      const items = [{ sku: 'p00100', qty: 2 }, { sku: 'p01200', qty: 3 }];
      const [s1, s2] = [await available('p00100'), await available('p01200')];
      const before = Date.now();
      const r = await order(u.token, { items });
      expectStatus(r, 201);
      const o = r.body as Order;
      expectOrder(o, u.user.userId, items);
      expect(o.createdAt).toBeGreaterThanOrEqual(before - 1_000);
      expect(o.createdAt).toBeLessThanOrEqual(Date.now() + 1_000);
      expect(await available('p00100')).toBe(s1 - 2);
      expect(await available('p01200')).toBe(s2 - 3);
      // Read-your-writes: in GET /orders and GET /orders/:id straight after the 201.
      const list = await http.get<Page<Order>>('/orders', { token: u.token });
      expectStatus(list, 200);
      expect(list.body).toEqual({ items: [o] });
      const one = await http.get<Order>(`/orders/${o.orderId}`, { token: u.token });
      expectStatus(one, 200);
      expect(one.body).toEqual(o);
    });

    it('accepts the bounds: 20 distinct skus, qty 1 and 100, an idempotencyKey of 64 characters', async () => {
      const u = await newUser(http, 'bounds');
      const items = Array.from({ length: 20 }, (_, k) => ({ sku: seedSku(300 + k), qty: k % 2 === 0 ? 1 : 100 }));
      const r = await order(u.token, { items, idempotencyKey: 'k'.repeat(64) });
      expectStatus(r, 201);
      expectOrder(r.body as Order, u.user.userId, items);
      expect(await available(seedSku(301))).toBe(1_000_000 - 100);
    });

    it('lists recent orders newest first, and pages through them each exactly once', async () => {
      const u = await newUser(http, 'recent');
      const placed: Order[] = [];
      for (let k = 0; k < 10; k++) {
        const r = await order(u.token, { items: [{ sku: seedSku(400 + k), qty: 1 }] });
        expectStatus(r, 201);
        placed.push(r.body as Order);
        await tick(); // distinct createdAt, so "newest first" has one right answer
      }
      const newestFirst = [...placed].reverse();
      const first = await http.get<Page<Order>>('/orders?limit=2', { token: u.token });
      expectStatus(first, 200);
      expect(first.body.items).toEqual(newestFirst.slice(0, 2));
      const { items, pages } = await walkPages<Order>(http, '/orders', 3, { token: u.token });
      expect(items.map((o) => o.orderId)).toEqual(newestFirst.map((o) => o.orderId));
      expect(items).toEqual(newestFirst);
      expect(pages.length).toBe(4);
      for (let k = 1; k < items.length; k++) expect(items[k - 1]!.createdAt).toBeGreaterThanOrEqual(items[k]!.createdAt);
      // Default page size 20: all ten, no cursor.
      const all = await http.get<Page<Order>>('/orders', { token: u.token });
      expect(all.body).toEqual({ items: newestFirst });
      // Another user sees none of them.
      const other = await newUser(http, 'recent-other');
      expect((await http.get<Page<Order>>('/orders', { token: other.token })).body).toEqual({ items: [] });
    });

    it("answers another user's order and unknown order ids with 404 (not 403)", async () => {
      const a = await newUser(http, 'owner');
      const b = await newUser(http, 'snoop');
      const r = await order(a.token, { items: [{ sku: 'p00501', qty: 1 }] });
      expectStatus(r, 201);
      const id = (r.body as Order).orderId;
      expectError(await http.get(`/orders/${id}`, { token: b.token }), 404, 'PP_ERR_NOT_FOUND');
      expectStatus(await http.get(`/orders/${id}`, { token: a.token }), 200);
      for (const unknown of ['o00000000000000000000', `o${'f'.repeat(20)}`]) {
        expectError(await http.get(`/orders/${unknown}`, { token: a.token }), 404, 'PP_ERR_NOT_FOUND');
      }
      for (const odd of ['nope', 'o1', 'x'.repeat(100), 'p00001', "o'%20OR%201=1", '%00']) {
        const res = await http.get(`/orders/${odd}`, { token: a.token });
        expect([400, 404], `${odd.slice(0, 20)}: ${res.text.slice(0, 200)}`).toContain(res.status);
        expectError(res, res.status, res.status === 404 ? 'PP_ERR_NOT_FOUND' : 'PP_ERR_VALIDATION');
      }
    });

    it('rejects bad order bodies with 400 naming the field, and reserves nothing', async () => {
      const u = await newUser(http, 'badorder');
      const sku = 'p00600';
      const start = await available(sku);
      const cases: [unknown, string | undefined][] = [
        [{}, 'params.items'],
        [{ items: [] }, 'params.items'],
        [{ items: 'p00600' }, 'params.items'],
        [{ items: { sku, qty: 1 } }, 'params.items'],
        [{ items: null }, 'params.items'],
        [{ items: Array.from({ length: 21 }, (_, k) => ({ sku: seedSku(600 + k), qty: 1 })) }, 'params.items'],
        [{ items: [{ sku, qty: 0 }] }, 'params.items.0.qty'],
        [{ items: [{ sku, qty: 101 }] }, 'params.items.0.qty'],
        [{ items: [{ sku, qty: -1 }] }, 'params.items.0.qty'],
        [{ items: [{ sku, qty: 1.5 }] }, 'params.items.0.qty'],
        [{ items: [{ sku, qty: '1' }] }, 'params.items.0.qty'],
        [{ items: [{ sku, qty: null }] }, 'params.items.0.qty'],
        [{ items: [{ sku, qty: 1_000_000 }] }, 'params.items.0.qty'],
        [{ items: [{ sku }] }, 'params.items.0.qty'],
        [{ items: [{ qty: 1 }] }, 'params.items.0.sku'],
        [{ items: [{ sku: 600, qty: 1 }] }, 'params.items.0.sku'],
        [{ items: [{ sku: 'p00601', qty: 1 }, { sku, qty: 101 }] }, 'params.items.1.qty'],
        [{ items: ['p00600'] }, 'params.items.0'],
        [{ items: [{ sku, qty: 1 }], idempotencyKey: '' }, 'params.idempotencyKey'],
        [{ items: [{ sku, qty: 1 }], idempotencyKey: 'k'.repeat(65) }, 'params.idempotencyKey'],
        [{ items: [{ sku, qty: 1 }], idempotencyKey: 7 }, 'params.idempotencyKey'],
        // Duplicate skus: a 400 (which field is the shop's call).
        [{ items: [{ sku, qty: 1 }, { sku, qty: 2 }] }, undefined],
        [{ items: [{ sku: 'p00601', qty: 1 }, { sku, qty: 1 }, { sku: 'p00602', qty: 1 }, { sku, qty: 1 }] }, undefined],
      ];
      for (const [body, field] of cases) {
        const r = await order(u.token, body);
        expectError(r, 400, 'PP_ERR_VALIDATION', field);
        if (field === undefined) expect(r.body).toMatchObject({ error: { field: expect.stringMatching(/^params\.items/) } });
      }
      for (const raw of ['{"items":[{"sku":"p00600","qty":1}]', '{"items":[{"sku":"p00600","qty":01}]}', '[{"sku":"p00600","qty":1}]', 'null']) {
        expectError(await http.request('POST', '/orders', { token: u.token, raw }), 400, 'PP_ERR_VALIDATION');
      }
      expect(await available(sku)).toBe(start);
      expect(await available('p00601')).toBe(1_000_000);
      expect((await http.get<Page<Order>>('/orders', { token: u.token })).body).toEqual({ items: [] });
    });

    it('answers an unknown sku with 404 naming params.items.N.sku, releasing the reservations made before it', async () => {
      const u = await newUser(http, 'unknownsku');
      const s0 = await available('p00700');
      const r = await order(u.token, { items: [{ sku: 'p00700', qty: 5 }, { sku: 'p09999', qty: 1 }] });
      expectError(r, 404, 'PP_ERR_NOT_FOUND', 'params.items.1.sku');
      expect(await available('p00700')).toBe(s0);
      const r2 = await order(u.token, { items: [{ sku: 'nope', qty: 1 }] });
      expectError(r2, 404, 'PP_ERR_NOT_FOUND', 'params.items.0.sku');
      const r3 = await order(u.token, { items: [{ sku: 'p00700', qty: 1 }, { sku: 'p00701', qty: 1 }, { sku: 'c01', qty: 1 }] });
      expectError(r3, 404, 'PP_ERR_NOT_FOUND', 'params.items.2.sku');
      expect(await available('p00700')).toBe(s0);
      expect(await available('p00701')).toBe(1_000_000);
      expect((await http.get<Page<Order>>('/orders', { token: u.token })).body).toEqual({ items: [] });
    });

    it('rejects bad limits on GET /orders with 400 params.limit', async () => {
      const u = await newUser(http, 'limits');
      for (const limit of ['0', '101', '1000', '-1', 'x', '3.5']) {
        expectError(await http.get(`/orders?limit=${limit}`, { token: u.token }), 400, 'PP_ERR_VALIDATION', 'params.limit');
      }
      const r = await http.get<Page<Order>>(`/orders?cursor=${encodeURIComponent('garbage!')}`, { token: u.token });
      if (r.status !== 200) expectError(r, 400, 'PP_ERR_VALIDATION', 'params.cursor');
    });
  });

  describe('idempotencyKey', () => {
    it('returns the first order (201, same orderId) for a replay and reserves stock once', async () => {
      const u = await newUser(http, 'idem');
      const sku = 'p00800';
      const s0 = await available(sku);
      const body = { items: [{ sku, qty: 7 }], idempotencyKey: 'checkout-1' };
      const r1 = await order(u.token, body);
      expectStatus(r1, 201);
      const r2 = await order(u.token, body);
      expectStatus(r2, 201);
      expect(r2.body).toEqual(r1.body);
      expect(await available(sku)).toBe(s0 - 7);
      expect((await http.get<Page<Order>>('/orders', { token: u.token })).body).toEqual({ items: [r1.body] });
      // A new key is a new order.
      const r3 = await order(u.token, { ...body, idempotencyKey: 'checkout-2' });
      expectStatus(r3, 201);
      expect((r3.body as Order).orderId).not.toBe((r1.body as Order).orderId);
      expect(await available(sku)).toBe(s0 - 14);
    });

    it('scopes keys per user: the same key from another user is another order', async () => {
      const a = await newUser(http, 'idem-a');
      const b = await newUser(http, 'idem-b');
      const sku = 'p00801';
      const s0 = await available(sku);
      const body = { items: [{ sku, qty: 1 }], idempotencyKey: 'shared-key' };
      const ra = await order(a.token, body);
      const rb = await order(b.token, body);
      expectStatus(ra, 201);
      expectStatus(rb, 201);
      expect((rb.body as Order).userId).toBe(b.user.userId);
      expect((rb.body as Order).orderId).not.toBe((ra.body as Order).orderId);
      expect(await available(sku)).toBe(s0 - 2);
    });

    it('places one order for 8 concurrent requests with the same key', async () => {
      const u = await newUser(http, 'idem-race');
      const sku = 'p00802';
      const s0 = await available(sku);
      const body = { items: [{ sku, qty: 3 }], idempotencyKey: 'double-click' };
      const rs = await Promise.all(Array.from({ length: 8 }, () => order(u.token, body)));
      for (const r of rs) expectStatus(r, 201);
      expect(new Set(rs.map((r) => (r.body as Order).orderId)).size).toBe(1);
      expect(await available(sku)).toBe(s0 - 3);
      const list = await http.get<Page<Order>>('/orders', { token: u.token });
      expect(list.body.items.length).toBe(1);
    });
  });

  describe('not enough stock', () => {
    // The stock is set through the shop's store (TestShop.setStock): over HTTP alone, draining
    // 1,000,000 at <= 100 per order would take 10,000 orders.
    it('answers 409, releases the reservations made for earlier items, and writes no order', async () => {
      const u = await newUser(http, 'short');
      await shop.setStock('p01500', 5);
      const s1 = await available('p01501');
      const s2 = await available('p01502');
      expect(await available('p01500')).toBe(5);
      for (const items of [
        [{ sku: 'p01501', qty: 10 }, { sku: 'p01500', qty: 6 }],
        [{ sku: 'p01501', qty: 10 }, { sku: 'p01502', qty: 100 }, { sku: 'p01500', qty: 100 }],
        [{ sku: 'p01500', qty: 6 }, { sku: 'p01501', qty: 1 }],
      ]) {
        expectError(await order(u.token, { items }), 409, 'PP_ERR_CONFLICT');
        expect(await available('p01500')).toBe(5);
        expect(await available('p01501')).toBe(s1);
        expect(await available('p01502')).toBe(s2);
      }
      expect((await http.get<Page<Order>>('/orders', { token: u.token })).body).toEqual({ items: [] });
      // Exactly what is left can be ordered; then nothing more.
      const ok = await order(u.token, { items: [{ sku: 'p01500', qty: 5 }, { sku: 'p01501', qty: 1 }] });
      expectStatus(ok, 201);
      expect(await available('p01500')).toBe(0);
      expect(await available('p01501')).toBe(s1 - 1);
      expectError(await order(u.token, { items: [{ sku: 'p01500', qty: 1 }] }), 409, 'PP_ERR_CONFLICT');
      expect((await http.get<Page<Order>>('/orders', { token: u.token })).body).toEqual({ items: [ok.body] });
      // A 409 with an idempotencyKey is not remembered as an order: the same key succeeds once stock is back.
      expectError(await order(u.token, { items: [{ sku: 'p01500', qty: 2 }], idempotencyKey: 'retry-later' }), 409, 'PP_ERR_CONFLICT');
      await shop.setStock('p01500', 2);
      expectStatus(await order(u.token, { items: [{ sku: 'p01500', qty: 2 }], idempotencyKey: 'retry-later' }), 201);
      expect(await available('p01500')).toBe(0);
    });

    it('50 concurrent orders for a sku with 20 left: exactly 20 placed, 30 answered 409, stock 0, the other sku\'s reservations released', async () => {
      await shop.setStock('p01600', 20);
      const users = await Promise.all(Array.from({ length: 5 }, (_, k) => newUser(http, `scarce${k}`)));
      const s1 = await available('p01601');
      const rs = await Promise.all(
        Array.from({ length: 50 }, (_, k) => order(users[k % 5]!.token, { items: [{ sku: 'p01601', qty: 1 }, { sku: 'p01600', qty: 1 }] })),
      );
      const placed = rs.filter((r) => r.status === 201);
      expect(rs.map((r) => r.status).sort()).toEqual([...Array<number>(20).fill(201), ...Array<number>(30).fill(409)]);
      for (const r of rs) if (r.status !== 201) expectError(r, 409, 'PP_ERR_CONFLICT');
      expect(await available('p01600')).toBe(0);
      expect(await available('p01601')).toBe(s1 - 20);
      let listed = 0;
      for (const u of users) listed += (await walkPages<Order>(http, '/orders', 100, { token: u.token })).items.length;
      expect(listed).toBe(placed.length);
    });
  });

  describe('concurrency', () => {
    it('50 concurrent orders on one sku from 5 users: all placed, stock reduced by exactly their sum, each in its owner\'s list', async () => {
      const sku = 'p00900';
      const users = await Promise.all(Array.from({ length: 5 }, (_, k) => newUser(http, `conc${k}`)));
      const s0 = await available(sku);
      const rs = await Promise.all(
        Array.from({ length: 50 }, (_, k) => order(users[k % 5]!.token, { items: [{ sku, qty: 100 }, { sku: seedSku(901 + (k % 3)), qty: 1 }] })),
      );
      for (const r of rs) expectStatus(r, 201);
      expect(new Set(rs.map((r) => (r.body as Order).orderId)).size).toBe(50);
      expect(await available(sku)).toBe(s0 - 5_000);
      for (let u = 0; u < 5; u++) {
        const mine = rs.filter((_, k) => k % 5 === u).map((r) => (r.body as Order).orderId).sort();
        const { items } = await walkPages<Order>(http, '/orders', 100, { token: users[u]!.token });
        expect(items.map((o) => o.orderId).sort()).toEqual(mine);
        // Orders placed in the same millisecond: paging must still give each exactly once, newest first.
        const small = await walkPages<Order>(http, '/orders', 3, { token: users[u]!.token });
        expect(small.items.map((o) => o.orderId).sort()).toEqual(mine);
        for (let k = 1; k < small.items.length; k++) expect(small.items[k - 1]!.createdAt).toBeGreaterThanOrEqual(small.items[k]!.createdAt);
      }
    });
  });

  describe('GET /notifications', () => {
    it('shows an order-created notification for each order, within a bounded wait, newest first, once each', async () => {
      const u = await newUser(http, 'notify');
      const other = await newUser(http, 'notify-other');
      const o1 = (await order(u.token, { items: [{ sku: 'p01000', qty: 2 }] })).body as Order;
      await tick();
      const o2 = (await order(u.token, { items: [{ sku: 'p01001', qty: 1 }, { sku: 'p01002', qty: 4 }], idempotencyKey: 'n-2' })).body as Order;
      expect(o1.orderId).toMatch(ORDER_ID_RE);
      expect(o2.orderId).toMatch(ORDER_ID_RE);
      // A replay must not notify twice.
      expectStatus(await order(u.token, { items: [{ sku: 'p01001', qty: 1 }, { sku: 'p01002', qty: 4 }], idempotencyKey: 'n-2' }), 201);
      let page: Page<Notification> = { items: [] };
      await waitUntil(async () => {
        const r = await http.get<Page<Notification>>('/notifications', { token: u.token });
        page = r.body;
        return r.status === 200 && r.body.items.length >= 2;
      }, 15_000, 'two order-created notifications');
      for (const n of page.items) {
        expect(Object.keys(n).sort()).toEqual(NOTIFICATION_KEYS);
        expect(n.kind).toBe('order-created');
        expect(typeof n.id).toBe('string');
        expect(n.id.length).toBeGreaterThan(0);
      }
      expect(page.items.map((n) => [n.orderId, n.totalCents])).toEqual([[o2.orderId, o2.totalCents], [o1.orderId, o1.totalCents]]);
      expect(page.items[0]!.createdAt).toBeGreaterThanOrEqual(page.items[1]!.createdAt);
      // Paging: limit 1 gives the newest, then the older one, then no cursor.
      const { items } = await walkPages<Notification>(http, '/notifications', 1, { token: u.token });
      expect(items).toEqual(page.items);
      // The other user has none.
      expect((await http.get<Page<Notification>>('/notifications', { token: other.token })).body).toEqual({ items: [] });
      // Still exactly two a little later: a third order's notification arriving proves the queue drained past the replay.
      await tick();
      const o3 = (await order(u.token, { items: [{ sku: 'p01003', qty: 1 }] })).body as Order;
      await waitUntil(async () => {
        const r = await http.get<Page<Notification>>('/notifications', { token: u.token });
        page = r.body;
        return r.status === 200 && r.body.items.some((n) => n.orderId === o3.orderId);
      }, 15_000, 'the third notification');
      expect(page.items.map((n) => n.orderId)).toEqual([o3.orderId, o2.orderId, o1.orderId]);
    });

    it('rejects bad limits with 400 params.limit', async () => {
      const u = await newUser(http, 'notify-limits');
      for (const limit of ['0', '101', '1000', 'many']) {
        expectError(await http.get(`/notifications?limit=${limit}`, { token: u.token }), 400, 'PP_ERR_VALIDATION', 'params.limit');
      }
    });
  });

  it('answers an order body over the gateway limit with 413', async () => {
    const u = await newUser(http, 'big');
    const raw = JSON.stringify({ items: [{ sku: 'p00001', qty: 1 }], idempotencyKey: 'x'.repeat(3 * 1024 * 1024) });
    expectError(await http.request('POST', '/orders', { token: u.token, raw }), 413, 'PP_ERR_TOO_LARGE');
  });

  it('never answered any request in this file with a 5xx', () => {
    expect(http.sent.length).toBeGreaterThan(100);
    expect(http.serverErrors()).toEqual([]);
  });
});
