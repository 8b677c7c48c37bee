/**
 * Idempotency keys over HTTP (the `Idempotency-Key` header) and on actions (`idempotentAction`),
 * with the real gateway and a real store on both engines: the first outcome is stored and
 * replayed, another request under the same key is 409 naming it, concurrent duplicates wait for
 * the first, retryable failures are not kept, retention lapses, bad keys are 400 naming the header.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway, type GatewayRoute } from '../../src/gateway/index.js';
import type { ServiceNode } from '../../src/service/index.js';
import type { Store } from '../../src/store/index.js';
import { idempotentAction, openIdempotency, type IdempotencyKeys } from '../../src/tx/index.js';
import { needEngine } from '../helpers/engines.js';
import { waitUntil } from '../helpers/wait.js';
import { postgresCase, sqliteCase, type EngineCase } from '../store/helpers.js';
import { action, createNode, defineService, ppError } from '../service/imports.js';

const runs = new Map<string, number>();
const ran = (what: string): number => {
  const n = (runs.get(what) ?? 0) + 1;
  runs.set(what, n);
  return n;
};
let flakyFailuresLeft = 0;
beforeEach(() => runs.clear());

function services(keys: IdempotencyKeys) {
  return defineService({
    name: 'tidem',
    actions: {
      charge: action({
        params: Type.Object({ user: Type.String(), amount: Type.Integer(), delayMs: Type.Optional(Type.Integer()) }),
        handler: async (_ctx, p) => {
          const n = ran(`charge:${p.user}`);
          if (p.delayMs !== undefined) await new Promise((r) => setTimeout(r, p.delayMs));
          return { user: p.user, amount: p.amount, run: n, at: Date.now() };
        },
      }),
      decline: action({
        params: Type.Object({ user: Type.String() }),
        handler: (_ctx, p) => {
          ran(`decline:${p.user}`);
          throw ppError('PP_ERR_PAYMENT_DECLINED', { message: 'card declined', data: { user: p.user } });
        },
      }),
      flaky: action({
        params: Type.Object({ user: Type.String() }),
        handler: (_ctx, p) => {
          const n = ran(`flaky:${p.user}`);
          if (flakyFailuresLeft-- > 0) throw ppError('PP_ERR_UNAVAILABLE', { message: 'provider down' });
          return { run: n };
        },
      }),
      transfer: idempotentAction(keys, action({
        params: Type.Object({ userId: Type.String(), to: Type.String(), amount: Type.Integer(), idempotencyKey: Type.Optional(Type.String()) }),
        handler: (_ctx, p) => ({ run: ran(`transfer:${p.userId}`), to: p.to, amount: p.amount }),
      }), { keyParam: 'idempotencyKey', scope: (p) => p.userId }),
    },
  });
}

const routes: GatewayRoute<string>[] = [
  { method: 'POST', url: '/charges', action: 'tidem.charge', auth: 'optional', status: 201, params: (req, me) => ({ ...(req.body as object), user: me ?? 'anon' }) },
  { method: 'POST', url: '/strict', action: 'tidem.charge', auth: 'optional', idempotency: 'required', params: (req, me) => ({ ...(req.body as object), user: me ?? 'anon' }) },
  { method: 'POST', url: '/loose', action: 'tidem.charge', idempotency: false, params: (req) => ({ ...(req.body as object), user: 'loose' }) },
  { method: 'GET', url: '/charges/:user', action: 'tidem.charge', params: (req) => ({ user: (req.params as { user: string }).user, amount: 0 }) },
  { method: 'POST', url: '/slow', action: 'tidem.charge', auth: 'optional', timeoutMs: 100, params: (req, me) => ({ ...(req.body as object), user: me ?? 'anon' }) },
  { method: 'POST', url: '/declines', action: 'tidem.decline', auth: 'optional', params: (_req, me) => ({ user: me ?? 'anon' }) },
  { method: 'POST', url: '/flaky', action: 'tidem.flaky', auth: 'optional', params: (_req, me) => ({ user: me ?? 'anon' }) },
];

const engines: EngineCase[] = [sqliteCase()];
if (await needEngine('postgres')) engines.push(postgresCase());
afterAll(async () => {
  for (const e of engines) await e.cleanup();
});

const open: { node: ServiceNode; gw: Gateway }[] = [];
afterEach(async () => {
  for (const { node, gw } of open.splice(0)) {
    await gw.close();
    await node.stop();
  }
});

let seq = 0;
async function setup(engine: EngineCase, options: { ttlMs?: number; waitMs?: number; leaseMs?: number } = {}): Promise<{ url: string; keys: IdempotencyKeys; node: ServiceNode; store: Store }> {
  const store = await engine.open({ shards: 2, sweep: { intervalMs: 0 } });
  const keys = await openIdempotency(store, options);
  const n = seq++;
  const node = createNode({ nodeId: `idem${n}`, transport: `inproc://idem-${process.pid}-${n}`, logger: false, services: [services(keys)] });
  await node.start();
  const gw = createGateway<string>(node, {
    routes,
    // `Bearer <user>` is the principal (a string): keys are scoped per user by default.
    auth: (req) => (typeof req.headers.authorization === 'string' ? req.headers.authorization.slice(7) : undefined),
    idempotency: { keys },
  });
  open.push({ node, gw });
  return { url: await gw.listen(0), keys, node, store };
}

interface Res { status: number; replayed: boolean; body: Record<string, unknown> & { error?: { code: string; field?: string; message: string; retryAfterMs?: number } } }
async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, replayed: res.headers.get('idempotent-replayed') === 'true', body: (await res.json()) as Res['body'] };
}

describe.each(engines.map((e) => [e.name, e] as const))('idempotency keys on %s', (_name, engine) => {
  it('the first answer is stored and replayed for the same key: the action runs once', async () => {
    const { url } = await setup(engine);
    const h = { 'idempotency-key': `k-${seq}-a`, authorization: 'Bearer ann' };
    const before = runs.get('charge:ann') ?? 0;
    const first = await post(`${url}/charges`, { amount: 5 }, h);
    expect(first).toMatchObject({ status: 201, replayed: false, body: { user: 'ann', amount: 5 } });
    const again = await post(`${url}/charges`, { amount: 5 }, h);
    expect(again).toMatchObject({ status: 201, replayed: true });
    expect(again.body).toEqual(first.body);
    expect(runs.get('charge:ann')).toBe(before + 1);
    // Without a key every request runs.
    await post(`${url}/charges`, { amount: 5 }, { authorization: 'Bearer ann' });
    expect(runs.get('charge:ann')).toBe(before + 2);
    // Another caller with the same key is another key (scoped by the principal), not a replay.
    const bob = await post(`${url}/charges`, { amount: 5 }, { ...h, authorization: 'Bearer bob' });
    expect(bob).toMatchObject({ status: 201, replayed: false, body: { user: 'bob' } });
  });

  it('the same key with another request is 409 PP_ERR_CONFLICT naming the key; nothing runs', async () => {
    const { url } = await setup(engine);
    const key = `k-${seq}-conflict`;
    const h = { 'idempotency-key': key, authorization: 'Bearer cat' };
    await post(`${url}/charges`, { amount: 1 }, h);
    const before = runs.get('charge:cat');
    const other = await post(`${url}/charges`, { amount: 2 }, h);
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'PP_ERR_CONFLICT', field: 'headers.idempotency-key' });
    expect(other.body.error!.message).toContain(key);
    const otherRoute = await post(`${url}/declines`, { amount: 1 }, h);
    expect(otherRoute.body.error).toMatchObject({ code: 'PP_ERR_CONFLICT' });
    expect(runs.get('charge:cat')).toBe(before);
  });

  it('concurrent duplicates wait for the first and get its answer; past waitMs they get 409 PP_ERR_IN_PROGRESS', async () => {
    const { url } = await setup(engine);
    const h = { 'idempotency-key': `k-${seq}-race`, authorization: 'Bearer dan' };
    const before = runs.get('charge:dan') ?? 0;
    const all = await Promise.all(Array.from({ length: 6 }, () => post(`${url}/charges`, { amount: 9, delayMs: 300 }, h)));
    expect(all.map((r) => r.status)).toEqual(Array(6).fill(201));
    expect(new Set(all.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(all.filter((r) => !r.replayed)).toHaveLength(1);
    expect(runs.get('charge:dan')).toBe(before + 1);

    const quick = await setup(engine, { waitMs: 20 });
    const h2 = { 'idempotency-key': `k-${seq}-slow`, authorization: 'Bearer dan' };
    const slow = post(`${quick.url}/charges`, { amount: 1, delayMs: 600 }, h2);
    await waitUntil(() => (runs.get('charge:dan') ?? 0) === before + 2, 10_000, 'the first request to start');
    const dup = await post(`${quick.url}/charges`, { amount: 1, delayMs: 600 }, h2);
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ code: 'PP_ERR_IN_PROGRESS', field: 'headers.idempotency-key' });
    expect(dup.body.error!.retryAfterMs).toBeGreaterThan(0);
    expect((await slow).status).toBe(201);
    expect((await post(`${quick.url}/charges`, { amount: 1, delayMs: 600 }, h2)).replayed).toBe(true);
    expect(runs.get('charge:dan')).toBe(before + 2);
  });

  it('a non-retryable error is stored and replayed; a retryable one is not kept (the retry runs)', async () => {
    const { url } = await setup(engine);
    const h = { 'idempotency-key': `k-${seq}-err`, authorization: 'Bearer eve' };
    const first = await post(`${url}/declines`, {}, h);
    expect(first.status).toBe(402);
    expect(first.body.error).toMatchObject({ code: 'PP_ERR_PAYMENT_DECLINED', message: 'card declined' });
    const again = await post(`${url}/declines`, {}, h);
    expect(again).toMatchObject({ status: 402, replayed: true });
    expect(again.body.error).toMatchObject({ code: 'PP_ERR_PAYMENT_DECLINED', message: 'card declined' });
    expect(runs.get('decline:eve')).toBe(1);

    flakyFailuresLeft = 1;
    const before = runs.get('flaky:eve') ?? 0;
    const hf = { ...h, 'idempotency-key': `k-${seq}-flaky` };
    const down = await post(`${url}/flaky`, {}, hf);
    expect(down.status).toBe(503);
    const up = await post(`${url}/flaky`, {}, hf);
    expect(up).toMatchObject({ status: 200, replayed: false });
    expect((await post(`${url}/flaky`, {}, hf)).replayed).toBe(true);
    expect(runs.get('flaky:eve')).toBe(before + 2);
  });

  it('a gateway timeout (504) keeps the key pending: a retry meanwhile is IN_PROGRESS, after the lease it runs again', async () => {
    const { url, store } = await setup(engine, { waitMs: 20, leaseMs: 1_500 });
    const h = { 'idempotency-key': `k-${seq}-timeout`, authorization: 'Bearer gil' };
    const first = await post(`${url}/slow`, { amount: 1, delayMs: 300 }, h);
    expect(first.status).toBe(504);
    const retry = await post(`${url}/slow`, { amount: 1, delayMs: 300 }, h);
    expect(retry.body.error).toMatchObject({ code: 'PP_ERR_IN_PROGRESS' });
    expect(runs.get('charge:gil')).toBe(1);
    const kv = await store.kv('pptx_idem');
    const lapse = Math.max(...(await kv.scan({ limit: 10 })).items.map((r) => r.expiresAtMs!));
    await waitUntil(() => Date.now() > lapse, 10_000, 'the pending key to lapse');
    expect((await post(`${url}/slow`, { amount: 1 }, h)).status).toBe(200);
    expect(runs.get('charge:gil')).toBe(2); // at least once across an unknown outcome, after the lease
  });

  it('retention: after ttlMs the record lapses and the key runs again', async () => {
    const { url, store } = await setup(engine, { ttlMs: 300 });
    const h = { 'idempotency-key': `k-${seq}-ttl`, authorization: 'Bearer fay' };
    const first = await post(`${url}/charges`, { amount: 3 }, h);
    expect((await post(`${url}/charges`, { amount: 3 }, h)).replayed).toBe(true);
    // The stored record says when it lapses; wait for that, not for a guess.
    const kv = await store.kv('pptx_idem');
    const rec = (await kv.scan({ limit: 100 })).items;
    expect(rec.length).toBeGreaterThan(0);
    const lapse = Math.max(...rec.map((r) => r.expiresAtMs!));
    await waitUntil(() => Date.now() > lapse, 10_000, 'the record to lapse');
    const later = await post(`${url}/charges`, { amount: 3 }, h);
    expect(later).toMatchObject({ status: 201, replayed: false });
    expect(later.body.run).toBe((first.body.run as number) + 1);
  });

  it('bad keys are 400 naming the header; a required route without one is 400; GET and opted-out routes ignore it', async () => {
    const { url } = await setup(engine);
    for (const bad of ['has space', 'x'.repeat(256), 'é']) {
      const r = await post(`${url}/charges`, { amount: 1 }, { 'idempotency-key': bad });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'headers.idempotency-key' });
    }
    const missing = await post(`${url}/strict`, { amount: 1 });
    expect(missing.body.error).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'headers.idempotency-key' });
    expect((await post(`${url}/strict`, { amount: 1 }, { 'idempotency-key': `k-${seq}-s` })).status).toBe(200);
    const h = { 'idempotency-key': `k-${seq}-loose` };
    await post(`${url}/loose`, { amount: 1 }, h);
    expect((await post(`${url}/loose`, { amount: 1 }, h)).replayed).toBe(false);
    const get = async (): Promise<boolean> => (await fetch(`${url}/charges/gus`, { headers: h })).headers.get('idempotent-replayed') === 'true';
    expect(await get()).toBe(false);
    expect(await get()).toBe(false);
  });

  it('actions: idempotentAction keys calls by a param, scoped, with the same semantics', async () => {
    const { node } = await setup(engine);
    const call = (p: object): Promise<unknown> => node.callDynamic('tidem.transfer', p);
    const before = runs.get('transfer:u1') ?? 0;
    const a = await call({ userId: 'u1', to: 'u2', amount: 7, idempotencyKey: 'tx-1' });
    expect(await call({ userId: 'u1', to: 'u2', amount: 7, idempotencyKey: 'tx-1' })).toEqual(a);
    expect(runs.get('transfer:u1')).toBe(before + 1);
    await expect(call({ userId: 'u1', to: 'u3', amount: 7, idempotencyKey: 'tx-1' })).rejects.toMatchObject({ code: 'PP_ERR_CONFLICT', field: 'params.idempotencyKey' });
    // Another user's "tx-1" is theirs (scope: userId); a call without a key always runs.
    await call({ userId: 'u9', to: 'u2', amount: 7, idempotencyKey: 'tx-1' });
    await call({ userId: 'u1', to: 'u2', amount: 7 });
    expect(runs.get('transfer:u1')).toBe(before + 2);
    await expect(call({ userId: 'u1', to: 'u2', amount: 7, idempotencyKey: 'bad key' })).rejects.toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'params.idempotencyKey' });
  });
});

describe('idempotency options', () => {
  it('bad options are typed errors naming the option', async () => {
    const store = await engines[0]!.open({ shards: 1 });
    await expect(openIdempotency(store, { ttlMs: 0 })).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'ttlMs' });
    await expect(openIdempotency(store, { waitMs: -1 })).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'waitMs' });
    await expect(openIdempotency(store, { keyCharsMax: 0 })).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'keyCharsMax' });
    const node = createNode({ nodeId: `idemx${seq++}`, transport: `inproc://idemx-${process.pid}`, logger: false });
    expect(() => createGateway(node, { routes: [], idempotency: { keys: {} as never } })).toThrow(/idempotency.keys/);
    expect(() => createGateway(node, { routes: [{ method: 'POST', url: '/x', action: 'a.b', idempotency: 'required' }] })).toThrow(/idempotency/);
  });
});
