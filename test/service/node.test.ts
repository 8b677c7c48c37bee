import { Type } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { isPowerplantError, type PowerplantError } from '../../src/errors/index.js';
import { action, createNode, defineService, event, ppError } from './imports.js';
import type { ServiceNode, NodeConfig } from '../../src/service/index.js';
import { tcatalog, torders } from './fixtures.js';
import { eventually } from '../transport/conformance.js';
import { watchConviction } from './conviction.js';

let busCounter = 0;
const nodes: ServiceNode[] = [];

function cluster(): (config: NodeConfig) => ServiceNode {
  busCounter++;
  const bus = `svc-${process.pid}-${busCounter}`;
  return (config) => {
    // Fast heartbeats, but a detector that tolerates the event-loop stalls of a loaded machine
    // (all these nodes share one loop); the dead-node test sets its own tight bound.
    const node = createNode({
      transport: `inproc://${bus}`, logger: false, heartbeatIntervalMs: 50, checkIntervalMs: 10,
      detector: { deadAfterMs: 3_000, stdDevMsMin: 500 }, ...config,
    });
    nodes.push(node);
    return node;
  };
}

async function failure(p: Promise<unknown>): Promise<PowerplantError> {
  try {
    await p;
  } catch (err) {
    if (isPowerplantError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

describe('service node', () => {
  it('serves a local call with validated params and the inferred result', async () => {
    const node = cluster()({ nodeId: 'solo', services: [tcatalog] });
    await node.start();
    const p = await node.call('tcatalog.get', { id: 'p1' });
    expect(p).toEqual({ id: 'p1', name: 'Lamp', priceCents: 1999 });
    expect(node.health()).toMatchObject({ live: true, ready: true, state: 'running' });
  });

  it('rejects invalid params with PP_ERR_VALIDATION naming the field, before the handler runs', async () => {
    const node = cluster()({ nodeId: 'v', services: [tcatalog, torders] });
    await node.start();
    const e1 = await failure(node.callDynamic('tcatalog.get', { id: 7 }));
    expect(e1).toMatchObject({ code: 'PP_ERR_VALIDATION', field: 'params.id', retryable: false, status: 400 });
    const e2 = await failure(node.callDynamic('torders.quote', { productId: 'p1', qty: 0 }));
    expect(e2.field).toBe('params.qty');
    const e3 = await failure(node.callDynamic('tcatalog.get', {}));
    expect(e3.field).toBe('params.id');
  });

  it('calls across nodes: discovery, nested calls, remote errors keep their code', async () => {
    const make = cluster();
    const a = make({ nodeId: 'a', services: [torders] });
    const b = make({ nodeId: 'b', services: [tcatalog] });
    await Promise.all([a.start(), b.start()]);
    await a.waitFor(['tcatalog.get']);
    const q = await a.call('torders.quote', { productId: 'p2', qty: 2 });
    expect(q.totalCents).toBe(49800);
    const missing = await failure(a.call('tcatalog.get', { id: 'nope' }));
    expect(missing).toMatchObject({ code: 'PP_ERR_NOT_FOUND', field: 'params.id' });
    expect(b.metrics.render()).toMatch(/pp_served_total\{action="tcatalog.get",outcome="ok"\} 1/);
  });

  it('propagates the remaining deadline into nested calls', async () => {
    const make = cluster();
    let innerRemaining = Infinity;
    const inner = defineService({
      name: 'tinner',
      actions: { peek: action({ params: Type.Object({}), handler: (ctx) => { innerRemaining = ctx.deadline.remainingMs(); return null; } }) },
    });
    const outer = defineService({
      name: 'touter',
      actions: { run: action({ params: Type.Object({}), handler: (ctx) => ctx.callDynamic('tinner.peek', {}, { timeoutMs: 60_000 }) }) },
    });
    const a = make({ nodeId: 'a', services: [outer] });
    const b = make({ nodeId: 'b', services: [inner] });
    await Promise.all([a.start(), b.start()]);
    await a.waitFor(['tinner.peek']);
    await a.callDynamic('touter.run', {}, { timeoutMs: 800 });
    // The nested call asked for 60 s, but the parent had < 800 ms left: it got what was left.
    expect(innerRemaining).toBeLessThanOrEqual(800);
    expect(innerRemaining).toBeGreaterThan(0);
  });

  it('times out a slow action with PP_ERR_TIMEOUT (504)', async () => {
    const slow = defineService({
      name: 'tslow',
      actions: { wait: action({ params: Type.Object({}), handler: () => new Promise((r) => setTimeout(() => r('late'), 300)) }) },
    });
    const node = cluster()({ nodeId: 's', services: [slow], call: { attemptsMax: 1 } });
    await node.start();
    const err = await failure(node.callDynamic('tslow.wait', {}, { timeoutMs: 30 }));
    expect(err).toMatchObject({ code: 'PP_ERR_TIMEOUT', status: 504 });
  });

  it('retries a retryable failure on ANOTHER instance', async () => {
    const make = cluster();
    const servedBy: string[] = [];
    const flaky = (id: string): ReturnType<typeof defineService> => defineService({
      name: 'tflaky',
      actions: {
        op: action({
          params: Type.Object({}),
          handler: (ctx) => {
            servedBy.push(ctx.nodeId);
            if (id === 'bad') throw ppError('PP_ERR_UNAVAILABLE', { message: 'overloaded' });
            return ctx.nodeId;
          },
          idempotent: true,
        }),
      },
    });
    const caller = make({ nodeId: 'caller', call: { retryBaseDelayMs: 1, retryDelayMsMax: 2 } });
    const good = make({ nodeId: 'good', services: [flaky('good')] });
    const bad = make({ nodeId: 'bad', services: [flaky('bad')] });
    await Promise.all([caller.start(), good.start(), bad.start()]);
    await eventually(() => (caller.registry.routes.get('tflaky.op')?.set.size ?? 0) === 2, 'both instances known');
    for (let i = 0; i < 20; i++) expect(await caller.callDynamic('tflaky.op', {})).toBe('good');
    // Every call that hit 'bad' was retried, and never on 'bad' again within the same call.
    const retried = servedBy.filter((n) => n === 'bad').length;
    expect(servedBy.filter((n) => n === 'good')).toHaveLength(20);
    expect(servedBy.length).toBe(20 + retried);
  });

  it('does not retry a non-idempotent call after an ambiguous failure', async () => {
    const make = cluster();
    let calls = 0;
    const once = defineService({
      name: 'tonce',
      actions: { op: action({ params: Type.Object({}), handler: () => { calls++; throw ppError('PP_ERR_UNAVAILABLE'); } }) },
    });
    const caller = make({ nodeId: 'caller' });
    const x = make({ nodeId: 'x', services: [once] });
    const y = make({ nodeId: 'y', services: [once] });
    await Promise.all([caller.start(), x.start(), y.start()]);
    await eventually(() => (caller.registry.routes.get('tonce.op')?.set.size ?? 0) === 2, 'both instances known');
    expect((await failure(caller.callDynamic('tonce.op', {}))).code).toBe('PP_ERR_UNAVAILABLE');
    expect(calls).toBe(1);
  });

  it('opens the circuit breaker of a failing endpoint and answers 503 with Retry-After data', async () => {
    const make = cluster();
    const broken = defineService({
      name: 'tbroken',
      actions: { op: action({ params: Type.Object({}), handler: () => { throw new Error('bug'); } }) },
    });
    const caller = make({ nodeId: 'caller', call: { attemptsMax: 1, breaker: { throughputMin: 5, openMs: 60_000 } } });
    const srv = make({ nodeId: 'srv', services: [broken] });
    await Promise.all([caller.start(), srv.start()]);
    await caller.waitFor(['tbroken.op']);
    for (let i = 0; i < 5; i++) expect((await failure(caller.callDynamic('tbroken.op', {}))).code).toBe('PP_ERR_INTERNAL');
    const open = await failure(caller.callDynamic('tbroken.op', {}));
    expect(open).toMatchObject({ code: 'PP_ERR_CIRCUIT_OPEN', status: 503, retryable: true });
    expect(open.retryAfterMs).toBeGreaterThan(0);
    expect(caller.metrics.render()).toMatch(/pp_breaker_state\{action="tbroken.op",node="srv"\} 2/);
  });

  it('routes by key to the same instance (consistent hash)', async () => {
    const make = cluster();
    const sticky = defineService({
      name: 'tsticky',
      actions: { where: action({ params: Type.Object({ userId: Type.String() }), keyParam: 'userId', handler: (ctx) => ctx.nodeId }) },
    });
    const caller = make({ nodeId: 'caller' });
    const servers = ['s1', 's2', 's3'].map((id) => make({ nodeId: id, services: [sticky] }));
    await Promise.all([caller, ...servers].map((n) => n.start()));
    await eventually(() => (caller.registry.routes.get('tsticky.where')?.set.size ?? 0) === 3, 'all instances known');
    const owners = new Set<unknown>();
    for (let u = 0; u < 30; u++) {
      const first = await caller.callDynamic('tsticky.where', { userId: `u${u}` });
      for (let i = 0; i < 3; i++) expect(await caller.callDynamic('tsticky.where', { userId: `u${u}` })).toBe(first);
      owners.add(first);
    }
    expect(owners.size).toBeGreaterThan(1); // keys spread over instances
  });

  it('delivers emitted events to one instance per service and broadcasts to all; drops invalid payloads', async () => {
    const make = cluster();
    const got: string[] = [];
    const listener = (group?: string): ReturnType<typeof defineService> => defineService({
      name: group ?? 'tlisten',
      events: {
        'tthing.happened': event({ params: Type.Object({ n: Type.Integer() }), handler: (ctx, p) => { got.push(`${ctx.nodeId}:${group ?? 'tlisten'}:${p.n}`); } }),
      },
    });
    const a = make({ nodeId: 'a', services: [listener(), listener('tother')] });
    const b = make({ nodeId: 'b', services: [listener()] });
    await Promise.all([a.start(), b.start()]);
    a.emitDynamic('tthing.happened', { n: 1 });
    await eventually(() => got.length === 2, 'one per service group');
    expect(got.filter((g) => g.includes(':tlisten:')).length).toBe(1);
    a.broadcastDynamic('tthing.happened', { n: 2 });
    await eventually(() => got.length === 5, 'every instance');
    a.broadcastDynamic('tthing.happened', { n: 'not a number' });
    await eventually(() => /pp_events_dropped_total\{topic="tthing.happened",reason="invalid"\}/.test(a.metrics.render() + b.metrics.render()), 'drop counted');
    expect(got.length).toBe(5);
  });

  it('drains on stop: in-flight calls finish, new ones are refused retryably and go elsewhere', async () => {
    const make = cluster();
    let release: (() => void) | undefined;
    const started: string[] = [];
    const work = defineService({
      name: 'twork',
      actions: {
        op: action({
          params: Type.Object({ hold: Type.Boolean() }),
          idempotent: true,
          handler: async (ctx, p) => {
            started.push(ctx.nodeId);
            if (p.hold) await new Promise<void>((r) => { release = r; });
            return ctx.nodeId;
          },
        }),
      },
    });
    const caller = make({ nodeId: 'caller', call: { balancer: 'round-robin' } });
    const d = make({ nodeId: 'd', services: [work], drainTimeoutMs: 10_000 });
    const e = make({ nodeId: 'e', services: [work] });
    await Promise.all([caller.start(), d.start()]);
    await caller.waitFor(['twork.op']);
    // The held call goes to d: it is the only instance yet.
    const held = caller.callDynamic('twork.op', { hold: true });
    await eventually(() => release !== undefined, 'held call started');
    await e.start();
    await eventually(() => (caller.registry.routes.get('twork.op')?.set.size ?? 0) === 2, 'both known');
    const stopping = d.stop();
    expect(d.health()).toMatchObject({ live: true, ready: false, state: 'draining' });
    // While d drains, calls from the caller still succeed (refused by d, retried on e, or routed to e).
    for (let i = 0; i < 6; i++) expect(await caller.callDynamic('twork.op', { hold: false })).toBe('e');
    release?.();
    expect(await held).toBe('d');
    await stopping;
    expect(d.state).toBe('stopped');
  });

  it('declares a silent node dead within deadAfterMs + checkIntervalMs and drops it from the registry', async () => {
    const make = cluster();
    const a = make({ nodeId: 'a', detector: { deadAfterMs: 300 }, call: { discoveryWaitMs: 0 } });
    const b = make({ nodeId: 'b', services: [tcatalog] });
    await Promise.all([a.start(), b.start()]);
    await a.waitFor(['tcatalog.get']);
    const conviction = watchConviction(a, 'b');
    // Simulate a crash: the transport goes away without a 'leave'.
    await b.transport.close();
    await eventually(() => !a.registry.nodes.has('b'), 'b dropped');
    // Dropped by the detector at the first evaluation after deadAfterMs of silence, at the latest.
    const c = conviction.result();
    expect(c).toBeDefined();
    expect(c!.silentMs - c!.sincePreviousCheckMs).toBeLessThan(300);
    expect(a.registry.routes.has('tcatalog.get')).toBe(false);
    expect(a.metrics.render()).toMatch(/pp_registry_nodes_left_total\{reason="dead"\} 1/);
    expect((await failure(a.callDynamic('tcatalog.get', { id: 'p1' }))).code).toBe('PP_ERR_NO_ENDPOINT');
  });

  it('drains within drainTimeoutMs: a request that never finishes does not hold stop() up', async () => {
    const make = cluster();
    let entered = false;
    const stuck = defineService({
      name: 'tstuck',
      actions: { op: action({ params: Type.Object({}), handler: () => { entered = true; return new Promise<never>(() => {}); } }) },
    });
    const node = make({ nodeId: 'st', services: [stuck], drainTimeoutMs: 100 });
    await node.start();
    const call = node.callDynamic('tstuck.op', {}, { timeoutMs: 60_000 });
    await eventually(() => entered, 'request in flight');
    expect(node.health().inFlight).toBe(1);
    // Without the bound this would wait for the handler forever (and the test time out).
    await node.stop();
    expect(node.state).toBe('stopped');
    expect((await failure(call)).code).toBe('PP_ERR_SHUTTING_DOWN');
  });

  it('waits for discovery when no instance is known yet: a call made before the server announces succeeds', async () => {
    const make = cluster();
    const a = make({ nodeId: 'a' });
    await a.start();
    // No node offers tcatalog.get yet: the call waits (up to discoveryWaitMs) instead of failing.
    const pending = a.call('tcatalog.get', { id: 'p1' });
    const b = make({ nodeId: 'b', services: [tcatalog] });
    await b.start();
    expect(await pending).toMatchObject({ id: 'p1' });
  });

  it('bounds the wait for discovery by the call deadline and by discoveryWaitMs, and releases waiters on stop', async () => {
    const make = cluster();
    const a = make({ nodeId: 'a', call: { discoveryWaitMs: 60_000 } });
    await a.start();
    // The deadline (50 ms) ends the wait long before discoveryWaitMs (60 s) would.
    const t0 = performance.now();
    expect((await failure(a.callDynamic('tghost.get', {}, { timeoutMs: 50 }))).code).toBe('PP_ERR_NO_ENDPOINT');
    expect(performance.now() - t0).toBeLessThan(30_000); // a hang guard, not a timing assertion
    const b = make({ nodeId: 'b', call: { discoveryWaitMs: 20 } });
    await b.start();
    expect((await failure(b.callDynamic('tghost.get', {}))).code).toBe('PP_ERR_NO_ENDPOINT');
    // Stopping wakes a waiting call at once (else this test would hit its timeout).
    const waiting = failure(a.callDynamic('tghost.get', {}));
    await a.stop();
    expect((await waiting).code).toBe('PP_ERR_NO_ENDPOINT');
    const off = make({ nodeId: 'off', call: { discoveryWaitMs: 0 } });
    await off.start();
    expect((await failure(off.callDynamic('tghost.get', {}, { timeoutMs: 60_000 }))).code).toBe('PP_ERR_NO_ENDPOINT');
  });

  it('removes a node that leaves gracefully at once', async () => {
    const make = cluster();
    const a = make({ nodeId: 'a' });
    const b = make({ nodeId: 'b', services: [tcatalog] });
    await Promise.all([a.start(), b.start()]);
    await a.waitFor(['tcatalog.get']);
    await b.stop();
    await eventually(() => !a.registry.nodes.has('b'), 'b left');
    expect(a.metrics.render()).toMatch(/pp_registry_nodes_left_total\{reason="left"\} 1/);
  });

  it('drops malformed discovery messages without disturbing the registry', async () => {
    const make = cluster();
    const a = make({ nodeId: 'a' });
    const b = make({ nodeId: 'b', services: [tcatalog] });
    await Promise.all([a.start(), b.start()]);
    await a.waitFor(['tcatalog.get']);
    for (const junk of [null, 42, 'x', { nodeId: 'evil' }, { nodeId: 'evil', instanceId: 'i', services: [{ name: 'x', actions: 'no' }] }]) {
      b.transport.publish('$sys.announce', junk);
      b.transport.publish('$sys.heartbeat', junk);
      b.transport.publish('$sys.leave', junk);
    }
    await b.transport.flush();
    expect(await a.call('tcatalog.get', { id: 'p1' })).toMatchObject({ id: 'p1' });
    expect([...a.registry.nodes.keys()].sort()).toEqual(['a', 'b']);
  });

  it('refuses a bad definition at define time with the field named', () => {
    expect(() => defineService({ name: 'bad.name' })).toThrow(/name/);
    expect(() => defineService({ name: 'ok', events: { '$sys.x': event({ handler: () => {} }) } })).toThrow(/events/);
  });
});
