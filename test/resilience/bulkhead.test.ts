import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { Bulkhead } from '../../src/resilience/index.js';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}
function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('Bulkhead', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('property: never runs more than concurrentMax, never queues more than queueMax, starts in FIFO order', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 5 }),
      fc.array(fc.record({ arriveMs: fc.integer({ min: 0, max: 50 }), durationMs: fc.integer({ min: 0, max: 40 }), throws: fc.boolean() }), { maxLength: 40, size: 'max' }),
      async (concurrentMax, queueMax, tasks) => {
        vi.useFakeTimers();
        try {
          const b = new Bulkhead({ concurrentMax, queueMax });
          let running = 0;
          let maxRunning = 0;
          let maxActive = 0;
          let maxQueued = 0;
          const started: number[] = [];
          const admitted: number[] = [];
          let rejected = 0;
          let settled = 0;
          tasks.forEach((t, i) => {
            setTimeout(() => {
              const queuedBefore = b.queued;
              const activeBefore = b.active;
              b.run(async () => {
                running++;
                started.push(i);
                // Recorded, not asserted here: an expect inside the task would just reject the task.
                maxRunning = Math.max(maxRunning, running);
                await new Promise((r) => setTimeout(r, t.durationMs));
                running--;
                if (t.throws) throw new Error('task failed');
              }).then(
                () => { settled++; },
                (e: unknown) => {
                  settled++;
                  if (isPowerplantError(e, 'PP_ERR_BULKHEAD_FULL')) rejected++;
                },
              );
              const full = activeBefore === concurrentMax && queuedBefore === queueMax;
              if (!full) admitted.push(i);
              maxActive = Math.max(maxActive, b.active);
              maxQueued = Math.max(maxQueued, b.queued);
            }, t.arriveMs);
          });
          await vi.runAllTimersAsync();
          await flush();
          expect(maxRunning).toBeLessThanOrEqual(concurrentMax);
          expect(maxActive).toBeLessThanOrEqual(concurrentMax);
          expect(maxQueued).toBeLessThanOrEqual(queueMax);
          expect(settled).toBe(tasks.length);
          expect(rejected).toBe(tasks.length - admitted.length);
          expect(started).toEqual(admitted);
          expect(b.active).toBe(0);
          expect(b.queued).toBe(0);
        } finally {
          vi.useRealTimers();
        }
      },
    ), { numRuns: 60 });
  });

  it('rejects with typed PP_ERR_BULKHEAD_FULL when slots and queue are full', async () => {
    const b = new Bulkhead({ concurrentMax: 1, queueMax: 1, name: 'payments' });
    const d = deferred();
    const first = b.run(() => d.promise);
    const second = b.run(async () => 'second');
    expect(b.active).toBe(1);
    expect(b.queued).toBe(1);
    const err = await b.run(async () => 'third').catch((e: unknown) => e);
    expect(isPowerplantError(err, 'PP_ERR_BULKHEAD_FULL')).toBe(true);
    expect(err).toMatchObject({ retryable: true, data: { bulkhead: 'payments', reason: 'queue full' } });
    d.resolve();
    await first;
    await expect(second).resolves.toBe('second');
    expect(b.active).toBe(0);
  });

  it('a queued call is rejected after queueWaitMsMax and leaves the queue', async () => {
    vi.useFakeTimers();
    const b = new Bulkhead({ concurrentMax: 1, queueMax: 5, queueWaitMsMax: 100 });
    const d = deferred();
    const first = b.run(() => d.promise);
    const ran = vi.fn(async () => undefined);
    const waiting = b.run(ran).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(isPowerplantError(await waiting, 'PP_ERR_BULKHEAD_FULL')).toBe(true);
    expect(b.queued).toBe(0);
    d.resolve();
    await first;
    expect(ran).not.toHaveBeenCalled();
    expect(b.active).toBe(0);
  });

  it('an aborted queued call leaves the queue with PP_ERR_ABORTED; a started one clears its timer', async () => {
    vi.useFakeTimers();
    const b = new Bulkhead({ concurrentMax: 1, queueMax: 5, queueWaitMsMax: 1_000 });
    const d = deferred();
    const first = b.run(() => d.promise);
    const controller = new AbortController();
    const aborted = b.run(async () => 'no', controller.signal).catch((e: unknown) => e);
    const next = b.run(async () => 'yes');
    expect(b.queued).toBe(2);
    controller.abort();
    expect(isPowerplantError(await aborted, 'PP_ERR_ABORTED')).toBe(true);
    expect(b.queued).toBe(1);
    d.resolve();
    await first;
    await expect(next).resolves.toBe('yes');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a function that throws synchronously releases its slot', async () => {
    const b = new Bulkhead({ concurrentMax: 1, queueMax: 0 });
    await expect(b.run(() => { throw new Error('sync'); })).rejects.toThrow('sync');
    expect(b.active).toBe(0);
    await expect(b.run(async () => 1)).resolves.toBe(1);
  });

  it('tryAcquire/release for self-managed calls respects FIFO and the limit', async () => {
    const b = new Bulkhead({ concurrentMax: 1, queueMax: 1 });
    expect(b.tryAcquire()).toBe(true);
    expect(b.tryAcquire()).toBe(false);
    const queued = b.run(async () => 'q');
    b.release();
    await expect(queued).resolves.toBe('q');
    expect(b.active).toBe(0);
    expect(() => b.release()).toThrow(expect.objectContaining({ code: 'PP_ERR_INTERNAL' }));
  });

  it('rejects invalid options with typed errors', () => {
    expect(() => new Bulkhead({ concurrentMax: 0 })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'concurrentMax' }));
    expect(() => new Bulkhead({ queueMax: -1 })).toThrow(expect.objectContaining({ field: 'queueMax' }));
  });

  it('still accepts the deprecated maxConcurrent / maxQueue, and refuses an old name that contradicts the new one', () => {
    const b = new Bulkhead({ maxConcurrent: 3, maxQueue: 7 });
    expect([b.concurrentMax, b.queueMax]).toEqual([3, 7]);
    expect(new Bulkhead({ concurrentMax: 3, maxConcurrent: 3 }).concurrentMax).toBe(3);
    expect(() => new Bulkhead({ queueMax: 5, maxQueue: 6 })).toThrow(expect.objectContaining({
      code: 'PP_ERR_INVALID_ARGUMENT', field: 'queueMax', message: expect.stringMatching(/queueMax.*maxQueue/),
    }));
  });
});
