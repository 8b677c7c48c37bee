/**
 * The window logic against brute-force references over random out-of-order inputs (fast-check):
 * for tumbling and sliding windows the reference decides each record's windows from the
 * watermark before it, for sessions it replays the merges naively; both compare the final
 * result table (what a table sink holds) and the late count. Plus the watermark tracker.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { KeyedWindows, WatermarkTracker, joinAggregator, session, sliding, tumbling, windowStarts, type WindowResult, type WindowSpec } from '../../src/stream/index.js';

interface Rec {
  readonly key: string;
  readonly ts: number;
  readonly v: number;
}

const records = fc.array(
  fc.record({ key: fc.constantFrom('a', 'b', 'c'), jitter: fc.integer({ min: -400, max: 60 }), step: fc.integer({ min: 0, max: 40 }), v: fc.integer({ min: 0, max: 9 }) }),
  { maxLength: 120 },
).map((xs) => {
  let t = 10_000;
  return xs.map((x): Rec => {
    t += x.step;
    return { key: x.key, ts: t + x.jitter, v: x.v };
  });
});

function table<R>(into: Map<string, R>): (r: WindowResult<string, R>) => void {
  return (r) => {
    const k = `${r.key}|${r.start}`;
    if (r.kind === 'retract') into.delete(k);
    else into.set(k, r.value);
  };
}

/** Tumbling / sliding: record i is in window w iff w.end + lateness > the watermark before i; a window is in the table iff the final watermark reached its end. */
function referenceAligned(spec: WindowSpec, recs: readonly Rec[], ooo: number, lateness: number): { rows: Map<string, number[]>; late: number } {
  const size = (spec as { sizeMs: number }).sizeMs;
  const acc = new Map<string, { end: number; vals: number[] }>();
  let maxTs = -Infinity;
  let late = 0;
  for (const r of recs) {
    const W = maxTs - ooo;
    let accepted = 0;
    for (const start of windowStarts(spec, r.ts)) {
      const end = start + size;
      if (end + lateness <= W) continue;
      const k = `${r.key}|${start}`;
      const e = acc.get(k) ?? { end, vals: [] };
      e.vals.push(r.v);
      acc.set(k, e);
      accepted++;
    }
    if (accepted === 0) late++;
    maxTs = Math.max(maxTs, r.ts);
  }
  const Wf = maxTs - ooo;
  const rows = new Map<string, number[]>();
  for (const [k, e] of acc) if (Wf >= e.end) rows.set(k, e.vals);
  return { rows, late };
}

interface RefSession {
  start: number;
  end: number;
  n: number;
  sum: number;
  emitted: boolean;
  gone: boolean;
}

/** Sessions replayed naively: open = not closed (end + lateness > watermark), merges by overlap, emitted once complete or merged with an emitted one. */
function referenceSessions(gap: number, recs: readonly Rec[], ooo: number, lateness: number): { rows: Map<string, { n: number; sum: number }>; late: number } {
  const byKey = new Map<string, RefSession[]>();
  let maxTs = -Infinity;
  let late = 0;
  for (const r of recs) {
    const W = maxTs - ooo;
    const all = byKey.get(r.key) ?? [];
    byKey.set(r.key, all);
    const open = all.filter((s) => !s.gone && s.end + lateness > W);
    const hits = open.filter((s) => s.start < r.ts + gap && r.ts < s.end);
    const start = Math.min(r.ts, ...hits.map((s) => s.start));
    const end = Math.max(r.ts + gap, ...hits.map((s) => s.end));
    if (end + lateness <= W) {
      late++;
    } else {
      for (const h of hits) h.gone = true;
      all.push({ start, end, n: 1 + hits.reduce((a, h) => a + h.n, 0), sum: r.v + hits.reduce((a, h) => a + h.sum, 0), emitted: hits.some((h) => h.emitted) || W >= end, gone: false });
    }
    maxTs = Math.max(maxTs, r.ts);
    const W2 = maxTs - ooo;
    for (const list of byKey.values()) for (const s of list) if (!s.gone && W2 >= s.end) s.emitted = true;
  }
  const rows = new Map<string, { n: number; sum: number }>();
  for (const [k, list] of byKey) for (const s of list) if (!s.gone && s.emitted) rows.set(`${k}|${s.start}`, { n: s.n, sum: s.sum });
  return { rows, late };
}

const params = fc.record({ ooo: fc.integer({ min: 0, max: 300 }), lateness: fc.integer({ min: 0, max: 300 }) });

describe('window logic against brute force', () => {
  it('tumbling windows', () => {
    fc.assert(
      fc.property(records, params, fc.integer({ min: 1, max: 400 }), (recs, { ooo, lateness }, size) => {
        const spec = tumbling(size);
        const w = new KeyedWindows<number, number[], number[]>(spec, { init: () => [], add: (a, v) => [...a, v], result: (a) => a }, { outOfOrdernessMs: ooo, allowedLatenessMs: lateness });
        const rows = new Map<string, number[]>();
        let late = 0;
        for (const r of recs) if (w.add(r.key, r.v, r.ts, table(rows)) === 'late') late++;
        const ref = referenceAligned(spec, recs, ooo, lateness);
        expect(rows).toEqual(ref.rows);
        expect(late).toBe(ref.late);
      }),
      { numRuns: 300 },
    );
  });

  it('sliding windows', () => {
    fc.assert(
      fc.property(records, params, fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 5 }), (recs, { ooo, lateness }, slide, k) => {
        const spec = sliding(slide * k, slide);
        const w = new KeyedWindows<number, number[], number[]>(spec, { init: () => [], add: (a, v) => [...a, v], result: (a) => a }, { outOfOrdernessMs: ooo, allowedLatenessMs: lateness });
        const rows = new Map<string, number[]>();
        let late = 0;
        for (const r of recs) if (w.add(r.key, r.v, r.ts, table(rows)) === 'late') late++;
        const ref = referenceAligned(spec, recs, ooo, lateness);
        expect(rows).toEqual(ref.rows);
        expect(late).toBe(ref.late);
      }),
      { numRuns: 300 },
    );
  });

  it('session windows (merges, retractions of merged-away sessions)', () => {
    fc.assert(
      fc.property(records, params, fc.integer({ min: 1, max: 200 }), (recs, { ooo, lateness }, gap) => {
        const w = new KeyedWindows<number, { n: number; sum: number }, { n: number; sum: number }>(
          session(gap),
          { init: () => ({ n: 0, sum: 0 }), add: (a, v) => ({ n: a.n + 1, sum: a.sum + v }), merge: (a, b) => ({ n: a.n + b.n, sum: a.sum + b.sum }), result: (a) => a },
          { outOfOrdernessMs: ooo, allowedLatenessMs: lateness },
        );
        const rows = new Map<string, { n: number; sum: number }>();
        let late = 0;
        for (const r of recs) if (w.add(r.key, r.v, r.ts, table(rows)) === 'late') late++;
        const ref = referenceSessions(gap, recs, ooo, lateness);
        expect(rows).toEqual(ref.rows);
        expect(late).toBe(ref.late);
      }),
      { numRuns: 300 },
    );
  });

  it('restoring a checkpoint (dirty keys + max event time) and going on equals never stopping', () => {
    fc.assert(
      fc.property(records, params, fc.integer({ min: 1, max: 400 }), fc.nat(), (recs, { ooo, lateness }, size, cutAt) => {
        const agg = { init: () => [] as number[], add: (a: number[], v: number) => [...a, v], result: (a: number[]) => a };
        const opts = { outOfOrdernessMs: ooo, allowedLatenessMs: lateness };
        const whole = new Map<string, number[]>();
        const one = new KeyedWindows<number, number[], number[]>(tumbling(size), agg, opts);
        for (const r of recs) one.add(r.key, r.v, r.ts, table(whole));
        const cut = recs.length === 0 ? 0 : cutAt % (recs.length + 1);
        const parts = new Map<string, number[]>();
        const a = new KeyedWindows<number, number[], number[]>(tumbling(size), agg, opts);
        for (const r of recs.slice(0, cut)) a.add(r.key, r.v, r.ts, table(parts));
        const b = new KeyedWindows<number, number[], number[]>(tumbling(size), agg, opts);
        for (const [k, wins] of a.takeDirty()) b.restoreKey(k, wins);
        b.restoreMaxTs(a.maxEventTs);
        for (const r of recs.slice(cut)) b.add(r.key, r.v, r.ts, table(parts));
        expect(parts).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });
});

describe('window bounds and arguments', () => {
  it('refuses a key over windowsPerKeyMax or accBytesMax with PP_ERR_STATE_TOO_LARGE, keeping its state', () => {
    const w = new KeyedWindows<string, string[], number>(tumbling(10), { init: () => [], add: (a, v) => [...a, v], result: (a) => a.length }, { windowsPerKeyMax: 2, accBytesMax: 64, outOfOrdernessMs: 1000 });
    expect(w.add('k', 'x', 0, () => undefined)).toBe('ok');
    expect(w.add('k', 'x', 10, () => undefined)).toBe('ok');
    expect(w.add('k', 'x', 20, () => undefined)).toBe('too-large');
    expect(isPowerplantError(w.lastError, 'PP_ERR_STATE_TOO_LARGE')).toBe(true);
    expect(w.lastError?.message).toMatch(/windowsPerKeyMax 2/);
    expect(w.add('k', 'y'.repeat(100), 15, () => undefined)).toBe('too-large');
    expect(w.lastError?.message).toMatch(/accBytesMax 64/);
    expect(w.windowCount).toBe(2);
  });

  it('rejects bad window arguments with the field named', () => {
    const field = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as { field?: string }).field;
      }
      return undefined;
    };
    expect(field(() => tumbling(0))).toBe('sizeMs');
    expect(field(() => sliding(100, 30))).toBe('slideMs');
    expect(field(() => session(-1))).toBe('gapMs');
    expect(field(() => new KeyedWindows(tumbling(10), { init: () => 0, add: (a) => a, result: (a) => a }, { outOfOrdernessMs: -1 }))).toBe('outOfOrdernessMs');
    expect(field(() => new KeyedWindows(session(10), { init: () => 0, add: (a) => a, result: (a) => a }))).toBe('aggregate.merge');
  });
});

describe('watermark tracker', () => {
  it('is the minimum over inputs that are not idle; an idle input does not hold it back', () => {
    let now = 0;
    const t = new WatermarkTracker(100, () => now);
    expect(t.current()).toBe(-Infinity);
    t.update(0, 50);
    t.update(1, 20);
    expect(t.current()).toBe(20);
    now = 60;
    t.update(0, 80);
    expect(t.current()).toBe(20);
    now = 120; // input 1 silent for 120 ms
    expect(t.idle()).toEqual([1]);
    expect(t.current()).toBe(80);
    t.update(1, 30); // back: it holds the watermark again
    expect(t.current()).toBe(30);
    now = 500; // everyone idle: the highest stands
    expect(t.current()).toBe(80);
  });
});

describe('windowed join', () => {
  it('pairs every left with every right value of a key in a window, as nested loops over the accepted records do', () => {
    fc.assert(
      fc.property(records, fc.integer({ min: 1, max: 400 }), (recs, size) => {
        // Even values are the left stream, odd the right; no lateness drop (out-of-orderness beyond the jitter).
        const agg = joinAggregator<number, string>((v) => v % 2 === 0, (l, r) => `${l}-${r}`);
        const w = new KeyedWindows(tumbling(size), agg, { outOfOrdernessMs: 1000 });
        const rows = new Map<string, { pairs: string[]; dropped: number }>();
        const tagged = recs.map((r, i) => ({ ...r, v: r.v * 100 + i }));
        for (const r of tagged) w.add(r.key, r.v, r.ts, table(rows));
        const maxTs = Math.max(...tagged.map((r) => r.ts));
        const expected = new Map<string, { pairs: string[]; dropped: number }>();
        const groups = new Map<string, number[]>();
        for (const r of tagged) {
          const start = windowStarts(tumbling(size), r.ts)[0]!;
          if (start + size > maxTs - 1000) continue; // not fired by the end
          const k = `${r.key}|${start}`;
          groups.set(k, [...(groups.get(k) ?? []), r.v]);
        }
        for (const [k, vs] of groups) {
          const left = vs.filter((v) => v % 2 === 0);
          const right = vs.filter((v) => v % 2 !== 0);
          expected.set(k, { pairs: left.flatMap((l) => right.map((r) => `${l}-${r}`)), dropped: 0 });
        }
        expect(rows).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });
});
