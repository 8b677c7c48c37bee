import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bearerToken, DUMMY_PASSWORD_HASH, hashPassword, issueToken, TOKEN_CHARS_MAX, sessionKey, SESSION_TTL_MS, signToken, verifyPassword, verifyToken,
} from '../../examples/shop/auth.js';
import { startShop } from '../../examples/shop/index.js';
import { nameTerms, PRODUCT_COUNT, seedCategories, seedProduct, seedProducts, seedUsers, STOCK_PER_SKU } from '../../examples/shop/seed-data.js';
import { waitUntil } from '../helpers/wait.js';

describe('examples/shop auth: session tokens', () => {
  const key = sessionKey('test-secret-0123456789');
  const now = Date.UTC(2026, 10, 21);

  it('signs and verifies a token; expiresAt is 24 h out', () => {
    const s = issueToken(key, 'u0123456789ab', 'user', now);
    expect(s.expiresAt).toBe(now + SESSION_TTL_MS);
    expect(verifyToken(key, s.token, now)).toEqual({ ok: true, payload: { uid: 'u0123456789ab', role: 'user', exp: (now + SESSION_TTL_MS) / 1000 } });
    const [part, sig] = s.token.split('.') as [string, string];
    expect(JSON.parse(Buffer.from(part, 'base64url').toString())).toEqual({ uid: 'u0123456789ab', role: 'user', exp: (now + SESSION_TTL_MS) / 1000 });
    expect(Buffer.from(sig, 'base64url')).toHaveLength(32);
  });

  it('rejects expired, forged and malformed tokens', () => {
    const s = issueToken(key, 'u0123456789ab', 'admin', now);
    expect(verifyToken(key, s.token, now + SESSION_TTL_MS)).toEqual({ ok: false, reason: 'expired' });
    // Another secret, a changed payload with the old signature, a flipped signature byte.
    expect(verifyToken(sessionKey('another-secret-0123456789'), s.token, now)).toEqual({ ok: false, reason: 'forged' });
    const [, sig] = s.token.split('.') as [string, string];
    const admin = Buffer.from(JSON.stringify({ uid: 'u0123456789ab', role: 'admin', exp: 9e9 })).toString('base64url');
    expect(verifyToken(key, `${admin}.${sig}`, now)).toEqual({ ok: false, reason: 'forged' });
    const flipped = Buffer.from(sig, 'base64url');
    flipped[0] = flipped[0]! ^ 1;
    expect(verifyToken(key, `${s.token.split('.')[0]!}.${flipped.toString('base64url')}`, now)).toEqual({ ok: false, reason: 'forged' });
    for (const bad of ['', 'abc', 'a.b.c', '.x', `${s.token}x`, 'x'.repeat(TOKEN_CHARS_MAX + 1)]) expect(verifyToken(key, bad, now).ok).toBe(false);
    // Correctly signed but the wrong shape (uid not a user id; role unknown): malformed.
    expect(verifyToken(key, signToken(key, { uid: 'nope', role: 'user', exp: 9e9 }), now)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyToken(key, signToken(key, { uid: 'u0123456789ab', role: 'root' as 'user', exp: 9e9 }), now)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('reads the bearer token of an Authorization header', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer ')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('refuses a secret shorter than 16 bytes', () => {
    expect(() => sessionKey('short')).toThrow(RangeError);
  });
});

describe('examples/shop auth: passwords', () => {
  it('hashes with scrypt in the contract format and verifies', async () => {
    const h = await hashPassword('password-1');
    expect(h).toMatch(/^scrypt\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await hashPassword('password-1')).not.toBe(h); // a fresh salt each time
    expect(await verifyPassword('password-1', h)).toBe(true);
    expect(await verifyPassword('password-2', h)).toBe(false);
    expect(await verifyPassword('password-1', 'scrypt$bad$hash')).toBe(false);
    expect(await verifyPassword('password-1', 'bcrypt$x$y')).toBe(false);
    expect(await verifyPassword('', DUMMY_PASSWORD_HASH)).toBe(false);
  });
});

describe('examples/shop seed data', () => {
  it('is deterministic and follows the contract', () => {
    expect(seedProducts()).toEqual(seedProducts());
    expect(seedUsers().map((u) => u.userId)).toEqual(seedUsers().map((u) => u.userId));
    expect(seedCategories().map((c) => c.id)).toEqual(Array.from({ length: 20 }, (_, k) => `c${String(k + 1).padStart(2, '0')}`));
    const all = seedProducts();
    expect(all).toHaveLength(PRODUCT_COUNT);
    expect(all[16]).toMatchObject({ id: 'p00017', categoryId: 'c17', name: 'Brass Lamp 17', priceCents: 100 + ((17 * 7919) % 100_000) });
    for (const i of [1, 20, 21, 999, 2000]) {
      const p = seedProduct(i);
      expect(p.id).toBe(`p${String(i).padStart(5, '0')}`);
      expect(p.categoryId).toBe(`c${String(((i - 1) % 20) + 1).padStart(2, '0')}`);
      expect(p.name).toMatch(new RegExp(`^[A-Z][a-z]+ [A-Z][a-z]+ ${i}$`));
    }
    expect(new Set(all.map((p) => p.id)).size).toBe(PRODUCT_COUNT);
    expect(STOCK_PER_SKU).toBe(1_000_000);
    const users = seedUsers();
    expect(users).toHaveLength(101);
    expect(users[0]).toMatchObject({ email: 'user1@example.com', password: 'password-1', name: 'User 1', role: 'user' });
    expect(users[100]).toMatchObject({ email: 'admin@example.com', password: 'admin-password', role: 'admin' });
    for (const u of users) expect(u.userId).toMatch(/^u[0-9a-f]{12}$/);
    expect(nameTerms('Brass Lamp 17')).toEqual(['brass', 'lamp', '17']);
    expect(nameTerms('Café-Lamp, café!')).toEqual(['café', 'lamp']);
  });
});

describe('examples/shop smoke: startShop on a temp dir', () => {
  it('serves a product, a sign-in + order + listing round trip, a notification, and stops cleanly', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pp-shop-unit-'));
    const shop = await startShop({ dataDir, port: 0, logger: false });
    try {
      expect(shop.startup.seeded).toBe(true);
      const p = await fetch(`${shop.url}/products/p00001`);
      expect(p.status).toBe(200);
      expect(await p.json()).toEqual(seedProduct(1));

      const s = await fetch(`${shop.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'user7@example.com', password: 'password-7' }) });
      expect(s.status).toBe(201);
      const { token, userId } = (await s.json()) as { token: string; userId: string };
      const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const body = JSON.stringify({ items: [{ sku: 'p00002', qty: 3 }], idempotencyKey: 'smoke-1' });
      const o1 = await fetch(`${shop.url}/orders`, { method: 'POST', headers: auth, body });
      expect(o1.status).toBe(201);
      const order = (await o1.json()) as { orderId: string; totalCents: number };
      expect(order).toMatchObject({ userId, status: 'placed', totalCents: 3 * seedProduct(2).priceCents, items: [{ sku: 'p00002', qty: 3, priceCents: seedProduct(2).priceCents }] });
      // Same key: the same order, stock reserved once.
      const o2 = await fetch(`${shop.url}/orders`, { method: 'POST', headers: auth, body });
      expect(((await o2.json()) as { orderId: string }).orderId).toBe(order.orderId);
      expect(await (await fetch(`${shop.url}/inventory/p00002`)).json()).toEqual({ sku: 'p00002', available: STOCK_PER_SKU - 3 });

      const list = (await (await fetch(`${shop.url}/orders`, { headers: auth })).json()) as { items: { orderId: string }[]; cursor?: string };
      expect(list.items.map((i) => i.orderId)).toEqual([order.orderId]);
      expect(list.cursor).toBeUndefined();
      await waitUntil(async () => {
        const n = (await (await fetch(`${shop.url}/notifications`, { headers: auth })).json()) as { items: { orderId: string }[] };
        return n.items.length === 1 && n.items[0]!.orderId === order.orderId;
      }, 10_000, 'the order-created notification');
    } finally {
      await shop.stop();
      await shop.stop(); // idempotent
      rmSync(dataDir, { recursive: true, force: true });
    }
    await expect(fetch(`${shop.url}/products/p00001`)).rejects.toThrow();
  });

  it('a second start on the same data seeds nothing and keeps the session secret', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pp-shop-unit-'));
    try {
      const a = await startShop({ dataDir, port: 0, logger: false });
      const s = await fetch(`${a.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'user1@example.com', password: 'password-1' }) });
      const { token } = (await s.json()) as { token: string };
      await a.stop();
      const b = await startShop({ dataDir, port: 0, logger: false });
      try {
        expect(b.startup.seeded).toBe(false);
        expect((await fetch(`${b.url}/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      } finally {
        await b.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
