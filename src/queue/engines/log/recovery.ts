/**
 * Recovery on open: every segment without a (valid) index and the last segment of every partition
 * are scanned. A frame that is incomplete, fails its checksum or carries an unexpected offset is
 * either a torn tail (a crash during the last flush: nothing after it was acknowledged) or damage
 * in the middle (records after it were fsynced by earlier flushes and may have been acknowledged).
 * The scan looks further on for a valid frame that can follow; if there is one, the damaged bytes
 * are overwritten with tombstones (one per lost offset, skipped by readers and counted in
 * `skipped`) and a 'corrupt-records' event reports them; if there is none, the file is truncated
 * there and a 'torn-tail' event reports the cut. Either way every complete record is kept. Sealed
 * segments with a valid index are not scanned on open: damage there surfaces when read
 * (PP_ERR_CORRUPT, see reader.ts), and drops the index so the next open scans and repairs that
 * segment (or `repairSealed` does it at once when the open itself reads it).
 */
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { invariant } from '../../../errors/index.js';
import type { RecoveryEvent, StoredRecord } from '../base.js';
import { FRAME_HEADER_BYTES, parseFrame, tombstones } from './frame.js';
import { fsyncDir } from './fsync.js';
import type { PartitionLog } from './partition.js';
import { READ_CHUNK_BYTES, Segment } from './segment.js';

/** What recovery needs from the engine: its bounds, and where to report what it found. */
export interface RecoveryContext {
  readonly frameBytesMax: number;
  readonly indexIntervalBytes: number;
  readonly events: RecoveryEvent[];
}

/** Loads a partition's segments from its directory (scanning what must be), ready to append. */
export async function recoverPartition(part: PartitionLog, ctx: RecoveryContext): Promise<void> {
  const bases = readdirSync(part.dir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => Number(f.slice(0, -4)))
    .sort((a, b) => a - b);
  for (let i = 0; i < bases.length; i++) {
    const seg = new Segment(part.dir, bases[i]!);
    const last = i === bases.length - 1;
    if (!last && existsSync(seg.indexPath) && seg.loadIndex()) {
      part.segments.push(seg);
      continue;
    }
    if (!last) ctx.events.push({ kind: 'index-rebuilt', topic: part.topic, partition: part.partition, file: seg.path });
    await scanSegment(part, seg, ctx);
    part.segments.push(seg);
  }
  if (part.segments.length === 0) {
    const seg = new Segment(part.dir, 0);
    closeSync(openSync(seg.path, 'a'));
    // Its directory entry must be durable before records in it are acknowledged.
    fsyncDir(part.dir);
    part.segments.push(seg);
  }
  const active = part.active;
  part.nextOffset = active.next;
  part.durableNext = active.next;
  part.cacheFirst = active.next;
  part.lastTsMs = active.lastTsMs;
  active.writeFh = await open(active.path, 'a+');
}

/** Rescans a sealed segment found damaged while opening (tombstones or a cut) and rewrites its index. */
export async function repairSealed(part: PartitionLog, seg: Segment, ctx: RecoveryContext): Promise<void> {
  await seg.closeHandles();
  seg.clearIndex();
  await scanSegment(part, seg, ctx);
  seg.writeIndex();
  ctx.events.push({ kind: 'index-rebuilt', topic: part.topic, partition: part.partition, file: seg.path });
}

/**
 * Scans a segment frame by frame, rebuilding its index. A bad frame (incomplete, checksum,
 * unexpected offset) is either a torn tail or corruption in the middle: if a valid frame that can
 * follow it exists further on, the records from there on were written (and maybe acknowledged)
 * by earlier flushes, so the bad region is overwritten with tombstones (one per lost offset) and
 * the scan goes on; otherwise the file is cut there.
 */
async function scanSegment(part: PartitionLog, seg: Segment, ctx: RecoveryContext): Promise<void> {
  const frameBytesMax = ctx.frameBytesMax;
  const fh = await open(seg.path, 'r+');
  try {
    const size = (await fh.stat()).size;
    let pos = 0;
    let expected = seg.base;
    let kept = 0;
    let repaired = false;
    let buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let bufStart = 0;
    let bufEnd = 0;
    let reason: string | undefined;
    while (pos < size) {
      if (pos - bufStart + FRAME_HEADER_BYTES > bufEnd - bufStart || pos < bufStart) {
        const n = Math.min(buf.length, size - pos);
        const { bytesRead } = await fh.read(buf, 0, n, pos);
        bufStart = pos;
        bufEnd = pos + bytesRead;
      }
      let r = parseFrame(buf, pos - bufStart, bufEnd - bufStart, part.partition, frameBytesMax);
      if (r === 'incomplete' && bufEnd < size) {
        // The frame crosses the end of the buffer: read again from its start, bigger if needed.
        const need = bufEnd - pos >= 4 ? buf.readUInt32LE(pos - bufStart) : 0;
        if (need > buf.length && need <= frameBytesMax) buf = Buffer.allocUnsafe(need);
        const n = Math.min(buf.length, size - pos);
        const { bytesRead } = await fh.read(buf, 0, n, pos);
        bufStart = pos;
        bufEnd = pos + bytesRead;
        r = parseFrame(buf, 0, bufEnd - bufStart, part.partition, frameBytesMax);
      }
      if (r === 'incomplete') reason = 'incomplete frame';
      else if (r === undefined) reason = 'checksum mismatch or malformed frame';
      else if (r.offset !== expected) reason = `unexpected offset ${r.offset} (expected ${expected})`;
      else reason = undefined;
      if (reason !== undefined) {
        const found = await resync(fh, size, pos, expected, part.partition, frameBytesMax);
        if (found === undefined) break; // nothing valid after it: a torn tail
        const lost = found.offset - expected;
        const tsMs = kept > 0 ? seg.lastTsMs : found.timestampMs;
        await fh.write(tombstones(expected, lost, found.position - pos, tsMs), 0, found.position - pos, pos);
        repaired = true;
        ctx.events.push({
          kind: 'corrupt-records',
          topic: part.topic,
          partition: part.partition,
          file: seg.path,
          position: pos,
          droppedBytes: found.position - pos,
          offset: expected,
          lostRecords: lost,
          reason,
        });
        if (kept === 0) seg.firstTsMs = tsMs;
        seg.lastTsMs = tsMs;
        expected = found.offset;
        pos = found.position;
        bufStart = bufEnd = 0; // re-read from the valid frame
        continue;
      }
      invariant(r !== undefined && r !== 'incomplete', 'frame parsed');
      const frameBytes = buf.readUInt32LE(pos - bufStart);
      if (kept === 0) seg.firstTsMs = r.timestampMs;
      seg.lastTsMs = r.timestampMs;
      seg.addIndex(r.offset, pos, r.timestampMs, ctx.indexIntervalBytes);
      pos += frameBytes;
      expected++;
      kept++;
    }
    if (pos < size) {
      await fh.truncate(pos);
      repaired = true;
      ctx.events.push({
        kind: 'torn-tail',
        topic: part.topic,
        partition: part.partition,
        file: seg.path,
        position: pos,
        droppedBytes: size - pos,
        keptRecords: kept,
        reason: reason ?? 'trailing bytes',
      });
    }
    if (repaired) await fh.datasync();
    seg.next = expected;
    seg.sizeBytes = pos;
  } finally {
    await fh.close();
  }
}

/**
 * After a bad frame at `pos` that should have held offset `expected`: the first later position
 * holding a valid frame (checksum passes) with an offset that can follow — greater than
 * `expected`, with room before it for one frame per missing offset. Bounded by the segment size;
 * only runs during recovery of a damaged segment.
 */
async function resync(fh: FileHandle, size: number, pos: number, expected: number, partition: number, frameBytesMax: number): Promise<{ position: number; offset: number; timestampMs: number } | undefined> {
  const win = Buffer.allocUnsafe(READ_CHUNK_BYTES + frameBytesMax);
  let start = pos + 1;
  while (start + FRAME_HEADER_BYTES <= size) {
    const { bytesRead } = await fh.read(win, 0, Math.min(win.length, size - start), start);
    const last = bytesRead - FRAME_HEADER_BYTES;
    for (let i = 0; i <= last; i++) {
      const len = win.readUInt32LE(i);
      if (len < FRAME_HEADER_BYTES || len > frameBytesMax) continue;
      const q = start + i;
      if (q + len > size) continue;
      const off = win.readDoubleLE(i + 8);
      const lost = off - expected;
      const gap = q - pos;
      if (!Number.isSafeInteger(off) || lost < 1 || lost * FRAME_HEADER_BYTES > gap || Math.ceil(gap / lost) > frameBytesMax) continue;
      let r: StoredRecord | undefined | 'incomplete';
      if (i + len <= bytesRead) r = parseFrame(win, i, bytesRead, partition, frameBytesMax);
      else {
        const one = Buffer.allocUnsafe(len);
        await fh.read(one, 0, len, q);
        r = parseFrame(one, 0, len, partition, frameBytesMax);
      }
      if (r !== undefined && r !== 'incomplete' && r.offset === off) return { position: q, offset: off, timestampMs: r.timestampMs };
    }
    if (start + bytesRead >= size) break;
    start += last + 1;
  }
  return undefined;
}
