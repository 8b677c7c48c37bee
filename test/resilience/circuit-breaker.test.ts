import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PowerplantError } from '../../src/errors/index.js';
import { isPowerplantError, ppError } from '../../src/errors/index.js';
import { CircuitBreaker, REJECTED, isBreakerFailure, type CircuitStateChange } from '../../src/resilience/index.js';
import { FakeClock } from './fake-clock.js';

const failure = ppError('PP_ERR_UNAVAILABLE');

function fail(b: CircuitBreaker, n: number): void {
  for (let i = 0; i < n; i++) {
    expect(b.tryAcquire()).toBe(true);
    b.onFailure(failure);
  }
}
function succeed(b: CircuitBreaker, n: number): void {
  for (let i = 0; i < n; i++) {
    expect(b.tryAcquire()).toBe(true);
    b.onSuccess();
  }
}

describe('CircuitBreaker', () => {
  it('does not trip below the minimum throughput, even at 100% failures; trips when it is reached', () => {
    const b = new CircuitBreaker({ throughputMin: 10, failureRateThreshold: 0.5, window: { kind: 'count', size: 20 }, clock: new FakeClock() });
    fail(b, 9);
    expect(b.state).toBe('closed');
    fail(b, 1);
    expect(b.state).toBe('open');
  });

  it('does not trip below the failure-rate threshold; trips at it', () => {
    const b = new CircuitBreaker({ throughputMin: 10, failureRateThreshold: 0.5, window: { kind: 'count', size: 10 }, clock: new FakeClock() });
    succeed(b, 6);
    fail(b, 4);
    expect(b.state).toBe('closed');
    expect(b.stats()).toMatchObject({ calls: 10, failures: 4 });
    // The count window slides: each new failure evicts the oldest success.
    fail(b, 1);
    expect(b.state).toBe('open');
  });

  it('the count window forgets outcomes older than its size', () => {
    const b = new CircuitBreaker({ throughputMin: 4, failureRateThreshold: 0.75, window: { kind: 'count', size: 4 }, clock: new FakeClock() });
    fail(b, 2);
    succeed(b, 4);
    expect(b.stats()).toMatchObject({ calls: 4, failures: 0 });
    fail(b, 2);
    expect(b.state).toBe('closed');
  });

  it('the time window forgets outcomes older than windowMs', () => {
    const clock = new FakeClock(0);
    const b = new CircuitBreaker({ throughputMin: 5, failureRateThreshold: 0.5, window: { kind: 'time', windowMs: 1_000, buckets: 10 }, clock });
    fail(b, 4);
    clock.advance(1_000);
    expect(b.stats()).toMatchObject({ calls: 0, failures: 0 });
    fail(b, 4);
    expect(b.state).toBe('closed');
    clock.advance(500);
    fail(b, 1);
    expect(b.state).toBe('open');
  });

  it('property: window totals match a reference model (count and time windows, arbitrary clock jumps)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('outcome' as const), failed: fc.boolean() }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 5_000 })) }),
    );
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 100, max: 2_000 }),
      fc.integer({ min: 1, max: 10 }),
      fc.boolean(),
      fc.array(op, { maxLength: 200, size: 'max' }),
      (size, windowMs, buckets, byTime, ops) => {
        const clock = new FakeClock(0);
        const window = byTime ? { kind: 'time' as const, windowMs, buckets } : { kind: 'count' as const, size };
        // throughputMin out of reach: the breaker only counts, never trips.
        const b = new CircuitBreaker({ window, throughputMin: 1_000_000, clock });
        const bucketMs = windowMs / buckets;
        const events: { index: number; failed: boolean }[] = [];
        for (const o of ops) {
          if (o.kind === 'advance') clock.advance(o.ms);
          else {
            expect(b.tryAcquire()).toBe(true);
            if (o.failed) b.onFailure(failure);
            else b.onSuccess();
            events.push({ index: Math.floor(clock.now() / bucketMs), failed: o.failed });
          }
          const current = Math.floor(clock.now() / bucketMs);
          const inWindow = byTime ? events.filter((e) => e.index > current - buckets) : events.slice(-size);
          expect(b.stats()).toMatchObject({ calls: inWindow.length, failures: inWindow.filter((e) => e.failed).length });
        }
      },
    ));
  });

  it('rejects while open with PP_ERR_CIRCUIT_OPEN carrying retryAfterMs, then half-opens after openMs', async () => {
    const clock = new FakeClock(0);
    const b = new CircuitBreaker({ throughputMin: 2, openMs: 1_000, clock, name: 'users' });
    fail(b, 2);
    clock.advance(300);
    const err = await b.execute(async () => 1).catch((e: unknown) => e);
    expect(isPowerplantError(err, 'PP_ERR_CIRCUIT_OPEN')).toBe(true);
    expect((err as PowerplantError).retryAfterMs).toBe(700);
    expect((err as PowerplantError).retryable).toBe(true);
    expect(b.acquire()).toBe(REJECTED);
    clock.advance(700);
    expect(b.state).toBe('half-open');
  });

  it('half-open admits at most halfOpenProbesMax, closes after successesToClose successes', () => {
    const clock = new FakeClock(0);
    const b = new CircuitBreaker({ throughputMin: 2, openMs: 100, halfOpenProbesMax: 2, successesToClose: 3, clock });
    fail(b, 2);
    clock.advance(100);
    const p1 = b.acquire();
    const p2 = b.acquire();
    expect(p1).not.toBe(REJECTED);
    expect(p2).not.toBe(REJECTED);
    expect(b.acquire()).toBe(REJECTED);
    b.onSuccess(p1);
    expect(b.state).toBe('half-open');
    const p3 = b.acquire();
    b.onSuccess(p2);
    b.onSuccess(p3);
    expect(b.state).toBe('closed');
    expect(b.stats()).toMatchObject({ calls: 0, failures: 0 });
  });

  it('a failing probe reopens, with backoff on consecutive opens, reset on close', () => {
    const clock = new FakeClock(0);
    const changes: CircuitStateChange[] = [];
    const b = new CircuitBreaker({ throughputMin: 2, openMs: 100, openBackoff: { factor: 2, openMsMax: 300 }, clock, onStateChange: (c) => changes.push(c) });
    fail(b, 2);
    clock.advance(100);
    fail(b, 1); // probe fails -> open for 200
    expect(b.state).toBe('open');
    expect(b.retryAfterMs()).toBe(200);
    clock.advance(200);
    fail(b, 1); // -> open for 300 (capped, not 400)
    expect(b.retryAfterMs()).toBe(300);
    clock.advance(300);
    succeed(b, 1);
    expect(b.state).toBe('closed');
    fail(b, 2);
    expect(b.retryAfterMs()).toBe(100);
    expect(changes.map((c) => `${c.from}>${c.to}`)).toEqual([
      'closed>open', 'open>half-open', 'half-open>open', 'open>half-open', 'half-open>open', 'open>half-open', 'half-open>closed', 'closed>open',
    ]);
    expect(changes[0]).toMatchObject({ calls: 2, failures: 2, openMs: 100 });
  });

  it('client errors do not count as failures by default; other errors do', async () => {
    expect(isBreakerFailure(ppError('PP_ERR_VALIDATION'))).toBe(false);
    expect(isBreakerFailure(ppError('PP_ERR_NOT_FOUND'))).toBe(false);
    expect(isBreakerFailure(ppError('PP_ERR_CONFLICT'))).toBe(false);
    expect(isBreakerFailure(ppError('PP_ERR_TIMEOUT'))).toBe(true);
    expect(isBreakerFailure(ppError('PP_ERR_RATE_LIMITED'))).toBe(true);
    expect(isBreakerFailure(new TypeError('x'))).toBe(true);
    const b = new CircuitBreaker({ throughputMin: 3, clock: new FakeClock() });
    for (let i = 0; i < 5; i++) await b.execute(async () => { throw ppError('PP_ERR_NOT_FOUND'); }).catch(() => undefined);
    expect(b.stats()).toMatchObject({ state: 'closed', calls: 5, failures: 0 });
    const custom = new CircuitBreaker({ throughputMin: 1, isFailure: () => true, clock: new FakeClock() });
    await custom.execute(async () => { throw ppError('PP_ERR_NOT_FOUND'); }).catch(() => undefined);
    expect(custom.state).toBe('open');
  });

  it('execute passes results and errors through', async () => {
    const b = new CircuitBreaker({ clock: new FakeClock() });
    await expect(b.execute(async () => 'v')).resolves.toBe('v');
    await expect(b.execute(async () => { throw failure; })).rejects.toBe(failure);
    expect(b.stats()).toMatchObject({ calls: 2, failures: 1 });
  });

  it('outcomes of calls admitted before a state change are ignored (stale permits)', () => {
    const clock = new FakeClock(0);
    const b = new CircuitBreaker({ throughputMin: 2, openMs: 100, halfOpenProbesMax: 1, clock });
    const slow = b.acquire();
    fail(b, 2);
    clock.advance(100);
    const probe = b.acquire();
    expect(b.acquire()).toBe(REJECTED);
    b.onSuccess(slow); // stale: must not close the breaker or free the probe slot
    expect(b.state).toBe('half-open');
    expect(b.acquire()).toBe(REJECTED);
    b.onSuccess(probe);
    expect(b.state).toBe('closed');
  });

  it('property: half-open never has more probes in flight than configured; trips only with enough calls', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('acquire' as const) }),
      fc.record({ kind: fc.constant('success' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('failure' as const), pick: fc.nat(), client: fc.boolean() }),
      fc.record({ kind: fc.constant('ignore' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 400 }) }),
    );
    const windowArb = fc.oneof(
      fc.record({ kind: fc.constant('count' as const), size: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ kind: fc.constant('time' as const), windowMs: fc.integer({ min: 100, max: 2_000 }), buckets: fc.integer({ min: 1, max: 10 }) }),
    );
    fc.assert(fc.property(
      windowArb,
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 10 }),
      fc.double({ min: 0.01, max: 1, noNaN: true }),
      fc.array(op, { maxLength: 300, size: 'max' }),
      (window, halfOpenProbesMax, successesToClose, throughputMin, failureRateThreshold, ops) => {
        const clock = new FakeClock(0);
        let probes = new Set<number>();
        const changes: CircuitStateChange[] = [];
        const b = new CircuitBreaker({
          window, halfOpenProbesMax, successesToClose, throughputMin, failureRateThreshold, openMs: 300, clock,
          onStateChange: (c) => {
            changes.push(c);
            probes = new Set();
          },
        });
        const outstanding: { id: number; permit: number }[] = [];
        let nextId = 0;
        for (const o of ops) {
          if (o.kind === 'advance') clock.advance(o.ms);
          else if (o.kind === 'acquire') {
            const permit = b.acquire();
            if (permit !== REJECTED) {
              const id = nextId++;
              outstanding.push({ id, permit });
              if (b.state === 'half-open') probes.add(id);
            }
          } else if (outstanding.length > 0) {
            const [call] = outstanding.splice(o.pick % outstanding.length, 1);
            if (call === undefined) continue;
            probes.delete(call.id);
            if (o.kind === 'success') b.onSuccess(call.permit);
            else if (o.kind === 'ignore') b.onIgnore(call.permit);
            else b.onFailure(o.client ? ppError('PP_ERR_VALIDATION') : failure, call.permit);
          }
          expect(probes.size).toBeLessThanOrEqual(halfOpenProbesMax);
          if (b.state === 'half-open') expect(b.probes).toBe(probes.size);
        }
        for (const c of changes) {
          if (c.from === 'closed' && c.to === 'open') {
            expect(c.calls).toBeGreaterThanOrEqual(throughputMin);
            expect(c.failures).toBeGreaterThanOrEqual(failureRateThreshold * c.calls);
          }
        }
      },
    ), { numRuns: 300 });
  });

  it('property: a half-open breaker recovers when probes succeed and reopens when one fails', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.boolean(), (maxProbes, successesToClose, probeFails) => {
      const clock = new FakeClock(0);
      const b = new CircuitBreaker({ throughputMin: 1, openMs: 50, halfOpenProbesMax: maxProbes, successesToClose, clock });
      fail(b, 1);
      clock.advance(50);
      if (probeFails) {
        fail(b, 1);
        expect(b.state).toBe('open');
        return;
      }
      let closedAfter = 0;
      while (b.state === 'half-open') {
        succeed(b, 1);
        closedAfter++;
        expect(closedAfter).toBeLessThanOrEqual(successesToClose);
      }
      expect(b.state).toBe('closed');
      expect(closedAfter).toBe(successesToClose);
    }));
  });

  it('a closed breaker with a count window reads no clock (the default clock allocates per read)', () => {
    let reads = 0;
    const clock = { now: (): number => { reads++; return 1_000; } };
    const b = new CircuitBreaker({ throughputMin: 3, openMs: 100, clock });
    succeed(b, 2);
    fail(b, 1); // 1 of 3 failed: below the 0.5 threshold
    expect(reads).toBe(0);
    fail(b, 1); // 2 of 4: trips, and the state change is stamped with the time
    expect(reads).toBeGreaterThan(0);
    expect(b.state).toBe('open');
    const timed = new CircuitBreaker({ window: { kind: 'time', windowMs: 1_000 }, clock });
    reads = 0;
    succeed(timed, 1);
    expect(reads).toBe(1); // a time window must know when each outcome happened
  });

  it('rejects invalid options with typed errors', () => {
    expect(() => new CircuitBreaker({ failureRateThreshold: 0 })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'failureRateThreshold' }));
    expect(() => new CircuitBreaker({ window: { kind: 'count', size: 0 } })).toThrow(expect.objectContaining({ field: 'window.size' }));
    expect(() => new CircuitBreaker({ openMs: 100, openBackoff: { factor: 2, openMsMax: 50 } })).toThrow(expect.objectContaining({ field: 'openBackoff.openMsMax' }));
  });
});
