/**
 * `node.dispatch(name, params, opts?)`: the result itself when served synchronously, else a
 * promise; a synchronous failure is thrown; the request id travels in opts.
 */
import { Type } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { action, createNode, defineService, ppError } from './imports.js';
import type { ServiceNode } from '../../src/service/index.js';

const nodes: ServiceNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

const tdispatch = defineService({
  name: 'tdispatch',
  actions: {
    now: action({ params: Type.Object({}), handler: (ctx) => ({ requestId: ctx.requestId ?? null }) }),
    later: action({ params: Type.Object({}), handler: async (ctx) => ({ requestId: ctx.requestId ?? null }) }),
    nested: action({ params: Type.Object({}), handler: (ctx) => ctx.callDynamic('tdispatch.now', {}) }),
    refuse: action({ params: Type.Object({}), handler: () => { throw ppError('PP_ERR_NOT_FOUND'); } }),
  },
});

async function started(): Promise<ServiceNode> {
  const node = createNode({ logger: false, services: [tdispatch] });
  nodes.push(node);
  await node.start();
  return node;
}

describe('node.dispatch', () => {
  it('returns the value itself for a synchronous in-process handler, with the request id from opts', async () => {
    const node = await started();
    const out = node.dispatch('tdispatch.now', {}, { requestId: 'req-1' });
    expect(out).not.toBeInstanceOf(Promise);
    expect(out).toEqual({ requestId: 'req-1' });
    expect(node.dispatch('tdispatch.now', {})).toEqual({ requestId: null });
  });

  it('returns a promise for an asynchronous handler, and nested calls inherit the request id', async () => {
    const node = await started();
    const later = node.dispatch('tdispatch.later', {}, { requestId: 'req-2', timeoutMs: 1_000 });
    expect(later).toBeInstanceOf(Promise);
    await expect(later).resolves.toEqual({ requestId: 'req-2' });
    await expect(node.dispatch('tdispatch.nested', {}, { requestId: 'req-3' })).resolves.toEqual({ requestId: 'req-3' });
  });

  it('throws the failure of a synchronous call (validation, handler error) instead of returning a rejected promise', async () => {
    const node = await started();
    expect(() => node.dispatch('tdispatch.refuse', {})).toThrow(expect.objectContaining({ code: 'PP_ERR_NOT_FOUND' }));
    expect(() => node.dispatch('tdispatch.now', 'not an object')).toThrow(expect.objectContaining({ code: 'PP_ERR_VALIDATION' }));
  });
});
