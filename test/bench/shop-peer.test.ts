/**
 * The handwritten peer (bench/shop-peer) answers per examples/shop/CONTRACT.md, so the shop
 * benchmark compares two implementations of the same API. No timing assertions.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPeer, type Peer } from '../../bench/shop-peer/app.js';
import { PaymentDeclined, paymentsConfig, paymentsFromEnv, ProviderLost, ProviderTimeout, SimulatedProvider, type PaymentsConfig } from '../../bench/shop-peer/payments.js';
import { seedProduct, seedUserId } from '../../examples/shop/seed-data.js';

let peer: Peer;
let token: string;
/** Peers started by the tests (and their data dirs), stopped and removed at the end. */
const started: Array<{ peer: Peer; dir: string }> = [];
/** A data dir seeded once (101 scrypt hashes take seconds on a busy machine); each peer starts on a copy. */
let template: string;

type Reply = { status: number; json: Record<string, unknown> };

async function callAt(at: Peer, method: string, path: string, body: unknown, auth: string): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth !== '') headers.authorization = `Bearer ${auth}`;
  const res = await fetch(`${at.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const call = (method: string, path: string, body?: unknown, auth = token): Promise<Reply> => callAt(peer, method, path, body, auth);

async function launch(payments?: Partial<PaymentsConfig>, before?: (db: Database.Database) => void): Promise<Peer> {
  const dir = mkdtempSync(join(tmpdir(), 'pp-shop-peer-'));
  for (const f of ['shop.db', 'shop.db-wal']) if (existsSync(join(template, f))) copyFileSync(join(template, f), join(dir, f));
  if (before !== undefined) {
    const db = new Database(join(dir, 'shop.db'));
    before(db);
    db.close();
  }
  const p = await startPeer({ port: 0, dataDir: dir, ...(payments === undefined ? {} : { payments }) });
  started.push({ peer: p, dir });
  return p;
}

async function signIn(at: Peer, n: number): Promise<string> {
  const r = await callAt(at, 'POST', '/sessions', { email: `user${n}@example.com`, password: `password-${n}` }, '');
  expect(r.status).toBe(201);
  return r.json.token as string;
}

beforeAll(async () => {
  template = mkdtempSync(join(tmpdir(), 'pp-shop-peer-template-'));
  await (await startPeer({ port: 0, dataDir: template })).stop();
  peer = await launch();
});

afterAll(async () => {
  for (const s of started) {
    await s.peer.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
  if (template !== undefined) rmSync(template, { recursive: true, force: true });
});

describe('shop peer', () => {
  it('signs a seeded user in', async () => {
    const r = await call('POST', '/sessions', { email: 'user7@example.com', password: 'password-7' }, '');
    expect(r.status).toBe(201);
    expect(r.json.userId).toBe(seedUserId('user7@example.com'));
    expect(typeof r.json.expiresAt).toBe('number');
    token = r.json.token as string;
    expect((await call('POST', '/sessions', { email: 'user7@example.com', password: 'wrong-password' }, '')).status).toBe(401);
  });

  it('reads a product and a category page', async () => {
    expect(await call('GET', '/products/p00017')).toEqual({ status: 200, json: seedProduct(17) });
    const first = await call('GET', '/categories/c03/products?limit=2');
    expect(first.status).toBe(200);
    expect(first.json.items).toEqual([seedProduct(3), seedProduct(23)]);
    const next = await call('GET', `/categories/c03/products?limit=2&cursor=${String(first.json.cursor)}`);
    expect(next.json.items).toEqual([seedProduct(43), seedProduct(63)]);
    expect((await call('GET', '/products/p99999')).json.error).toMatchObject({ code: 'PP_ERR_NOT_FOUND' });
  });

  it('searches name words by prefix, case-insensitively, by product id', async () => {
    const r = await call('GET', '/search?q=LAMP&limit=3');
    expect(r.status).toBe(200);
    const items = r.json.items as Array<{ id: string; name: string }>;
    expect(items.map((p) => p.id)).toEqual(['p00017', 'p00018', 'p00019']);
    expect((await call('GET', '/search?q=17&limit=12')).json.items).toEqual(
      [17, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 1700].map((i) => seedProduct(i)),
    );
  });

  it('places an order (idempotently) and lists it among recent orders, with its notification', async () => {
    const body = { items: [{ sku: 'p00001', qty: 2 }, { sku: 'p00002', qty: 1 }], idempotencyKey: 'k-1' };
    const r = await call('POST', '/orders', body);
    expect(r.status).toBe(201);
    const total = 2 * seedProduct(1).priceCents + seedProduct(2).priceCents;
    expect(r.json).toMatchObject({ userId: seedUserId('user7@example.com'), totalCents: total, status: 'placed' });
    expect(r.json.orderId).toMatch(/^o[0-9a-f]{20}$/);
    const again = await call('POST', '/orders', body);
    expect(again.json.orderId).toBe(r.json.orderId);
    expect((await call('GET', '/inventory/p00001')).json).toEqual({ sku: 'p00001', available: 1_000_000 - 2 });
    const recent = await call('GET', '/orders?limit=5');
    expect(recent.json.items).toEqual([r.json]);
    expect((await call('GET', `/orders/${String(r.json.orderId)}`)).json).toEqual(r.json);
    const notes = await call('GET', '/notifications');
    expect(notes.json.items).toMatchObject([{ kind: 'order-created', orderId: r.json.orderId, totalCents: total }]);
  });

  it('follows the contract on hostile input: same key with other items 409, PUT on an unknown product 404, a non-canonical token signature 401', async () => {
    const body = { items: [{ sku: 'p00003', qty: 1 }, { sku: 'p00004', qty: 2 }], idempotencyKey: 'k-bound' };
    const r = await call('POST', '/orders', body);
    expect(r.status).toBe(201);
    expect((await call('POST', '/orders', { ...body, items: [...body.items].reverse() })).json.orderId).toBe(r.json.orderId);
    const other = await call('POST', '/orders', { ...body, items: [{ sku: 'p00003', qty: 5 }] });
    expect(other.status).toBe(409);
    expect(other.json.error).toMatchObject({ code: 'PP_ERR_CONFLICT', field: 'params.idempotencyKey' });
    expect((await call('GET', '/inventory/p00003')).json).toEqual({ sku: 'p00003', available: 1_000_000 - 1 });
    const admin = (await call('POST', '/sessions', { email: 'admin@example.com', password: 'admin-password' }, '')).json.token as string;
    const put = await call('PUT', '/products/p09999', { name: 'Ghost', categoryId: 'c01', priceCents: 1, description: '' }, admin);
    expect(put.status).toBe(404);
    expect(put.json.error).toMatchObject({ code: 'PP_ERR_NOT_FOUND', field: 'params.id' });
    expect((await call('GET', '/me', undefined, `${token}=`)).status).toBe(401);
  });

  it('answers 401 without a valid session and 400 for bad input', async () => {
    const none = await call('GET', '/orders', undefined, '');
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ code: 'PP_ERR_UNAUTHORIZED' });
    expect((await call('GET', '/me', undefined, `${token.slice(0, -2)}xx`)).status).toBe(401);
    const badType = await call('POST', '/orders', { items: [{ sku: 'p00001', qty: 'many' }] });
    expect(badType.status).toBe(400);
    expect(badType.json.error).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'params.items.0.qty' });
    expect((await call('POST', '/orders', '{"items":')).status).toBe(400);
    expect((await call('GET', '/categories/c01/products?limit=500')).status).toBe(400);
  });

  it('gives a new user a wallet of 10,000 cents and each seeded user one of 100,000', async () => {
    const u = await call('POST', '/users', { email: 'wallet-new@example.com', password: 'a-long-password', name: 'New' }, '');
    expect(u.status).toBe(201);
    const s = await call('POST', '/sessions', { email: 'wallet-new@example.com', password: 'a-long-password' }, '');
    expect(await call('GET', '/wallet', undefined, s.json.token as string)).toEqual({ status: 200, json: { userId: u.json.userId, balanceCents: 10_000 } });
    expect(await call('GET', '/wallet')).toEqual({ status: 200, json: { userId: seedUserId('user7@example.com'), balanceCents: 100_000 } });
    expect((await call('GET', '/wallet', undefined, '')).status).toBe(401);
    // A taken email writes nothing (no second user, no second wallet).
    expect((await call('POST', '/users', { email: 'wallet-new@example.com', password: 'a-long-password', name: 'Again' }, '')).json.error)
      .toMatchObject({ code: 'PP_ERR_CONFLICT', field: 'params.email' });
  });

  it('transfers credit: ok, replayed by transferId, refused when too much, to nobody, to oneself or malformed', async () => {
    const me = seedUserId('user7@example.com');
    const to = seedUserId('user8@example.com');
    const t8 = await signIn(peer, 8);
    const ok = await call('POST', '/wallet/transfers', { toUserId: to, amountCents: 2_500, transferId: 'tr-1' });
    expect(ok.status).toBe(201);
    expect(ok.json).toMatchObject({ transferId: 'tr-1', from: me, to, amountCents: 2_500, balanceCents: 97_500 });
    expect(typeof ok.json.createdAt).toBe('number');
    // The same transferId again: the first transfer, nothing moves.
    expect(await call('POST', '/wallet/transfers', { toUserId: to, amountCents: 2_500, transferId: 'tr-1' })).toEqual({ status: 201, json: ok.json });
    const reused = await call('POST', '/wallet/transfers', { toUserId: to, amountCents: 99, transferId: 'tr-1' });
    expect(reused.status).toBe(409);
    expect(reused.json.error).toMatchObject({ code: 'PP_ERR_CONFLICT', field: 'params.transferId' });
    expect((await call('GET', '/wallet')).json.balanceCents).toBe(97_500);
    expect((await call('GET', '/wallet', undefined, t8)).json.balanceCents).toBe(102_500);
    // Without a transferId every request is a transfer of its own.
    expect((await call('POST', '/wallet/transfers', { toUserId: to, amountCents: 500 })).json.balanceCents).toBe(97_000);
    expect((await call('POST', '/wallet/transfers', { toUserId: to, amountCents: 500 })).json.balanceCents).toBe(96_500);

    const tooMuch = await call('POST', '/wallet/transfers', { toUserId: to, amountCents: 96_501 });
    expect(tooMuch.status).toBe(409);
    expect(tooMuch.json.error).toMatchObject({ code: 'PP_ERR_CONFLICT', field: 'params.amountCents' });
    const nobody = await call('POST', '/wallet/transfers', { toUserId: 'u000000000000', amountCents: 1 });
    expect(nobody.status).toBe(404);
    expect(nobody.json.error).toMatchObject({ code: 'PP_ERR_NOT_FOUND', field: 'params.toUserId' });
    const self = await call('POST', '/wallet/transfers', { toUserId: me, amountCents: 1 });
    expect(self.status).toBe(400);
    expect(self.json.error).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'params.toUserId' });
    for (const [body, field] of [
      [{ toUserId: to, amountCents: 0 }, 'params.amountCents'],
      [{ toUserId: to, amountCents: 100_000_001 }, 'params.amountCents'],
      [{ toUserId: to, amountCents: 1.5 }, 'params.amountCents'],
      [{ toUserId: 'someone', amountCents: 1 }, 'params.toUserId'],
      [{ amountCents: 1 }, 'params.toUserId'],
      [{ toUserId: to, amountCents: 1, transferId: '' }, 'params.transferId'],
      [{ toUserId: to, amountCents: 1, transferId: 'x'.repeat(65) }, 'params.transferId'],
    ] as const) {
      const r = await call('POST', '/wallet/transfers', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toMatchObject({ code: 'PP_ERR_VALIDATION', field });
    }
    expect((await call('POST', '/wallet/transfers', { toUserId: to, amountCents: 1 }, '')).status).toBe(401);
    // Nothing of the refused ones moved.
    expect((await call('GET', '/wallet')).json.balanceCents).toBe(96_500);
    expect((await call('GET', '/wallet', undefined, t8)).json.balanceCents).toBe(103_500);
  });

  it('conserves money under concurrent transfers (some refused for the balance)', async () => {
    const ns = [50, 51, 52, 53, 54];
    const tokens = await Promise.all(ns.map((n) => signIn(peer, n)));
    const ids = ns.map((n) => seedUserId(`user${n}@example.com`));
    const sent = ns.map(() => 0);
    const got = ns.map(() => 0);
    const replies = await Promise.all(Array.from({ length: 60 }, async (_, k) => {
      const from = k % ns.length;
      const to = (from + 1 + (k % (ns.length - 1))) % ns.length;
      const amountCents = 30_000 + ((k * 7_919) % 50_000);
      const r = await call('POST', '/wallet/transfers', { toUserId: ids[to], amountCents, transferId: `c-${k}` }, tokens[from]);
      if (r.status === 201) {
        sent[from] = (sent[from] as number) + amountCents;
        got[to] = (got[to] as number) + amountCents;
      }
      return r;
    }));
    expect(replies.every((r) => r.status === 201 || (r.status === 409 && (r.json.error as { field?: string }).field === 'params.amountCents'))).toBe(true);
    expect(replies.some((r) => r.status === 409)).toBe(true);
    const balances = await Promise.all(tokens.map(async (t) => (await call('GET', '/wallet', undefined, t)).json.balanceCents as number));
    expect(balances.reduce((a, b) => a + b, 0)).toBe(ns.length * 100_000);
    balances.forEach((b, i) => expect(b).toBe(100_000 - (sent[i] as number) + (got[i] as number)));
    expect(balances.every((b) => b >= 0)).toBe(true);
  });

  it('places concurrent requests with one idempotencyKey as one order', async () => {
    const p = await launch({ latencyMs: 3 });
    const t = await signIn(p, 9);
    const body = { items: [{ sku: 'p00200', qty: 3 }], idempotencyKey: 'k-concurrent' };
    const replies = await Promise.all(Array.from({ length: 5 }, () => callAt(p, 'POST', '/orders', body, t)));
    expect(replies.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(replies.map((r) => r.json.orderId)).size).toBe(1);
    expect((await callAt(p, 'GET', '/inventory/p00200', undefined, '')).json.available).toBe(1_000_000 - 3);
    expect((await callAt(p, 'GET', '/orders', undefined, t)).json.items).toHaveLength(1);
  });

  it('answers 402 for a declined payment, gives the stock back and keeps the key free', async () => {
    const p = await launch({ declineRate: 1 });
    const t = await signIn(p, 3);
    const body = { items: [{ sku: 'p00010', qty: 4 }, { sku: 'p00011', qty: 1 }], idempotencyKey: 'k-declined' };
    for (let i = 0; i < 2; i++) {
      const r = await callAt(p, 'POST', '/orders', body, t);
      expect(r.status).toBe(402);
      expect(r.json.error).toMatchObject({ code: 'PP_ERR_PAYMENT_DECLINED', message: 'the card was declined' });
      expect(typeof (r.json.error as { requestId?: unknown }).requestId).toBe('string');
    }
    // A failed checkout's key is not bound to its items.
    expect((await callAt(p, 'POST', '/orders', { ...body, items: [{ sku: 'p00010', qty: 1 }] }, t)).status).toBe(402);
    expect((await callAt(p, 'GET', '/inventory/p00010', undefined, '')).json.available).toBe(1_000_000);
    expect((await callAt(p, 'GET', '/inventory/p00011', undefined, '')).json.available).toBe(1_000_000);
    expect((await callAt(p, 'GET', '/orders', undefined, t)).json.items).toEqual([]);
    expect((await callAt(p, 'GET', '/notifications', undefined, t)).json.items).toEqual([]);
    // An unknown SKU is still a 404 (before any payment).
    const unknown = await callAt(p, 'POST', '/orders', { items: [{ sku: 'p00010', qty: 1 }, { sku: 'p99999', qty: 1 }] }, t);
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatchObject({ code: 'PP_ERR_NOT_FOUND', field: 'params.items.1.sku' });
  });

  it('answers 402 when the provider times out on every retry, and keeps stock exact when it is flaky', async () => {
    const dead = await launch({ timeoutRate: 1 });
    const t = await signIn(dead, 4);
    const r = await callAt(dead, 'POST', '/orders', { items: [{ sku: 'p00020', qty: 2 }] }, t);
    expect(r.status).toBe(402);
    expect(r.json.error).toMatchObject({ code: 'PP_ERR_PAYMENT_DECLINED' });
    expect((await callAt(dead, 'GET', '/inventory/p00020', undefined, '')).json.available).toBe(1_000_000);

    const flaky = await launch({ timeoutRate: 0.4, crashRate: 0.5, declineRate: 0.2, seed: 7 });
    const tf = await signIn(flaky, 5);
    const replies = await Promise.all(Array.from({ length: 24 }, (_, k) =>
      callAt(flaky, 'POST', '/orders', { items: [{ sku: 'p00030', qty: 1 + (k % 3) }], idempotencyKey: `f-${k}` }, tf)));
    expect(replies.every((x) => x.status === 201 || x.status === 402)).toBe(true);
    const placed = replies.filter((x) => x.status === 201);
    expect(placed.length).toBeGreaterThan(0);
    expect(placed.length).toBeLessThan(replies.length);
    const held = placed.reduce((a, x) => a + (x.json.items as Array<{ qty: number }>)[0]!.qty, 0);
    expect((await callAt(flaky, 'GET', '/inventory/p00030', undefined, '')).json.available).toBe(1_000_000 - held);
    const listed = (await callAt(flaky, 'GET', '/orders?limit=100', undefined, tf)).json.items as Array<{ orderId: string }>;
    expect(listed.map((o) => o.orderId).sort()).toEqual(placed.map((x) => x.json.orderId as string).sort());
    expect((await callAt(flaky, 'GET', '/notifications?limit=100', undefined, tf)).json.items).toHaveLength(placed.length);
  });

  it('gives back at start the stock of a checkout a crash left between its two transactions', async () => {
    const uid = seedUserId('user6@example.com');
    const p = await launch(undefined, (db) => {
      // What a process killed during the payment leaves behind: the reservation and the pending checkout.
      db.prepare("UPDATE stock SET available = available - 5 WHERE sku = 'p00040'").run();
      db.prepare("INSERT INTO checkouts (order_id, user_id, idempotency_key, items, total_cents, created_at) VALUES ('o00000000000000000001', ?, 'k-crash', ?, 5, 1)")
        .run(uid, JSON.stringify([{ sku: 'p00040', qty: 5, priceCents: 1 }]));
    });
    expect((await callAt(p, 'GET', '/inventory/p00040', undefined, '')).json.available).toBe(1_000_000);
    // The key is free again: the same key with other items is an order, not a 409.
    const r = await callAt(p, 'POST', '/orders', { items: [{ sku: 'p00041', qty: 1 }], idempotencyKey: 'k-crash' }, await signIn(p, 6));
    expect(r.status).toBe(201);
  });

  it('has a simulated provider that is idempotent by payment id, reproducible by seed, and configured like the shop', async () => {
    const ok = new SimulatedProvider(paymentsConfig());
    await ok.authorize('pay-1', 100);
    await ok.authorize('pay-1', 100);
    await ok.capture('pay-1');
    await ok.capture('pay-1');
    expect(await ok.void('pay-1')).toBe('captured');
    // A void before the authorization is recorded: the late authorization is refused.
    expect(await ok.void('pay-2')).toBe('voided');
    await expect(ok.authorize('pay-2', 100)).rejects.toBeInstanceOf(PaymentDeclined);
    // Lost answers act: the retry finds the authorization.
    const lossy = new SimulatedProvider(paymentsConfig({ crashRate: 1 }));
    await expect(lossy.authorize('pay-3', 100)).rejects.toBeInstanceOf(ProviderLost);
    await expect(lossy.capture('pay-3')).rejects.toBeInstanceOf(ProviderLost);
    expect(await new SimulatedProvider(paymentsConfig()).void('pay-3')).toBe('voided');
    await expect(new SimulatedProvider(paymentsConfig({ timeoutRate: 1 })).authorize('pay-4', 1)).rejects.toBeInstanceOf(ProviderTimeout);
    // The same seed decides the same calls.
    const outcomes = async (seed: number): Promise<string[]> => {
      const p = new SimulatedProvider(paymentsConfig({ declineRate: 0.5, timeoutRate: 0.3, seed }));
      return Promise.all(Array.from({ length: 40 }, (_, i) => p.authorize(`pay-${i}`, 1).then(() => 'ok', (e: Error) => e.constructor.name)));
    };
    const a = await outcomes(3);
    expect(await outcomes(3)).toEqual(a);
    expect(new Set(a).size).toBe(3);
    expect(paymentsFromEnv({ PP_PAYMENTS_DECLINE_RATE: '0.25', PP_PAYMENTS_LATENCY_MS: '5', PP_PAYMENTS_SEED: '9' }))
      .toEqual({ latencyMs: 5, declineRate: 0.25, timeoutRate: 0, crashRate: 0, seed: 9 });
    expect(() => paymentsFromEnv({ PP_PAYMENTS_TIMEOUT_RATE: '1.5' })).toThrow(/PP_PAYMENTS_TIMEOUT_RATE|timeoutRate/);
    expect(() => paymentsFromEnv({ PP_PAYMENTS_LATENCY_MS: 'soon' })).toThrow(RangeError);
    await expect(startPeer({ port: 0, dataDir: template, payments: { crashRate: -1 } })).rejects.toThrow(RangeError);
  });
});
