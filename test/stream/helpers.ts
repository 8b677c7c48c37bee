/** What one uninterrupted run of the bids job writes, computed from the topic with the pure window code. */
import type { Queue } from '../../src/queue/index.js';
import type { Store } from '../../src/store/index.js';
import { KeyedWindows, tumbling } from '../../src/stream/index.js';
import { BidStats, LATENESS_MS, OUT_OF_ORDER_MS, WINDOW_MS, type Bid } from './fixtures/bids.js';

export interface Expected {
  readonly rows: Map<string, { bids: number; total: number }>;
  readonly late: number;
  readonly dead: number;
}

export async function expectedBids(q: Queue, partitions: number): Promise<Expected> {
  const rows = new Map<string, { bids: number; total: number }>();
  let late = 0;
  let dead = 0;
  for (let p = 0; p < partitions; p++) {
    const w = new KeyedWindows<Bid, { n: number; sum: number }, { n: number; sum: number }>(
      tumbling(WINDOW_MS),
      { init: () => ({ n: 0, sum: 0 }), add: (a, b) => ({ n: a.n + 1, sum: a.sum + b.price }), result: (a) => a },
      { outOfOrdernessMs: OUT_OF_ORDER_MS, allowedLatenessMs: LATENESS_MS },
    );
    let from: { offset: number } | 'earliest' = 'earliest';
    for (;;) {
      const page: { offset: number; value: Bid }[] = await q.read<Bid>('bids', p, from, 10_000);
      if (page.length === 0) break;
      for (const m of page) {
        const b = m.value;
        if (typeof b.ts !== 'number') {
          dead++;
          continue;
        }
        if (b.price < 0) continue;
        const out = w.add(`s${b.auction}`, b, b.ts, (r) => {
          const k = `${r.key.slice(1)}|${r.start}`;
          if (r.kind === 'retract') rows.delete(k);
          else rows.set(k, { bids: r.value.n, total: r.value.sum });
        });
        if (out === 'late') late++;
      }
      from = { offset: page[page.length - 1]!.offset + 1 };
    }
  }
  return { rows, late, dead };
}

/** The bids job's table, as the same map. */
export async function actualBids(store: Store, name = 'bids'): Promise<Map<string, { bids: number; total: number }>> {
  const t = await store.table(`${name}_stats`, { schema: BidStats, primaryKey: ['auction', 'start'], partitionKey: ['auction'] });
  const out = new Map<string, { bids: number; total: number }>();
  let cursor: string | undefined;
  do {
    const page = await t.query({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const it of page.items) out.set(`${it.row.auction}|${it.row.start}`, { bids: it.row.bids, total: it.row.total });
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

/** Rows of a job's dead-letter table, by code. */
export async function deadByCode(store: Store, name = 'bids'): Promise<Map<string, number>> {
  const { openJobTablesForTest } = await import('./tables.js');
  const t = await openJobTablesForTest(store, name);
  const out = new Map<string, number>();
  let cursor: string | undefined;
  do {
    const page = await t.dead.query({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const it of page.items) out.set(it.row.code, (out.get(it.row.code) ?? 0) + 1);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}
