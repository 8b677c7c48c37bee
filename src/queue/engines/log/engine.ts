/**
 * The embedded engine: an append-only segmented log per partition on local disk. This file
 * composes the parts and owns the topics, the lock, dedup by id and retention:
 *
 *   frame.ts      the record format on disk (checksummed frames, tombstones)
 *   segment.ts    one segment file and its sparse offset/time index
 *   partition.ts  the in-memory state of a topic and its partitions (write buffer, tail cache)
 *   flusher.ts    appends and group commit: writev + fdatasync, the durability promise
 *   reader.ts     reads from the tail cache or the segments; the per-consumer PartitionReader
 *   recovery.ts   scan and repair on open (torn tails, corrupt records)
 *   groups.ts     consumer-group leases and committed offsets (LogGroupStore)
 *
 * Layout under the root directory:
 *   LOCK                                  pid of the process that has the log open (one at a time)
 *   topics/<topic>/topic.json             partitions + retention
 *   topics/<topic>/<p>/<base>.log         segment: frames, base = first offset (20 digits)
 *   topics/<topic>/<p>/<base>.idx         sparse offset+time index of a sealed segment
 *   groups/<topic>/<group>.json           committed offsets of a consumer group
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { invariant, isPowerplantError, ppError, requireArg, type PowerplantError } from '../../../errors/index.js';
import type { AppendResult, EngineLimits, OutRecord, PartitionBounds, PartitionReader, QueueEngine, ReadFrom, RecoveryEvent, StoredRecord, TopicConfig } from '../base.js';
import { fromStoredTopic, toStoredTopic, type StoredTopicConfig } from '../base.js';
import { Flusher } from './flusher.js';
import { fsyncDir } from './fsync.js';
import { LogGroupStore } from './groups.js';
import { PartitionLog, type TopicState } from './partition.js';
import { LogReader, offsetForTime, readDisk, readRecords, type ReadResult } from './reader.js';
import { recoverPartition, repairSealed, type RecoveryContext } from './recovery.js';

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

const NAME_RE = /^[A-Za-z0-9_-]{1,100}$/;
/** Roots opened by this process: a second open of the same directory would corrupt it. */
const openRoots = new Set<string>();

export class LogEngine implements QueueEngine {
  readonly kind = 'log';
  readonly root: string;
  readonly recovery: RecoveryEvent[] = [];
  readonly groups: LogGroupStore;
  readonly #opts: Required<LogOptions>;
  readonly #limits: EngineLimits;
  readonly #frameBytesMax: number;
  readonly #topics = new Map<string, TopicState>();
  readonly #flusher: Flusher;
  readonly #recoveryCtx: RecoveryContext;
  #closed = true;
  #retentionTimer: NodeJS.Timeout | undefined;
  /** Stats: flushes and records flushed (group-commit effectiveness). */
  readonly stats: { flushes: number; records: number; bytes: number };

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
    this.#frameBytesMax = limits.messageBytesMax + 256 * 1024;
    this.groups = new LogGroupStore(join(root, 'groups'));
    this.#flusher = new Flusher({
      segmentBytesMax: o.segmentBytesMax,
      flushWaitMs: o.flushWaitMs,
      pendingBytesMax: o.pendingBytesMax,
      indexIntervalBytes: o.indexIntervalBytes,
      frameBytesMax: this.#frameBytesMax,
    });
    this.stats = this.#flusher.stats;
    this.#recoveryCtx = { frameBytesMax: this.#frameBytesMax, indexIntervalBytes: o.indexIntervalBytes, events: this.recovery };
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
        const config = fromStoredTopic(JSON.parse(readFileSync(metaPath, 'utf8')) as StoredTopicConfig);
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
    while (this.#flusher.busy) await this.#flusher.idle();
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
      await fh.writeFile(JSON.stringify(toStoredTopic(config)));
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
    while (t.parts.some((p) => p.pending.length > 0) || this.#flusher.flushing) await this.#flusher.idle();
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
      await recoverPartition(part, this.#recoveryCtx);
      parts.push(part);
    }
    const t: TopicState = { name, config, dir, parts, ids: new Map(), pendingIds: new Map() };
    this.#topics.set(name, t);
    await this.#rebuildDedup(t);
  }

  /** Reads back the ids of the dedup window, so a retry after a restart is still absorbed. */
  async #rebuildDedup(t: TopicState): Promise<void> {
    const since = Date.now() - this.#limits.dedupWindowMs;
    const found: { id: string; partition: number; offset: number; tsMs: number }[] = [];
    for (const p of t.parts) {
      // Bounded: at most dedupMax records per partition are read back.
      let off = Math.max(await this.offsetForTime(t.name, p.partition, since), p.durableNext - this.#limits.dedupMax, p.first);
      while (off < p.durableNext) {
        let r: ReadResult;
        try {
          r = await readDisk(p, off, 4096, this.#frameBytesMax);
        } catch (err) {
          // A damaged sealed segment found while opening: repair it now (once), then go on.
          const seg = isPowerplantError(err, 'PP_ERR_CORRUPT') ? p.segmentFor(off) : undefined;
          if (seg === undefined || seg === p.active || (err as PowerplantError).data?.repaired === true) throw err;
          await repairSealed(p, seg, this.#recoveryCtx);
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
    const flusher = this.#flusher;
    if (flusher.failed !== undefined) return Promise.reject(ppError('PP_ERR_UNAVAILABLE', { message: 'the log stopped after a failed write; reopen it', cause: flusher.failed }));
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
    if (flusher.full(part)) {
      return Promise.reject(ppError('PP_ERR_OVERLOADED', { message: `log write buffer full (${this.#opts.pendingBytesMax} bytes waiting for fsync: log.pendingBytesMax)` }));
    }
    const p = flusher.append(part, rec);
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

  // ---- read -----------------------------------------------------------------------------------

  /** Durable records from `from`, at most `max`: memory when still cached, else disk. */
  async read(topic: string, partition: number, from: number, max: number): Promise<StoredRecord[]> {
    return (await readRecords(this.#part(topic, partition), from, max, this.#frameBytesMax)).recs;
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
  readPart(part: PartitionLog, from: number, max: number): Promise<ReadResult> {
    return readRecords(part, from, max, this.#frameBytesMax);
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
    return offsetForTime(part, timeMs, this.#frameBytesMax);
  }

  // ---- retention ------------------------------------------------------------------------------

  /** Removes whole sealed segments over a topic's byte budget or older than its age. */
  async applyRetention(nowMs = Date.now()): Promise<number> {
    let removed = 0;
    for (const t of this.#topics.values()) {
      const bytesMax = Math.floor(t.config.retention.bytesMax / t.config.partitions);
      const oldest = nowMs - t.config.retention.ageMsMax;
      for (const p of t.parts) {
        let total = p.totalBytes();
        while (p.segments.length > 1) {
          const s = p.segments[0]!;
          if (total <= bytesMax && s.lastTsMs >= oldest) break;
          p.segments.shift();
          total -= s.sizeBytes;
          await s.closeHandles();
          await rm(s.path, { force: true });
          await rm(s.indexPath, { force: true });
          removed++;
        }
        if (p.cacheFirst < p.first) p.cacheFirst = Math.min(p.first, p.durableNext);
      }
    }
    return removed;
  }
}
