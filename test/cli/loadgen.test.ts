/**
 * The load generator against a test double of the shop's HTTP API (examples/shop/CONTRACT.md):
 * a small Fastify server with canned, contract-shaped answers for just the endpoints the mix
 * touches, counting what it receives and injecting faults (every 10th search answers 500, every
 * 40th product read has its connection destroyed). No timing assertions: counts and shares only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchCommand, endpointHgrmPath, parseBenchArgs } from '../../src/cli/bench.js';
import { ENDPOINT_NAMES, loadMix, type EndpointName, type ShopMixResult as MixResult } from '../../examples/shop/loadmix.js';
import { runMix, formatMixTable } from '../../src/cli/loadgen.js';
import { parseHgrm } from '../../src/observe/index.js';

const PRODUCTS = 200;
const CATEGORIES = 20;
const ADJECTIVES = ['Brass', 'Cedar', 'Linen', 'Amber'];
const NOUNS = ['Lamp', 'Chair', 'Vase', 'Table', 'Clock'];

const pid = (i: number): string => `p${String(i).padStart(5, '0')}`;
const cid = (i: number): string => `c${String(i).padStart(2, '0')}`;
const product = (i: number): Record<string, unknown> => ({
  id: pid(i), categoryId: cid(((i - 1) % CATEGORIES) + 1), name: `${ADJECTIVES[i % 4]} ${NOUNS[i % 5]} ${i}`,
  description: `Product ${i}`, priceCents: 100 + ((i * 7919) % 100000),
});

interface ShopDouble {
  url: string;
  app: FastifyInstance;
  /** Requests of the mix received (discovery and sign-ins not included). */
  mix: Record<EndpointName, number>;
  productHits: Map<string, number>;
  searchErrors: number;
  dropped: number;
  idempotencyKeys: Set<string>;
  duplicateKeys: number;
  badOrders: number;
  signIns: number;
}

async function startShopDouble(opts: { rejectSignIns?: boolean; hangRecentOrders?: boolean } = {}): Promise<ShopDouble> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const d: ShopDouble = {
    url: '', app, mix: { product: 0, category: 0, orders: 0, search: 0, placeOrder: 0 }, productHits: new Map(),
    searchErrors: 0, dropped: 0, idempotencyKeys: new Set(), duplicateKeys: 0, badOrders: 0, signIns: 0,
  };
  const userOf = (auth: string | undefined): string | undefined => /^Bearer tok-(\d+)$/.exec(auth ?? '')?.[1];
  const unauthorized = { error: { code: 'PP_ERR_UNAUTHORIZED', message: 'unauthorized', requestId: 'r1' } };

  app.post<{ Body: { email?: string; password?: string } }>('/sessions', async (req, reply) => {
    d.signIns++;
    const n = /^user(\d+)@example\.com$/.exec(req.body?.email ?? '')?.[1];
    if (opts.rejectSignIns === true || n === undefined || req.body.password !== `password-${n}`) return reply.code(401).send(unauthorized);
    return reply.code(201).send({ token: `tok-${n}`, userId: `u${n.padStart(12, '0')}`, expiresAt: Date.now() + 86_400_000 });
  });
  app.get('/categories', async () => ({ items: Array.from({ length: CATEGORIES }, (_, i) => ({ id: cid(i + 1), name: `Category ${i + 1}` })) }));
  app.get<{ Params: { id: string }; Querystring: { limit?: string; cursor?: string } }>('/categories/:id/products', async (req, reply) => {
    const c = Number(req.params.id.slice(1));
    if (!/^c\d\d$/.test(req.params.id) || c < 1 || c > CATEGORIES) return reply.code(404).send({ error: { code: 'PP_ERR_NOT_FOUND', message: 'not found', requestId: 'r' } });
    if (req.query.limit === undefined) d.mix.category++; // the mix uses the default limit, discovery limit=100
    const limit = Number(req.query.limit ?? 20);
    const all = Array.from({ length: PRODUCTS }, (_, i) => i + 1).filter((i) => ((i - 1) % CATEGORIES) + 1 === c);
    const after = req.query.cursor === undefined ? 0 : Number(req.query.cursor);
    const page = all.filter((i) => i > after).slice(0, limit);
    const more = page.length === limit && page.at(-1)! < all.at(-1)!;
    return { items: page.map(product), ...(more ? { cursor: String(page.at(-1)) } : {}) };
  });
  app.get<{ Params: { id: string } }>('/products/:id', async (req, reply) => {
    d.mix.product++;
    d.productHits.set(req.params.id, (d.productHits.get(req.params.id) ?? 0) + 1);
    if (d.mix.product % 40 === 0) {
      d.dropped++;
      reply.hijack();
      req.raw.socket.destroy(); // a dropped connection: no response at all
      return;
    }
    const i = Number(req.params.id.slice(1));
    if (!/^p\d{5}$/.test(req.params.id) || i < 1 || i > PRODUCTS) return reply.code(404).send({ error: { code: 'PP_ERR_NOT_FOUND', message: 'not found', requestId: 'r' } });
    return product(i);
  });
  app.get<{ Querystring: { q?: string } }>('/search', async (req, reply) => {
    d.mix.search++;
    if (d.mix.search % 10 === 0) {
      d.searchErrors++;
      return reply.code(500).send({ error: { code: 'PP_ERR_INTERNAL', message: 'injected', requestId: 'r' } });
    }
    const q = (req.query.q ?? '').toLowerCase();
    if (q.length < 1 || q.length > 50) return reply.code(400).send({ error: { code: 'PP_ERR_VALIDATION', message: 'q', requestId: 'r', field: 'query.q' } });
    const items = Array.from({ length: PRODUCTS }, (_, i) => product(i + 1))
      .filter((p) => (p.name as string).toLowerCase().split(' ').some((w) => w.startsWith(q))).slice(0, 20);
    return { items };
  });
  app.get('/orders', async (req, reply) => {
    d.mix.orders++;
    if (opts.hangRecentOrders === true) {
      reply.hijack(); // never answers; the client times out and closes the socket
      return;
    }
    if (userOf(req.headers.authorization) === undefined) return reply.code(401).send(unauthorized);
    return { items: [] };
  });
  app.post<{ Body: { items?: { sku: string; qty: number }[]; idempotencyKey?: string } }>('/orders', async (req, reply) => {
    d.mix.placeOrder++;
    const user = userOf(req.headers.authorization);
    if (user === undefined) return reply.code(401).send(unauthorized);
    const items = req.body?.items ?? [];
    const key = req.body?.idempotencyKey ?? '';
    const skus = new Set(items.map((x) => x.sku));
    if (items.length < 1 || items.length > 3 || skus.size !== items.length || items.some((x) => x.qty !== 1) || key.length < 1 || key.length > 64) d.badOrders++;
    if (d.idempotencyKeys.has(key)) d.duplicateKeys++;
    d.idempotencyKeys.add(key);
    return reply.code(201).send({
      orderId: `o${'0'.repeat(20)}`, userId: `u${user}`, items: items.map((x) => ({ ...x, priceCents: 100 })),
      totalCents: 100 * items.length, status: 'placed', createdAt: Date.now(),
    });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  d.url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  return d;
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function captureIo(): { io: Parameters<typeof benchCommand>[1] & object; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: false } },
    out: () => out,
    err: () => err,
  };
}

describe('runMix against a shop double', () => {
  let shop: ShopDouble;
  let result: MixResult;
  const progress: { elapsedMs: number; requests: number }[] = [];

  beforeAll(async () => {
    shop = await startShopDouble();
    result = await runMix({
      mix: loadMix, url: shop.url, connections: 8, durationMs: 2_000, warmupMs: 500, seed: 7,
      onProgress: (p) => progress.push({ elapsedMs: p.elapsedMs, requests: p.requests }),
    });
  }, 60_000);
  afterAll(async () => {
    await shop?.app.close();
  });

  it('signs in min(connections, 100) users and discovers every product', () => {
    expect(shop.signIns).toBe(8);
    expect(result.users).toBe(8);
    expect(result.products).toBe(PRODUCTS);
    expect(result.endpoints.map((e) => e.name)).toEqual(ENDPOINT_NAMES);
  });

  it('honours the weights within sampling tolerance', () => {
    expect(result.requests).toBeGreaterThan(500);
    for (const e of result.endpoints) {
      const share = e.requests / result.requests;
      const sd = Math.sqrt((e.weight * (1 - e.weight)) / result.requests);
      expect(Math.abs(share - e.weight), `${e.name}: ${share} vs ${e.weight}`).toBeLessThanOrEqual(5 * sd + 0.005);
    }
    expect(result.endpoints.find((e) => e.name === 'product')!.weight).toBeCloseTo(0.6);
    expect(result.endpoints.find((e) => e.name === 'placeOrder')!.weight).toBeCloseTo(0.05);
  });

  it('skews product reads (Zipf): the hottest product gets far more than an even share', () => {
    const hits = [...shop.productHits.values()].sort((a, b) => b - a);
    const total = hits.reduce((a, b) => a + b, 0);
    expect(hits[0]! / total).toBeGreaterThan(5 / PRODUCTS);
  });

  it('counts injected 500s and dropped connections as errors, never as successes', () => {
    const search = result.endpoints.find((e) => e.name === 'search')!;
    const prod = result.endpoints.find((e) => e.name === 'product')!;
    expect(search.byStatus['500']).toBeGreaterThan(0);
    expect(search.errors).toBe(search.byStatus['500']! + search.networkErrors + search.timeouts);
    expect(search.ok).toBe(search.byStatus['200']);
    expect(search.byStatus['500']! / search.requests).toBeGreaterThan(0.02);
    expect(search.byStatus['500']! / search.requests).toBeLessThan(0.25);
    expect(prod.networkErrors).toBeGreaterThan(0);
    expect(prod.ok).toBe(prod.byStatus['200']);
    expect(prod.errors).toBe(prod.networkErrors + prod.timeouts + Object.entries(prod.byStatus).filter(([s]) => !s.startsWith('2')).reduce((a, [, c]) => a + c, 0));
    for (const e of result.endpoints) expect(e.ok + e.errors).toBe(e.requests);
    expect(result.errors).toBe(result.endpoints.reduce((a, e) => a + e.errors, 0));
    expect(result.errors).toBeGreaterThanOrEqual(search.byStatus['500']! + prod.networkErrors);
    expect(result.rps).toBeCloseTo((result.ok * 1000) / result.durationMs, 6);
    const table = formatMixTable(result);
    expect(table).toContain('GET /products/:id');
    expect(table).toMatch(/errors: \d+ of \d+ requests .*x 500.*network errors/);
    expect(result.errorSamples.some((s) => s.startsWith('GET /search?q= 500: ') && s.includes('injected'))).toBe(true);
  });

  it('excludes the warm-up: every request the server saw is either measured or warm-up', () => {
    const served = ENDPOINT_NAMES.reduce((a, n) => a + shop.mix[n], 0);
    expect(result.warmupRequests).toBeGreaterThan(0);
    expect(served).toBe(result.requests + result.warmupRequests);
    for (const n of ENDPOINT_NAMES) expect(result.perEndpoint[n].count).toBeLessThanOrEqual(shop.mix[n]);
    expect(progress.at(-1)!.requests).toBe(served);
    expect(result.durationMs).toBeCloseTo(2_000, -1);
  });

  it('records every measured request in the histograms', () => {
    expect(result.histogram.count).toBe(result.ok + result.errors);
    expect(result.histogram.count).toBe(result.requests);
    for (const e of result.endpoints) expect(result.perEndpoint[e.name].count).toBe(e.requests);
    expect(result.p50Ms).toBeGreaterThan(0);
    expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
  });

  it('places well-formed orders, each with a unique idempotency key', () => {
    expect(shop.mix.placeOrder).toBeGreaterThan(0);
    expect(shop.badOrders).toBe(0);
    expect(shop.duplicateKeys).toBe(0);
    const orders = result.endpoints.find((e) => e.name === 'orders')!;
    expect(orders.byStatus['401']).toBeUndefined();
  });
});

describe('runMix failures, timeouts and abort', () => {
  it('names the URL when no shop answers', async () => {
    const port = await closedPort();
    await expect(runMix({ mix: loadMix, url: `http://127.0.0.1:${port}`, connections: 2, durationMs: 100, warmupMs: 0 })).rejects.toThrow(`no shop at http://127.0.0.1:${port}`);
  });

  it('names the user whose sign-in failed', async () => {
    const shop = await startShopDouble({ rejectSignIns: true });
    try {
      await expect(runMix({ mix: loadMix, url: shop.url, connections: 2, durationMs: 100, warmupMs: 0 })).rejects.toThrow(/cannot sign in user\d@example\.com: 401/);
    } finally {
      await shop.app.close();
    }
  });

  it('counts requests without an answer as timeouts, with their latency in the histogram', async () => {
    const shop = await startShopDouble({ hangRecentOrders: true });
    try {
      const r = await runMix({ mix: loadMix, url: shop.url, connections: 4, durationMs: 1_500, warmupMs: 0, requestTimeoutMs: 200 });
      const orders = r.endpoints.find((e) => e.name === 'orders')!;
      expect(orders.timeouts).toBeGreaterThan(0);
      expect(orders.ok).toBe(0);
      expect(orders.errors).toBe(orders.requests);
      expect(orders.timeouts + orders.networkErrors).toBe(orders.requests);
      expect(r.perEndpoint.orders.min).toBeGreaterThanOrEqual(200_000);
      expect(r.endpoints.find((e) => e.name === 'product')!.ok).toBeGreaterThan(0);
      expect(formatMixTable(r)).toMatch(/\d+ timeouts \(> 0\.2 s\)/);
    } finally {
      await shop.app.close();
    }
  }, 30_000);

  it('stops early on abort and reports the measured part', async () => {
    const shop = await startShopDouble();
    try {
      const controller = new AbortController();
      let aborted = false;
      const r = await runMix({
        mix: loadMix, url: shop.url, connections: 2, durationMs: 60_000, warmupMs: 0, signal: controller.signal,
        onProgress: (p) => {
          if (!aborted && p.requests > 50) {
            aborted = true;
            controller.abort();
          }
        },
      });
      expect(r.aborted).toBe(true);
      expect(r.durationMs).toBeLessThan(60_000);
      expect(r.requests).toBeGreaterThan(50);
      expect(r.histogram.count).toBe(r.requests);
    } finally {
      await shop.app.close();
    }
  }, 30_000);

  it('rejects bad options naming them', async () => {
    await expect(runMix({ mix: loadMix, url: 'http://127.0.0.1:1', connections: 0 })).rejects.toThrow(/connections/);
    await expect(runMix({ mix: loadMix, url: 'http://127.0.0.1:1', weights: { product: -1 } })).rejects.toThrow(/weights\.product/);
    await expect(runMix({ mix: loadMix, url: 'ftp://x' })).rejects.toThrow(/not an http/);
  });
});

describe('benchCommand', () => {
  let shop: ShopDouble;
  let dir: string;
  beforeAll(async () => {
    shop = await startShopDouble();
    dir = mkdtempSync(join(tmpdir(), 'pp-bench-test-'));
  });
  afterAll(async () => {
    await shop?.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs, prints JSON and writes parseable .hgrm files (merged and per endpoint)', async () => {
    const c = captureIo();
    const hgrm = join(dir, 'shop.hgrm');
    const code = await benchCommand(['examples/shop', '--url', shop.url, '--connections', '4', '--duration', '1', '--warmup', '0.2', '--hgrm', hgrm, '--json'], c.io);
    expect(code, c.err()).toBe(0);
    const json = JSON.parse(c.out()) as { requests: number; ok: number; errors: number; hgrm: string };
    const merged = parseHgrm(readFileSync(hgrm, 'utf8'));
    expect(merged.totalCount).toBe(json.requests);
    expect(merged.rows.at(-1)!.totalCount).toBe(json.requests);
    let sum = 0;
    for (const n of ENDPOINT_NAMES) sum += parseHgrm(readFileSync(endpointHgrmPath(hgrm, n), 'utf8')).totalCount;
    expect(sum).toBe(json.requests);
    expect(c.err()).toMatch(/\[#+\.*\] .* requests/); // plain progress lines when not a TTY
  }, 30_000);

  it('prints the table by default', async () => {
    const c = captureIo();
    const code = await benchCommand(['examples/shop', '--url', shop.url, '--connections', '2', '--duration=0.5', '--warmup', '0', '--hgrm', join(dir, 'b.hgrm')], c.io);
    expect(code, c.err()).toBe(0);
    expect(c.out()).toMatch(/GET \/products\/:id\s+60\.0%/);
    expect(c.out()).toContain(join(dir, 'b.product.hgrm'));
  }, 30_000);

  it('rejects bad flags with exit code 2, naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['--bogus'], /unknown option --bogus/],
      [['--connections', '0'], /--connections must be an integer/],
      [['--connections', '2.5'], /--connections/],
      [['--duration', '-1'], /--duration must be/],
      [['--duration', '0'], /--duration must be/],
      [['--warmup', 'abc'], /--warmup must be/],
      [['--url', 'nope'], /--url must be an http/],
      [['--hgrm'], /--hgrm needs a value/],
    ];
    for (const [argv, re] of cases) {
      const c = captureIo();
      expect(await benchCommand(argv, c.io), argv.join(' ')).toBe(2);
      expect(c.err()).toMatch(re);
    }
    expect(parseBenchArgs([]).connections).toBe(64);
  });

  it('exits 1 with a clear message when the shop is unreachable', async () => {
    const port = await closedPort();
    const c = captureIo();
    expect(await benchCommand(['examples/shop', '--url', `http://127.0.0.1:${port}`, '--duration', '1', '--hgrm', join(dir, 'x.hgrm')], c.io)).toBe(1);
    expect(c.err()).toContain(`no shop at http://127.0.0.1:${port}`);
  });
});
