/**
 * Durability on both engines: a child process acknowledges writes, is killed with SIGKILL (no
 * shutdown, no flush), and after reopening every acknowledged write is present.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { runUntilKilled, killChildren } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { postgresCase, sqliteCase, type EngineCase } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const pgUp = await needEngine('postgres');
const cases: EngineCase[] = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];
afterAll(async () => {
  killChildren();
  await Promise.all(cases.map((c) => c.cleanup()));
});

const ACKS_BEFORE_KILL = 400;

/** Runs the child until it has acknowledged `n` writes, then SIGKILLs it. Returns the acked ids. */
async function runAndKill(url: string, shards: number, n: number): Promise<number[]> {
  const acked: number[] = [];
  await runUntilKilled(join(here, 'fixtures', 'durable-child.ts'), [url, String(shards)], (line) => {
    if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
    return acked.length >= n;
  }, { deliverAfterKill: true });
  return acked;
}

describe.each(cases)('durability: $name', (engine) => {
  it('every write acknowledged before SIGKILL is present after reopening', async () => {
    const id = `dur${Math.random().toString(36).slice(2, 8)}`;
    const url = engine.url(id);
    const acked = await runAndKill(url, 2, ACKS_BEFORE_KILL);
    expect(acked.length).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);
    const store = await openStore({ engine: url, shards: 2, sweep: { intervalMs: 0 } });
    try {
      const kv = await store.kv<number>('durable');
      const tbl = await store.table('durable_rows', { schema: Type.Object({ id: Type.String(), n: Type.Integer() }), primaryKey: ['id'] });
      const missing: number[] = [];
      const kvKeys = acked.filter((i) => i % 2 === 0);
      const got = await kv.getMany(kvKeys.map((i) => `k${i}`));
      got.forEach((g, j) => {
        if (g?.value !== kvKeys[j]) missing.push(kvKeys[j]!);
      });
      const rowIds = acked.filter((i) => i % 2 === 1);
      for (let j = 0; j < rowIds.length; j += 500) {
        const part = rowIds.slice(j, j + 500);
        const rows = await tbl.getMany(part.map((i) => `r${i}`));
        rows.forEach((r, k) => {
          if (r?.row.n !== part[k]) missing.push(part[k]!);
        });
      }
      expect(missing).toEqual([]);
      // The change feed holds a record for every acknowledged write.
      let records = 0;
      for (const shard of store.shards) {
        let after = 0;
        for (;;) {
          const recs = await store.feed.read(shard, after, 1000);
          if (recs.length === 0) break;
          records += recs.length;
          after = recs[recs.length - 1]!.position;
        }
      }
      expect(records).toBeGreaterThanOrEqual(acked.length);
    } finally {
      await store.close();
    }
  });
});
