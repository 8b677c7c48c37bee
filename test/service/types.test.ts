/**
 * Type tests: tsc (npm run typecheck) checks the `@ts-expect-error` lines; each must be an error
 * or tsc fails with "Unused '@ts-expect-error' directive". The runtime part only keeps vitest happy.
 */
import { describe, expect, it } from 'vitest';
import type { Context, ParamsOf, PayloadOf, ResultOf } from '../../src/service/index.js';
import './fixtures.js';

async function typeChecks(ctx: Context): Promise<void> {
  const p = await ctx.call('tcatalog.get', { id: 'p1' });
  const name: string = p.name;
  const cents: number = p.priceCents;
  const n: number = await ctx.call('tcatalog.count', {});
  const q = await ctx.call('torders.quote', { productId: 'p1', qty: 2 });
  const total: number = q.totalCents;

  // @ts-expect-error -- wrong param type: id is a string
  await ctx.call('tcatalog.get', { id: 42 });
  // @ts-expect-error -- missing required param
  await ctx.call('tcatalog.get', {});
  // @ts-expect-error -- unknown param name (excess property)
  await ctx.call('tcatalog.get', { id: 'p1', colour: 'red' });
  // @ts-expect-error -- unknown action of a known service
  await ctx.call('tcatalog.delete', { id: 'p1' });
  // @ts-expect-error -- unknown service
  await ctx.call('nosuch.get', { id: 'p1' });
  // @ts-expect-error -- result type flows: priceCents is a number, not a string
  const wrong: string = p.priceCents;
  // @ts-expect-error -- qty must be a number
  await ctx.call('torders.quote', { productId: 'p1', qty: '2' });

  // The dynamic form accepts anything, by design (gateways, tools).
  await ctx.callDynamic('anything.at-all', { x: 1 });

  // Events: the topic must have a subscriber in the registry; the payload must fit its params.
  ctx.emit('torder.placed', { orderId: 'o1' });
  ctx.broadcast('torder.placed', { orderId: 'o1' });
  // @ts-expect-error -- wrong payload type: orderId is a string
  ctx.emit('torder.placed', { orderId: 1 });
  // @ts-expect-error -- missing payload field
  ctx.emit('torder.placed', {});
  // @ts-expect-error -- unknown payload field (excess property)
  ctx.broadcast('torder.placed', { orderId: 'o1', colour: 'red' });
  // @ts-expect-error -- no registered service subscribes to this topic
  ctx.emit('torder.shipped', { orderId: 'o1' });
  ctx.emitDynamic('anything.at-all', 42);
  ctx.broadcastDynamic('anything.at-all', 42);
  void [name, cents, n, total, wrong];
}

type Assert<T extends true> = T;
type Eq<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false;
export type ParamsAreInferred = Assert<Eq<ParamsOf<'tcatalog.get'>, { id: string }>>;
export type ResultIsInferred = Assert<Eq<ResultOf<'tcatalog.count'>, number>>;
export type PayloadIsInferred = Assert<Eq<PayloadOf<'torder.placed'>, { orderId: string }>>;

describe('service types', () => {
  it('is checked by tsc (see the @ts-expect-error lines)', () => {
    expect(typeof typeChecks).toBe('function');
  });
});
