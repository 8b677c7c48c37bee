/**
 * Canonical JSON: the same text for the same value whatever the order its object keys were
 * written in (keys sorted by code unit, recursively), for fingerprints of requests (idempotency
 * keys: "is this the same request as the first one?"). Values JSON cannot hold (undefined,
 * functions, symbols) are left out of objects and become null in arrays, as JSON.stringify does;
 * bigints become their decimal text; byte arrays a {"$bytes": hex} object. Depth is bounded, so a
 * cycle or a hostile nesting is an error, not a stack overflow.
 */
import { requireArg } from '../errors/index.js';

/** Deepest nesting canonicalJson walks. */
export const CANONICAL_DEPTH_MAX = 64;

export function canonicalJson(value: unknown): string {
  return write(value, 0) ?? 'null';
}

function write(v: unknown, depth: number): string | undefined {
  requireArg(depth <= CANONICAL_DEPTH_MAX, 'value', `nested deeper than ${CANONICAL_DEPTH_MAX} levels (or a cycle)`);
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : 'null';
    case 'bigint':
      return JSON.stringify(v.toString());
    case 'object': {
      if (v instanceof Uint8Array) {
        let hex = '';
        for (const b of v) hex += b.toString(16).padStart(2, '0');
        return `{"$bytes":"${hex}"}`;
      }
      if (v instanceof Date) return JSON.stringify(v.toISOString());
      if (Array.isArray(v)) return `[${v.map((x) => write(x, depth + 1) ?? 'null').join(',')}]`;
      const o = v as Record<string, unknown>;
      const parts: string[] = [];
      for (const k of Object.keys(o).sort()) {
        const s = write(o[k], depth + 1);
        if (s !== undefined) parts.push(`${JSON.stringify(k)}:${s}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      return undefined; // undefined, function, symbol
  }
}
