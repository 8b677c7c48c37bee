/**
 * The shop's /status over HTTP (CONTRACT.md): anyone gets it with shard locations redacted (no
 * file path of the data directory), the admin's token gets it whole; a bad token is a 401.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startShop, type Shop } from '../../examples/shop/index.js';

const dataDir = mkdtempSync(join(tmpdir(), 'pp-shop-status-'));
let shop: Shop;

beforeAll(async () => {
  shop = await startShop({ dataDir, port: 0, shards: 2, logger: false });
}, 60_000);

afterAll(async () => {
  await shop.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function status(token?: string): Promise<{ code: number; text: string; locations: string[] }> {
  const res = await fetch(`${shop.url}/status`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  const text = await res.text();
  const doc = JSON.parse(text) as { partitions?: { shards: { location: string }[] } };
  return { code: res.status, text, locations: (doc.partitions?.shards ?? []).map((s) => s.location) };
}

async function signIn(email: string, password: string): Promise<string> {
  const res = await fetch(`${shop.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

describe('examples/shop /status', () => {
  it('redacts the shard locations for anonymous callers and users', async () => {
    const user = await signIn('user3@example.com', 'password-3');
    for (const r of [await status(), await status(user)]) {
      expect(r.code).toBe(200);
      expect(r.locations).toEqual(['sqlite:…/shard-0.db', 'sqlite:…/shard-1.db']);
      expect(r.text).not.toContain(dataDir);
    }
  });

  it('shows them whole to the admin, and answers a bad token with 401', async () => {
    const admin = await status(await signIn('admin@example.com', 'admin-password'));
    expect(admin.code).toBe(200);
    expect(admin.locations).toHaveLength(2);
    for (const l of admin.locations) expect(l.startsWith(`sqlite:${dataDir}`)).toBe(true);
    const bad = await status('not-a-token');
    expect(bad.code).toBe(401);
    expect(JSON.parse(bad.text)).toMatchObject({ error: { code: 'PP_ERR_UNAUTHORIZED', field: 'headers.authorization' } });
  });
});
