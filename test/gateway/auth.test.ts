/**
 * Authentication at the edge (GatewayOptions.auth, a route's `auth` / `authorize`), over HTTP: the
 * hook runs only for routes that declare auth, a missing principal is 401 and a refused one 403
 * before any service is called, and the params mapper receives the principal.
 */
import { Type } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, routeFor, type Gateway } from '../../src/gateway/index.js';
import type { ServiceNode } from '../../src/service/index.js';
import { action, createNode, defineService, ppError } from '../service/imports.js';

let calls = 0;
const tgwauth = defineService({
  name: 'tgwauth',
  actions: {
    whoami: action({
      params: Type.Object({ user: Type.String(), note: Type.Optional(Type.String()) }),
      result: Type.Object({ user: Type.String(), note: Type.Optional(Type.String()) }),
      handler: (_ctx, p) => {
        calls++;
        return p;
      },
    }),
  },
});

declare module '../../src/service/index.js' {
  interface ServiceRegistry {
    tgwauth: typeof tgwauth;
  }
}

interface Caller {
  name: string;
  admin: boolean;
}

const route = routeFor<Caller>();
const open: { node: ServiceNode; gw: Gateway }[] = [];
let n = 0;

/** Tokens: `Bearer <name>` (admin when the name starts with 'root'); `Bearer bad` is forged. */
function hookOf(counter: { calls: number }, async: boolean): (req: { headers: Record<string, unknown> }) => Caller | undefined | Promise<Caller | undefined> {
  return (req) => {
    counter.calls++;
    const h = req.headers.authorization;
    const resolve = (): Caller | undefined => {
      if (typeof h !== 'string') return undefined;
      const name = h.replace(/^Bearer /, '');
      if (name === 'bad') throw ppError('PP_ERR_UNAUTHORIZED', { field: 'headers.authorization', message: 'token forged' });
      return { name, admin: name.startsWith('root') };
    };
    return async ? Promise.resolve().then(resolve) : resolve();
  };
}

async function setup(async = false): Promise<{ url: string; hook: { calls: number } }> {
  n++;
  const node = createNode({ nodeId: `gwa${n}`, transport: `inproc://gwa-${process.pid}-${n}`, logger: false, services: [tgwauth] });
  await node.start();
  const hook = { calls: 0 };
  const gw = createGateway(node, {
    auth: hookOf(hook, async),
    routes: [
      route({ method: 'GET', url: '/open/:user', action: 'tgwauth.whoami', params: (req) => ({ user: (req.params as { user: string }).user }) }),
      route({ method: 'GET', url: '/me', action: 'tgwauth.whoami', auth: 'required', params: (_req, c) => ({ user: c.name }) }),
      route({ method: 'GET', url: '/maybe', action: 'tgwauth.whoami', auth: 'optional', params: (_req, c) => ({ user: c?.name ?? 'anonymous' }) }),
      route({
        method: 'POST', url: '/admin', action: 'tgwauth.whoami', auth: 'required', authorize: (c) => c.admin,
        // The body cannot act for someone else: the principal's name goes in last.
        params: (req, c) => ({ ...(req.body as { note?: string }), user: c.name }),
      }),
    ],
  });
  open.push({ node, gw });
  return { url: await gw.listen(0), hook };
}

afterEach(async () => {
  for (const { node, gw } of open.splice(0)) {
    await gw.close();
    await node.stop();
  }
});

async function get(url: string, authorization?: string, init: RequestInit = {}): Promise<{ status: number; body: { error?: { code: string; field?: string; requestId?: string } } & Record<string, unknown> }> {
  const res = await fetch(url, { ...init, headers: { ...(authorization === undefined ? {} : { authorization }), ...(init.headers as Record<string, string> | undefined) } });
  return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
}

describe.each([['a synchronous', false], ['an asynchronous', true]] as const)('gateway auth with %s hook', (_name, async) => {
  it('answers a required route without credentials with 401 before any service is called', async () => {
    const { url } = await setup(async);
    const before = calls;
    const r = await get(`${url}/me`);
    expect(r.status).toBe(401);
    expect(r.body.error).toMatchObject({ code: 'PP_ERR_UNAUTHORIZED' });
    expect(r.body.error?.requestId).toBeDefined();
    expect(calls).toBe(before);
  });

  it('answers bad credentials with the hook\'s own error (401 naming the header), never calling the service', async () => {
    const { url } = await setup(async);
    const before = calls;
    for (const path of ['/me', '/maybe', '/admin']) {
      const r = await get(`${url}${path}`, 'Bearer bad', path === '/admin' ? { method: 'POST' } : {});
      expect(r.status, path).toBe(401);
      expect(r.body.error, path).toMatchObject({ code: 'PP_ERR_UNAUTHORIZED', field: 'headers.authorization' });
    }
    expect(calls).toBe(before);
  });

  it('gives the params mapper the principal', async () => {
    const { url } = await setup(async);
    expect(await get(`${url}/me`, 'Bearer ann')).toEqual({ status: 200, body: { user: 'ann' } });
    expect(await get(`${url}/maybe`, 'Bearer bob')).toEqual({ status: 200, body: { user: 'bob' } });
    expect(await get(`${url}/maybe`)).toEqual({ status: 200, body: { user: 'anonymous' } });
  });

  it('answers 403 when authorize refuses the principal, and lets an admin through (the body cannot override the caller)', async () => {
    const { url } = await setup(async);
    const before = calls;
    const post = (who: string): Promise<{ status: number; body: Record<string, unknown> }> =>
      get(`${url}/admin`, `Bearer ${who}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'root-by-body', note: 'hi' }) });
    const refused = await post('eve');
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'PP_ERR_FORBIDDEN' });
    expect(calls).toBe(before);
    expect(await post('root1')).toEqual({ status: 200, body: { user: 'root1', note: 'hi' } });
  });

  it('never runs the hook for a route without auth', async () => {
    const { url, hook } = await setup(async);
    expect(await get(`${url}/open/zed`, 'Bearer bad')).toEqual({ status: 200, body: { user: 'zed' } });
    expect(hook.calls).toBe(0);
    await get(`${url}/me`, 'Bearer ann');
    expect(hook.calls).toBe(1);
  });
});

describe('gateway auth configuration', () => {
  it('refuses a route that needs a principal when the gateway has no hook, naming the route', async () => {
    const node = createNode({ nodeId: 'gwa-cfg', transport: `inproc://gwa-cfg-${process.pid}`, logger: false, services: [tgwauth] });
    const make = (): unknown => createGateway(node, { routes: [{ method: 'GET', url: '/', action: 'tgwauth.whoami' }, { method: 'GET', url: '/me', action: 'tgwauth.whoami', auth: 'required' }] });
    expect(make).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'routes[1].auth' }));
    expect(() => createGateway(node, { auth: () => undefined, routes: [{ method: 'GET', url: '/', action: 'tgwauth.whoami', authorize: () => true }] }))
      .toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'routes[0].authorize' }));
  });

  it('answers a hook that throws a non-catalogue error as a 500 (a bug), not as anonymous', async () => {
    const node = createNode({ nodeId: 'gwa-bug', transport: `inproc://gwa-bug-${process.pid}`, logger: false, services: [tgwauth] });
    await node.start();
    const gw = createGateway(node, {
      auth: () => {
        throw new Error('session store exploded');
      },
      routes: [route({ method: 'GET', url: '/maybe', action: 'tgwauth.whoami', auth: 'optional', params: () => ({ user: 'x' }) })],
    });
    open.push({ node, gw });
    const r = await get(`${await gw.listen(0)}/maybe`);
    expect(r.status).toBe(500);
    expect(r.body.error).toMatchObject({ code: 'PP_ERR_INTERNAL' });
  });
});
