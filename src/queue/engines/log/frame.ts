/**
 * The frame: one record as stored in a segment file (little-endian):
 *
 *   u32 frameBytes | u32 crc32(bytes 8..end) | f64 offset | f64 timestampMs | f64 deliverAtMs |
 *   u8 encoding | u8 flags (1 key, 2 id, 4 lost) | u16 keyBytes | u16 idBytes | u32 headerBytes |
 *   key | id | headers (JSON) | payload
 *
 * A tombstone is a frame with the `lost` flag and no body: recovery writes one per offset in place
 * of records it found damaged, so offsets stay dense and readers skip them (counted as skipped).
 */
import { crc32 } from 'node:zlib';
import { invariant } from '../../../errors/index.js';
import type { Encoding, OutRecord, StoredRecord } from '../base.js';

export const FRAME_HEADER_BYTES = 42;
const FLAG_KEY = 1;
const FLAG_ID = 2;
/** A tombstone written by recovery in place of a corrupt record: readers skip it. */
const FLAG_LOST = 4;

/** True when the frame at `pos` is a tombstone (its checksum already verified by parseFrame). */
export function isTombstone(buf: Buffer, pos: number): boolean {
  return (buf[pos + 33]! & FLAG_LOST) !== 0;
}

/**
 * Writes one frame of `frameBytes` at `pos` of `buf` (which has room for it). The caller has
 * measured the key, id and headers JSON already (it needs `frameBytes` to find room), so they are
 * passed in rather than measured twice on the hot path.
 */
export function writeFrame(buf: Buffer, pos: number, frameBytes: number, rec: OutRecord, offset: number, tsMs: number, keyBytes: number, idBytes: number, headersJson: string | undefined, headerBytes: number): void {
  buf.writeUInt32LE(frameBytes, pos);
  buf.writeDoubleLE(offset, pos + 8);
  buf.writeDoubleLE(tsMs, pos + 16);
  buf.writeDoubleLE(rec.deliverAtMs, pos + 24);
  buf[pos + 32] = rec.encoding;
  buf[pos + 33] = (rec.key === undefined ? 0 : FLAG_KEY) | (rec.id === undefined ? 0 : FLAG_ID);
  buf.writeUInt16LE(keyBytes, pos + 34);
  buf.writeUInt16LE(idBytes, pos + 36);
  buf.writeUInt32LE(headerBytes, pos + 38);
  let p = pos + FRAME_HEADER_BYTES;
  if (rec.key !== undefined) p += buf.write(rec.key, p, 'utf8');
  if (rec.id !== undefined) p += buf.write(rec.id, p, 'utf8');
  if (headersJson !== undefined) p += buf.write(headersJson, p, 'utf8');
  buf.set(rec.payload, p);
  p += rec.payload.length;
  invariant(p === pos + frameBytes, 'frame length matches its encoding');
  buf.writeUInt32LE(crc32(buf.subarray(pos + 8, p)), pos + 4);
}

/** Parses one frame at `pos` of `buf`; undefined when incomplete or corrupt. */
export function parseFrame(buf: Buffer, pos: number, end: number, partition: number, frameBytesMax: number): StoredRecord | undefined | 'incomplete' {
  if (end - pos < FRAME_HEADER_BYTES) return 'incomplete';
  const frameBytes = buf.readUInt32LE(pos);
  if (frameBytes < FRAME_HEADER_BYTES || frameBytes > frameBytesMax) return undefined;
  if (end - pos < frameBytes) return 'incomplete';
  const crc = buf.readUInt32LE(pos + 4);
  if (crc32(buf.subarray(pos + 8, pos + frameBytes)) !== crc) return undefined;
  const offset = buf.readDoubleLE(pos + 8);
  const timestampMs = buf.readDoubleLE(pos + 16);
  const deliverAtMs = buf.readDoubleLE(pos + 24);
  const encoding = buf[pos + 32] as Encoding;
  const flags = buf[pos + 33]!;
  const keyBytes = buf.readUInt16LE(pos + 34);
  const idBytes = buf.readUInt16LE(pos + 36);
  const headerBytes = buf.readUInt32LE(pos + 38);
  let p = pos + FRAME_HEADER_BYTES;
  if (p + keyBytes + idBytes + headerBytes > pos + frameBytes) return undefined;
  const key = (flags & FLAG_KEY) !== 0 ? buf.toString('utf8', p, p + keyBytes) : undefined;
  p += keyBytes;
  const id = (flags & FLAG_ID) !== 0 ? buf.toString('utf8', p, p + idBytes) : undefined;
  p += idBytes;
  let headers: Record<string, string> | undefined;
  if (headerBytes > 0) headers = JSON.parse(buf.toString('utf8', p, p + headerBytes)) as Record<string, string>;
  p += headerBytes;
  return { partition, offset, timestampMs, deliverAtMs, encoding, key, id, headers, payload: buf.subarray(p, pos + frameBytes) };
}

/**
 * `count` tombstone frames for offsets `first`.. filling exactly `bytes` (>= 42 per frame; the
 * bytes are spread evenly, so no frame is bigger than the largest record it replaces on average).
 */
export function tombstones(first: number, count: number, bytes: number, tsMs: number): Buffer {
  invariant(count >= 1 && bytes >= count * FRAME_HEADER_BYTES, 'room for the tombstones');
  const buf = Buffer.alloc(bytes);
  const each = Math.floor(bytes / count);
  let extra = bytes - each * count;
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const len = each + (extra > 0 ? 1 : 0);
    if (extra > 0) extra--;
    buf.writeUInt32LE(len, pos);
    buf.writeDoubleLE(first + i, pos + 8);
    buf.writeDoubleLE(tsMs, pos + 16);
    buf.writeDoubleLE(0, pos + 24);
    buf[pos + 32] = 0;
    buf[pos + 33] = FLAG_LOST;
    buf.writeUInt32LE(crc32(buf.subarray(pos + 8, pos + len)), pos + 4);
    pos += len;
  }
  invariant(pos === bytes, 'tombstones fill the region');
  return buf;
}
