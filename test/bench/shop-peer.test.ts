/**
 * The handwritten peer (bench/shop-peer) answers per examples/shop/CONTRACT.md, so the shop
 * benchmark compares two implementations of the same API. No timing assertions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPeer, type Peer } from '../../bench/shop-peer/app.js';
import { seedProduct, seedUserId } from '../../examples/shop/seed-data.js';

let peer: Peer;
let dir: string;
let token: string;

async function call(method: string, path: string, body?: unknown, auth = token): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth !== '') headers.authorization = `Bearer ${auth}`;
  const res = await fetch(`${peer.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pp-shop-peer-'));
  peer = await startPeer({ port: 0, dataDir: dir });
});

afterAll(async () => {
  await peer?.stop();
  rmSync(dir, { recursive: true, force: true });
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
});
