/**
 * Fault tests on both engines, with real child processes killed by SIGKILL (no shutdown hook, no
 * flush): a consumer killed mid-batch loses nothing (every message handled at least once), a busy
 * consumer killed again and again re-handles no more than its commit window each time, and every
 * publish acknowledged before a publisher was killed is in the log after restart. Children are
 * killed in afterEach even when a test fails.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killChildren, runUntilKilled } from '../helpers/child.js';
import { needEngine } from '../helpers/engines.js';
import { DEAD_LETTER_HEADERS, SUBSCRIBE_DEFAULTS } from '../../src/queue/index.js';
import { barrier, FAST, jetstreamCase, logCase, uniqueId, waitFor, type QueueCase } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const natsUp = await needEngine('nats');
const cases: QueueCase[] = [logCase(), ...(natsUp ? [jetstreamCase()] : [])];
afterEach(killChildren);
const scratch = mkdtempSync(join(tmpdir(), 'pp-faults-'));
afterAll(async () => {
  await Promise.all(cases.map((c) => c.cleanup()));
  rmSync(scratch, { recursive: true, force: true });
});

/** Seeded PRNG (mulberry32): the kill points of a run are reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const SEED = Number(process.env.PP_FAULT_SEED ?? 21);

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

  it('a busy consumer (synchronous handler) SIGKILLed again and again re-handles at most its commit window per kill', async () => {
    // A backlog of tens of thousands; a synchronous handler that blocks a few ms per message (a
    // 2 ms synchronous wait, then it appends `<value> <commits>` to a history file with writeSync +
    // fdatasyncSync before it returns); default subscribe options. Each child is SIGKILLed at a seeded point. The checker
    // reads the history, not the clock: for each kill, the records handled again by the next
    // child must be within the window the docs promise — what was handled since the last commit
    // began, counted as the records handled after the next-to-last commit the child had stored
    // (commits are serial, so the last one began after it), plus what was in flight.
    const id = uniqueId('kb');
    const total = 20_000;
    const partitions = 4;
    const kills = 3;
    const rnd = prng(SEED);
    let q = await c.open({}, id);
    await q.createTopic('busy', { partitions });
    const placeOf = new Map<number, { partition: number; offset: number }>();
    const ps = [];
    for (let i = 0; i < total; i++) ps.push(q.publish('busy', i, { key: `k${i % 200}` }).then((r) => placeOf.set(i, r)));
    await Promise.all(ps);
    await q.close();
    const history = join(scratch, `${id}.history`);
    const runs: [value: number, commits: number][][] = [];
    const seen = new Set<number>();
    /** Highest offset handled per partition so far (a next run must pass it to have re-handled all it will). */
    const high = new Array<number>(partitions).fill(-1);
    let consumed = 0;
    for (let r = 0; r <= kills; r++) {
      const target = r < kills ? 800 + Math.floor(rnd() * 1000) : 0;
      const previousHigh = [...high];
      const mine: [number, number][] = [];
      const absorb = (): void => {
        const text = readFileSync(history, 'utf8');
        const end = text.lastIndexOf('\n') + 1;
        for (const line of text.slice(consumed, end).split('\n')) {
          if (line === '') continue;
          const [v, commits] = line.split(' ').map(Number) as [number, number];
          mine.push([v, commits]);
          const at = placeOf.get(v)!;
          if (at.offset > high[at.partition]!) high[at.partition] = at.offset;
        }
        consumed = end;
      };
      await runUntil('busy-consumer-child.ts', [c.url(id), 'busy', 'g', history], (line) => {
        if (!line.startsWith('p ')) return false;
        absorb();
        // Kill once the seeded number of records is handled and every partition is past where
        // the previous child got (so all it re-handles for the previous kill is in this run).
        return mine.length >= target && high.every((h, p) => h > previousHigh[p]! || previousHigh[p]! < 0);
      });
      absorb();
      runs.push(mine);
    }
    const report: { kill: number; handled: number; commits: number; window: number; duplicates: number }[] = [];
    for (let r = 0; r < kills; r++) {
      for (const [v] of runs[r]!) seen.add(v);
      const run = runs[r]!;
      const lastCommits = Math.max(...run.map(([, k]) => k));
      const window = run.filter(([, k]) => k >= lastCommits - 1).length;
      const duplicates = runs[r + 1]!.filter(([v]) => seen.has(v)).length;
      report.push({ kill: r + 1, handled: run.length, commits: lastCommits, window, duplicates });
    }
    console.log(`busy consumer, ${c.name}, seed ${SEED}: ${JSON.stringify(report)}`);
    for (const k of report) {
      // Commits advanced while the handler kept the consumer busy (today's failure: none at all).
      expect(k.commits, `kill ${k.kill} (seed ${SEED}): commits stored before the kill`).toBeGreaterThanOrEqual(2);
      expect(k.duplicates, `kill ${k.kill} (seed ${SEED}): re-handled after the kill`).toBeLessThanOrEqual(k.window + SUBSCRIBE_DEFAULTS.concurrency);
    }
    // At least once: every record below the group's committed offsets was handled.
    for (const run of runs) for (const [v] of run) seen.add(v);
    q = await c.open({}, id);
    const committed = await q.committed('busy', 'g');
    await q.close();
    const missing = [...placeOf].filter(([v, at]) => at.offset < (committed[at.partition] ?? -1) && !seen.has(v)).map(([v]) => v);
    expect(committed.every((o) => o !== undefined)).toBe(true);
    expect(missing).toEqual([]);
  });

  it('a redelivery after a crash keeps its attempt count; a record delivered deliveriesMax times goes to the dead letter without another delivery', async () => {
    const id = uniqueId('ka');
    let q = await c.open({}, id);
    await q.createTopic('wait', { partitions: 1 });
    await q.createTopic('hang', { partitions: 1 });
    await q.publish('wait', 'w');
    await q.publish('hang', 'h');
    await q.close();
    const seen: string[] = [];
    await runUntil('attempts-child.ts', [c.url(id)], (line) => {
      if (line.startsWith('a ')) seen.push(line.slice(2));
      return line === 'k';
    });
    expect(seen.sort()).toEqual(['hang 1', 'hang 2', 'wait 1', 'wait 2']);
    q = await c.open({}, id);
    const waitAttempts: number[] = [];
    const hangValues: unknown[] = [];
    const sentinels = new Set<string>();
    const w = await q.subscribe('wait', { group: 'g', deliveriesMax: 5, ...FAST, handler: (m) => void waitAttempts.push(m.attempt) });
    const h = await q.subscribe<{ sentinel?: string }>('hang', {
      group: 'g',
      deliveriesMax: 2,
      ...FAST,
      handler: (m) => {
        if (m.value.sentinel === undefined) hangValues.push(m.value);
        else sentinels.add(m.value.sentinel);
      },
    });
    await waitFor(() => waitAttempts.length > 0, 10_000, 'the waiting record redelivered');
    // Two failed deliveries before the crash: this one is the third.
    expect(waitAttempts).toEqual([3]);
    await waitFor(() => h.stats().deadLettered === 1, 10_000, 'the hung record dead-lettered');
    await barrier(q, 'hang', (t) => sentinels.has(t));
    expect(hangValues).toEqual([]);
    expect(h.stats().delivered).toBe(sentinels.size);
    const dead = await q.read('hang-dlq', 0);
    expect(dead.map((m) => [m.value, m.headers[DEAD_LETTER_HEADERS.attempts]])).toEqual([['h', '2']]);
    expect(dead[0]!.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/delivered 2 times/);
    await w.close();
    await h.close();
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
