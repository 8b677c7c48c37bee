import { describe, expect, it } from 'vitest';
import { simulateBalance, simulationCells, type SimulateOptions } from '../../src/balance/index.js';
import { formatTable } from '../../src/util/index.js';

describe('simulateBalance', () => {
  const small = { servers: 20, requests: 3000 } as const;

  it('is deterministic for a seed, and a different seed gives different numbers', () => {
    const a = simulateBalance({ ...small, seed: 3 });
    const b = simulateBalance({ ...small, seed: 3 });
    const c = simulateBalance({ ...small, seed: 4 });
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('returns one row per strategy with sane numbers, and a table naming every strategy', () => {
    const rows = simulateBalance(small);
    expect(rows.map((r) => r.strategy)).toEqual(['random', 'round-robin', 'weighted-round-robin', 'least-outstanding', 'p2c', 'consistent-hash']);
    for (const r of rows) {
      expect(r.maxOverMean).toBeGreaterThanOrEqual(1);
      expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
      expect(r.p50Ms).toBeGreaterThan(0);
    }
    const table = formatTable(simulationCells(rows));
    for (const r of rows) expect(table).toContain(r.strategy);
  });

  it('load-aware strategies beat random on a heterogeneous fleet (p99 and spread)', () => {
    const rows = new Map(simulateBalance({ servers: 50, requests: 10_000 }).map((r) => [r.strategy, r]));
    const random = rows.get('random');
    for (const s of ['least-outstanding', 'p2c'] as const) {
      expect(rows.get(s)?.p99Ms).toBeLessThan(random?.p99Ms as number);
      expect(rows.get(s)?.maxOverMean).toBeLessThan(random?.maxOverMean as number);
    }
  });

  it('reports utilisation beside occupancy: at most 1, and never above the occupancy', () => {
    for (const r of simulateBalance(small)) {
      expect(r.meanUtil).toBeGreaterThan(0);
      expect(r.meanUtil).toBeLessThanOrEqual(1);
      expect(r.meanUtil).toBeLessThanOrEqual(r.meanLoad + 1e-12); // busy slots <= outstanding
      expect(r.utilMaxOverMean).toBeGreaterThanOrEqual(1);
    }
  });

  it('a warm-up measures the same number of requests later in the run, deterministically', () => {
    const cold = simulateBalance({ ...small, strategies: ['p2c'] });
    const warm = simulateBalance({ ...small, strategies: ['p2c'], warmupRequests: 3000 });
    expect(simulateBalance({ ...small, strategies: ['p2c'], warmupRequests: 3000 })).toEqual(warm);
    expect(warm).not.toEqual(cold);
    expect(warm[0]?.p50Ms).toBeGreaterThan(0);
    expect(() => simulateBalance({ ...small, warmupRequests: -1 })).toThrow(/warmupRequests/);
  });

  it('rejects bad options with PP_ERR_INVALID_ARGUMENT naming the field', () => {
    const bad: Array<[SimulateOptions, string]> = [
      [{ servers: 1 }, 'servers'],
      [{ loadFactor: 0 }, 'loadFactor'],
      [{ seed: Number.NaN }, 'seed'],
      [{ latencySigma: Number.NaN }, 'latencySigma'],
      [{ jitterSigma: -1 }, 'jitterSigma'],
      [{ slowEveryMs: 0 }, 'slowEveryMs'],
      [{ slowForMs: Number.POSITIVE_INFINITY }, 'slowForMs'],
      [{ slowFraction: 2 }, 'slowFraction'],
      [{ slowFactor: 0.5 }, 'slowFactor'],
      [{ keySpace: 0 }, 'keySpace'],
    ];
    for (const [opts, field] of bad) {
      expect(() => simulateBalance({ ...small, ...opts }), field).toThrow(expect.objectContaining({ code: 'PP_ERR_INVALID_ARGUMENT', field }));
    }
  });

  it('every strategy sees the same workload: the arrivals do not depend on where requests went', () => {
    // A shared stream drawn as events happened (service starts, completions) gave each strategy
    // different arrival times; fixed streams give every strategy the same measured window.
    for (const seed of [1, 2, 3]) {
      const rows = simulateBalance({ ...small, seed, warmupRequests: 500 });
      for (const r of rows) expect(r.windowMs, r.strategy).toBe(rows[0]!.windowMs);
      expect(rows[0]!.windowMs).toBeGreaterThan(0);
    }
  });
});
