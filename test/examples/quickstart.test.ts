import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQuickstart, type Quickstart } from '../../examples/quickstart.js';

// The README's quickstart, over real HTTP: what it promises a new user must hold.
describe('examples/quickstart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'pp-quickstart-test-'));
  let qs: Quickstart;

  beforeAll(async () => {
    qs = await startQuickstart({ dataDir, port: 0 });
  });
  afterAll(async () => {
    await qs.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function put(id: string, body: unknown): Promise<Response> {
    return fetch(`${qs.url}/products/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  it('stores a product and serves it back, then serves the new value after an update', async () => {
    const r1 = await put('p1', { name: 'Lamp', priceCents: 1999 });
    expect(r1.status).toBe(200);
    expect(await r1.json()).toEqual({ id: 'p1', version: 1 });
    const g1 = await fetch(`${qs.url}/products/p1`);
    expect(g1.status).toBe(200);
    expect(g1.headers.get('x-request-id')).toBeTruthy();
    expect(await g1.json()).toEqual({ id: 'p1', name: 'Lamp', priceCents: 1999 });
    // The GET above cached it; the update must not be hidden by the cached copy.
    expect((await put('p1', { name: 'Lamp', priceCents: 1499 })).status).toBe(200);
    expect(await (await fetch(`${qs.url}/products/p1`)).json()).toEqual({ id: 'p1', name: 'Lamp', priceCents: 1499 });
  });

  it('answers an unknown id with 404 and a JSON error naming the field', async () => {
    const r = await fetch(`${qs.url}/products/nope`);
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ error: { code: 'PP_ERR_NOT_FOUND', field: 'params.id' } });
  });

  it('answers bad input with 400 naming the field, and malformed JSON with 400', async () => {
    const r = await put('p2', { name: 'Desk', priceCents: -5 });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: { code: 'PP_ERR_VALIDATION', field: 'params.priceCents' } });
    const bad = await fetch(`${qs.url}/products/p2`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'PP_ERR_VALIDATION' } });
  });
});

describe('README', () => {
  it('shows examples/readme.ts verbatim (so the snippet in the README is the one tsc checks)', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const file = readFileSync(new URL('../../examples/readme.ts', import.meta.url), 'utf8');
    expect(file.length).toBeGreaterThan(200);
    expect(readme).toContain('```ts\n' + file + '```');
  });
});
