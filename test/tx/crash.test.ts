/**
 * Coordinator crashes: a child process runs a transfer over three shards and is SIGKILLed at each
 * step of its two-phase commit (before any prepare, after one prepare, after all, before the
 * decision, after it, after one apply). Another process then recovers, and every transfer is all
 * or nothing: the balances are either the initial ones or the transferred ones, the sum constant.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defineWorkflow, openTransactions, openWorkflows } from '../../src/tx/index.js';
import { killChildren, runUntilKilled } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { postgresCase, sqliteCase, type EngineCase } from '../store/helpers.js';

const pgUp = await needEngine('postgres');
const cases: EngineCase[] = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];
afterEach(() => killChildren());
afterAll(async () => {
  await Promise.all(cases.map((c) => c.cleanup()));
});

const FIXTURE = 'test/tx/fixtures/transfer-child.ts';
const Wallet = Type.Object({ user: Type.String(), balance: Type.Integer() });

/** The steps of a commit over shards s0, s1, s2 (s0 coordinates), in order. */
const STEPS = ['before-prepare', 'prepared:s1', 'after-prepare', 'before-decision', 'after-decision', 'applied:s1'] as const;
/** From this step on the decision is durable: recovery must finish the transfer. */
const DECIDED = STEPS.indexOf('after-decision');

describe.each(cases)('coordinator SIGKILLed during two-phase commit: $name', (engine) => {
  it.each(STEPS.map((s, i) => [s, i] as const))('killed at %s', async (step, i) => {
    const id = `crash_${i}_${Date.now().toString(36)}`;
    const store = await engine.open({ shards: 3 }, id);
    const wallets = await store.table('wallets', { schema: Wallet, primaryKey: ['user'] });
    const users: string[] = [];
    for (let s = 0; s < 3; s++) {
      for (let k = 0; ; k++) {
        const u = `u${k}`;
        if (wallets.locate(u).shard === s) {
          users.push(u);
          break;
        }
      }
    }
    for (const u of users) await wallets.upsert({ user: u, balance: 100 });
    await runUntilKilled(FIXTURE, [engine.url(id), step, ...users], (line) => line === `at ${step}`);
    const txs = await openTransactions(store, { recoverIntervalMs: 0, staleMs: 10 });
    await new Promise((r) => setTimeout(r, 20));
    const report = await txs.recover();
    expect(report.skipped).toBe(0);
    const balances = await Promise.all(users.map(async (u) => (await wallets.get(u))!.row.balance));
    expect(balances.reduce((a, b) => a + b, 0)).toBe(300);
    expect(balances).toEqual(i >= DECIDED ? [80, 110, 110] : [100, 100, 100]);
    expect((await txs.recover()).locks).toBe(0);
    // The rows are free: a new transfer over them commits.
    await txs.run(async (tx) => {
      const a = await tx.get(wallets, users[0]!);
      await tx.update(wallets, users[0]!, { balance: a!.row.balance - 1 });
      const b = await tx.get(wallets, users[2]!);
      await tx.update(wallets, users[2]!, { balance: b!.row.balance + 1 });
    });
    await txs.close();
  });
});

describe.each(cases)('the node running workflows SIGKILLed: $name', (engine) => {
  it('another node takes the workflows over when their leases lapse and finishes them; every step applied once', async () => {
    const id = `wfcrash_${Date.now().toString(36)}`;
    const store = await engine.open({ shards: 2 }, id);
    const counters = await store.table('counters', { schema: Type.Object({ id: Type.String(), n: Type.Integer() }), primaryKey: ['id'] });
    const n = 20;
    await runUntilKilled('test/tx/fixtures/workflow-child.ts', [engine.url(id), String(n)], (line) => line === `started ${n}`);
    const txs = await openTransactions(store, { recoverIntervalMs: 0 });
    const wf = await openWorkflows(store, txs, { owner: 'survivor', recoverIntervalMs: 0, pollMs: 5 });
    wf.register(
      defineWorkflow({
        name: 'three',
        async run(ctx, wid: string) {
          for (let s = 0; s < 3; s++) {
            await ctx.step(`s${s}`, async (tx) => {
              const c = await tx.get(counters, wid);
              await tx.upsert(counters, { id: wid, n: (c?.row.n ?? 0) + 1 });
            });
          }
          return wid;
        },
      }),
    );
    expect((await wf.counts()).running).toBe(n);
    // The child's leases (300 ms) lapse; then one pass takes every workflow over.
    let taken = 0;
    for (let i = 0; i < 100 && taken < n; i++) {
      taken += await wf.recover();
      if (taken < n) await new Promise((r) => setTimeout(r, 50));
    }
    expect(taken).toBe(n);
    for (let i = 0; i < n; i++) expect(await wf.result(`w${i}`, { timeoutMs: 30_000 })).toBe(`w${i}`);
    // Step s0 ran in the child, s1 (the child died inside it, uncommitted) and s2 here: 3 each.
    for (let i = 0; i < n; i++) expect((await counters.get(`w${i}`))!.row.n).toBe(3);
    const st = await wf.status('w0');
    expect(st).toMatchObject({ state: 'completed', owner: 'survivor', takeovers: 1 });
    expect(st.steps.map((s) => s.name)).toEqual(['s0', 's1', 's2']);
    await wf.close();
    await txs.close();
  });
});
