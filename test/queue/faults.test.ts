/**
 * Fault tests on both engines, with real child processes killed by SIGKILL (no shutdown hook, no
 * flush): a consumer killed mid-batch loses nothing (every message handled at least once), and
 * every publish acknowledged before a publisher was killed is in the log after restart. Children
 * are killed in afterEach even when a test fails.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killChildren, runUntilKilled } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { FAST, jetstreamCase, logCase, uniqueId, waitFor, type QueueCase } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const natsUp = await needEngine('nats');
const cases: QueueCase[] = [logCase(), ...(natsUp ? [jetstreamCase()] : [])];
afterEach(killChildren);
afterAll(async () => {
  await Promise.all(cases.map((c) => c.cleanup()));
});

/** Runs a fixture of this folder; SIGKILLs it when `onLine` returns true. */
function runUntil(fixture: string, args: string[], onLine: (line: string) => boolean): Promise<void> {
  return runUntilKilled(join(here, 'fixtures', fixture), args, onLine);
}

describe.each(cases)('faults: $name', (c) => {
  it('a consumer SIGKILLed mid-batch loses nothing: every message is handled at least once', async () => {
    const id = uniqueId('kc');
    const total = 1500;
    let q = await c.open({}, id);
    await q.createTopic('work', { partitions: 3 });
    const ps = [];
    for (let i = 0; i < total; i++) ps.push(q.publish('work', i, { key: `k${i % 40}` }));
    await Promise.all(ps);
    await q.close(); // the embedded log is one process at a time
    // Only completed handlers count: a message whose handler started but was killed before it
    // finished must come again after the restart (else the group committed past unfinished work).
    const handled = new Set<number>();
    const started = new Set<number>();
    let inFlightAtKill = 0;
    await runUntil('consumer-child.ts', [c.url(id), 'work', 'g'], (line) => {
      if (line.startsWith('s ')) started.add(Number(line.slice(2)));
      if (line.startsWith('h ')) handled.add(Number(line.slice(2)));
      if (handled.size < 400) return false;
      inFlightAtKill = [...started].filter((v) => !handled.has(v)).length;
      return inFlightAtKill > 0; // kill mid-batch: some handlers are running
    });
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(handled.size).toBeLessThan(total);
    const unfinished = [...started].filter((v) => !handled.has(v));
    // Restart: the group resumes from its last commit; the rest (and possibly some again) arrive.
    q = await c.open({}, id);
    const again = new Set<number>();
    const sub = await q.subscribe<number>('work', {
      group: 'g',
      ...FAST,
      handler: (m) => {
        handled.add(m.value);
        again.add(m.value);
      },
    });
    await waitFor(() => handled.size === total, 20_000, 'every message handled');
    await sub.close();
    expect([...handled].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(unfinished.filter((v) => !again.has(v))).toEqual([]);
    await q.close();
  });

  it('every publish acknowledged before the publisher was SIGKILLed is present after restart', async () => {
    const id = uniqueId('kp');
    let q = await c.open({}, id);
    await q.createTopic('events', { partitions: 3 });
    await q.close();
    const acked: number[] = [];
    await runUntil('publisher-child.ts', [c.url(id), 'events'], (line) => {
      if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
      return acked.length >= 800;
    });
    q = await c.open({}, id);
    const present = new Set<number>();
    for (let p = 0; p < 3; p++) {
      let offset: number | undefined;
      for (;;) {
        const batch = await q.read<number>('events', p, offset === undefined ? 'earliest' : { offset }, 5000);
        if (batch.length === 0) break;
        for (const m of batch) present.add(m.value);
        offset = batch[batch.length - 1]!.offset + 1;
      }
    }
    const missing = acked.filter((i) => !present.has(i));
    expect(acked.length).toBeGreaterThanOrEqual(800);
    expect(missing).toEqual([]);
    await q.close();
  });
});
