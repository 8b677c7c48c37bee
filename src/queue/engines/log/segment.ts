/**
 * A segment: one file of a partition's log, `<base>.log` (base = its first offset, 20 digits),
 * holding frames back to back, and its sparse index `<base>.idx`.
 *
 * The index holds one entry per `indexIntervalBytes` of log (f64 offset, f64 file position,
 * f64 timestampMs), kept in memory while the segment is active and written to `<base>.idx` when it
 * is sealed, followed by a trailer: f64 next, f64 sizeBytes, f64 firstTs, f64 lastTs, u32 crc32 of
 * everything before. An index that fails its checksum or does not match the log's size is ignored
 * (the segment is scanned instead, see recovery.ts).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** Bytes read from a segment per disk read. */
export const READ_CHUNK_BYTES = 1024 * 1024;
const INDEX_ENTRY_BYTES = 24; // f64 offset, f64 position, f64 timestampMs
const INDEX_TRAILER_BYTES = 36;

function segmentName(base: number): string {
  return String(base).padStart(20, '0');
}

export class Segment {
  readonly base: number;
  readonly path: string;
  readonly indexPath: string;
  /** One past the last offset in the segment. */
  next: number;
  /** Durable bytes (everything below is complete frames). */
  sizeBytes: number;
  firstTsMs = 0;
  lastTsMs = 0;
  /** Sparse index, parallel arrays: offset, file position, timestamp of one frame each. */
  idxOffsets: number[] = [];
  idxPositions: number[] = [];
  idxTimes: number[] = [];
  lastIndexedPos = -Infinity;
  /** Append handle (active segment) and read handle. */
  writeFh: FileHandle | undefined;
  readFh: Promise<FileHandle> | undefined;

  constructor(dir: string, base: number) {
    this.base = base;
    this.next = base;
    this.sizeBytes = 0;
    this.path = join(dir, `${segmentName(base)}.log`);
    this.indexPath = join(dir, `${segmentName(base)}.idx`);
  }

  addIndex(offset: number, pos: number, ts: number, intervalBytes: number): void {
    if (pos - this.lastIndexedPos < intervalBytes) return;
    this.idxOffsets.push(offset);
    this.idxPositions.push(pos);
    this.idxTimes.push(ts);
    this.lastIndexedPos = pos;
  }

  /** Forgets the in-memory index (before a rescan rebuilds it). */
  clearIndex(): void {
    this.idxOffsets = [];
    this.idxPositions = [];
    this.idxTimes = [];
    this.lastIndexedPos = -Infinity;
  }

  /** File position of the index entry at or before `offset` (0 if none). */
  positionFor(offset: number): number {
    const a = this.idxOffsets;
    let lo = 0;
    let hi = a.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]! <= offset) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best < 0 ? 0 : this.idxPositions[best]!;
  }

  /** File position of the last index entry with time < timeMs (0 if none). */
  positionForTime(timeMs: number): number {
    const a = this.idxTimes;
    let lo = 0;
    let hi = a.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]! < timeMs) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best < 0 ? 0 : this.idxPositions[best]!;
  }

  /** Loads this sealed segment's index file; false when it does not match the log. */
  loadIndex(): boolean {
    const buf = readFileSync(this.indexPath);
    const trailer = INDEX_TRAILER_BYTES;
    if (buf.length < trailer || (buf.length - trailer) % INDEX_ENTRY_BYTES !== 0) return false;
    const body = buf.length - 4;
    if (crc32(buf.subarray(0, body)) !== buf.readUInt32LE(body)) return false;
    const t = buf.length - trailer;
    const sizeBytes = buf.readDoubleLE(t + 8);
    if (statSync(this.path).size !== sizeBytes) return false;
    this.next = buf.readDoubleLE(t);
    this.sizeBytes = sizeBytes;
    this.firstTsMs = buf.readDoubleLE(t + 16);
    this.lastTsMs = buf.readDoubleLE(t + 24);
    for (let p = 0; p < t; p += INDEX_ENTRY_BYTES) {
      this.idxOffsets.push(buf.readDoubleLE(p));
      this.idxPositions.push(buf.readDoubleLE(p + 8));
      this.idxTimes.push(buf.readDoubleLE(p + 16));
    }
    this.lastIndexedPos = this.idxPositions.length === 0 ? -Infinity : this.idxPositions[this.idxPositions.length - 1]!;
    return true;
  }

  /** Writes the index file (temp file, fsync, rename): the segment is sealed. */
  writeIndex(): void {
    const n = this.idxOffsets.length;
    const buf = Buffer.allocUnsafe(n * INDEX_ENTRY_BYTES + INDEX_TRAILER_BYTES);
    for (let i = 0; i < n; i++) {
      buf.writeDoubleLE(this.idxOffsets[i]!, i * INDEX_ENTRY_BYTES);
      buf.writeDoubleLE(this.idxPositions[i]!, i * INDEX_ENTRY_BYTES + 8);
      buf.writeDoubleLE(this.idxTimes[i]!, i * INDEX_ENTRY_BYTES + 16);
    }
    const t = n * INDEX_ENTRY_BYTES;
    buf.writeDoubleLE(this.next, t);
    buf.writeDoubleLE(this.sizeBytes, t + 8);
    buf.writeDoubleLE(this.firstTsMs, t + 16);
    buf.writeDoubleLE(this.lastTsMs, t + 24);
    buf.writeUInt32LE(crc32(buf.subarray(0, t + 32)), t + 32);
    const tmp = `${this.indexPath}.tmp`;
    writeFileSync(tmp, buf);
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.indexPath);
  }

  reader(): Promise<FileHandle> {
    this.readFh ??= open(this.path, 'r');
    return this.readFh;
  }

  async closeHandles(): Promise<void> {
    const w = this.writeFh;
    this.writeFh = undefined;
    const r = this.readFh;
    this.readFh = undefined;
    await w?.close().catch(() => undefined);
    if (r !== undefined) await (await r.catch(() => undefined))?.close().catch(() => undefined);
  }
}
