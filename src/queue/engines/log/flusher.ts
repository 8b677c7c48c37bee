/**
 * The write path and its durability promise (what "publish resolved" means here): group commit.
 * Appends are encoded into the partition's write buffer; one flush at a time writes every dirty
 * partition (one writev each) and fdatasyncs each file; an append's promise resolves only after
 * the fdatasync of the flush that wrote it returned. So a resolved publish survives a process
 * crash, an OS crash and a power loss (as far as the disk honours flushes). Consumers only ever see
 * records that are durable: `durableNext` moves after the fdatasync.
 *
 * A flush starts on the next event-loop turn after the first append (or after `flushWaitMs`), or
 * right after the flush in flight: the bounded wait is one fsync. Unflushed bytes per partition
 * are bounded by `pendingBytesMax` (the engine then answers PP_ERR_OVERLOADED). If a write or
 * fsync fails the flusher stops (`failed`, and the engine refuses appends with
 * PP_ERR_UNAVAILABLE): after a failed fsync the file's state is unknown, and reopening (recovery
 * by checksum) is the only honest way on.
 */
import { open } from 'node:fs/promises';
import { invariant, ppError } from '../../../errors/index.js';
import type { AppendResult, OutRecord, StoredRecord } from '../base.js';
import { FRAME_HEADER_BYTES, writeFrame } from './frame.js';
import { fsyncDir } from './fsync.js';
import type { PartitionLog, PendingAppend } from './partition.js';
import { Segment } from './segment.js';

/** Write buffers are allocated in chunks of this size (a bigger record gets its own). */
const WRITE_CHUNK_BYTES = 1024 * 1024;

export interface FlusherOptions {
  readonly segmentBytesMax: number;
  readonly flushWaitMs: number;
  readonly pendingBytesMax: number;
  readonly indexIntervalBytes: number;
  readonly frameBytesMax: number;
}

export class Flusher {
  /** Stats: flushes and records flushed (group-commit effectiveness). */
  readonly stats = { flushes: 0, records: 0, bytes: 0 };
  readonly #opts: FlusherOptions;
  #dirty = new Set<PartitionLog>();
  #flushing = false;
  #scheduled = false;
  #failed: unknown;
  #idleWaiters: (() => void)[] = [];

  constructor(options: FlusherOptions) {
    this.#opts = options;
  }

  /** The error that stopped the flusher (undefined while it works). */
  get failed(): unknown {
    return this.#failed;
  }

  /** A flush is in flight. */
  get flushing(): boolean {
    return this.#flushing;
  }

  /** A flush is in flight or appends wait for one. */
  get busy(): boolean {
    return this.#flushing || this.#dirty.size > 0;
  }

  /** Resolves when a flush ends with nothing left to flush. */
  idle(): Promise<void> {
    return new Promise<void>((r) => this.#idleWaiters.push(r));
  }

  /** The partition's unflushed bytes reached pendingBytesMax: appends must wait. */
  full(part: PartitionLog): boolean {
    return part.pendingBytes >= this.#opts.pendingBytesMax;
  }

  /**
   * Appends one record (hot path): assigns its offset and time, encodes it into the write buffer,
   * puts it in the tail cache (readers see it once durable) and resolves after its flush.
   */
  append(part: PartitionLog, rec: OutRecord): Promise<AppendResult> {
    const p = new Promise<AppendResult>((resolve, reject) => {
      const offset = part.nextOffset++;
      // Append time never goes backwards within a partition, so the time index can bisect.
      const now = Date.now();
      const tsMs = now > part.lastTsMs ? now : part.lastTsMs;
      part.lastTsMs = tsMs;
      const relPos = part.pendingBytes;
      const stored = this.#encode(part, rec, offset, tsMs);
      part.cachePut(stored);
      part.pending.push({ offset, relPos, tsMs, resolve, reject, id: rec.id });
    });
    this.#dirty.add(part);
    this.#schedule();
    return p;
  }

  /** Encodes one frame into the partition's write buffer and returns the record as stored. */
  #encode(part: PartitionLog, rec: OutRecord, offset: number, tsMs: number): StoredRecord {
    const keyBytes = rec.key === undefined ? 0 : Buffer.byteLength(rec.key);
    const idBytes = rec.id === undefined ? 0 : Buffer.byteLength(rec.id);
    const headersJson = rec.headers === undefined ? undefined : JSON.stringify(rec.headers);
    const headerBytes = headersJson === undefined ? 0 : Buffer.byteLength(headersJson);
    const frameBytes = FRAME_HEADER_BYTES + keyBytes + idBytes + headerBytes + rec.payload.length;
    invariant(keyBytes <= 0xffff && idBytes <= 0xffff && frameBytes <= this.#opts.frameBytesMax, 'frame within bounds');
    let buf = part.buf;
    if (buf === undefined || buf.length - part.bufPos < frameBytes) {
      if (buf !== undefined && part.bufPos > part.bufStart) part.chunks.push(buf.subarray(part.bufStart, part.bufPos));
      buf = Buffer.allocUnsafe(Math.max(WRITE_CHUNK_BYTES, frameBytes));
      part.buf = buf;
      part.bufStart = 0;
      part.bufPos = 0;
    }
    const pos = part.bufPos;
    writeFrame(buf, pos, frameBytes, rec, offset, tsMs, keyBytes, idBytes, headersJson, headerBytes);
    const end = pos + frameBytes;
    // The stored record's payload is a view of the write buffer: no copy for the tail cache.
    const payload = buf.subarray(end - rec.payload.length, end);
    part.bufPos = end;
    part.pendingBytes += frameBytes;
    return { partition: part.partition, offset, timestampMs: tsMs, deliverAtMs: rec.deliverAtMs, encoding: rec.encoding, key: rec.key, id: rec.id, headers: rec.headers, payload };
  }

  #schedule(): void {
    if (this.#flushing || this.#scheduled) return;
    this.#scheduled = true;
    if (this.#opts.flushWaitMs === 0) setImmediate(() => void this.#flush());
    else setTimeout(() => void this.#flush(), this.#opts.flushWaitMs);
  }

  /** Group commit: one writev + fdatasync per dirty partition, all partitions in parallel. */
  async #flush(): Promise<void> {
    this.#scheduled = false;
    invariant(!this.#flushing, 'one flush at a time');
    this.#flushing = true;
    const batch = [...this.#dirty];
    this.#dirty.clear();
    const work = batch.map((part) => {
      if (part.buf !== undefined && part.bufPos > part.bufStart) {
        part.chunks.push(part.buf.subarray(part.bufStart, part.bufPos));
        part.bufStart = part.bufPos;
      }
      const chunks = part.chunks;
      const pending = part.pending;
      const bytes = part.pendingBytes;
      part.chunks = [];
      part.pending = [];
      part.pendingBytes = 0;
      return { part, chunks, pending, bytes };
    });
    await Promise.all(
      work.map(async ({ part, chunks, pending, bytes }) => {
        try {
          if (this.#failed !== undefined) throw this.#failed;
          await this.#writeOut(part, chunks, pending, bytes);
        } catch (err) {
          this.#failed ??= err;
          const e = ppError('PP_ERR_UNAVAILABLE', { message: 'log write failed; nothing of this batch is acknowledged', cause: err });
          for (const a of pending) a.reject(e);
          return;
        }
        this.stats.records += pending.length;
        this.stats.bytes += bytes;
        for (const a of pending) a.resolve({ partition: part.partition, offset: a.offset, duplicate: false });
        part.wake();
      }),
    );
    this.stats.flushes++;
    this.#flushing = false;
    if (this.#dirty.size > 0) this.#schedule();
    else {
      const ws = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of ws) w();
    }
  }

  async #writeOut(part: PartitionLog, chunks: Buffer[], pending: PendingAppend[], bytes: number): Promise<void> {
    if (pending.length === 0) return;
    let seg = part.active;
    if (seg.sizeBytes >= this.#opts.segmentBytesMax) seg = await this.#roll(part, pending[0]!.offset);
    const fh = seg.writeFh;
    invariant(fh !== undefined, 'active segment has a write handle');
    const start = seg.sizeBytes;
    let written = 0;
    while (written < bytes) {
      // writev may write less than asked (rare); continue from where it stopped.
      const { bytesWritten } = await fh.writev(written === 0 ? chunks : [Buffer.concat(chunks).subarray(written)]);
      written += bytesWritten;
    }
    await fh.datasync();
    for (const a of pending) {
      const pos = start + a.relPos;
      seg.addIndex(a.offset, pos, a.tsMs, this.#opts.indexIntervalBytes);
    }
    if (seg.next === seg.base) seg.firstTsMs = pending[0]!.tsMs;
    const last = pending[pending.length - 1]!;
    seg.lastTsMs = last.tsMs;
    seg.next = last.offset + 1;
    seg.sizeBytes = start + bytes;
    invariant(seg.next === part.durableNext + pending.length, 'durable offsets advance by the records written');
    part.durableNext = seg.next;
  }

  /** Seals the active segment (index written and fsynced) and starts a new one at `base`. */
  async #roll(part: PartitionLog, base: number): Promise<Segment> {
    const old = part.active;
    invariant(old.next === base, 'a new segment starts where the old one ends');
    old.writeIndex();
    await old.writeFh?.close();
    old.writeFh = undefined;
    const seg = new Segment(part.dir, base);
    seg.writeFh = await open(seg.path, 'a+');
    // The new file's directory entry must be durable before records in it are acknowledged.
    fsyncDir(part.dir);
    part.segments.push(seg);
    return seg;
  }
}
