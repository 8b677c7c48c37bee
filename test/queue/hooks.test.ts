/**
 * The consumer's hooks for consumers that keep their own offsets (a stream job): `onAssign` says
 * where a partition taken over starts (whatever the group committed), a rejection gives the
 * partition back and it is claimed again; `onRelease` fires once per partition given up;
 * `order: 'partition'` hands a partition's records over one at a time in offset order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openQueue } from '../../src/queue/index.js';
import { waitUntil } from '../helpers/wait.js';

const root = mkdtempSync(join(tmpdir(), 'pp-queue-hooks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('subscribe hooks', () => {
  it('onAssign picks the start offset, a rejection is retried, onRelease fires on close; order partition is offset order', async () => {
    const q = await openQueue({ engine: `file:${join(root, 'a')}` });
    await q.createTopic('t', { partitions: 2 });
    for (let i = 0; i < 40; i++) await q.publish('t', { i }, { key: `k${i % 7}`, partition: i % 2 });
    const seen = new Map<number, number[]>([
      [0, []],
      [1, []],
    ]);
    const assigned: number[] = [];
    const released: number[] = [];
    const errors: unknown[] = [];
    let failOnce = true;
    const sub = await q.subscribe<{ i: number }>('t', {
      group: 'g',
      order: 'partition',
      concurrency: 8,
      heartbeatMs: 50,
      onError: (e) => errors.push(e),
      onAssign: async (p) => {
        if (p === 1 && failOnce) {
          failOnce = false;
          throw new Error('not yet');
        }
        assigned.push(p);
        return p === 0 ? 5 : undefined;
      },
      onRelease: (p) => released.push(p),
      handler: async (d) => {
        seen.get(d.partition)!.push(d.offset);
        // Async handlers with other keys still wait their turn under order 'partition'.
        await new Promise((r) => setTimeout(r, d.offset % 3));
      },
    });
    await waitUntil(() => seen.get(0)!.length === 15 && seen.get(1)!.length === 20, 15_000, 'both partitions consumed');
    expect(seen.get(0)).toEqual(Array.from({ length: 15 }, (_, i) => i + 5)); // started at 5, in order
    expect(seen.get(1)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(errors.some((e) => (e as Error).message === 'not yet')).toBe(true);
    expect(assigned.sort()).toEqual([0, 1]);
    await sub.close();
    expect(released.sort()).toEqual([0, 1]);
    await q.close();
  });

  it('rejects bad hook options with the field named', async () => {
    const q = await openQueue({ engine: `file:${join(root, 'b')}` });
    await q.createTopic('t', { partitions: 1 });
    const field = async (o: Record<string, unknown>): Promise<string | undefined> => {
      try {
        await q.subscribe('t', { group: 'g', handler: () => undefined, ...o });
      } catch (e) {
        return (e as { field?: string }).field;
      }
      return undefined;
    };
    expect(await field({ order: 'random' })).toBe('order');
    expect(await field({ onAssign: 5 })).toBe('onAssign');
    expect(await field({ onRelease: 'x' })).toBe('onRelease');
    await q.close();
  });
});
