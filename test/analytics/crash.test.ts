/**
 * A mirror killed with SIGKILL (no shutdown, no flush) at random moments while it applies batches
 * and the store keeps taking writes resumes from the positions it committed with its rows: after
 * the last restart it equals the store, with no record applied twice (an insert-only ledger has
 * no duplicate and no missing row) and no update or delete missed. Both store engines.
 */
import { Type } from '@sinclair/typebox';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { killChildren, runUntilKilled } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { uniqueId } from '../store/helpers.js';
import { analyticsCase, lineTable, mirrorRows, storeRows } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const pgUp = await needEngine('postgres');
const cases = [analyticsCase('sqlite'), ...(pgUp ? [analyticsCase('postgres')] : [])];
afterAll(async () => {
  killChildren();
  await Promise.all(cases.map((c) => c.cleanup()));
});

/** Kill points, in mirror batches committed by the child: seeded, different every round. */
const KILL_AFTER = [7, 23, 41];

describe.each(cases)('analytics mirror under SIGKILL: $name', (c) => {
  it('resumes after each kill and ends equal to the store (nothing twice, nothing missed)', async () => {
    const id = uniqueId('k');
    const url = c.url(id);
    for (let round = 0; round < KILL_AFTER.length; round++) {
      await runUntilKilled(join(here, 'fixtures', 'mirror-child.ts'), [url, c.duckPath(id), String(round)], (l) => l.startsWith('batches ') && Number(l.slice(8)) >= KILL_AFTER[round]!);
    }
    const store = await c.openStore(id);
    const lines = await lineTable(store);
    const ledger = await store.table('ledger', { schema: Type.Object({ id: Type.String(), round: Type.Integer(), n: Type.Integer() }), primaryKey: ['id'] });
    const a = await c.openAnalytics(store, id);
    const ml = await a.mirror(lines);
    const mg = await a.mirror(ledger);
    const heads = await store.feed.heads();
    await ml.waitFor(heads, 30_000);
    await mg.waitFor(heads, 30_000);

    const wantLedger = await storeRows(ledger);
    const gotLedger = await mirrorRows(a, 'ledger');
    expect(wantLedger.size).toBeGreaterThan(0);
    expect(new Set(gotLedger.map((r) => r.id)).size).toBe(gotLedger.length); // nothing twice
    expect(gotLedger.length).toBe(wantLedger.size); // nothing missed
    for (const g of gotLedger) expect(wantLedger.get(g.id)?.row).toEqual(g.row);
    // every round wrote to the ledger before it was killed
    const rounds = await a.query<{ round: number }>('SELECT DISTINCT round FROM ledger ORDER BY round');
    expect(rounds.rows.map((r) => r.round)).toEqual([0, 1, 2]);

    const wantLines = await storeRows(lines);
    const gotLines = await mirrorRows(a, 'lines');
    expect(new Set(gotLines.map((r) => r.id)).size).toBe(gotLines.length);
    expect(gotLines.length).toBe(wantLines.size);
    for (const g of gotLines) {
      expect(g.row).toEqual(wantLines.get(g.id)?.row);
      expect(g._v).toBe(wantLines.get(g.id)?.version);
    }
  }, 120_000);
});
