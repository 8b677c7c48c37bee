/**
 * examples/shop over HTTP, on the embedded default and on PostgreSQL + Redis + NATS: the parts that
 * run on the platform's transactions and workflows (CONTRACT.md): wallets and transfers between
 * users on different shards (two-phase commit), atomic sign-up and product update, and the
 * checkout's payment step — a declined payment, a provider that times out and one that loses its
 * answers — with the stock and the payments reconciled exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needEngine } from '../helpers/engines.js';
import {
  expectError, expectStatus, freshEmail, newUser, startTestShop, type Order, type Page, type ShopEngines, type ShopHttp, type TestShop, type Transfer, type Wallet,
} from '../helpers/shop-http.js';

const pgUp = (await Promise.all([needEngine('postgres'), needEngine('redis'), needEngine('nats')])).every(Boolean);
const engineCases: ShopEngines[] = pgUp ? ['embedded', 'postgres'] : ['embedded'];

describe.each(engineCases)('examples/shop on transactions and workflows (%s)', (engines) => {
  let shop: TestShop;
  let http: ShopHttp;
  beforeAll(async () => {
    shop = await startTestShop(`wallet-${engines}`, { engines });
    http = shop.http;
  });
  afterAll(async () => {
    await shop?.stop();
  });

  const wallet = async (token: string): Promise<number> => {
    const r = await http.get<Wallet>('/wallet', { token });
    expectStatus(r, 200);
    return r.body.balanceCents;
  };

  /** Users until two are on different shards of the wallets table. */
  async function twoShards(tag: string): Promise<[Awaited<ReturnType<typeof newUser>>, Awaited<ReturnType<typeof newUser>>]> {
    const wallets = await shop.shop.store.table('wallets', (await import('../../examples/shop/schema.js')).TABLES.wallets);
    const a = await newUser(http, `${tag}-a`);
    for (let i = 0; i < 40; i++) {
      const b = await newUser(http, `${tag}-b${i}`);
      if (wallets.locate(b.user.userId).shard !== wallets.locate(a.user.userId).shard) return [a, b];
    }
    throw new Error('no two users on different shards');
  }

  it('a new user has a wallet of 10,000 cents; a transfer to a user on another shard moves credit atomically, once per transferId', async () => {
    const [a, b] = await twoShards('xfer');
    expect(await wallet(a.token)).toBe(10_000);
    const r = await http.post<Transfer>('/wallet/transfers', { toUserId: b.user.userId, amountCents: 2_500, transferId: 'rent-1' }, { token: a.token });
    expectStatus(r, 201);
    expect(r.body).toMatchObject({ transferId: 'rent-1', from: a.user.userId, to: b.user.userId, amountCents: 2_500, balanceCents: 7_500 });
    expect([await wallet(a.token), await wallet(b.token)]).toEqual([7_500, 12_500]);
    // The same transferId again: the first transfer, nothing moved.
    const again = await http.post<Transfer>('/wallet/transfers', { toUserId: b.user.userId, amountCents: 2_500, transferId: 'rent-1' }, { token: a.token });
    expectStatus(again, 201);
    expect(again.body.createdAt).toBe(r.body.createdAt);
    expect([await wallet(a.token), await wallet(b.token)]).toEqual([7_500, 12_500]);
    expectError(await http.post('/wallet/transfers', { toUserId: b.user.userId, amountCents: 1, transferId: 'rent-1' }, { token: a.token }), 409, 'PP_ERR_CONFLICT', 'params.transferId');
    // Bad transfers: each a typed error, nothing moved.
    expectError(await http.post('/wallet/transfers', { toUserId: b.user.userId, amountCents: 7_501 }, { token: a.token }), 409, 'PP_ERR_CONFLICT', 'params.amountCents');
    expectError(await http.post('/wallet/transfers', { toUserId: 'u000000000000', amountCents: 1 }, { token: a.token }), 404, 'PP_ERR_NOT_FOUND', 'params.toUserId');
    expectError(await http.post('/wallet/transfers', { toUserId: a.user.userId, amountCents: 1 }, { token: a.token }), 400, 'PP_ERR_VALIDATION', 'params.toUserId');
    expectError(await http.post('/wallet/transfers', { toUserId: b.user.userId, amountCents: 0 }, { token: a.token }), 400, 'PP_ERR_VALIDATION', 'params.amountCents');
    expectError(await http.post('/wallet/transfers', { toUserId: b.user.userId, amountCents: 1 }), 401, 'PP_ERR_UNAUTHORIZED');
    expect([await wallet(a.token), await wallet(b.token)]).toEqual([7_500, 12_500]);
  });

  it('money is conserved under 40 concurrent transfers in a ring of four users', async () => {
    const users = await Promise.all([0, 1, 2, 3].map((i) => newUser(http, `ring${i}`)));
    // A careful client: an answer that is not final (504, a retryable 409) is retried with the same transferId.
    const send = async (k: number): Promise<Awaited<ReturnType<typeof http.post<Transfer>>>> => {
      for (let attempt = 0; ; attempt++) {
        const r = await http.post<Transfer>('/wallet/transfers', { toUserId: users[(k + 1) % 4]!.user.userId, amountCents: 10 + (k % 7), transferId: `ring-${k}` }, { token: users[k % 4]!.token });
        if (r.status === 201 || attempt >= 20) return r;
        expect([409, 503, 504], r.text).toContain(r.status);
      }
    };
    const rs = await Promise.all(Array.from({ length: 40 }, (_, k) => send(k)));
    for (const r of rs) expectStatus(r, 201);
    const balances = await Promise.all(users.map((u) => wallet(u.token)));
    expect(balances.reduce((x, y) => x + y, 0)).toBe(40_000);
    const sent = (i: number): number => rs.filter((_, k) => k % 4 === i).reduce((s, r) => s + r.body.amountCents, 0);
    const got = (i: number): number => rs.filter((_, k) => (k + 1) % 4 === i).reduce((s, r) => s + r.body.amountCents, 0);
    expect(balances).toEqual([0, 1, 2, 3].map((i) => 10_000 - sent(i) + got(i)));
  });

  it('sign-up is atomic: of 6 concurrent sign-ups with one email exactly one wins, with one user and one wallet', async () => {
    const email = freshEmail('race');
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => http.post('/users', { email, password: 'password-123', name: `Racer ${i}` })));
    expect(rs.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of rs) if (r.status !== 201) expectError(r, 409, 'PP_ERR_CONFLICT', 'params.email');
    const s = await http.post<{ token: string }>('/sessions', { email, password: 'password-123' });
    expectStatus(s, 201);
    expect(await wallet(s.body.token)).toBe(10_000);
  });

  it('honours the Idempotency-Key header: a replay answers the first result (marked replayed), another body under the key is 409', async () => {
    const [a, b] = await twoShards('idem');
    const key = { 'idempotency-key': `msg-${engines}-1` };
    const m1 = await http.post<{ messageId: string }>('/messages', { to: b.user.userId, text: 'hello once' }, { token: a.token, headers: key });
    expectStatus(m1, 202);
    const m2 = await http.post<{ messageId: string }>('/messages', { to: b.user.userId, text: 'hello once' }, { token: a.token, headers: key });
    expectStatus(m2, 202);
    expect(m2.body.messageId).toBe(m1.body.messageId);
    expect(m2.headers.get('idempotent-replayed')).toBe('true');
    expectError(await http.post('/messages', { to: b.user.userId, text: 'something else' }, { token: a.token, headers: key }), 409, 'PP_ERR_CONFLICT', 'headers.idempotency-key');
    // An order keyed by the header alone: one order, stock taken once.
    const s0 = (await http.get<{ available: number }>('/inventory/p00077')).body.available;
    const okey = { 'idempotency-key': `order-${engines}-1` };
    const o1 = await http.post<Order>('/orders', { items: [{ sku: 'p00077', qty: 2 }] }, { token: a.token, headers: okey });
    const o2 = await http.post<Order>('/orders', { items: [{ sku: 'p00077', qty: 2 }] }, { token: a.token, headers: okey });
    expectStatus(o1, 201);
    expectStatus(o2, 201);
    expect(o2.body.orderId).toBe(o1.body.orderId);
    expect((await http.get<{ available: number }>('/inventory/p00077')).body.available).toBe(s0 - 2);
    // A transfer keyed by the header: moved once.
    const tkey = { 'idempotency-key': `xfer-${engines}-1` };
    const before = await wallet(a.token);
    for (let i = 0; i < 2; i++) expectStatus(await http.post('/wallet/transfers', { toUserId: b.user.userId, amountCents: 5 }, { token: a.token, headers: tkey }), 201);
    expect(await wallet(a.token)).toBe(before - 5);
  });

  it('a product update changes the product and its search terms together', async () => {
    const admin = await http.post<{ token: string }>('/sessions', { email: 'admin@example.com', password: 'admin-password' });
    expectStatus(admin, 201);
    const before = await http.get<{ name: string; categoryId: string; priceCents: number; description: string }>('/products/p01777');
    expectStatus(before, 200);
    const put = await http.put('/products/p01777', { ...before.body, name: `Zyxwv Renamed ${engines}` }, { token: admin.body.token });
    expectStatus(put, 200);
    const found = await http.get<{ items: { id: string }[] }>(`/search?q=zyxwv`);
    expect(found.body.items.map((p) => p.id)).toContain('p01777');
    const oldWord = before.body.name.split(' ')[0]!.toLowerCase();
    const old = await http.get<{ items: { id: string }[] }>(`/search?q=${oldWord}&limit=100`);
    expect(old.body.items.map((p) => p.id)).not.toContain('p01777');
    expectError(await http.put('/products/p99999', { ...before.body }, { token: admin.body.token }), 404, 'PP_ERR_NOT_FOUND', 'params.id');
  });
});

describe.each(engineCases)('examples/shop checkout against a failing payment provider (%s)', (engines) => {
  const available = async (http: ShopHttp, sku: string): Promise<number> => (await http.get<{ available: number }>(`/inventory/${sku}`)).body as unknown as number;

  it('a declined payment answers 402 with the catalogue body, gives the stock back and writes no order', async () => {
    const shop = await startTestShop(`decline-${engines}`, { engines, payments: { declineRate: 1 } });
    try {
      const http = shop.http;
      const u = await newUser(http, 'declined');
      const s0 = ((await http.get<{ available: number }>('/inventory/p00042')).body).available;
      const r = await http.post('/orders', { items: [{ sku: 'p00042', qty: 3 }], idempotencyKey: 'k1' }, { token: u.token });
      expectError(r, 402, 'PP_ERR_PAYMENT_DECLINED');
      expect(((await http.get<{ available: number }>('/inventory/p00042')).body).available).toBe(s0);
      expect((await http.get<Page<Order>>('/orders', { token: u.token })).body).toEqual({ items: [] });
      void available;
    } finally {
      await shop.stop();
    }
  });

  it('a provider that times out or loses answers (seeded): every checkout ends placed or 402, stock and captured payments reconcile exactly', async () => {
    const shop = await startTestShop(`flaky-${engines}`, { engines, payments: { timeoutRate: 0.3, crashRate: 0.3, declineRate: 0.1, seed: 7 } });
    try {
      const http = shop.http;
      const users = await Promise.all([0, 1, 2].map((i) => newUser(http, `flaky${i}`)));
      const skus = ['p00301', 'p00302', 'p00303'];
      const before = await Promise.all(skus.map(async (s) => ((await http.get<{ available: number }>(`/inventory/${s}`)).body).available));
      // A careful client: an answer that is not final (5xx, a retryable 409) is retried with the same key.
      const place = async (k: number): Promise<Awaited<ReturnType<typeof http.post<Order>>>> => {
        for (let attempt = 0; ; attempt++) {
          const r = await http.post<Order>('/orders', { items: [{ sku: skus[k % 3]!, qty: 1 + (k % 4) }], idempotencyKey: `f${k}` }, { token: users[k % 3]!.token });
          if (r.status === 201 || r.status === 402 || attempt >= 20) return r;
          expect([409, 503, 504], r.text).toContain(r.status);
        }
      };
      const rs = await Promise.all(Array.from({ length: 30 }, (_, k) => place(k)));
      for (const r of rs) expect([201, 402]).toContain(r.status);
      const placed = rs.filter((r) => r.status === 201).map((r) => r.body);
      expect(placed.length).toBeGreaterThan(0);
      const after = await Promise.all(skus.map(async (s) => ((await http.get<{ available: number }>(`/inventory/${s}`)).body).available));
      skus.forEach((s, i) => {
        const taken = placed.reduce((n, o) => n + o.items.filter((it) => it.sku === s).reduce((x, it) => x + it.qty, 0), 0);
        expect(after[i], s).toBe(before[i]! - taken);
      });
      // Every placed order's payment is captured; no other payment is.
      const payments = await shop.shop.store.table('payments', (await import('../../examples/shop/schema.js')).TABLES.payments);
      const all = (await payments.query({ limit: 1000 })).items.map((p) => p.row);
      const captured = all.filter((p) => p.state === 'captured');
      expect(captured.map((p) => p.orderId).sort()).toEqual(placed.map((o) => o.orderId).sort());
      expect(captured.reduce((s, p) => s + p.amountCents, 0)).toBe(placed.reduce((s, o) => s + o.totalCents, 0));
      expect(all.filter((p) => p.state === 'authorized')).toEqual([]);
    } finally {
      await shop.stop();
    }
  });
});
