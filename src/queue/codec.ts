/**
 * Message payload encoding: a Uint8Array is stored as given (no copy, no framing); anything else
 * is msgpack (msgpackr, plain maps, the same settings as the store's codec so other languages can
 * read payloads).
 */
import { Packr } from 'msgpackr';
import { ENCODING_BYTES, ENCODING_MSGPACK, type Encoding } from './engines/base.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodePayload(value: unknown): { encoding: Encoding; payload: Uint8Array } {
  if (value instanceof Uint8Array) return { encoding: ENCODING_BYTES, payload: value };
  return { encoding: ENCODING_MSGPACK, payload: packr.pack(value) };
}

export function decodePayload(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
