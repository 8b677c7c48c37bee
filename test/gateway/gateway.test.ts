import { Type } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, isPlainJsonSchema, type Gateway } from '../../src/gateway/index.js';
import type { ServiceNode } from '../../src/service/index.js';
import { action, createNode, defineService } from '../service/imports.js';
import { tcatalog, torders } from '../service/fixtures.js';

let seen: string | undefined;
const slow = defineService({
  name: 'tgwslow',
  actions: {
    wait: action({ params: Type.Object({}), handler: () => new Promise((r) => setTimeout(() => r('late'), 300)) }),
    who: action({ params: Type.Object({}), handler: (ctx) => { seen = ctx.requestId; return { requestId: ctx.requestId }; } }),
    // Declares { id } but returns more, or the wrong type: the response schema decides what leaves.
    leaky: action({ params: Type.Object({}), result: Type.Object({ id: Type.String() }), handler: () => ({ id: 'x', secret: 's' }) as { id: string } }),
    broken: action({ params: Type.Object({}), result: Type.Object({ n: Type.Integer() }), handler: () => ({ n: 'not a number' }) as unknown as { n: number } }),
    later: action({ params: Type.Object({}), result: Type.Object({ ok: Type.Boolean() }), handler: async () => ({ ok: true }) }),
  },
});

const open: { node: ServiceNode; gw: Gateway }[] = [];
let n = 0;

async function setup(): Promise<{ node: ServiceNode; gw: Gateway }> {
  n++;
  const node = createNode({
    nodeId: `gw${n}`, transport: `inproc://gw-${process.pid}-${n}`, logger: false, services: [tcatalog, torders, slow],
    call: { attemptsMax: 1, discoveryWaitMs: 50 },
  });
  await node.start();
  const gw = createGateway(node, {
    routes: [
      { method: 'GET', url: '/products/:id', action: 'tcatalog.get' },
      { method: 'POST', url: '/quotes', action: 'torders.quote' },
      { method: 'GET', url: '/slow', action: 'tgwslow.wait', timeoutMs: 30 },
      { method: 'GET', url: '/who', action: 'tgwslow.who' },
      { method: 'GET', url: '/ghost', action: 'tghost.get' },
      { method: 'GET', url: '/leaky', action: 'tgwslow.leaky' },
      { method: 'GET', url: '/leaky-raw', action: 'tgwslow.leaky', resultSchema: false },
      { method: 'GET', url: '/broken', action: 'tgwslow.broken' },
      { method: 'GET', url: '/later', action: 'tgwslow.later', status: 201 },
    ],
  });
  await gw.app.ready();
  open.push({ node, gw });
  return { node, gw };
}

afterEach(async () => {
  for (const { node, gw } of open.splice(0)) {
    await gw.close();
    await node.stop();
  }
});

describe('http gateway', () => {
  it('maps a route to an action and answers 200 with the result and a request id', async () => {
    const { gw } = await setup();
    const res = await gw.app.inject({ method: 'GET', url: '/products/p1' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id: 'p1', name: 'Lamp', priceCents: 1999 });
    expect(res.headers['x-request-id']).toMatch(/^gw\d+-/);
  });

  it('serializes results with the action\'s result schema: undeclared fields stay out, a result breaking it is a 500', async () => {
    const { gw } = await setup();
    const leaky = await gw.app.inject({ method: 'GET', url: '/leaky' });
    expect(leaky.statusCode).toBe(200);
    expect(leaky.body).toBe('{"id":"x"}');
    // resultSchema: false keeps JSON.stringify (everything the handler returned).
    expect((await gw.app.inject({ method: 'GET', url: '/leaky-raw' })).json()).toEqual({ id: 'x', secret: 's' });
    const broken = await gw.app.inject({ method: 'GET', url: '/broken' });
    expect(broken.statusCode).toBe(500);
    expect(broken.json().error.code).toBe('PP_ERR_INTERNAL');
    // An asynchronous handler takes the promise path, with the route's own success status.
    const later = await gw.app.inject({ method: 'GET', url: '/later' });
    expect(later.statusCode).toBe(201);
    expect(later.json()).toEqual({ ok: true });
    expect(later.headers['x-request-id']).toBeDefined();
  });

  it('uses fast-json-stringify only for plain JSON schemas', () => {
    expect(isPlainJsonSchema(Type.Object({ a: Type.String(), b: Type.Array(Type.Object({ c: Type.Integer(), d: Type.Optional(Type.Null()) })) }))).toBe(true);
    expect(isPlainJsonSchema(Type.Literal('x'))).toBe(true);
    expect(isPlainJsonSchema(Type.Union([Type.String(), Type.Number()]))).toBe(false);
    expect(isPlainJsonSchema(Type.Object({ at: Type.Date() }))).toBe(false);
    expect(isPlainJsonSchema(Type.Object({}, { additionalProperties: Type.String() }))).toBe(false);
    expect(isPlainJsonSchema(Type.Record(Type.String(), Type.Number()))).toBe(false);
    expect(isPlainJsonSchema(Type.Unknown())).toBe(false);
    expect(isPlainJsonSchema({ type: 'object' })).toBe(false); // not TypeBox: no Kind to go by
  });

  it('keeps the client request id and passes it into the action context', async () => {
    const { gw } = await setup();
    const res = await gw.app.inject({ method: 'GET', url: '/who', headers: { 'x-request-id': 'abc-123' } });
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(seen).toBe('abc-123');
  });

  it('answers 400 with a JSON body naming the field for invalid params and for an unparsable body', async () => {
    const { gw } = await setup();
    const bad = await gw.app.inject({ method: 'POST', url: '/quotes', payload: { productId: 'p1', qty: 0 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'params.qty' });
    const broken = await gw.app.inject({ method: 'POST', url: '/quotes', headers: { 'content-type': 'application/json' }, payload: '{"productId":' });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().error).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'body' });
    const ok = await gw.app.inject({ method: 'POST', url: '/quotes', payload: { productId: 'p2', qty: 3 } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().totalCents).toBe(74700);
  });

  it('answers undecodable paths and over-long path parameters with the catalogue\'s 400 body', async () => {
    const { gw } = await setup();
    for (const url of ['/products/%zz', '/products/%E0%A4%A', `/products/${'x'.repeat(101)}`]) {
      const res = await gw.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error, url).toMatchObject({ code: 'PP_ERR_VALIDATION', requestId: res.headers['x-request-id'] });
    }
  });

  it('answers 404 for an unknown id and for an unknown route', async () => {
    const { gw } = await setup();
    const missing = await gw.app.inject({ method: 'GET', url: '/products/zzz' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatchObject({ code: 'PP_ERR_NOT_FOUND', field: 'params.id' });
    const noRoute = await gw.app.inject({ method: 'GET', url: '/nowhere?x=1' });
    expect(noRoute.statusCode).toBe(404);
    expect(noRoute.json().error.code).toBe('PP_ERR_NOT_FOUND');
    expect(noRoute.headers['x-request-id']).toBeDefined();
  });

  it('answers 504 when the deadline is exceeded', async () => {
    const { gw } = await setup();
    const res = await gw.app.inject({ method: 'GET', url: '/slow' });
    expect(res.statusCode).toBe(504);
    expect(res.json().error.code).toBe('PP_ERR_TIMEOUT');
  });

  it('answers 503 with Retry-After when no instance offers the action', async () => {
    const { gw } = await setup();
    const res = await gw.app.inject({ method: 'GET', url: '/ghost' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('PP_ERR_NO_ENDPOINT');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('reports the cluster on /status: this node, the nodes and services it knows, and the application\'s sections', async () => {
    const { node, gw } = await setup();
    const other = createNode({ nodeId: `gw${n}-b`, transport: `inproc://gw-${process.pid}-${n}`, logger: false, services: [torders] });
    await other.start();
    try {
      await node.waitFor(['torders.quote']);
      await expect.poll(() => node.status().services.find((s) => s.name === 'torders')?.instances.length).toBe(2);
      const body = (await gw.app.inject({ method: 'GET', url: '/status' })).json();
      expect(body.node).toMatchObject({ nodeId: node.nodeId, ready: true, state: 'running', transport: 'inproc' });
      expect(body.nodes.map((x: { nodeId: string }) => x.nodeId).sort()).toEqual([node.nodeId, other.nodeId].sort());
      const orders = body.services.find((s: { name: string }) => s.name === 'torders');
      expect(orders.instances).toEqual([node.nodeId, other.nodeId].sort());
      const quote = orders.actions.find((a: { name: string }) => a.name === 'torders.quote');
      expect(quote.endpoints.map((e: { nodeId: string; breaker: string }) => `${e.nodeId}:${e.breaker}`).sort()).toEqual([`${node.nodeId}:closed`, `${other.nodeId}:closed`].sort());
    } finally {
      await other.stop();
    }
    // Application sections are merged in; a failing section is a 503, not a 500.
    const withExtra = createGateway(node, { routes: [], status: () => ({ partitions: { shards: ['s0'] } }) });
    const failing = createGateway(node, { routes: [], status: () => { throw new Error('boom'); } });
    try {
      expect((await withExtra.app.inject({ method: 'GET', url: '/status' })).json().partitions).toEqual({ shards: ['s0'] });
      const res = await failing.app.inject({ method: 'GET', url: '/status' });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('PP_ERR_UNAVAILABLE');
    } finally {
      await withExtra.close();
      await failing.close();
    }
  });

  it('reports liveness and readiness, and readiness drops while draining', async () => {
    const { node, gw } = await setup();
    expect((await gw.app.inject({ method: 'GET', url: '/health' })).json()).toMatchObject({ live: true, ready: true });
    expect((await gw.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    await node.stop();
    expect((await gw.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(503);
    expect((await gw.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(503);
  });

  it('exposes Prometheus metrics: calls, latency histograms per action, breaker states, registry size, http', async () => {
    const { gw } = await setup();
    await gw.app.inject({ method: 'GET', url: '/products/p1' });
    await gw.app.inject({ method: 'GET', url: '/products/zzz' });
    const res = await gw.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.body;
    expect(text).toContain('pp_calls_total{action="tcatalog.get",outcome="ok"} 1');
    expect(text).toContain('pp_calls_total{action="tcatalog.get",outcome="PP_ERR_NOT_FOUND"} 1');
    expect(text).toMatch(/pp_call_duration_ms_bucket\{action="tcatalog.get",le="\+Inf"\} 2/);
    expect(text).toMatch(/pp_breaker_state\{action="tcatalog.get",node="gw\d+"\} 0/);
    expect(text).toMatch(/pp_registry_nodes 1/);
    expect(text).toContain('pp_http_requests_total{route="GET /products/:id",status="200"} 1');
    expect(text).toContain('# TYPE pp_call_duration_ms histogram');
  });
});
