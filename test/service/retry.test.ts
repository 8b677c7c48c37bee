/**
 * The call path's retries, decided by resilience's RetryPolicy: on another instance only, within
 * the node's budget (a refusal surfaces the last error), options checked when the node is built.
 */
import { Type } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { isPowerplantError, type PowerplantError } from '../../src/errors/index.js';
import { action, createNode, defineService, ppError } from './imports.js';
import type { NodeConfig, ServiceNode } from '../../src/service/index.js';
import { eventually } from '../transport/conformance.js';

let bus = 0;
const nodes: ServiceNode[] = [];

function cluster(): (config: NodeConfig) => ServiceNode {
  const name = `svc-retry-${process.pid}-${++bus}`;
  return (config) => {
    const node = createNode({ transport: `inproc://${name}`, logger: false, heartbeatIntervalMs: 50, checkIntervalMs: 10, detector: { deadAfterMs: 3_000, stdDevMsMin: 500 }, ...config });
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

/** Two instances of an idempotent action that always fails retryably; counts the attempts. */
async function twoFailingInstances(caller: NodeConfig): Promise<{ caller: ServiceNode; attempts: () => number }> {
  const make = cluster();
  let attempts = 0;
  const failing = defineService({
    name: 'tfailing',
    actions: { op: action({ params: Type.Object({}), idempotent: true, handler: () => { attempts++; throw ppError('PP_ERR_UNAVAILABLE', { message: 'down' }); } }) },
  });
  const c = make({ nodeId: 'caller', ...caller });
  await Promise.all([c.start(), make({ nodeId: 'x', services: [failing] }).start(), make({ nodeId: 'y', services: [failing] }).start()]);
  await eventually(() => (c.registry.routes.get('tfailing.op')?.set.size ?? 0) === 2, 'both instances known');
  return { caller: c, attempts: () => attempts };
}

describe('call path retries (RetryPolicy)', () => {
  it('retries on another instance only: with every instance failing, one attempt per instance, then the last error', async () => {
    const { caller, attempts } = await twoFailingInstances({ call: { attemptsMax: 5, retryBaseDelayMs: 0, retryDelayMsMax: 0, retryBudget: false } });
    const err = await failure(caller.callDynamic('tfailing.op', {}));
    expect(err.code).toBe('PP_ERR_UNAVAILABLE');
    expect(attempts()).toBe(2);
  });

  it('a refused budget stops retrying and surfaces the last error itself (not PP_ERR_RETRY_BUDGET_EXHAUSTED)', async () => {
    const { caller, attempts } = await twoFailingInstances({ call: { retryBaseDelayMs: 0, retryDelayMsMax: 0, retryBudget: { ratio: 0, retriesPerSecMin: 0 } } });
    const err = await failure(caller.callDynamic('tfailing.op', {}));
    expect(err.code).toBe('PP_ERR_UNAVAILABLE');
    expect(attempts()).toBe(1);
    expect(caller.metrics.render()).toMatch(/pp_call_retries_total\{action="tfailing\.op"\} 0/);
  });

  it('rejects bad backoff options with typed errors naming the field', () => {
    expect(() => createNode({ logger: false, call: { retryBaseDelayMs: -1 } })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'call.retryBaseDelayMs' }));
    expect(() => createNode({ logger: false, call: { retryDelayMsMax: Infinity } })).toThrow(expect.objectContaining({ field: 'call.retryDelayMsMax' }));
  });
});
