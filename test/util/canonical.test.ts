/** canonicalJson: one text per value whatever its key order, JSON.stringify's rules otherwise, bounded depth. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, CANONICAL_DEPTH_MAX } from '../../src/util/index.js';

/** The same object with its keys in reverse insertion order, recursively. */
function reversed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversed);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)]));
  return v;
}

describe('canonicalJson', () => {
  it('does not depend on key order, and parses back to what JSON.stringify keeps', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      const s = canonicalJson(v);
      expect(canonicalJson(reversed(v))).toBe(s);
      expect(JSON.parse(s)).toEqual(JSON.parse(JSON.stringify(v) ?? 'null'));
    }), { seed: 12, numRuns: 300 });
  });

  it('sorts keys, drops undefined members, encodes bytes, bigints and dates; refuses a cycle', () => {
    expect(canonicalJson({ b: 1, a: [undefined, 2], c: undefined })).toBe('{"a":[null,2],"b":1}');
    expect(canonicalJson({ x: new Uint8Array([0, 255]), n: 10n, d: new Date(0) })).toBe('{"d":"1970-01-01T00:00:00.000Z","n":"10","x":{"$bytes":"00ff"}}');
    expect(canonicalJson(undefined)).toBe('null');
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => canonicalJson(cyc)).toThrow(new RegExp(`deeper than ${CANONICAL_DEPTH_MAX}`));
  });
});
