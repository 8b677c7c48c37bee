import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PowerplantError } from '../../src/errors/index.js';
import { isPowerplantError, ppError } from '../../src/errors/index.js';
import { Deadline, withTimeout } from '../../src/resilience/index.js';
import { FakeClock } from './fake-clock.js';

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

describe('withTimeout', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('rejects with retryable PP_ERR_TIMEOUT after timeoutMs, aborts the inner signal and leaves no timer', async () => {
    let inner: AbortSignal | undefined;
    const p = withTimeout((signal) => {
      inner = signal;
      return never<number>();
    }, { timeoutMs: 100 });
    const settled = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(99);
    expect(inner?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = await settled;
    expect(isPowerplantError(err, 'PP_ERR_TIMEOUT')).toBe(true);
    expect((err as PowerplantError).retryable).toBe(true);
    expect(inner?.aborted).toBe(true);
    expect(inner?.reason).toBe(err);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('resolves with the result and clears its timer; the inner signal stays unaborted', async () => {
    let inner: AbortSignal | undefined;
    const value = await withTimeout(async (signal) => {
      inner = signal;
      return 42;
    }, { timeoutMs: 1_000 });
    expect(value).toBe(42);
    expect(vi.getTimerCount()).toBe(0);
    expect(inner?.aborted).toBe(false);
  });

  it('passes fn rejections through unchanged and clears its timer', async () => {
    const boom = new Error('boom');
    await expect(withTimeout(() => Promise.reject(boom), { timeoutMs: 1_000 })).rejects.toBe(boom);
    expect(vi.getTimerCount()).toBe(0);
    const sync = new Error('sync');
    await expect(withTimeout(() => { throw sync; }, { timeoutMs: 1_000 })).rejects.toBe(sync);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a parent abort rejects with non-retryable PP_ERR_ABORTED, aborts the inner signal and removes its listener', async () => {
    const parent = new AbortController();
    let inner: AbortSignal | undefined;
    const p = withTimeout((signal) => {
      inner = signal;
      return never<void>();
    }, { timeoutMs: 1_000, signal: parent.signal });
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
    parent.abort(new Error('user went away'));
    const err = await p.catch((e: unknown) => e);
    expect(isPowerplantError(err, 'PP_ERR_ABORTED')).toBe(true);
    expect((err as PowerplantError).retryable).toBe(false);
    expect(inner?.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });

  it('removes the parent listener on success too', async () => {
    const parent = new AbortController();
    await withTimeout(async () => 1, { timeoutMs: 1_000, signal: parent.signal });
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });

  it('an already-aborted parent rejects without calling fn', async () => {
    const parent = new AbortController();
    parent.abort();
    const fn = vi.fn(async () => 1);
    await expect(withTimeout(fn, { timeoutMs: 1_000, signal: parent.signal })).rejects.toMatchObject({ code: 'PP_ERR_ABORTED' });
    expect(fn).not.toHaveBeenCalled();
  });

  it('a late result after the timeout is dropped', async () => {
    let resolveLate: (v: number) => void = () => undefined;
    const p = withTimeout(() => new Promise<number>((r) => { resolveLate = r; }), { timeoutMs: 10 });
    const settled = p.then((v) => ({ v }), (e: unknown) => ({ e }));
    await vi.advanceTimersByTimeAsync(10);
    resolveLate(7);
    const out = await settled;
    expect('e' in out && isPowerplantError(out.e, 'PP_ERR_TIMEOUT')).toBe(true);
  });

  it('uses the earlier of timeoutMs and the deadline', async () => {
    const clock = new FakeClock(1_000);
    const deadline = Deadline.after(30, clock);
    const p = withTimeout(() => never<void>(), { timeoutMs: 1_000, deadline }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(30);
    expect(isPowerplantError(await p, 'PP_ERR_TIMEOUT')).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an expired deadline rejects at once; invalid timeouts are typed errors', async () => {
    const clock = new FakeClock(0);
    const deadline = new Deadline(-1, clock);
    const fn = vi.fn(async () => 1);
    await expect(withTimeout(fn, { timeoutMs: 10, deadline })).rejects.toMatchObject({ code: 'PP_ERR_TIMEOUT' });
    expect(fn).not.toHaveBeenCalled();
    expect(() => withTimeout(fn, { timeoutMs: -1 })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'timeoutMs' }));
  });
});

describe('Deadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('tracks remaining time on its clock and never goes negative', () => {
    const clock = new FakeClock(500);
    const d = Deadline.after(100, clock);
    expect(d.atMs).toBe(600);
    expect(d.remainingMs()).toBe(100);
    clock.advance(60);
    expect(d.remainingMs()).toBe(40);
    expect(d.expired()).toBe(false);
    expect(d.within(10).atMs).toBe(570);
    expect(d.within(1_000).atMs).toBe(600);
    clock.advance(100);
    expect(d.remainingMs()).toBe(0);
    expect(d.expired()).toBe(true);
    expect(() => d.throwIfExpired()).toThrow(expect.objectContaining({ code: 'PP_ERR_TIMEOUT' }));
    expect(Deadline.never(clock).remainingMs()).toBe(Infinity);
    expect(() => d.within(Number.NaN)).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'ms' }));
  });

  it('its signal aborts with PP_ERR_TIMEOUT at the deadline, and dispose clears the timer', async () => {
    vi.useFakeTimers();
    const clock = new FakeClock(0);
    const d = Deadline.after(50, clock);
    const signal = d.signal;
    expect(d.signal).toBe(signal);
    await vi.advanceTimersByTimeAsync(49);
    expect(signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(signal.aborted).toBe(true);
    expect(isPowerplantError(signal.reason, 'PP_ERR_TIMEOUT')).toBe(true);

    const d2 = Deadline.after(50, clock);
    void d2.signal;
    expect(vi.getTimerCount()).toBe(1);
    d2.dispose();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a parent aborted by a deadline surfaces PP_ERR_TIMEOUT through withTimeout', async () => {
    const controller = new AbortController();
    controller.abort(ppError('PP_ERR_TIMEOUT'));
    await expect(withTimeout(async () => 1, { timeoutMs: 100, signal: controller.signal })).rejects.toMatchObject({ code: 'PP_ERR_TIMEOUT' });
  });
});
