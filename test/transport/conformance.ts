/**
 * The transport conformance suite: every transport runs exactly these tests (see
 * inproc.test.ts and nats.test.ts). A factory builds transports on a fresh namespace per test so
 * parallel files and tests never see each other's traffic.
 */
import { describe, expect, it, afterEach } from 'vitest';
import { isPowerplantError, isRetryable, ppError, type PowerplantError } from '../../src/errors/index.js';
import type { Transport } from '../../src/transport/index.js';
import { waitUntil } from '../helpers/wait.js';

export type TransportFactory = (nodeId: string, namespace: string, opts?: { pendingCallsMax?: number }) => Transport;

let nsCounter = 0;
function freshNamespace(): string {
  nsCounter++;
  return `t${process.pid}-${Date.now().toString(36)}-${nsCounter}`;
}

/** Waits (bounded) until `cond` holds; the bound is a hang guard, not a timing assertion. */
export function eventually(cond: () => boolean, what: string, boundMs = 10_000): Promise<void> {
  return waitUntil(cond, boundMs, what);
}

async function rejection(p: Promise<unknown>): Promise<PowerplantError> {
  try {
    await p;
  } catch (err) {
    if (isPowerplantError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

export function transportConformance(name: string, factory: TransportFactory): void {
  describe(`transport conformance: ${name}`, () => {
    const open: Transport[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
    });

    async function cluster(n: number, opts?: { pendingCallsMax?: number }): Promise<Transport[]> {
      const ns = freshNamespace();
      const ts = Array.from({ length: n }, (_, i) => factory(`node${i}`, ns, opts));
      open.push(...ts);
      await Promise.all(ts.map((t) => t.connect()));
      return ts;
    }

    it('carries a request to the addressed node and its result back, values intact', async () => {
      const [a, b] = await cluster(2);
      b!.serve(async (action, params) => ({ action, params, from: b!.nodeId }));
      const params = { id: 'p-1', n: 42, f: 1.5, nested: { list: [1, 'two', null, true] }, bytes: new Uint8Array([1, 2, 3]) };
      const result = (await a!.request('node1', 'catalog.get', params, 5_000)) as { action: string; params: typeof params; from: string };
      expect(result.action).toBe('catalog.get');
      expect(result.from).toBe('node1');
      expect(result.params.nested).toEqual(params.nested);
      expect(Array.from(result.params.bytes)).toEqual([1, 2, 3]);
      expect(result.params.f).toBe(1.5);
    });

    it('passes the request meta and a remaining deadline no larger than the caller sent', async () => {
      const [a, b] = await cluster(2);
      let seen: { timeoutMs: number; requestId: string | undefined } | undefined;
      b!.serve(async (_action, _params, timeoutMs, meta) => {
        seen = { timeoutMs, requestId: meta?.requestId };
        return null;
      });
      await a!.request('node1', 'x.y', null, 1_234, { requestId: 'req-7' });
      expect(seen?.requestId).toBe('req-7');
      expect(seen!.timeoutMs).toBeGreaterThan(0);
      expect(seen!.timeoutMs).toBeLessThanOrEqual(1_234);
    });

    it('rejects with the remote catalogue error: code, field, retryable and retryAfterMs survive', async () => {
      const [a, b] = await cluster(2);
      b!.serve(async (action) => {
        if (action === 'v') throw ppError('PP_ERR_VALIDATION', { field: 'params.id', message: 'params.id: must be a string' });
        throw ppError('PP_ERR_CIRCUIT_OPEN', { retryAfterMs: 1_500 });
      });
      const v = await rejection(a!.request('node1', 'v', {}, 5_000));
      expect(v.code).toBe('PP_ERR_VALIDATION');
      expect(v.field).toBe('params.id');
      expect(v.retryable).toBe(false);
      const c = await rejection(a!.request('node1', 'c', {}, 5_000));
      expect(c.code).toBe('PP_ERR_CIRCUIT_OPEN');
      expect(c.retryAfterMs).toBe(1_500);
      expect(isRetryable(c)).toBe(true);
    });

    it('times out a call whose handler never answers, and counts the late reply', async () => {
      const [a, b] = await cluster(2);
      let release: (() => void) | undefined;
      b!.serve(() => new Promise((resolve) => { release = () => resolve('late'); }));
      const err = await rejection(a!.request('node1', 'slow', null, 50));
      expect(err.code).toBe('PP_ERR_TIMEOUT');
      expect(err.retryable).toBe(true);
      expect(a!.stats().timeouts).toBe(1);
      release?.();
      await eventually(() => a!.stats().droppedLateReplies === 1, 'late reply counted');
      expect(a!.stats().pendingCalls).toBe(0);
    });

    it('fails a call to a node that is not there with a retryable error', async () => {
      const [a] = await cluster(1);
      const err = await rejection(a!.request('ghost', 'x.y', null, 100));
      expect(['PP_ERR_UNAVAILABLE', 'PP_ERR_TIMEOUT']).toContain(err.code);
      expect(err.retryable).toBe(true);
    });

    it('correlates many concurrent calls to several nodes (replies never cross)', async () => {
      const [a, b, c] = await cluster(3);
      for (const t of [b!, c!]) t.serve(async (_action, params) => ({ echo: params, by: t.nodeId }));
      const calls = Array.from({ length: 600 }, (_, i) => {
        const target = i % 2 === 0 ? 'node1' : 'node2';
        return a!.request(target, 'echo', { i }, 10_000).then((r) => ({ i, target, r: r as { echo: { i: number }; by: string } }));
      });
      for (const { i, target, r } of await Promise.all(calls)) {
        expect(r.echo.i).toBe(i);
        expect(r.by).toBe(target);
      }
      expect(a!.stats().repliesReceived).toBe(600);
    });

    it('abandons the pending calls to a node with the given error', async () => {
      const [a, b] = await cluster(2);
      b!.serve(() => new Promise(() => {}));
      const p1 = rejection(a!.request('node1', 'hang', null, 10_000));
      const p2 = rejection(a!.request('node1', 'hang', null, 10_000));
      await eventually(() => b!.stats().requestsReceived === 2, 'requests arrive');
      expect(a!.abandonCallsTo('node1', ppError('PP_ERR_UNAVAILABLE', { message: 'node1 is dead' }))).toBe(2);
      expect((await p1).code).toBe('PP_ERR_UNAVAILABLE');
      expect((await p2).code).toBe('PP_ERR_UNAVAILABLE');
    });

    it('bounds pending calls: beyond pendingCallsMax a call fails at once, retryably', async () => {
      const [a, b] = await cluster(2, { pendingCallsMax: 3 });
      b!.serve(() => new Promise(() => {}));
      const hanging = [1, 2, 3].map(() => a!.request('node1', 'hang', null, 10_000).catch(() => undefined));
      const err = await rejection(a!.request('node1', 'hang', null, 10_000));
      expect(err.code).toBe('PP_ERR_BULKHEAD_FULL');
      expect(err.retryable).toBe(true);
      a!.abandonCallsTo('node1', ppError('PP_ERR_UNAVAILABLE'));
      await Promise.allSettled(hanging);
    });

    it('rejects pending calls with PP_ERR_SHUTTING_DOWN when closed', async () => {
      const [a, b] = await cluster(2);
      b!.serve(() => new Promise(() => {}));
      const p = rejection(a!.request('node1', 'hang', null, 10_000));
      await eventually(() => b!.stats().requestsReceived === 1, 'request arrives');
      await a!.close();
      const err = await p;
      expect(err.code).toBe('PP_ERR_SHUTTING_DOWN');
      expect(err.retryable).toBe(true);
    });

    it('delivers a balanced event to exactly one member of each group, a broadcast to every plain subscriber', async () => {
      const [a, b, c] = await cluster(3);
      const groupA: string[] = [];
      const groupB: string[] = [];
      const plain: string[] = [];
      for (const t of [a!, b!, c!]) {
        t.subscribe('order.created', (p) => groupA.push(`${t.nodeId}:${(p as { n: number }).n}`), 'billing');
        t.subscribe('order.created', (p) => groupB.push(`${t.nodeId}:${(p as { n: number }).n}`), 'mailer');
        t.subscribe('order.created', (p) => plain.push(`${t.nodeId}:${(p as { n: number }).n}`));
      }
      await Promise.all([a!, b!, c!].map((t) => t.flush()));
      const events = 30;
      for (let n = 0; n < events; n++) a!.publish('order.created', { n });
      await eventually(() => groupA.length >= events && groupB.length >= events && plain.length >= 3 * events, 'all deliveries');
      await a!.flush();
      // Exactly once per group: every n appears once in each group's log.
      for (const log of [groupA, groupB]) {
        expect(log).toHaveLength(events);
        expect(new Set(log.map((e) => e.split(':')[1])).size).toBe(events);
      }
      expect(plain).toHaveLength(3 * events);
    });

    it('stops delivering to an unsubscribed handler', async () => {
      const [a, b] = await cluster(2);
      const got: unknown[] = [];
      const unsubscribe = b!.subscribe('tick', (p) => got.push(p));
      await b!.flush();
      a!.publish('tick', 1);
      await eventually(() => got.length === 1, 'first event');
      unsubscribe();
      await b!.flush();
      a!.publish('tick', 2);
      // Event 2 must reach the server before the marker subscribes, or the marker may get it too.
      await a!.flush();
      const marker: unknown[] = [];
      b!.subscribe('tick', (p) => marker.push(p));
      await b!.flush();
      a!.publish('tick', 3);
      await eventually(() => marker.includes(3), 'marker event');
      expect(got).toEqual([1]);
    });

    it('survives a throwing event handler and counts it', async () => {
      const [a, b] = await cluster(2);
      const got: unknown[] = [];
      b!.subscribe('boom', () => { throw new Error('handler bug'); });
      b!.subscribe('boom', (p) => got.push(p));
      await b!.flush();
      a!.publish('boom', 'x');
      await eventually(() => got.length === 1 && b!.stats().eventHandlerErrors === 1, 'handler error counted');
    });

    it('refuses invalid node ids and topics with a typed error', () => {
      expect(() => factory('bad.id', freshNamespace())).toThrow(/nodeId/);
      const t = factory('ok', freshNamespace());
      expect(() => t.publish('a.*', 1)).toThrow(/topic/);
    });
  });
}
