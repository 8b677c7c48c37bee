/**
 * The embedded engine: an append-only segmented log per partition on local disk.
 *
 * Layout under the root directory:
 *   LOCK                                  pid of the process that has the log open (one at a time)
 *   topics/<topic>/topic.json             partitions + retention
 *   topics/<topic>/<p>/<base>.log         segment: frames, base = first offset (20 digits)
 *   topics/<topic>/<p>/<base>.idx         sparse offset+time index of a sealed segment
 *   groups/<topic>/<group>.json           committed offsets of a consumer group
 *
 * Frame (little-endian): u32 frameBytes | u32 crc32(bytes 8..end) | f64 offset | f64 timestampMs |
 * f64 deliverAtMs | u8 encoding | u8 flags (1 key, 2 id) | u16 keyBytes | u16 idBytes |
 * u32 headerBytes | key | id | headers (JSON) | payload.
 *
 * Durability (what "publish resolved" means here): group commit. Appends are encoded into the
 * partition's write buffer; one flush at a time writes every dirty partition (one writev each) and
 * fdatasyncs each file; an append's promise resolves only after the fdatasync of the flush that
 * wrote it returned. So a resolved publish survives a process crash, an OS crash and a power loss
 * (as far as the disk honours flushes). Consumers only ever see records that are durable.
 * A flush starts on the next event-loop turn after the first append (or after `flushWaitMs`), or
 * right after the flush in flight: the bounded wait is one fsync. If a write or fsync fails the
 * engine stops accepting appends (PP_ERR_UNAVAILABLE): after a failed fsync the file's state is
 * unknown, and reopening (recovery by checksum) is the only honest way on.
 *
 * Recovery: every segment without an index and the last segment of every partition are scanned.
 * A frame that is incomplete, fails its checksum or carries an unexpected offset is either a torn
 * tail (a crash during the last flush: nothing after it was acknowledged) or damage in the middle
 * (records after it were fsynced by earlier flushes and may have been acknowledged). The scan looks
 * further on for a valid frame that can follow; if there is one, the damaged bytes are overwritten
 * with tombstones (one per lost offset, skipped by readers and counted in `skipped`) and a
 * 'corrupt-records' event reports them; if there is none, the file is truncated there and a
 * 'torn-tail' event reports the cut. Either way every complete record is kept. Sealed segments
 * with a valid index are not scanned on open: damage there surfaces when read (PP_ERR_CORRUPT),
 * and drops the index so the next open scans and repairs that segment.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, fsyncSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { invariant, isPowerplantError, ppError, requireArg, type PowerplantError } from '../../errors/index.js';
import type {
  AppendResult,
  CommitEntry,
  Encoding,
  EngineLimits,
  GroupStore,
  OutRecord,
  PartitionBounds,
  PartitionReader,
  QueueEngine,
  ReadFrom,
  RecoveryEvent,
  StoredRecord,
  TopicConfig,
} from './base.js';

export interface LogOptions {
  /** A segment is sealed and a new one started once it reaches this size. Default 64 MiB. */
  readonly segmentBytesMax?: number;
  /** Extra wait before a flush when idle, to gather more appends, in ms. Default 0 (next turn). */
  readonly flushWaitMs?: number;
  /** Appended bytes waiting for a flush before appends fail with PP_ERR_OVERLOADED. Default 64 MiB. */
  readonly pendingBytesMax?: number;
  /** Recent records per partition kept in memory for readers (no disk read). Default 4096. */
  readonly tailCacheRecords?: number;
  /** One sparse index entry per this many log bytes. Default 4096. */
  readonly indexIntervalBytes?: number;
  /** How often retention runs, in ms. Default 5000. */
  readonly retentionIntervalMs?: number;
}

export const LOG_DEFAULTS = {
  segmentBytesMax: 64 * 1024 * 1024,
  flushWaitMs: 0,
  pendingBytesMax: 64 * 1024 * 1024,
  tailCacheRecords: 4096,
  indexIntervalBytes: 4096,
  retentionIntervalMs: 5000,
} as const;

const FRAME_HEADER_BYTES = 42;
const FLAG_KEY = 1;
const FLAG_ID = 2;
/** A tombstone written by recovery in place of a corrupt record: readers skip it. */
const FLAG_LOST = 4;
/** Write buffers are allocated in chunks of this size (a bigger record gets its own). */
const WRITE_CHUNK_BYTES = 1024 * 1024;
/** Bytes read from a segment per disk read. */
const READ_CHUNK_BYTES = 1024 * 1024;
const INDEX_ENTRY_BYTES = 24; // f64 offset, f64 position, f64 timestampMs
const NAME_RE = /^[A-Za-z0-9_-]{1,100}$/;
/** Roots opened by this process: a second open of the same directory would corrupt it. */
const openRoots = new Set<string>();

/** Makes a directory's entries (files created, renamed in it) durable. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function segmentName(base: number): string {
  return String(base).padStart(20, '0');
}

class Segment {
  readonly base: number;
  readonly path: string;
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

  constructor(base: number, path: string) {
    this.base = base;
    this.next = base;
    this.sizeBytes = 0;
    this.path = path;
  }

  addIndex(offset: number, pos: number, ts: number, intervalBytes: number): void {
    if (pos - this.lastIndexedPos < intervalBytes) return;
    this.idxOffsets.push(offset);
    this.idxPositions.push(pos);
    this.idxTimes.push(ts);
    this.lastIndexedPos = pos;
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

interface PendingAppend {
  readonly offset: number;
  /** Position of the frame relative to the start of this partition's unflushed bytes. */
  readonly relPos: number;
  readonly tsMs: number;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: unknown) => void;
  readonly id: string | undefined;
}

/** Parses one frame at `pos` of `buf`; undefined when incomplete or corrupt. */
function parseFrame(buf: Buffer, pos: number, end: number, partition: number, frameMaxBytes: number): StoredRecord | undefined | 'incomplete' {
  if (end - pos < FRAME_HEADER_BYTES) return 'incomplete';
  const frameBytes = buf.readUInt32LE(pos);
  if (frameBytes < FRAME_HEADER_BYTES || frameBytes > frameMaxBytes) return undefined;
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
function tombstones(first: number, count: number, bytes: number, tsMs: number): Buffer {
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

class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  readonly segments: Segment[] = [];
  /** Offset the next append gets. */
  nextOffset = 0;
  /** Offsets below this are durable (fsynced) and visible to readers. */
  durableNext = 0;
  lastTsMs = 0;
  // ---- write buffer (since the last flush) ----
  chunks: Buffer[] = [];
  buf: Buffer | undefined;
  bufStart = 0;
  bufPos = 0;
  pendingBytes = 0;
  pending: PendingAppend[] = [];
  // ---- tail cache: a ring of the newest records, indexed by offset % size ----
  readonly cache: (StoredRecord | undefined)[];
  cacheFirst = 0;
  readonly waiters = new Set<() => void>();

  constructor(topic: string, partition: number, dir: string, cacheSize: number) {
    this.topic = topic;
    this.partition = partition;
    this.dir = dir;
    this.cache = new Array<StoredRecord | undefined>(cacheSize).fill(undefined);
  }

  get first(): number {
    return this.segments.length === 0 ? this.nextOffset : this.segments[0]!.base;
  }

  get active(): Segment {
    const s = this.segments[this.segments.length - 1];
    invariant(s !== undefined, 'a partition always has an active segment');
    return s;
  }

  totalBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.sizeBytes;
    return n;
  }

  wake(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  cachePut(rec: StoredRecord): void {
    const n = this.cache.length;
    this.cache[rec.offset % n] = rec;
    if (rec.offset - this.cacheFirst >= n) this.cacheFirst = rec.offset - n + 1;
  }

  segmentFor(offset: number): Segment | undefined {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    let best: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (segs[mid]!.base <= offset) {
        best = segs[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return best;
  }
}

interface TopicState {
  readonly name: string;
  readonly config: TopicConfig;
  readonly dir: string;
  readonly parts: PartitionLog[];
  /** id -> where it was stored (insertion order ~ time order, evicted from the front). */
  readonly ids: Map<string, { partition: number; offset: number; tsMs: number }>;
  /** id -> the append in flight, so a concurrent duplicate waits for the first one. */
  readonly pendingIds: Map<string, Promise<AppendResult>>;
}

export class LogEngine implements QueueEngine {
  readonly kind = 'log';
  readonly root: string;
  readonly recovery: RecoveryEvent[] = [];
  readonly groups: LogGroupStore;
  readonly #opts: Required<LogOptions>;
  readonly #limits: EngineLimits;
  readonly #frameMaxBytes: number;
  readonly #topics = new Map<string, TopicState>();
  #dirty = new Set<PartitionLog>();
  #flushing = false;
  #scheduled = false;
  #failed: unknown;
  #closed = true;
  #retentionTimer: NodeJS.Timeout | undefined;
  #idleWaiters: (() => void)[] = [];
  /** Stats: flushes and records flushed (group-commit effectiveness). */
  readonly stats = { flushes: 0, records: 0, bytes: 0 };

  constructor(root: string, limits: EngineLimits, options: LogOptions = {}) {
    requireArg(typeof root === 'string' && root.length > 0, 'engine', 'file:<dir> needs a directory');
    this.root = root;
    this.#limits = limits;
    this.#opts = { ...LOG_DEFAULTS, ...options };
    const o = this.#opts;
    requireArg(Number.isInteger(o.segmentBytesMax) && o.segmentBytesMax >= 4096 && o.segmentBytesMax <= 2 ** 31, 'log.segmentBytesMax', 'must be an integer in [4096, 2^31]');
    requireArg(Number.isInteger(o.flushWaitMs) && o.flushWaitMs >= 0 && o.flushWaitMs <= 1000, 'log.flushWaitMs', 'must be an integer in [0, 1000]');
    requireArg(Number.isInteger(o.pendingBytesMax) && o.pendingBytesMax >= 65536, 'log.pendingBytesMax', 'must be an integer >= 65536');
    requireArg(Number.isInteger(o.tailCacheRecords) && o.tailCacheRecords >= 16 && o.tailCacheRecords <= 1_000_000, 'log.tailCacheRecords', 'must be an integer in [16, 1000000]');
    requireArg(Number.isInteger(o.indexIntervalBytes) && o.indexIntervalBytes >= 64, 'log.indexIntervalBytes', 'must be an integer >= 64');
    requireArg(Number.isInteger(o.retentionIntervalMs) && o.retentionIntervalMs >= 10, 'log.retentionIntervalMs', 'must be an integer >= 10');
    // A frame holds the payload plus key (<= 64 KiB by u16), id and headers; the headers bound is
    // the queue's, so allow a generous fixed overhead on top of the message maximum.
    this.#frameMaxBytes = limits.messageMaxBytes + 256 * 1024;
    this.groups = new LogGroupStore(join(root, 'groups'));
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  async open(): Promise<void> {
    const createdTopics = mkdirSync(join(this.root, 'topics'), { recursive: true }) !== undefined;
    const createdGroups = mkdirSync(join(this.root, 'groups'), { recursive: true }) !== undefined;
    if (createdTopics || createdGroups) fsyncDir(this.root);
    this.#lock();
    try {
      for (const name of readdirSync(join(this.root, 'topics'))) {
        const dir = join(this.root, 'topics', name);
        const metaPath = join(dir, 'topic.json');
        if (!existsSync(metaPath)) continue;
        const config = JSON.parse(readFileSync(metaPath, 'utf8')) as TopicConfig;
        await this.#loadTopic(name, dir, config);
      }
    } catch (err) {
      this.#unlock();
      throw err;
    }
    this.#closed = false;
    this.#retentionTimer = setInterval(() => void this.applyRetention().catch(() => undefined), this.#opts.retentionIntervalMs);
    this.#retentionTimer.unref();
  }

  #lock(): void {
    const lockPath = join(this.root, 'LOCK');
    if (openRoots.has(this.root)) throw ppError('PP_ERR_CONFLICT', { message: `queue directory ${this.root} is already open in this process` });
    if (existsSync(lockPath)) {
      const pid = Number(readFileSync(lockPath, 'utf8').trim());
      let alive = false;
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (err) {
          alive = (err as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) throw ppError('PP_ERR_CONFLICT', { message: `queue directory ${this.root} is in use by process ${pid}`, data: { pid } });
      this.recovery.push({ kind: 'stale-lock', file: lockPath, reason: `process ${pid} is gone` });
    }
    writeFileSync(lockPath, String(process.pid));
    openRoots.add(this.root);
  }

  #unlock(): void {
    openRoots.delete(this.root);
    rmSync(join(this.root, 'LOCK'), { force: true });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retentionTimer !== undefined) clearInterval(this.#retentionTimer);
    // Everything already accepted is flushed (and acknowledged) before the files close.
    while (this.#flushing || this.#dirty.size > 0) await new Promise<void>((r) => this.#idleWaiters.push(r));
    for (const t of this.#topics.values()) {
      for (const p of t.parts) {
        p.wake();
        for (const s of p.segments) await s.closeHandles();
      }
    }
    await this.groups.flushAll();
    this.#unlock();
  }

  #checkOpen(): void {
    if (this.#closed) throw ppError('PP_ERR_CLOSED', { message: 'the queue is closed' });
  }

  // ---- topics ---------------------------------------------------------------------------------

  async createTopic(name: string, config: TopicConfig): Promise<TopicConfig> {
    this.#checkOpen();
    requireArg(NAME_RE.test(name), 'topic', 'must match [A-Za-z0-9_-]{1,100}');
    const existing = this.#topics.get(name);
    if (existing !== undefined) {
      if (existing.config.partitions !== config.partitions) {
        throw ppError('PP_ERR_CONFLICT', { field: 'partitions', message: `topic ${name} exists with ${existing.config.partitions} partitions`, data: { partitions: existing.config.partitions } });
      }
      return existing.config;
    }
    const dir = join(this.root, 'topics', name);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, 'topic.json.tmp');
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(config));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, 'topic.json'));
    // Partition directories and their first segments are created (and their entries fsynced)
    // by #loadTopic; then the topic's own entries. A publish to a new topic survives power loss.
    await this.#loadTopic(name, dir, config);
    fsyncDir(dir);
    fsyncDir(join(this.root, 'topics'));
    return config;
  }

  async topic(name: string): Promise<TopicConfig | undefined> {
    return Promise.resolve(this.#topics.get(name)?.config);
  }

  async deleteTopic(name: string): Promise<boolean> {
    this.#checkOpen();
    const t = this.#topics.get(name);
    if (t === undefined) return false;
    while (t.parts.some((p) => p.pending.length > 0) || this.#flushing) await new Promise<void>((r) => this.#idleWaiters.push(r));
    this.#topics.delete(name);
    for (const p of t.parts) {
      p.wake();
      for (const s of p.segments) await s.closeHandles();
    }
    await rm(t.dir, { recursive: true, force: true });
    await this.groups.dropTopic(name);
    return true;
  }

  async #loadTopic(name: string, dir: string, config: TopicConfig): Promise<void> {
    const parts: PartitionLog[] = [];
    for (let p = 0; p < config.partitions; p++) {
      const pdir = join(dir, String(p));
      mkdirSync(pdir, { recursive: true });
      const part = new PartitionLog(name, p, pdir, this.#opts.tailCacheRecords);
      await this.#recoverPartition(part);
      parts.push(part);
    }
    const t: TopicState = { name, config, dir, parts, ids: new Map(), pendingIds: new Map() };
    this.#topics.set(name, t);
    await this.#rebuildDedup(t);
  }

  async #recoverPartition(part: PartitionLog): Promise<void> {
    const bases = readdirSync(part.dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => Number(f.slice(0, -4)))
      .sort((a, b) => a - b);
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const seg = new Segment(base, join(part.dir, `${segmentName(base)}.log`));
      const last = i === bases.length - 1;
      const idxPath = join(part.dir, `${segmentName(base)}.idx`);
      if (!last && existsSync(idxPath) && this.#loadIndex(seg, idxPath)) {
        part.segments.push(seg);
        continue;
      }
      if (!last) this.recovery.push({ kind: 'index-rebuilt', topic: part.topic, partition: part.partition, file: seg.path });
      await this.#scanSegment(part, seg);
      part.segments.push(seg);
    }
    if (part.segments.length === 0) {
      const seg = new Segment(0, join(part.dir, `${segmentName(0)}.log`));
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

  /** Loads a sealed segment's index file; false when it is missing or does not match the log. */
  #loadIndex(seg: Segment, idxPath: string): boolean {
    const buf = readFileSync(idxPath);
    // Trailer: f64 next, f64 sizeBytes, f64 firstTs, f64 lastTs, u32 crc of everything before.
    const trailer = 36;
    if (buf.length < trailer || (buf.length - trailer) % INDEX_ENTRY_BYTES !== 0) return false;
    const body = buf.length - 4;
    if (crc32(buf.subarray(0, body)) !== buf.readUInt32LE(body)) return false;
    const t = buf.length - trailer;
    const sizeBytes = buf.readDoubleLE(t + 8);
    if (statSync(seg.path).size !== sizeBytes) return false;
    seg.next = buf.readDoubleLE(t);
    seg.sizeBytes = sizeBytes;
    seg.firstTsMs = buf.readDoubleLE(t + 16);
    seg.lastTsMs = buf.readDoubleLE(t + 24);
    for (let p = 0; p < t; p += INDEX_ENTRY_BYTES) {
      seg.idxOffsets.push(buf.readDoubleLE(p));
      seg.idxPositions.push(buf.readDoubleLE(p + 8));
      seg.idxTimes.push(buf.readDoubleLE(p + 16));
    }
    seg.lastIndexedPos = seg.idxPositions.length === 0 ? -Infinity : seg.idxPositions[seg.idxPositions.length - 1]!;
    return true;
  }

  #writeIndex(seg: Segment, idxPath: string): void {
    const n = seg.idxOffsets.length;
    const buf = Buffer.allocUnsafe(n * INDEX_ENTRY_BYTES + 36);
    for (let i = 0; i < n; i++) {
      buf.writeDoubleLE(seg.idxOffsets[i]!, i * INDEX_ENTRY_BYTES);
      buf.writeDoubleLE(seg.idxPositions[i]!, i * INDEX_ENTRY_BYTES + 8);
      buf.writeDoubleLE(seg.idxTimes[i]!, i * INDEX_ENTRY_BYTES + 16);
    }
    const t = n * INDEX_ENTRY_BYTES;
    buf.writeDoubleLE(seg.next, t);
    buf.writeDoubleLE(seg.sizeBytes, t + 8);
    buf.writeDoubleLE(seg.firstTsMs, t + 16);
    buf.writeDoubleLE(seg.lastTsMs, t + 24);
    buf.writeUInt32LE(crc32(buf.subarray(0, t + 32)), t + 32);
    const tmp = `${idxPath}.tmp`;
    writeFileSync(tmp, buf);
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, idxPath);
  }

  /**
   * Scans a segment frame by frame, rebuilding its index. A bad frame (incomplete, checksum,
   * unexpected offset) is either a torn tail or corruption in the middle: if a valid frame that can
   * follow it exists further on, the records from there on were written (and maybe acknowledged)
   * by earlier flushes, so the bad region is overwritten with tombstones (one per lost offset) and
   * the scan goes on; otherwise the file is cut there.
   */
  async #scanSegment(part: PartitionLog, seg: Segment): Promise<void> {
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
        let r = parseFrame(buf, pos - bufStart, bufEnd - bufStart, part.partition, this.#frameMaxBytes);
        if (r === 'incomplete' && bufEnd < size) {
          // The frame crosses the end of the buffer: read again from its start, bigger if needed.
          const need = bufEnd - pos >= 4 ? buf.readUInt32LE(pos - bufStart) : 0;
          if (need > buf.length && need <= this.#frameMaxBytes) buf = Buffer.allocUnsafe(need);
          const n = Math.min(buf.length, size - pos);
          const { bytesRead } = await fh.read(buf, 0, n, pos);
          bufStart = pos;
          bufEnd = pos + bytesRead;
          r = parseFrame(buf, 0, bufEnd - bufStart, part.partition, this.#frameMaxBytes);
        }
        if (r === 'incomplete') reason = 'incomplete frame';
        else if (r === undefined) reason = 'checksum mismatch or malformed frame';
        else if (r.offset !== expected) reason = `unexpected offset ${r.offset} (expected ${expected})`;
        else reason = undefined;
        if (reason !== undefined) {
          const found = await this.#resync(fh, size, pos, expected, part.partition);
          if (found === undefined) break; // nothing valid after it: a torn tail
          const lost = found.offset - expected;
          const tsMs = kept > 0 ? seg.lastTsMs : found.timestampMs;
          await fh.write(tombstones(expected, lost, found.position - pos, tsMs), 0, found.position - pos, pos);
          repaired = true;
          this.recovery.push({
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
        seg.addIndex(r.offset, pos, r.timestampMs, this.#opts.indexIntervalBytes);
        pos += frameBytes;
        expected++;
        kept++;
      }
      if (pos < size) {
        await fh.truncate(pos);
        repaired = true;
        this.recovery.push({
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
  async #resync(fh: FileHandle, size: number, pos: number, expected: number, partition: number): Promise<{ position: number; offset: number; timestampMs: number } | undefined> {
    const frameMax = this.#frameMaxBytes;
    const win = Buffer.allocUnsafe(READ_CHUNK_BYTES + frameMax);
    let start = pos + 1;
    while (start + FRAME_HEADER_BYTES <= size) {
      const { bytesRead } = await fh.read(win, 0, Math.min(win.length, size - start), start);
      const last = bytesRead - FRAME_HEADER_BYTES;
      for (let i = 0; i <= last; i++) {
        const len = win.readUInt32LE(i);
        if (len < FRAME_HEADER_BYTES || len > frameMax) continue;
        const q = start + i;
        if (q + len > size) continue;
        const off = win.readDoubleLE(i + 8);
        const lost = off - expected;
        const gap = q - pos;
        if (!Number.isSafeInteger(off) || lost < 1 || lost * FRAME_HEADER_BYTES > gap || Math.ceil(gap / lost) > frameMax) continue;
        let r: StoredRecord | undefined | 'incomplete';
        if (i + len <= bytesRead) r = parseFrame(win, i, bytesRead, partition, frameMax);
        else {
          const one = Buffer.allocUnsafe(len);
          await fh.read(one, 0, len, q);
          r = parseFrame(one, 0, len, partition, frameMax);
        }
        if (r !== undefined && r !== 'incomplete' && r.offset === off) return { position: q, offset: off, timestampMs: r.timestampMs };
      }
      if (start + bytesRead >= size) break;
      start += last + 1;
    }
    return undefined;
  }

  async #rebuildDedup(t: TopicState): Promise<void> {
    const since = Date.now() - this.#limits.dedupWindowMs;
    const found: { id: string; partition: number; offset: number; tsMs: number }[] = [];
    for (const p of t.parts) {
      // Bounded: at most dedupMax records per partition are read back.
      let off = Math.max(await this.offsetForTime(t.name, p.partition, since), p.durableNext - this.#limits.dedupMax, p.first);
      while (off < p.durableNext) {
        let r: { recs: StoredRecord[]; next: number };
        try {
          r = await this.#readDisk(p, off, 4096);
        } catch (err) {
          // A damaged sealed segment found while opening: repair it now (once), then go on.
          const seg = isPowerplantError(err, 'PP_ERR_CORRUPT') ? p.segmentFor(off) : undefined;
          if (seg === undefined || seg === p.active || (err as PowerplantError).data?.repaired === true) throw err;
          await this.#repairSealed(p, seg);
          continue;
        }
        const { recs, next } = r;
        if (next <= off) break;
        for (const r of recs) if (r.id !== undefined) found.push({ id: r.id, partition: p.partition, offset: r.offset, tsMs: r.timestampMs });
        off = next;
      }
    }
    found.sort((a, b) => a.tsMs - b.tsMs);
    for (const f of found.slice(-this.#limits.dedupMax)) {
      t.ids.delete(f.id);
      t.ids.set(f.id, { partition: f.partition, offset: f.offset, tsMs: f.tsMs });
    }
  }

  #topicState(name: string): TopicState {
    const t = this.#topics.get(name);
    if (t === undefined) throw ppError('PP_ERR_UNKNOWN_TOPIC', { field: 'topic', message: `unknown topic "${name}"`, data: { topic: name } });
    return t;
  }

  #part(topic: string, partition: number): PartitionLog {
    const t = this.#topicState(topic);
    const p = t.parts[partition];
    requireArg(p !== undefined, 'partition', `must be an integer in [0, ${t.parts.length})`);
    return p;
  }

  // ---- append (hot path) ----------------------------------------------------------------------

  append(topic: string, partition: number, rec: OutRecord): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(ppError('PP_ERR_CLOSED', { message: 'the queue is closed' }));
    if (this.#failed !== undefined) return Promise.reject(ppError('PP_ERR_UNAVAILABLE', { message: 'the log stopped after a failed write; reopen it', cause: this.#failed }));
    const t = this.#topicState(topic);
    const part = t.parts[partition];
    invariant(part !== undefined, 'partition in range');
    const id = rec.id;
    if (id !== undefined) {
      const inFlight = t.pendingIds.get(id);
      if (inFlight !== undefined) return inFlight.then((r) => ({ partition: r.partition, offset: r.offset, duplicate: true }));
      const seen = t.ids.get(id);
      if (seen !== undefined && seen.tsMs >= Date.now() - this.#limits.dedupWindowMs) {
        return Promise.resolve({ partition: seen.partition, offset: seen.offset, duplicate: true });
      }
    }
    if (part.pendingBytes >= this.#opts.pendingBytesMax) {
      return Promise.reject(ppError('PP_ERR_OVERLOADED', { message: `log write buffer full (${this.#opts.pendingBytesMax} bytes waiting for fsync)` }));
    }
    const p = new Promise<AppendResult>((resolve, reject) => {
      const offset = part.nextOffset++;
      // Append time never goes backwards within a partition, so the time index can bisect.
      const now = Date.now();
      const tsMs = now > part.lastTsMs ? now : part.lastTsMs;
      part.lastTsMs = tsMs;
      const relPos = part.pendingBytes;
      const stored = this.#encode(part, rec, offset, tsMs);
      part.cachePut(stored);
      part.pending.push({ offset, relPos, tsMs, resolve, reject, id });
    });
    if (id !== undefined) {
      t.pendingIds.set(id, p);
      // Cleared on settle; a failure must not leave the id claimed.
      p.then(
        (r) => {
          t.pendingIds.delete(id);
          this.#remember(t, id, r.partition, r.offset);
        },
        () => t.pendingIds.delete(id),
      );
    }
    this.#dirty.add(part);
    this.#schedule();
    return p;
  }

  #remember(t: TopicState, id: string, partition: number, offset: number): void {
    const now = Date.now();
    t.ids.delete(id);
    t.ids.set(id, { partition, offset, tsMs: now });
    // Evict from the front (oldest first): by count, then by age; a few per call keeps it O(1) amortised.
    const cutoff = now - this.#limits.dedupWindowMs;
    for (const [k, v] of t.ids) {
      if (t.ids.size <= this.#limits.dedupMax && v.tsMs >= cutoff) break;
      t.ids.delete(k);
    }
  }

  /** Encodes one frame into the partition's write buffer and returns the record as stored. */
  #encode(part: PartitionLog, rec: OutRecord, offset: number, tsMs: number): StoredRecord {
    const keyBytes = rec.key === undefined ? 0 : Buffer.byteLength(rec.key);
    const idBytes = rec.id === undefined ? 0 : Buffer.byteLength(rec.id);
    const headersJson = rec.headers === undefined ? undefined : JSON.stringify(rec.headers);
    const headerBytes = headersJson === undefined ? 0 : Buffer.byteLength(headersJson);
    const frameBytes = FRAME_HEADER_BYTES + keyBytes + idBytes + headerBytes + rec.payload.length;
    invariant(keyBytes <= 0xffff && idBytes <= 0xffff && frameBytes <= this.#frameMaxBytes, 'frame within bounds');
    let buf = part.buf;
    if (buf === undefined || buf.length - part.bufPos < frameBytes) {
      if (buf !== undefined && part.bufPos > part.bufStart) part.chunks.push(buf.subarray(part.bufStart, part.bufPos));
      buf = Buffer.allocUnsafe(Math.max(WRITE_CHUNK_BYTES, frameBytes));
      part.buf = buf;
      part.bufStart = 0;
      part.bufPos = 0;
    }
    const pos = part.bufPos;
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
    const payload = buf.subarray(p, p + rec.payload.length);
    p += rec.payload.length;
    invariant(p === pos + frameBytes, 'frame length matches its encoding');
    buf.writeUInt32LE(crc32(buf.subarray(pos + 8, p)), pos + 4);
    part.bufPos = p;
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
    this.#writeIndex(old, join(part.dir, `${segmentName(old.base)}.idx`));
    await old.writeFh?.close();
    old.writeFh = undefined;
    const seg = new Segment(base, join(part.dir, `${segmentName(base)}.log`));
    seg.writeFh = await open(seg.path, 'a+');
    // The new file's directory entry must be durable before records in it are acknowledged.
    fsyncDir(part.dir);
    part.segments.push(seg);
    return seg;
  }

  // ---- read -----------------------------------------------------------------------------------

  /** Durable records from `from`, at most `max`: memory when still cached, else disk. */
  async read(topic: string, partition: number, from: number, max: number): Promise<StoredRecord[]> {
    return (await this.#read(this.#part(topic, partition), from, max)).recs;
  }

  /**
   * Durable records from `from`, at most `max`, and the offset to read next (past tombstones and
   * gaps, which yield no record: `next - from` may exceed `recs.length`).
   */
  async #read(part: PartitionLog, from: number, max: number): Promise<{ recs: StoredRecord[]; next: number }> {
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
    return this.#readDisk(part, from, max);
  }

  async #readDisk(part: PartitionLog, from: number, max: number): Promise<{ recs: StoredRecord[]; next: number }> {
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
          if (need > bytesRead && need <= this.#frameMaxBytes && pos + need <= limit) {
            buf = Buffer.allocUnsafe(need);
            ({ bytesRead } = await fh.read(buf, 0, need, pos));
          }
        }
        let p = 0;
        while (frames < max) {
          const at = p;
          const r = parseFrame(buf, at, bytesRead, part.partition, this.#frameMaxBytes);
          if (r === 'incomplete') break;
          if (r === undefined) throw this.#corrupt(part, seg, pos + at);
          p += buf.readUInt32LE(at);
          if (r.offset < next) continue;
          frames++;
          next = r.offset + 1;
          if ((buf[at + 33]! & FLAG_LOST) === 0) out.push(r);
        }
        if (p === 0) throw this.#corrupt(part, seg, pos);
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

  /** Rescans a sealed segment found damaged while opening (tombstones or a cut) and rewrites its index. */
  async #repairSealed(part: PartitionLog, seg: Segment): Promise<void> {
    await seg.closeHandles();
    seg.idxOffsets = [];
    seg.idxPositions = [];
    seg.idxTimes = [];
    seg.lastIndexedPos = -Infinity;
    await this.#scanSegment(part, seg);
    this.#writeIndex(seg, join(part.dir, `${segmentName(seg.base)}.idx`));
    this.recovery.push({ kind: 'index-rebuilt', topic: part.topic, partition: part.partition, file: seg.path });
  }

  /** A frame below the durable end that fails its checksum: the segment is damaged on disk. */
  #corrupt(part: PartitionLog, seg: Segment, position: number): Error {
    // Sealed segments are not scanned on open; dropping the index makes the next open scan this
    // one, replacing the damaged records by tombstones and keeping everything after them.
    if (seg !== part.active) rmSync(join(part.dir, `${segmentName(seg.base)}.idx`), { force: true });
    return ppError('PP_ERR_CORRUPT', {
      message: `queue segment ${seg.path} is damaged at byte ${position} (checksum); reopen the queue to repair it`,
      data: { topic: part.topic, partition: part.partition, position },
    });
  }

  async openReader(topic: string, partition: number, from: ReadFrom): Promise<PartitionReader> {
    this.#checkOpen();
    const part = this.#part(topic, partition);
    let start: number;
    if (from === 'earliest') start = part.first;
    else if (from === 'latest') start = part.durableNext;
    else if ('offset' in from) start = Math.max(from.offset, 0);
    else start = await this.offsetForTime(topic, partition, from.timeMs);
    return new LogReader(this, part, start);
  }

  /** Used by LogReader. */
  readPart(part: PartitionLog, from: number, max: number): Promise<{ recs: StoredRecord[]; next: number }> {
    return this.#read(part, from, max);
  }

  isLive(part: PartitionLog): boolean {
    return !this.#closed && this.#topics.get(part.topic)?.parts[part.partition] === part;
  }

  goneError(part: PartitionLog): Error {
    if (this.#closed) return ppError('PP_ERR_CLOSED', { message: 'the queue is closed' });
    return ppError('PP_ERR_UNKNOWN_TOPIC', { field: 'topic', message: `topic "${part.topic}" was deleted`, data: { topic: part.topic } });
  }

  async bounds(topic: string, partition: number): Promise<PartitionBounds> {
    const p = this.#part(topic, partition);
    return Promise.resolve({ first: p.first, next: p.durableNext });
  }

  async offsetForTime(topic: string, partition: number, timeMs: number): Promise<number> {
    const part = this.#part(topic, partition);
    requireArg(Number.isFinite(timeMs), 'timeMs', 'must be a finite number');
    const seg = part.segments.find((s) => s.next > s.base && s.lastTsMs >= timeMs);
    if (seg === undefined) return part.durableNext;
    if (seg.firstTsMs >= timeMs) return seg.base;
    // Scan forward from the last index entry before timeMs.
    const pos = seg.positionForTime(timeMs);
    let off = seg.base;
    for (let i = 0; i < seg.idxPositions.length; i++) if (seg.idxPositions[i] === pos) off = seg.idxOffsets[i]!;
    while (off < seg.next) {
      const { recs, next } = await this.#readDisk(part, off, 1024);
      if (next <= off) break;
      for (const r of recs) if (r.timestampMs >= timeMs) return r.offset;
      off = next;
    }
    return seg.next;
  }

  // ---- retention ------------------------------------------------------------------------------

  /** Removes whole sealed segments over a topic's byte budget or older than its age. */
  async applyRetention(nowMs = Date.now()): Promise<number> {
    let removed = 0;
    for (const t of this.#topics.values()) {
      const bytesMax = Math.floor(t.config.retention.maxBytes / t.config.partitions);
      const oldest = nowMs - t.config.retention.maxAgeMs;
      for (const p of t.parts) {
        let total = p.totalBytes();
        while (p.segments.length > 1) {
          const s = p.segments[0]!;
          if (total <= bytesMax && s.lastTsMs >= oldest) break;
          p.segments.shift();
          total -= s.sizeBytes;
          await s.closeHandles();
          await rm(s.path, { force: true });
          await rm(join(p.dir, `${segmentName(s.base)}.idx`), { force: true });
          removed++;
        }
        if (p.cacheFirst < p.first) p.cacheFirst = Math.min(p.first, p.durableNext);
      }
    }
    return removed;
  }
}

class LogReader implements PartitionReader {
  readonly #engine: LogEngine;
  readonly #part: PartitionLog;
  #pos: number;
  #closed = false;
  #wake: (() => void) | undefined;
  skipped = 0;

  constructor(engine: LogEngine, part: PartitionLog, start: number) {
    this.#engine = engine;
    this.#part = part;
    this.#pos = start;
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

// ---- consumer groups: leases in memory, committed offsets in a small file per group --------

interface GroupState {
  readonly members: Map<string, number>;
  readonly owners: Map<number, { member: string; expiresAtMs: number }>;
  committed: (number | undefined)[];
  loaded: boolean;
  writing: Promise<void>;
  dirty: boolean;
}

/**
 * Group coordination for the embedded engine. The log directory is open in one process (LOCK),
 * so every member of a group is in this process: leases live in memory. Committed offsets are
 * durable: each commit that changed one rewrites the group's file (temp file, fsync, rename).
 */
export class LogGroupStore implements GroupStore {
  readonly #dir: string;
  readonly #groups = new Map<string, GroupState>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  #path(topic: string, group: string): string {
    return join(this.#dir, topic, `${group}.json`);
  }

  #state(topic: string, group: string): GroupState {
    const k = `${topic}\u0000${group}`;
    let g = this.#groups.get(k);
    if (g === undefined) {
      g = { members: new Map(), owners: new Map(), committed: [], loaded: false, writing: Promise.resolve(), dirty: false };
      const path = this.#path(topic, group);
      if (existsSync(path)) {
        const j = JSON.parse(readFileSync(path, 'utf8')) as { committed: (number | null)[] };
        g.committed = j.committed.map((c) => (c === null ? undefined : c));
      }
      g.loaded = true;
      this.#groups.set(k, g);
    }
    return g;
  }

  async join(topic: string, group: string, member: string, ttlMs: number): Promise<void> {
    this.#state(topic, group).members.set(member, Date.now() + ttlMs);
    return Promise.resolve();
  }

  async leave(topic: string, group: string, member: string): Promise<void> {
    const g = this.#state(topic, group);
    g.members.delete(member);
    for (const [p, o] of g.owners) if (o.member === member) g.owners.delete(p);
    return Promise.resolve();
  }

  async members(topic: string, group: string): Promise<string[]> {
    const g = this.#state(topic, group);
    const now = Date.now();
    for (const [m, exp] of g.members) if (exp < now) g.members.delete(m);
    return Promise.resolve([...g.members.keys()].sort());
  }

  async claim(topic: string, group: string, partition: number, member: string, ttlMs: number): Promise<{ committed: number | undefined } | undefined> {
    const g = this.#state(topic, group);
    const now = Date.now();
    const o = g.owners.get(partition);
    if (o !== undefined && o.member !== member && o.expiresAtMs >= now) return undefined;
    g.owners.set(partition, { member, expiresAtMs: now + ttlMs });
    return Promise.resolve({ committed: g.committed[partition] });
  }

  async commit(topic: string, group: string, member: string, ttlMs: number, entries: readonly CommitEntry[]): Promise<number[]> {
    const g = this.#state(topic, group);
    const now = Date.now();
    const lost: number[] = [];
    let changed = false;
    for (const e of entries) {
      const o = g.owners.get(e.partition);
      if (o === undefined || o.member !== member) {
        lost.push(e.partition);
        continue;
      }
      if (e.committed !== undefined && g.committed[e.partition] !== e.committed) {
        g.committed[e.partition] = e.committed;
        changed = true;
      }
      if (e.release) g.owners.delete(e.partition);
      else o.expiresAtMs = now + ttlMs;
    }
    if (changed) await this.#persist(topic, group, g);
    return lost;
  }

  async committed(topic: string, group: string, partitions: number): Promise<(number | undefined)[]> {
    const g = this.#state(topic, group);
    return Promise.resolve(Array.from({ length: partitions }, (_, i) => g.committed[i]));
  }

  async seek(topic: string, group: string, partition: number, committed: number): Promise<void> {
    const g = this.#state(topic, group);
    const o = g.owners.get(partition);
    if (o !== undefined && o.expiresAtMs >= Date.now()) {
      throw ppError('PP_ERR_CONFLICT', { message: `partition ${partition} of ${topic} is held by a member of group ${group}; stop the group before seeking` });
    }
    g.committed[partition] = committed;
    await this.#persist(topic, group, g);
  }

  /** Serialised per group; the snapshot written is the latest state at write time. */
  #persist(topic: string, group: string, g: GroupState): Promise<void> {
    g.dirty = true;
    g.writing = g.writing.then(async () => {
      if (!g.dirty) return;
      g.dirty = false;
      const path = this.#path(topic, group);
      const dir = join(this.#dir, topic);
      if (mkdirSync(dir, { recursive: true }) !== undefined) fsyncDir(this.#dir);
      const tmp = `${path}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify({ committed: g.committed.map((c) => c ?? null) }));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      // Without this a power loss could bring back the previous offsets (more redelivery) or,
      // for a new group, none (it would restart from `from`).
      fsyncDir(dir);
    });
    return g.writing;
  }

  async flushAll(): Promise<void> {
    await Promise.allSettled([...this.#groups.values()].map((g) => g.writing));
  }

  async dropTopic(topic: string): Promise<void> {
    for (const k of [...this.#groups.keys()]) if (k.startsWith(`${topic}\u0000`)) this.#groups.delete(k);
    await rm(join(this.#dir, topic), { recursive: true, force: true });
  }
}
