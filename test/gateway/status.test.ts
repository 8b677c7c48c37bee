/**
 * Who sees what of /status and /metrics (GatewayOptions.statusAccess, metricsAccess, admin), over
 * HTTP: by default anyone gets /status with every location (shard files, database URLs) redacted
 * and an admin gets it whole; 'admin' shuts everyone else out with the catalogue's 401 / 403.
 */
import { Type } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, redactLocation, redactLocations, type Gateway, type GatewayOptions } from '../../src/gateway/index.js';
import type { ServiceNode } from '../../src/service/index.js';
import { action, createNode, defineService, ppError } from '../service/imports.js';

const tgwstatus = defineService({ name: 'tgwstatus', actions: { ping: action({ params: Type.Object({}), handler: () => 'pong' }) } });

const SQLITE = 'sqlite:/srv/shop/data/store/s0.db';
const PG = 'postgres://app@10.0.3.7:5432/shop?sslmode=require&sslpassword=hunter2&schema=shop_1';
const partitions = { shards: [{ shard: 's0', engine: 'sqlite', location: SQLITE }, { shard: 's1', engine: 'postgres', location: PG }] };

interface Who {
  name: string;
  admin: boolean;
}
/** `Bearer <name>`, admin when the name is 'root'; `Bearer bad` is refused by the hook. */
const auth = (req: { headers: Record<string, unknown> }): Who | undefined => {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const name = h.slice('Bearer '.length);
  if (name === 'bad') throw ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: 'token forged' });
  return { name, admin: name === 'root' };
};

const open: { node: ServiceNode; gw: Gateway }[] = [];
let n = 0;

async function setup(options: Omit<GatewayOptions<Who>, 'routes'>): Promise<string> {
  n++;
  const node = createNode({ nodeId: `gws${n}`, transport: `inproc://gws-${process.pid}-${n}`, logger: false, services: [tgwstatus] });
  await node.start();
  const gw = createGateway<Who>(node, { routes: [{ method: 'GET', url: '/ping', action: 'tgwstatus.ping' }], status: () => ({ partitions }), ...options });
  open.push({ node, gw });
  return gw.listen(0);
}

afterEach(async () => {
  for (const { node, gw } of open.splice(0)) {
    await gw.close();
    await node.stop();
  }
});

async function get(url: string, who?: string): Promise<{ status: number; text: string; json: () => unknown }> {
  const res = await fetch(url, { headers: who === undefined ? {} : { authorization: `Bearer ${who}` } });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

const shardsOf = (doc: unknown): { location: string }[] => (doc as { partitions: { shards: { location: string }[] } }).partitions.shards;
const REDACTED = ['sqlite:…/s0.db', 'postgres://…?sslmode=require&schema=shop_1'];

describe('/status and /metrics access', () => {
  it('by default, shows /status to anyone with locations redacted; the node part is intact', async () => {
    const url = await setup({});
    const r = await get(`${url}/status`);
    expect(r.status).toBe(200);
    for (const leak of ['/srv/', 'app@', '10.0.3.7', '5432', 'hunter2']) expect(r.text).not.toContain(leak);
    expect(shardsOf(r.json()).map((s) => s.location)).toEqual(REDACTED);
    expect(r.json()).toMatchObject({ node: { nodeId: `gws${n}`, state: 'running', transport: 'inproc' }, services: [{ name: 'tgwstatus', actions: [{ name: 'tgwstatus.ping' }] }] });
    expect((await get(`${url}/metrics`)).status).toBe(200);
  });

  it('shows an admin the whole document, everyone else the redacted one, and refuses bad credentials', async () => {
    const url = await setup({ auth, admin: (w) => w.admin });
    expect(shardsOf((await get(`${url}/status`, 'root')).json()).map((s) => s.location)).toEqual([SQLITE, PG]);
    expect(shardsOf((await get(`${url}/status`, 'ann')).json()).map((s) => s.location)).toEqual(REDACTED);
    expect(shardsOf((await get(`${url}/status`)).json()).map((s) => s.location)).toEqual(REDACTED);
    const bad = await get(`${url}/status`, 'bad');
    expect(bad.status).toBe(401);
    expect(bad.json()).toMatchObject({ error: { code: 'PP_ERR_UNAUTHORIZED', field: 'headers.authorization' } });
  });

  it("with 'admin' access, answers 401 without credentials and 403 for a non-admin, with the catalogue's body", async () => {
    const url = await setup({ auth, admin: (w) => w.admin, statusAccess: 'admin', metricsAccess: 'admin' });
    for (const path of ['/status', '/metrics']) {
      const anon = await get(`${url}${path}`);
      expect(anon.status, path).toBe(401);
      expect(anon.json(), path).toMatchObject({ error: { code: 'PP_ERR_UNAUTHORIZED' } });
      const user = await get(`${url}${path}`, 'ann');
      expect(user.status, path).toBe(403);
      expect(user.json(), path).toMatchObject({ error: { code: 'PP_ERR_FORBIDDEN' } });
    }
    expect(shardsOf((await get(`${url}/status`, 'root')).json()).map((s) => s.location)).toEqual([SQLITE, PG]);
    const m = await get(`${url}/metrics`, 'root');
    expect(m.status).toBe(200);
    expect(m.text).toContain('pp_http_requests_total{route="GET /status",status="401"} 1');
    // The routes themselves are not affected.
    expect((await get(`${url}/ping`)).status).toBe(200);
  });

  it("with 'public' access, shows everything to anyone (the old behaviour, for a port no client reaches)", async () => {
    const url = await setup({ statusAccess: 'public' });
    expect(shardsOf((await get(`${url}/status`)).json()).map((s) => s.location)).toEqual([SQLITE, PG]);
  });

  it("refuses 'admin' access without a hook and a predicate, naming the option", async () => {
    const node = createNode({ nodeId: 'gws-cfg', transport: `inproc://gws-cfg-${process.pid}`, logger: false, services: [tgwstatus] });
    expect(() => createGateway(node, { routes: [], statusAccess: 'admin' })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'admin' }));
    expect(() => createGateway<Who>(node, { routes: [], auth, metricsAccess: 'admin' })).toThrow(expect.objectContaining({ field: 'admin' }));
    expect(() => createGateway(node, { routes: [], statusAccess: 'open' as 'public' })).toThrow(expect.objectContaining({ field: 'statusAccess' }));
  });
});

describe('redactLocations', () => {
  it('redacts whole URLs and filesystem paths, keeping the scheme, a query without secrets, the last path segment', () => {
    expect(redactLocation('postgres://postgres@127.0.0.1:5432/test?schema=shop_0')).toBe('postgres://…?schema=shop_0');
    expect(redactLocation('postgres://u:pw@h/db?password=x&token=y&apikey=z&schema=s')).toBe('postgres://…?schema=s');
    expect(redactLocation('redis://:secret@cache.internal:6379/0')).toBe('redis://…');
    expect(redactLocation('nats://10.1.2.3:4222')).toBe('nats://…');
    expect(redactLocation('sqlite:./data/shop/store/s3.db')).toBe('sqlite:…/s3.db');
    expect(redactLocation('file:/var/lib/queue')).toBe('file:…/queue');
    expect(redactLocation('/home/ann/data')).toBe('…/data');
    expect(redactLocation('C:\\data\\s0.db')).toBe('…/s0.db');
    for (const kept of ['s0', 'sqlite', 'catalog.get', 'closed', 'shop-1a2b', 'sqlite::memory:', 'a/b', '']) expect(redactLocation(kept)).toBe(kept);
  });

  it('walks objects and arrays, leaving keys, numbers and booleans alone, and does not change its input', () => {
    const doc = { a: [{ location: '/x/y', n: 1, ok: true, nil: null }], '/keys/stay': 'id', at: new Date(0) };
    expect(redactLocations(doc)).toEqual({ a: [{ location: '…/y', n: 1, ok: true, nil: null }], '/keys/stay': 'id', at: '1970-01-01T00:00:00.000Z' });
    expect(doc.a[0]!.location).toBe('/x/y');
  });
});
