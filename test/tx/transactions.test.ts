/**
 * Transactions on SQLite and the real PostgreSQL, 3 shards: one-shard commits, cross-shard two-
 * phase commits, isolation (no lost update, no dirty read, no half-seen commit, no write skew),
 * bounds, and recovery after a coordinator stopped at each step (in process, through the step
 * hook; the SIGKILL version is crash.test.ts).
 */
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import type { Store, Table } from '../../src/store/index.js';
import { openTransactions, type Transactions } from '../../src/tx/index.js';
import { needEngine } from '../helpers/engines.js';
import { expectCode, postgresCase, sqliteCase, type EngineCase } from '../store/helpers.js';

const pgUp = await needEngine('postgres');
const cases: EngineCase[] = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];
const opened: Transactions[] = [];

afterAll(async () => {
  await Promise.allSettled(opened.map((t) => t.close()));
  await Promise.all(cases.map((c) => c.cleanup()));
});

const Wallet = Type.Object({ user: Type.String(), balance: Type.Integer() });
type WalletRow = { user: string; balance: number };

/** Users on distinct shards: the first user found on each shard. */
function usersOnShards(t: Table<WalletRow>, n: number): string[] {
  const out = new Map<number, string>();
  for (let i = 0; out.size < n && i < 10_000; i++) {
    const u = `u${i}`;
    const s = t.locate(u).shard;
    if (!out.has(s)) out.set(s, u);
  }
  return [...out.values()];
}

describe.each(cases)('transactions: $name', (engine) => {
  async function setup(opts: Parameters<typeof openTransactions>[1] = {}): Promise<{ store: Store; txs: Transactions; wallets: Table<WalletRow> }> {
    const store = await engine.open({ shards: 3 });
    const wallets = await store.table('wallets', { schema: Wallet, primaryKey: ['user'] });
    const txs = await openTransactions(store, { recoverIntervalMs: 0, ...opts });
    opened.push(txs);
    return { store, txs, wallets };
  }

  async function transfer(txs: Transactions, wallets: Table<WalletRow>, from: string, to: string, amount: number): Promise<void> {
    // Many transfers on three rows conflict a lot: let each retry as long as it takes.
    await txs.run(async (tx) => {
      const a = await tx.get(wallets, from);
      const b = await tx.get(wallets, to);
      if (a === undefined || b === undefined) throw new Error('no wallet');
      await tx.update(wallets, from, { balance: a.row.balance - amount });
      await tx.update(wallets, to, { balance: b.row.balance + amount });
    }, { retries: 1000 });
  }

  it('a transaction on one shard commits in one local request; reads see its own writes', async () => {
    const { txs, wallets } = await setup();
    const r = await txs.execute(async (tx) => {
      await tx.insert(wallets, { user: 'solo', balance: 5 });
      const mine = await tx.get(wallets, 'solo');
      expect(mine?.row).toEqual({ user: 'solo', balance: 5 });
      return 'ok';
    });
    expect(r.result).toBe('ok');
    expect(r.info.path).toBe('local');
    expect((await wallets.get('solo'))?.row.balance).toBe(5);
    // Inserting an existing row inside a transaction is a typed conflict, nothing written.
    await expectCode(txs.run(async (tx) => tx.insert(wallets, { user: 'solo', balance: 9 })), 'PP_ERR_CONFLICT');
    expect((await wallets.get('solo'))?.row.balance).toBe(5);
  });

  it('a transfer between users on two shards commits by two-phase commit, all or nothing, and leaves no lock rows', async () => {
    const { store, txs, wallets } = await setup();
    const [a, b] = usersOnShards(wallets, 2);
    await wallets.upsert({ user: a!, balance: 100 });
    await wallets.upsert({ user: b!, balance: 100 });
    const r = await txs.execute(async (tx) => {
      const x = await tx.get(wallets, a!);
      const y = await tx.get(wallets, b!);
      await tx.update(wallets, a!, { balance: x!.row.balance - 30 });
      await tx.update(wallets, b!, { balance: y!.row.balance + 30 });
    });
    expect(r.info.path).toBe('2pc');
    expect(r.info.shards).toHaveLength(2);
    expect(r.info.pendingShards).toEqual([]);
    expect((await wallets.get(a!))?.row.balance).toBe(70);
    expect((await wallets.get(b!))?.row.balance).toBe(130);
    const locks = await store.table('pptx_lock', { schema: (await import('../../src/tx/system.js')).LockSchema, primaryKey: ['shard', 'tbl', 'key'], partitionKey: ['shard'], indexes: { byCreated: ['shard', 'createdMs'], byTx: ['shard', 'tx'] }, partitioning: (await import('../../src/tx/system.js')).perShard(store) });
    expect(await locks.count()).toBe(0);
    // A function that throws writes nothing, on any shard.
    await expect(
      txs.run(async (tx) => {
        tx.upsert(wallets, { user: a!, balance: 0 });
        tx.upsert(wallets, { user: b!, balance: 0 });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await wallets.get(a!))?.row.balance).toBe(70);
    expect(txs.stats().committed.twoPc).toBe(1);
  });

  it('no lost update: concurrent increments of one row all count', async () => {
    const { txs, wallets } = await setup();
    await wallets.upsert({ user: 'counter', balance: 0 });
    const n = 25;
    await Promise.all(
      Array.from({ length: n }, () =>
        txs.run(async (tx) => {
          const c = await tx.get(wallets, 'counter');
          await tx.update(wallets, 'counter', { balance: c!.row.balance + 1 });
        }, { retries: 200 }),
      ),
    );
    expect((await wallets.get('counter'))?.row.balance).toBe(n);
    expect(txs.stats().aborts).toBeGreaterThan(0);
  });

  it('money is conserved under concurrent cross-shard transfers, and a reading transaction never sees half of one', async () => {
    const { txs, wallets } = await setup();
    const users = usersOnShards(wallets, 3);
    for (const u of users) await wallets.upsert({ user: u, balance: 1000 });
    const sums: number[] = [];
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        const total = await txs.run(async (tx) => {
          let s = 0;
          for (const u of users) s += (await tx.get(wallets, u))!.row.balance;
          return s;
        }, { retries: 1000 });
        sums.push(total);
      }
    })();
    // Seeded pairs: the same schedule every run.
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % users.length;
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const f = next();
      const t = (f + 1 + (next() % (users.length - 1))) % users.length;
      jobs.push(transfer(txs, wallets, users[f]!, users[t]!, 1 + (i % 7)).catch((e: unknown) => {
        throw e;
      }));
    }
    await Promise.all(jobs);
    stop = true;
    await reader;
    const final = await Promise.all(users.map(async (u) => (await wallets.get(u))!.row.balance));
    expect(final.reduce((x, y) => x + y, 0)).toBe(3000);
    expect(sums.length).toBeGreaterThan(0);
    expect(sums.every((s) => s === 3000)).toBe(true);
  });

  it('no write skew: two transactions that each read both rows and zero one of them cannot both commit', async () => {
    const { txs, wallets } = await setup();
    const [x, y] = usersOnShards(wallets, 2);
    for (let round = 0; round < 8; round++) {
      await wallets.upsert({ user: x!, balance: 1 });
      await wallets.upsert({ user: y!, balance: 1 });
      const zero = (target: string) =>
        txs
          .run(async (tx) => {
            const a = (await tx.get(wallets, x!))!.row.balance;
            const b = (await tx.get(wallets, y!))!.row.balance;
            // The invariant: at least one of the two stays 1.
            if (a + b === 2) await tx.update(wallets, target, { balance: 0 });
          }, { retries: 50 })
          .catch(() => undefined);
      await Promise.all([zero(x!), zero(y!)]);
      const a = (await wallets.get(x!))!.row.balance;
      const b = (await wallets.get(y!))!.row.balance;
      expect(a + b).toBeGreaterThanOrEqual(1);
    }
  });

  it('bounds: too many rows is PP_ERR_TX_TOO_LARGE, past timeoutMs is PP_ERR_TX_ABORTED, nothing half-applied', async () => {
    const { txs, wallets } = await setup();
    await expectCode(
      txs.run(async (tx) => {
        for (let i = 0; i < 6; i++) tx.upsert(wallets, { user: `big${i}`, balance: i });
      }, { keysMax: 5 }),
      'PP_ERR_TX_TOO_LARGE',
    );
    expect(await wallets.get('big0')).toBeUndefined();
    await expectCode(
      txs.run(async (tx) => {
        tx.upsert(wallets, { user: 'slow', balance: 1 });
        await new Promise((r) => setTimeout(r, 30));
        await tx.get(wallets, 'other');
      }, { timeoutMs: 10 }),
      'PP_ERR_TX_ABORTED',
    );
    expect(await wallets.get('slow')).toBeUndefined();
    await expectCode(txs.run(async () => undefined, { retries: -1 }), 'PP_ERR_INVALID_ARGUMENT');
    await expectCode(txs.run(async (tx) => tx.upsert(wallets, { user: 'bad', balance: 1.5 })), 'PP_ERR_VALIDATION');
    await expectCode(txs.run(async (tx) => tx.get({} as Table<WalletRow>, 'x')), 'PP_ERR_INVALID_ARGUMENT');
  });

  describe('recovery after the coordinator stopped', () => {
    const steps = ['after-prepare', 'before-decision', 'after-decision'] as const;
    it.each(steps)('stopped at %s: recovery leaves the transfer all or nothing', async (at) => {
      let fail = true;
      const { store, txs, wallets } = await setup({
        staleMs: 10,
        onStep: (step) => {
          if (fail && step === at) throw new Error(`coordinator stopped at ${step}`);
        },
      });
      const users = usersOnShards(wallets, 3);
      for (const u of users) await wallets.upsert({ user: u, balance: 100 });
      await txs
        .run(async (tx) => {
          for (const u of users) await tx.update(wallets, u, { balance: (await tx.get(wallets, u))!.row.balance + (u === users[0] ? -20 : 10) });
        })
        .catch(() => undefined);
      fail = false;
      await new Promise((r) => setTimeout(r, 20));
      const report = await txs.recover();
      expect(report.skipped).toBe(0);
      const balances = await Promise.all(users.map(async (u) => (await wallets.get(u))!.row.balance));
      expect(balances.reduce((x, y) => x + y, 0)).toBe(300);
      if (at === 'after-decision') expect(balances).toEqual([80, 110, 110]);
      else expect(balances).toEqual([100, 100, 100]);
      // Nothing left to recover, and the rows are free again.
      expect((await txs.recover()).locks).toBe(0);
      await transfer(txs, wallets, users[1]!, users[2]!, 5);
      void store;
    });
  });
});
