import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FailureDetector, elapsedForPhiNormal, phiNormal, type NodeStatusChange } from '../../src/resilience/index.js';
import { FakeClock } from './fake-clock.js';

function regular(d: FailureDetector, clock: FakeClock, nodeId: string, beats: number, intervalMs: number): void {
  for (let i = 0; i < beats; i++) {
    clock.advance(intervalMs);
    d.heartbeat(nodeId);
  }
}

describe('FailureDetector (phi accrual)', () => {
  it('regular heartbeats keep a node alive, checked just before each beat', () => {
    const clock = new FakeClock(0);
    const d = new FailureDetector({ clock });
    d.heartbeat('a');
    for (let i = 0; i < 500; i++) {
      clock.advance(999);
      expect(d.status('a')).toBe('alive');
      clock.advance(1);
      d.heartbeat('a');
    }
    expect(d.phi('a')).toBeLessThan(1);
  });

  it('silence makes a node suspect, then dead within the documented bound; resumed beats make it alive', () => {
    const clock = new FakeClock(0);
    const changes: NodeStatusChange[] = [];
    const d = new FailureDetector({ clock, suspectPhi: 3, deadPhi: 8, deadAfterMs: 10_000, onStatusChange: (c) => changes.push(c) });
    d.heartbeat('a');
    regular(d, clock, 'a', 50, 1_000);
    const lastMs = clock.now();
    const bound = d.detectionMs('a');
    expect(bound).toBeLessThanOrEqual(10_000);
    let suspectAt = -1;
    let deadAt = -1;
    for (let t = 0; t <= 20_000; t += 10) {
      clock.ms = lastMs + t;
      const s = d.status('a');
      if (s === 'suspect' && suspectAt < 0) suspectAt = t;
      if (s === 'dead') { deadAt = t; break; }
    }
    expect(suspectAt).toBeGreaterThan(1_000);
    expect(deadAt).toBeGreaterThan(suspectAt);
    // Sampled every 10 ms: the first dead sample is the first one at or after the bound.
    expect(deadAt).toBeGreaterThanOrEqual(bound);
    expect(deadAt - bound).toBeLessThan(10);
    clock.ms = lastMs + bound - 1;
    expect(d.phi('a')).toBeLessThan(8);
    d.heartbeat('a');
    expect(d.status('a')).toBe('alive');
    expect(changes.map((c) => `${c.from}>${c.to}`)).toEqual(['alive>suspect', 'suspect>dead', 'dead>alive']);
    expect(changes[1]?.nodeId).toBe('a');
  });

  it('property: a node silent for deadAfterMs is dead, whatever its history', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 1, max: 5_000 }), { minLength: 0, maxLength: 100, size: 'max' }),
      fc.integer({ min: 1, max: 30_000 }),
      fc.double({ min: 0.5, max: 20, noNaN: true }),
      (intervals, deadAfterMs, deadPhi) => {
        const clock = new FakeClock(0);
        const d = new FailureDetector({ clock, deadAfterMs, deadPhi, suspectPhi: Math.min(1, deadPhi), samplesMax: 50 });
        d.heartbeat('n');
        for (const ms of intervals) {
          clock.advance(ms);
          d.heartbeat('n');
        }
        expect(d.detectionMs('n')).toBeLessThanOrEqual(deadAfterMs);
        clock.advance(deadAfterMs);
        expect(d.status('n')).toBe('dead');
        expect(d.stats('n').samples).toBeLessThanOrEqual(50);
      },
    ));
  });

  it('property: phi is non-decreasing with silence', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 1, max: 3_000 }), { minLength: 0, maxLength: 60, size: 'max' }),
      fc.array(fc.double({ min: 0, max: 500, noNaN: true }), { minLength: 1, maxLength: 100, size: 'max' }),
      fc.integer({ min: 0, max: 2_000 }),
      (intervals, steps, acceptablePauseMs) => {
        const clock = new FakeClock(0);
        const d = new FailureDetector({ clock, acceptablePauseMs, deadAfterMs: Infinity });
        d.heartbeat('n');
        for (const ms of intervals) {
          clock.advance(ms);
          d.heartbeat('n');
        }
        let previous = d.phi('n');
        expect(previous).toBeGreaterThanOrEqual(0);
        for (const ms of steps) {
          clock.advance(ms);
          const phi = d.phi('n');
          expect(phi).toBeGreaterThanOrEqual(previous);
          previous = phi;
        }
      },
    ));
  });

  it('property: elapsedForPhiNormal inverts phiNormal', () => {
    fc.assert(fc.property(
      fc.double({ min: 0.01, max: 30, noNaN: true }),
      fc.double({ min: 1, max: 10_000, noNaN: true }),
      fc.double({ min: 1, max: 5_000, noNaN: true }),
      (phi, meanMs, stdDevMs) => {
        const elapsed = elapsedForPhiNormal(phi, meanMs, stdDevMs);
        expect(phiNormal(elapsed, meanMs, stdDevMs)).toBeCloseTo(phi, 6);
      },
    ));
  });

  it('phi matches the normal tail: ~0.301 at the mean, ~1 at mean + 1.28 sd', () => {
    expect(phiNormal(1_000, 1_000, 100)).toBeCloseTo(Math.log10(2), 10);
    // P(Z > 1.2816) = 0.1 -> phi = 1 (the logistic approximation is within 1e-2 here)
    expect(phiNormal(1_128.16, 1_000, 100)).toBeCloseTo(1, 1);
    // Far in the tail phi keeps growing and stays finite (no overflow to NaN or Infinity).
    expect(phiNormal(1e9, 1_000, 100)).toBeGreaterThan(1e15);
    expect(Number.isFinite(phiNormal(1e9, 1_000, 100))).toBe(true);
  });

  it('an acceptable pause delays suspicion', () => {
    const clock = new FakeClock(0);
    const strict = new FailureDetector({ clock });
    const lenient = new FailureDetector({ clock, acceptablePauseMs: 3_000 });
    for (const d of [strict, lenient]) d.heartbeat('a');
    for (let i = 0; i < 20; i++) {
      clock.advance(1_000);
      strict.heartbeat('a');
      lenient.heartbeat('a');
    }
    clock.advance(2_500);
    expect(strict.status('a')).not.toBe('alive');
    expect(lenient.status('a')).toBe('alive');
  });

  it('tracks many nodes, removes them, refuses unknown ones and more than nodesMax', () => {
    const clock = new FakeClock(0);
    const d = new FailureDetector({ clock, nodesMax: 2 });
    d.heartbeat('a');
    d.heartbeat('b');
    expect(d.nodes().sort()).toEqual(['a', 'b']);
    expect(() => d.heartbeat('c')).toThrow(expect.objectContaining({ code: 'PP_ERR_TOO_LARGE' }));
    expect(d.remove('a')).toBe(true);
    expect(d.remove('a')).toBe(false);
    expect(d.has('a')).toBe(false);
    expect(() => d.status('a')).toThrow(expect.objectContaining({ code: 'PP_ERR_NOT_FOUND', field: 'nodeId' }));
    d.heartbeat('c');
    expect(d.nodes().sort()).toEqual(['b', 'c']);
  });

  it('check() reports transitions of all nodes; a long outage is not added to the history', () => {
    const clock = new FakeClock(0);
    const changes: string[] = [];
    const d = new FailureDetector({ clock, deadAfterMs: 5_000, onStatusChange: (c) => changes.push(`${c.nodeId}:${c.to}`) });
    d.heartbeat('a');
    d.heartbeat('b');
    regular(d, clock, 'a', 10, 1_000);
    d.check();
    expect(changes).toContain('b:dead');
    const before = d.stats('a');
    clock.advance(60_000);
    d.check();
    d.heartbeat('a');
    expect(d.stats('a').meanMs).toBeCloseTo(before.meanMs, 6);
    expect(changes.filter((c) => c.startsWith('a:'))).toEqual(['a:dead', 'a:alive']);
  });

  it('rejects invalid options with typed errors', () => {
    expect(() => new FailureDetector({ suspectPhi: 5, deadPhi: 3 })).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'deadPhi' }));
    expect(() => new FailureDetector({ samplesMax: 1 })).toThrow(expect.objectContaining({ field: 'samplesMax' }));
    // A NaN time would make every later interval NaN: refused before it touches the history.
    const fd = new FailureDetector({ clock: new FakeClock(0) });
    fd.heartbeat('a', 0);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => fd.heartbeat('a', bad)).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'nowMs' }));
      expect(() => fd.status('a', bad)).toThrow(expect.objectContaining({ field: 'nowMs' }));
    }
    fd.heartbeat('a', 1_000);
    expect(fd.stats('a').meanMs).toBeCloseTo(1_000, 6);
  });
});
