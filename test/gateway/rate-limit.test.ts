/**
 * The gateway's rate limiter over HTTP: a token bucket per client per route, 429
 * PP_ERR_RATE_LIMITED with Retry-After from the bucket's time to its next token, a bounded table
 * of client buckets, metrics. The buckets read an injected clock advanced by hand: no timings.
 */
import { Type } from '@sinclair/typebox';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/index.js';
import { CounterSeries } from '../../src/observe/index.js';
import type { ServiceNode } from '../../src/service/index.js';
import { ClientBuckets } from '../../src/gateway/rate-limit.js';
import { action, createNode, defineService } from '../service/imports.js';

let calls = 0;
const tgwlimit = defineService({
  name: 'tgwlimit',
  actions: {
    hit: action({ params: Type.Object({}, { additionalProperties: true }), result: Type.Object({ ok: Type.Boolean() }), handler: () => ({ ok: (calls++, true) }) }),
  },
});

const clock = { t: 0, now(): number { return this.t; } };
const open: { node: ServiceNode; gw: Gateway }[] = [];
let n = 0;

async function setup(options: Omit<GatewayOptions<string>, 'routes'>, routes?: GatewayOptions<string>['routes']): Promise<{ url: string; metrics: () => Promise<string> }> {
  n++;
  const node = createNode({ nodeId: `gwl${n}`, transport: `inproc://gwl-${process.pid}-${n}`, logger: false, services: [tgwlimit] });
  await node.start();
  const gw = createGateway<string>(node, {
    routes: routes ?? [
      { method: 'GET', url: '/a', action: 'tgwlimit.hit' },
      { method: 'GET', url: '/b', action: 'tgwlimit.hit' },
    ],
    ...options,
  });
  open.push({ node, gw });
  const url = await gw.listen(0);
  return { url, metrics: async () => (await fetch(`${url}/metrics`)).text() };
}

afterEach(async () => {
  for (const { node, gw } of open.splice(0)) {
    await gw.close();
    await node.stop();
  }
});

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { ok?: boolean; error?: { code: string; retryAfterMs?: number; requestId?: string } };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { headers });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Answer['body'] };
}

const statuses = async (url: string, count: number, headers: Record<string, string> = {}): Promise<number[]> => {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push((await get(url, headers)).status);
  return out;
};

describe('gateway rate limiter', () => {
  it('is off by default', async () => {
    const { url } = await setup({});
    expect(new Set(await statuses(`${url}/a`, 40))).toEqual(new Set([200]));
  });

  it('admits a burst per client per route, then answers 429 with Retry-After from the time to the next token, before any service is called', async () => {
    clock.t = 1_000;
    const { url, metrics } = await setup({ rateLimit: { ratePerSec: 0.5, burst: 2, clock } });
    expect(await statuses(`${url}/a`, 2)).toEqual([200, 200]);
    const before = calls;
    const refused = await get(`${url}/a`);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'PP_ERR_RATE_LIMITED', retryAfterMs: 2_000 });
    expect(refused.body.error?.requestId).toBeDefined();
    expect(refused.retryAfter).toBe('2');
    expect(calls).toBe(before);
    // Half the wait later, one second is left; the other route has a bucket of its own.
    clock.t += 1_000;
    const still = await get(`${url}/a`);
    expect([still.status, still.retryAfter, still.body.error?.retryAfterMs]).toEqual([429, '1', 1_000]);
    expect(await statuses(`${url}/b`, 2)).toEqual([200, 200]);
    // The next token has come: one more, not two (the bucket refills at 0.5/s).
    clock.t += 1_000;
    expect(await statuses(`${url}/a`, 2)).toEqual([200, 429]);
    const text = await metrics();
    expect(text).toContain('pp_http_rate_limited_total{route="GET /a"} 3');
    expect(text).toContain('pp_http_requests_total{route="GET /a",status="429"} 3');
    expect(text).toContain('pp_http_rate_limited_total{route="GET /b"} 0');
  });

  it('counts each client separately: by the principal when the route has one, else by address', async () => {
    clock.t = 0;
    const { url } = await setup({
      auth: (req) => (typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined),
      rateLimit: { ratePerSec: 1, burst: 1, clock },
    }, [
      { method: 'GET', url: '/a', action: 'tgwlimit.hit', auth: 'optional' },
      { method: 'GET', url: '/open', action: 'tgwlimit.hit' },
    ]);
    expect(await statuses(`${url}/a`, 2, { authorization: 'ann' })).toEqual([200, 429]);
    expect(await statuses(`${url}/a`, 2, { authorization: 'bob' })).toEqual([200, 429]);
    // Anonymous requests from this address share one bucket, separate from ann's and bob's.
    expect(await statuses(`${url}/a`, 2)).toEqual([200, 429]);
    // A route without auth never resolves a principal: by address only.
    expect(await statuses(`${url}/open`, 2, { authorization: 'carl' })).toEqual([200, 429]);
  });

  it('lets a route override the numbers, or opt out', async () => {
    clock.t = 0;
    const { url } = await setup({ rateLimit: { ratePerSec: 1, burst: 1, clock } }, [
      { method: 'GET', url: '/a', action: 'tgwlimit.hit' },
      { method: 'GET', url: '/wide', action: 'tgwlimit.hit', rateLimit: { ratePerSec: 1, burst: 5 } },
      { method: 'GET', url: '/free', action: 'tgwlimit.hit', rateLimit: false },
    ]);
    expect(await statuses(`${url}/a`, 2)).toEqual([200, 429]);
    expect(await statuses(`${url}/wide`, 6)).toEqual([200, 200, 200, 200, 200, 429]);
    expect(new Set(await statuses(`${url}/free`, 20))).toEqual(new Set([200]));
  });

  it('limits a route that asks for it even when the gateway has no default limit', async () => {
    const { url } = await setup({}, [
      { method: 'GET', url: '/a', action: 'tgwlimit.hit', rateLimit: { ratePerSec: 0.001, burst: 2 } },
      { method: 'GET', url: '/b', action: 'tgwlimit.hit' },
    ]);
    expect(await statuses(`${url}/a`, 3)).toEqual([200, 200, 429]);
    expect(new Set(await statuses(`${url}/b`, 10))).toEqual(new Set([200]));
  });

  it('keeps at most clientsMax buckets per route, evicting the least recently seen (which then starts full again)', async () => {
    clock.t = 0;
    const { url, metrics } = await setup({ rateLimit: { ratePerSec: 1, burst: 1, clientsMax: 2, clock, key: (req) => String(req.headers['x-client']) } });
    const as = (c: string): Record<string, string> => ({ 'x-client': c });
    expect(await statuses(`${url}/a`, 2, as('c1'))).toEqual([200, 429]);
    expect(await statuses(`${url}/a`, 2, as('c2'))).toEqual([200, 429]);
    // c1 is seen again (most recent now); c3 evicts c2, the least recently seen.
    expect(await statuses(`${url}/a`, 1, as('c1'))).toEqual([429]);
    expect(await statuses(`${url}/a`, 1, as('c3'))).toEqual([200]);
    expect(await statuses(`${url}/a`, 1, as('c1'))).toEqual([429]);
    // c2's drained bucket was dropped: it gets a fresh burst (eviction only ever admits more).
    expect(await statuses(`${url}/a`, 2, as('c2'))).toEqual([200, 429]);
    // An idle bucket that refilled carries nothing: evicting it is not counted as a loss.
    expect(await metrics()).toContain('pp_http_rate_limit_evictions_total{route="GET /a"} 2');
    clock.t += 10_000;
    await statuses(`${url}/a`, 1, as('c4'));
    await statuses(`${url}/a`, 1, as('c5'));
    expect(await metrics()).toContain('pp_http_rate_limit_evictions_total{route="GET /a"} 2');
  });

  it('refuses bad limits naming the option', () => {
    const node = createNode({ nodeId: 'gwl-cfg', transport: `inproc://gwl-cfg-${process.pid}`, logger: false, services: [tgwlimit] });
    const routes = [{ method: 'GET' as const, url: '/a', action: 'tgwlimit.hit' }];
    expect(() => createGateway(node, { routes, rateLimit: { ratePerSec: 0, burst: 1 } })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'rateLimit.ratePerSec' }));
    expect(() => createGateway(node, { routes, rateLimit: { ratePerSec: 1, burst: 0.5 } })).toThrow(expect.objectContaining({ field: 'rateLimit.burst' }));
    expect(() => createGateway(node, { routes, rateLimit: { ratePerSec: 1, burst: 1, clientsMax: 0 } })).toThrow(expect.objectContaining({ field: 'rateLimit.clientsMax' }));
    expect(() => createGateway(node, { routes: [{ ...routes[0]!, rateLimit: { ratePerSec: Infinity, burst: 1 } }] })).toThrow(expect.objectContaining({ field: 'routes[0].rateLimit.ratePerSec' }));
  });
});

describe('ClientBuckets (the table behind the limiter)', () => {
  it('never holds more than clientsMax buckets, and never admits a client fewer requests than an unbounded table would', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 500 })), { maxLength: 300 }), (max, steps) => {
      const t = { now: 0 };
      const table = new ClientBuckets(2, 3, max, { now: () => t.now }, new CounterSeries([]));
      // The reference: the same buckets with no bound. Per client, the bounded table's count of
      // admitted requests is never below the reference's (an evicted client comes back full).
      const reference = new ClientBuckets(2, 3, 1_000, { now: () => t.now }, new CounterSeries([]));
      const admitted = new Map<string, [number, number]>();
      for (const [client, advanceMs] of steps) {
        t.now += advanceMs;
        const key = `c${client}`;
        const counts = admitted.get(key) ?? [0, 0];
        if (table.take(key) === undefined) counts[0]++;
        if (reference.take(key) === undefined) counts[1]++;
        admitted.set(key, counts);
        if (counts[0] < counts[1] || table.size > max) return false;
      }
      return true;
    }));
  });
});
