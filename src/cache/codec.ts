/**
 * The L2 entry format: msgpack (msgpackr, plain maps as the store uses, so other languages can
 * read it) of `[version, value, staleAtMs, expiresAtMs, computeMs, flags, tags]`. Times are epoch
 * milliseconds: entries are shared by nodes, which share no monotonic clock.
 */
import { Packr } from 'msgpackr';
import { ppError } from '../errors/index.js';
import { measureValue } from './size.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const FORMAT = 1;

export interface L2Entry {
  readonly value: unknown;
  readonly staleAtMs: number;
  readonly expiresAtMs: number;
  readonly computeMs: number;
  readonly flags: number;
  readonly tags: readonly string[] | undefined;
}

/**
 * Encodes an entry. Checks the value first (`measureValue`: functions, symbols, cycles ->
 * PP_ERR_UNSERIALIZABLE naming the path) because msgpackr would silently drop a function.
 */
export function encodeEntry(e: L2Entry): Buffer {
  measureValue(e.value);
  try {
    return packr.pack([FORMAT, e.value, e.staleAtMs, e.expiresAtMs, e.computeMs, e.flags, e.tags ?? null]);
  } catch (err) {
    throw ppError('PP_ERR_UNSERIALIZABLE', { field: 'value', message: `value: ${(err as Error).message}`, cause: err });
  }
}

/** Decodes an entry, or undefined when the bytes are not one (another format, corruption). */
export function decodeEntry(bytes: Uint8Array): L2Entry | undefined {
  let a: unknown;
  try {
    a = packr.unpack(bytes);
  } catch {
    return undefined;
  }
  if (!Array.isArray(a) || a.length !== 7 || a[0] !== FORMAT) return undefined;
  const [, value, staleAtMs, expiresAtMs, computeMs, flags, tags] = a as [number, unknown, unknown, unknown, unknown, unknown, unknown];
  if (typeof staleAtMs !== 'number' || typeof expiresAtMs !== 'number' || typeof computeMs !== 'number' || typeof flags !== 'number') return undefined;
  if (tags !== null && !(Array.isArray(tags) && tags.every((t) => typeof t === 'string'))) return undefined;
  return { value, staleAtMs, expiresAtMs, computeMs, flags, tags: tags === null ? undefined : (tags as string[]) };
}
