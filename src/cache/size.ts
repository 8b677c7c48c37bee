/**
 * What a value costs and whether it can be serialized.
 *
 * `measureValue` walks a value once: it rejects what msgpack cannot carry faithfully (functions
 * and symbols — msgpackr silently turns a function into `undefined` —, cycles, nesting deeper
 * than `VALUE_DEPTH_MAX`) with PP_ERR_UNSERIALIZABLE naming the path, and returns an estimate of
 * its in-memory size in bytes (strings 2 bytes per UTF-16 unit, numbers 8, objects 16 + their
 * properties). It is the L1's byte accounting when no L2 encodes the value anyway.
 */
import { ppError } from '../errors/index.js';

/** Deeper values are refused (also how a cycle shows up without a visited set). */
export const VALUE_DEPTH_MAX = 64;

function unserializable(path: string, why: string): Error {
  return ppError('PP_ERR_UNSERIALIZABLE', { field: path, message: `${path}: ${why}` });
}

function walk(v: unknown, path: string, depth: number, seen: Set<object>): number {
  switch (typeof v) {
    case 'string':
      return 16 + 2 * v.length;
    case 'number':
    case 'boolean':
      return 8;
    case 'undefined':
      return 8;
    case 'bigint':
      if (v > 0xffffffffffffffffn || v < -0x8000000000000000n) throw unserializable(path, 'bigint outside the 64-bit range');
      return 16;
    case 'function':
      throw unserializable(path, 'functions cannot be serialized');
    case 'symbol':
      throw unserializable(path, 'symbols cannot be serialized');
    default:
      break;
  }
  if (v === null) return 8;
  const o = v as object;
  if (depth >= VALUE_DEPTH_MAX) throw unserializable(path, `nested deeper than ${VALUE_DEPTH_MAX} levels`);
  if (ArrayBuffer.isView(o)) return 16 + o.byteLength;
  if (o instanceof Date) return 16;
  if (seen.has(o)) throw unserializable(path, 'cyclic reference');
  seen.add(o);
  let n = 16;
  if (Array.isArray(o)) {
    for (let i = 0; i < o.length; i++) n += walk(o[i], `${path}.${i}`, depth + 1, seen);
  } else if (o instanceof Map) {
    for (const [k, val] of o) n += walk(k, `${path}.<key>`, depth + 1, seen) + walk(val, `${path}.${String(k)}`, depth + 1, seen);
  } else if (o instanceof Set) {
    for (const val of o) n += walk(val, `${path}.<item>`, depth + 1, seen);
  } else {
    for (const k of Object.keys(o)) n += 16 + 2 * k.length + walk((o as Record<string, unknown>)[k], `${path}.${k}`, depth + 1, seen);
  }
  seen.delete(o); // a shared (non-cyclic) sub-object may appear twice; only ancestors count as a cycle
  return n;
}

/** Estimated bytes of `value`; throws PP_ERR_UNSERIALIZABLE (field = path) for what cannot be serialized. */
export function measureValue(value: unknown, path = 'value'): number {
  // Fast paths: the common scalar values skip the Set.
  if (typeof value === 'string') return 16 + 2 * value.length;
  if (typeof value === 'number' || typeof value === 'boolean') return 8;
  return walk(value, path, 0, new Set());
}
