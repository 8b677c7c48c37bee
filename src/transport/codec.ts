/**
 * The one wire codec: MessagePack (msgpackr) inside a versioned envelope.
 *
 * A FRAME is what one NATS message carries: byte 0 is the envelope version (msgpack positive
 * fixint, so a frame is also a valid msgpack stream), followed by one or more ENVELOPES, each a
 * msgpack array whose first element is its kind:
 *
 *     REQUEST  [1, id, action, params, timeoutMs, meta | null]
 *     OK       [2, id, result]
 *     ERROR    [3, id, { code, message, retryable, field?, retryAfterMs?, data? }]
 *     EVENT    [4, payload]
 *
 * Several envelopes per frame is how the NATS transport coalesces the calls of one event-loop
 * turn into one message (see nats.ts). Arrays, not maps: no field names on the wire.
 *
 * Decoding never throws: a frame with another version byte is counted as `unknownVersion`, a frame
 * or envelope that fails to decode or has the wrong shape as `malformed`; both are dropped.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { PowerplantError } from '../errors/index.js';
import type { CallMeta } from './base.js';

export const ENVELOPE_VERSION = 1;
export const KIND_REQUEST = 1;
export const KIND_OK = 2;
export const KIND_ERROR = 3;
export const KIND_EVENT = 4;

/** Bytes a frame adds around its envelopes (the version byte). */
export const FRAME_HEADER_BYTES = 1;

/** What a decoded frame is handed to, envelope by envelope (positional: no object per envelope). */
export interface FrameVisitor {
  onRequest(id: number, action: string, params: unknown, timeoutMs: number, meta: CallMeta | undefined): void;
  onReply(id: number, ok: boolean, value: unknown): void;
  onEvent(payload: unknown): void;
}

export interface DecodeResult {
  envelopes: number;
  malformed: number;
  unknownVersion: boolean;
}

// useRecords: false — msgpackr's record extension needs both sides to share structure definitions,
// which independent processes (and other language clients) do not. Plain msgpack arrays and maps.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/**
 * Encoders return a view into msgpackr's slab (no copy); the view stays valid after later packs
 * (msgpackr moves on to fresh space rather than overwriting), so a batch can hold several and
 * copy them once, into the frame.
 */
export function encodeRequest(id: number, action: string, params: unknown, timeoutMs: number, meta: CallMeta | undefined): Buffer {
  return packr.pack([KIND_REQUEST, id, action, params === undefined ? null : params, timeoutMs, meta === undefined ? null : meta]);
}

export function encodeOk(id: number, result: unknown): Buffer {
  return packr.pack([KIND_OK, id, result === undefined ? null : result]);
}

export function encodeError(id: number, err: PowerplantError): Buffer {
  return packr.pack([KIND_ERROR, id, err.toJSON()]);
}

export function encodeEvent(payload: unknown): Buffer {
  return packr.pack([KIND_EVENT, payload === undefined ? null : payload]);
}

/** Joins envelopes into one frame: the version byte, then each envelope. One copy. */
export function buildFrame(envelopes: readonly Uint8Array[], envelopeBytes: number, version = ENVELOPE_VERSION): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + envelopeBytes);
  frame[0] = version;
  let at = FRAME_HEADER_BYTES;
  for (const e of envelopes) {
    frame.set(e, at);
    at += e.length;
  }
  if (at !== frame.length) throw new Error(`invariant violated: frame length ${at} != ${frame.length}`);
  return frame;
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function isMeta(v: unknown): v is CallMeta | null {
  return v === null || (typeof v === 'object' && !Array.isArray(v));
}

/**
 * Decodes a frame and visits its envelopes in order. Never throws (visitor exceptions included:
 * they are counted as malformed, since a handler crash must not take the receive loop down).
 */
export function decodeFrame(data: Uint8Array, visitor: FrameVisitor, result: DecodeResult): void {
  result.envelopes = 0;
  result.malformed = 0;
  result.unknownVersion = false;
  if (data.length < FRAME_HEADER_BYTES + 1) {
    result.malformed = 1;
    return;
  }
  const version = data[0] as number;
  if (version !== ENVELOPE_VERSION) {
    // 0x00-0x7f is a msgpack positive fixint: a version number we do not speak. Anything else is
    // not a frame at all.
    if (version <= 0x7f) result.unknownVersion = true;
    else result.malformed = 1;
    return;
  }
  try {
    unpackr.unpackMultiple(data.subarray(FRAME_HEADER_BYTES), (env: unknown) => {
      if (!Array.isArray(env)) {
        result.malformed++;
        return;
      }
      const kind: unknown = env[0];
      const id: unknown = env[1];
      if (kind === KIND_REQUEST && env.length === 6 && isId(id) && typeof env[2] === 'string' && typeof env[4] === 'number' && isMeta(env[5])) {
        visitor.onRequest(id, env[2], env[3], env[4], (env[5] ?? undefined) as CallMeta | undefined);
      } else if ((kind === KIND_OK || kind === KIND_ERROR) && env.length === 3 && isId(id)) {
        visitor.onReply(id, kind === KIND_OK, env[2]);
      } else if (kind === KIND_EVENT && env.length === 2) {
        visitor.onEvent(env[1]);
      } else {
        result.malformed++;
        return;
      }
      result.envelopes++;
    });
  } catch {
    result.malformed++;
  }
}

/** Encoded size of a value, for size checks outside the hot path (tests, the in-process transport). */
export function encodedSize(value: unknown): number {
  return packr.pack(value).length;
}
