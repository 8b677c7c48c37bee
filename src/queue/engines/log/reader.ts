/**
 * Reading a partition: durable records come from the tail cache (a ring of the newest records, so
 * live consumers never read the disk) or from the segments, found through the sparse index.
 * Readers only ever see durable records (below `durableNext`). A frame below the durable end that
 * fails its checksum is damage on disk: the read fails with PP_ERR_CORRUPT and the segment's index
 * is dropped, so the next open scans and repairs it (see recovery.ts).
 */
import { rmSync } from 'node:fs';
import { invariant, ppError } from '../../../errors/index.js';
import type { PartitionReader, StoredRecord } from '../base.js';
import { isTombstone, parseFrame } from './frame.js';
import type { PartitionLog } from './partition.js';
import { READ_CHUNK_BYTES, type Segment } from './segment.js';

/** Records read and the offset to read next (past tombstones and gaps, which yield no record). */
export interface ReadResult {
  recs: StoredRecord[];
  next: number;
}

/**
 * Durable records from `from`, at most `max`, and the offset to read next (past tombstones and
 * gaps, which yield no record: `next - from` may exceed `recs.length`). Memory when still cached,
 * else disk.
 */
export async function readRecords(part: PartitionLog, from: number, max: number, frameBytesMax: number): Promise<ReadResult> {
  const end = part.durableNext;
  if (from >= end) return { recs: [], next: from };
  if (from >= part.cacheFirst) {
    const n = Math.min(max, end - from);
    const out = new Array<StoredRecord>(n);
    const size = part.cache.length;
    for (let i = 0; i < n; i++) {
      const r = part.cache[(from + i) % size];
      invariant(r !== undefined && r.offset === from + i, 'tail cache holds every offset from cacheFirst');
      out[i] = r;
    }
    return { recs: out, next: from + n };
  }
  return readDisk(part, from, max, frameBytesMax);
}

/** Like readRecords, from the segment files only. */
export async function readDisk(part: PartitionLog, from: number, max: number, frameBytesMax: number): Promise<ReadResult> {
  const out: StoredRecord[] = [];
  let next = from;
  // At most `max` frames are parsed, so a run of tombstones cannot make one call unbounded.
  let frames = 0;
  while (frames < max) {
    const seg = part.segmentFor(next);
    if (seg === undefined) {
      // Below the first segment (retention): continue at the first offset kept.
      if (part.segments.length === 0 || next >= part.durableNext) break;
      next = part.segments[0]!.base;
      continue;
    }
    if (next >= seg.next) {
      // Past this segment's end: the next segment starts later when recovery cut a damaged tail.
      const i = part.segments.indexOf(seg);
      const after = part.segments[i + 1];
      if (after === undefined) break;
      next = after.base;
      continue;
    }
    // Both taken together (a flush updates them together): a flush finishing while this reads
    // must not move `next` past records beyond `limit`.
    const limit = seg.sizeBytes;
    const segNext = seg.next;
    let pos = seg.positionFor(next);
    const fh = await seg.reader();
    while (frames < max && pos < limit) {
      const want = Math.min(READ_CHUNK_BYTES, limit - pos);
      let buf = Buffer.allocUnsafe(want);
      let { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead >= 4) {
        const need = buf.readUInt32LE(0);
        if (need > bytesRead && need <= frameBytesMax && pos + need <= limit) {
          buf = Buffer.allocUnsafe(need);
          ({ bytesRead } = await fh.read(buf, 0, need, pos));
        }
      }
      let p = 0;
      while (frames < max) {
        const at = p;
        const r = parseFrame(buf, at, bytesRead, part.partition, frameBytesMax);
        if (r === 'incomplete') break;
        if (r === undefined) throw corruptError(part, seg, pos + at);
        p += buf.readUInt32LE(at);
        if (r.offset < next) continue;
        frames++;
        next = r.offset + 1;
        if (!isTombstone(buf, at)) out.push(r);
      }
      if (p === 0) throw corruptError(part, seg, pos);
      pos += p;
    }
    if (frames < max) {
      // This segment is exhausted: go on with the next one (or stop after the last).
      if (next < segNext) next = segNext;
      if (seg === part.segments[part.segments.length - 1]) break;
    }
  }
  return { recs: out, next };
}

/** A frame below the durable end that fails its checksum: the segment is damaged on disk. */
function corruptError(part: PartitionLog, seg: Segment, position: number): Error {
  // Sealed segments are not scanned on open; dropping the index makes the next open scan this
  // one, replacing the damaged records by tombstones and keeping everything after them.
  if (seg !== part.active) rmSync(seg.indexPath, { force: true });
  return ppError('PP_ERR_CORRUPT', {
    message: `queue segment ${seg.path} is damaged at byte ${position} (checksum); reopen the queue to repair it`,
    data: { topic: part.topic, partition: part.partition, position },
  });
}

/** The first offset appended at or after `timeMs` (the durable end when none). */
export async function offsetForTime(part: PartitionLog, timeMs: number, frameBytesMax: number): Promise<number> {
  const seg = part.segments.find((s) => s.next > s.base && s.lastTsMs >= timeMs);
  if (seg === undefined) return part.durableNext;
  if (seg.firstTsMs >= timeMs) return seg.base;
  // Scan forward from the last index entry before timeMs.
  const pos = seg.positionForTime(timeMs);
  let off = seg.base;
  for (let i = 0; i < seg.idxPositions.length; i++) if (seg.idxPositions[i] === pos) off = seg.idxOffsets[i]!;
  while (off < seg.next) {
    const { recs, next } = await readDisk(part, off, 1024, frameBytesMax);
    if (next <= off) break;
    for (const r of recs) if (r.timestampMs >= timeMs) return r.offset;
    off = next;
  }
  return seg.next;
}

/** What a LogReader needs from its engine (the engine implements it). */
export interface ReaderHost {
  isLive(part: PartitionLog): boolean;
  goneError(part: PartitionLog): Error;
  readPart(part: PartitionLog, from: number, max: number): Promise<ReadResult>;
}

/** One consumer's cursor on a partition: reads forward, waits (bounded) for new durable records. */
export class LogReader implements PartitionReader {
  readonly #engine: ReaderHost;
  readonly #part: PartitionLog;
  #pos: number;
  #closed = false;
  #wake: (() => void) | undefined;
  skipped = 0;

  constructor(engine: ReaderHost, part: PartitionLog, start: number) {
    this.#engine = engine;
    this.#part = part;
    this.#pos = start;
  }

  get position(): number {
    return this.#pos;
  }

  async next(max: number, waitMs: number): Promise<readonly StoredRecord[]> {
    let waited = false;
    while (!this.#closed) {
      // A deleted topic or a closed engine is an error, not an empty read: a caller polling in a
      // loop would otherwise spin without ever yielding to the event loop.
      if (!this.#engine.isLive(this.#part)) throw this.#engine.goneError(this.#part);
      const first = this.#part.first;
      if (this.#pos < first) {
        // Retention removed what this reader had not read yet: move on, and count it.
        this.skipped += first - this.#pos;
        this.#pos = first;
      }
      if (this.#pos < this.#part.durableNext) {
        const { recs, next } = await this.#engine.readPart(this.#part, this.#pos, max);
        if (next > this.#pos) {
          // Tombstones (records lost to corruption) and gaps yield no record: count them.
          this.skipped += next - this.#pos - recs.length;
          this.#pos = next;
          if (recs.length > 0) return recs;
          continue;
        }
      }
      if (waited || waitMs <= 0) break;
      waited = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        const part = this.#part;
        function done(): void {
          clearTimeout(timer);
          part.waiters.delete(done);
          resolve();
        }
        this.#wake = done;
        part.waiters.add(done);
      });
      this.#wake = undefined;
    }
    return [];
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    return Promise.resolve();
  }
}
