/**
 * Durable workflows on SQLite and the real PostgreSQL: steps checkpointed with their own writes,
 * idempotent start, retries, compensations in reverse order, sleeps, signals, children, cancel,
 * takeover by another node with fencing, nondeterminism, typed errors. (SIGKILL of the node
 * running them: crash.test.ts.)
 */
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { ppError } from '../../src/errors/index.js';
import type { Store, Table } from '../../src/store/index.js';
import { defineWorkflow, openTransactions, openWorkflows, type Transactions, type Workflows } from '../../src/tx/index.js';
import { needEngine } from '../helpers/engines.js';
import { expectCode, postgresCase, sqliteCase, type EngineCase } from '../store/helpers.js';

const pgUp = await needEngine('postgres');
const cases: EngineCase[] = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers) await c().catch(() => undefined);
  await Promise.all(cases.map((c) => c.cleanup()));
});

const Item = Type.Object({ sku: Type.String(), stock: Type.Integer() });
type ItemRow = { sku: string; stock: number };

describe.each(cases)('workflows: $name', (engine) => {
  async function setup(options: Parameters<typeof openWorkflows>[2] = {}, store?: Store): Promise<{ store: Store; txs: Transactions; wf: Workflows; items: Table<ItemRow> }> {
    const s = store ?? (await engine.open({ shards: 2 }));
    const items = await s.table('items', { schema: Item, primaryKey: ['sku'] });
    const txs = await openTransactions(s, { recoverIntervalMs: 0 });
    const wf = await openWorkflows(s, txs, { recoverIntervalMs: 0, pollMs: 5, ...options });
    closers.push(() => wf.close(), () => txs.close());
    return { store: s, txs, wf, items };
  }

  it('runs steps in order, each checkpointed with its own writes; starting the same id again runs nothing twice', async () => {
    const { wf, items } = await setup();
    await items.upsert({ sku: 'a', stock: 10 });
    let runs = 0;
    const take = defineWorkflow({
      name: 'take',
      async run(ctx, n: number) {
        const left = await ctx.step('reserve', async (tx) => {
          runs++;
          const it = await tx.get(items, 'a');
          await tx.update(items, 'a', { stock: it!.row.stock - n });
          return it!.row.stock - n;
        });
        const doubled = await ctx.step('double', () => left * 2);
        return { left, doubled };
      },
    });
    const h = await wf.start(take, 3, { id: 'order-1' });
    expect(await h.result()).toEqual({ left: 7, doubled: 14 });
    const again = await wf.start(take, 3, { id: 'order-1' });
    expect(await again.result()).toEqual({ left: 7, doubled: 14 });
    expect(runs).toBe(1);
    expect((await items.get('a'))!.row.stock).toBe(7);
    const st = await wf.status('order-1');
    expect(st.state).toBe('completed');
    expect(st.steps.map((s) => [s.seq, s.name, s.state])).toEqual([
      [0, 'reserve', 'done'],
      [1, 'double', 'done'],
    ]);
    // The same id for another workflow is a typed conflict.
    const other = defineWorkflow({ name: 'other', run: async () => 1 });
    await expectCode(wf.start(other, null, { id: 'order-1' }), 'PP_ERR_CONFLICT');
  });

  it('retries a failing step with backoff, then compensates completed steps newest first', async () => {
    const { wf, items } = await setup();
    await items.upsert({ sku: 'b', stock: 5 });
    const order: string[] = [];
    let flaky = 0;
    const saga = defineWorkflow({
      name: 'saga',
      async run(ctx) {
        await ctx.step('one', async (tx) => {
          const it = await tx.get(items, 'b');
          await tx.update(items, 'b', { stock: it!.row.stock - 1 });
          return 1;
        }, { compensate: async (_o, tx) => {
          order.push('undo one');
          const it = await tx.get(items, 'b');
          await tx.update(items, 'b', { stock: it!.row.stock + 1 });
        } });
        await ctx.step('flaky', () => {
          flaky++;
          if (flaky < 3) throw ppError('PP_ERR_UNAVAILABLE', { message: 'provider busy' });
          return 'ok';
        }, { retries: 5, backoffMs: 1, compensate: () => void order.push('undo flaky') });
        await ctx.step('fatal', () => {
          throw new Error('card declined');
        }, { retryable: () => false });
        return 'never';
      },
    });
    const h = await wf.start(saga, null);
    await expectCode(h.result(), 'PP_ERR_STEP_FAILED');
    expect(order).toEqual(['undo flaky', 'undo one']);
    expect((await items.get('b'))!.row.stock).toBe(5);
    const st = await h.status();
    expect(st.state).toBe('compensated');
    expect(st.error?.message).toMatch(/card declined/);
    expect(st.steps.find((s) => s.name === 'flaky')!.attempts).toBe(3);
    expect(st.steps.find((s) => s.name === 'fatal')!.state).toBe('failed');
    expect(st.steps.filter((s) => s.kind === 'compensate').map((s) => s.name)).toEqual(['compensate:flaky', 'compensate:one']);
  });

  it('sleeps, waits for a signal (or its timeout), runs a child workflow', async () => {
    const { wf } = await setup();
    const child = defineWorkflow({ name: 'child', run: async (ctx, x: number) => ctx.step('sq', () => x * x) });
    wf.register(child);
    const parent = defineWorkflow({
      name: 'parent',
      async run(ctx) {
        const t0 = Date.now();
        await ctx.sleep(30);
        const slept = Date.now() - t0;
        const go = await ctx.waitForSignal<{ go: boolean }>('go', { timeoutMs: 5000 });
        const none = await ctx.waitForSignal('never', { timeoutMs: 20 });
        const sq = await ctx.child<number, number>(child, 7);
        return { slept: slept >= 30, go, none, sq };
      },
    });
    const h = await wf.start(parent, null, { id: 'p1' });
    await new Promise((r) => setTimeout(r, 50));
    await wf.signal('p1', 'go', { go: true });
    expect(await h.result()).toEqual({ slept: true, go: { go: true }, none: undefined, sq: 49 });
    // Calls: sleep 0, signal 1 (its deadline 2), signal 3 (deadline 4), child 5.
    const kid = await wf.status('p1/5');
    expect(kid).toMatchObject({ state: 'completed', parent: 'p1', output: 49 });
  });

  it('cancel: the workflow stops at its next step, compensates, ends cancelled', async () => {
    const { wf } = await setup();
    const undone: string[] = [];
    const long = defineWorkflow({
      name: 'long',
      async run(ctx) {
        await ctx.step('a', () => 'a', { compensate: () => void undone.push('a') });
        await ctx.waitForSignal('never', { timeoutMs: 200 });
        await ctx.step('b', () => 'b');
        return 'done';
      },
    });
    const h = await wf.start(long, null);
    await new Promise((r) => setTimeout(r, 30));
    await wf.cancel(h.id);
    await expectCode(h.result(), 'PP_ERR_CANCELLED');
    expect(undone).toEqual(['a']);
    expect((await h.status()).state).toBe('cancelled');
  });

  it('typed errors: unknown id, bad names and input, nondeterministic replay', async () => {
    const { wf, store } = await setup();
    await expectCode(wf.status('nope'), 'PP_ERR_NOT_FOUND');
    await expectCode(wf.result('nope'), 'PP_ERR_NOT_FOUND');
    await expectCode(wf.signal('nope', 'x'), 'PP_ERR_NOT_FOUND');
    expect(() => defineWorkflow({ name: '1bad', run: async () => 1 })).toThrow(/name/);
    const w = defineWorkflow({ name: 'w', run: async (ctx) => ctx.step('s', () => 1) });
    await expectCode(wf.start(w, { n: 1n } as unknown as null), 'PP_ERR_VALIDATION');
    // Node A records step "s1" and stalls; node B has different code under the same name.
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    const v1 = defineWorkflow({ name: 'evolving', async run(ctx) {
      await ctx.step('s1', () => 1);
      await ctx.step('s2', () => stalled);
      return 'v1';
    } });
    const { wf: a } = await setup({ leaseMs: 60, owner: 'A' }, store);
    await a.start(v1, null, { id: 'evo' });
    await new Promise((r) => setTimeout(r, 30));
    await a.close();
    const v2 = defineWorkflow({ name: 'evolving', async run(ctx) {
      await ctx.step('other', () => 2);
      return 'v2';
    } });
    const { wf: b } = await setup({ owner: 'B' }, store);
    b.register(v2);
    await new Promise((r) => setTimeout(r, 100));
    expect(await b.recover()).toBe(1);
    await expectCode(b.result('evo'), 'PP_ERR_NONDETERMINISM');
    release();
  });

  it('another node takes over a workflow whose owner stopped renewing; the old owner is fenced, each step applied once', async () => {
    const { store, items } = await setup();
    await items.upsert({ sku: 'c', stock: 100 });
    let gate!: () => void;
    const gated = new Promise<void>((r) => (gate = r));
    let applied = 0;
    const def = (slow: boolean) =>
      defineWorkflow({
        name: 'moving',
        async run(ctx) {
          await ctx.step('first', async (tx) => {
            applied++;
            const it = await tx.get(items, 'c');
            await tx.update(items, 'c', { stock: it!.row.stock - 1 });
          });
          await ctx.step('second', async (tx) => {
            if (slow) await gated;
            const it = await tx.get(items, 'c');
            await tx.update(items, 'c', { stock: it!.row.stock - 10 });
          });
          return ctx.takeovers;
        },
      });
    const { wf: a } = await setup({ leaseMs: 60, owner: 'A' }, store);
    await a.start(def(true), null, { id: 'mv' });
    await new Promise((r) => setTimeout(r, 30));
    await a.close(); // A stops renewing (its process stalls); its step is still in flight
    const { wf: b } = await setup({ owner: 'B' }, store);
    b.register(def(false));
    await new Promise((r) => setTimeout(r, 100));
    expect(await b.recover()).toBe(1);
    expect(await b.result('mv')).toBe(1);
    gate(); // A's stalled step now tries to commit under its old fence
    await new Promise((r) => setTimeout(r, 50));
    expect((await items.get('c'))!.row.stock).toBe(89);
    expect(applied).toBe(1);
    const st = await b.status('mv');
    expect(st).toMatchObject({ state: 'completed', owner: 'B', takeovers: 1 });
  });
});
