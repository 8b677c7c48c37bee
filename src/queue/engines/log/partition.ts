/**
 * The in-memory state of a topic and of each of its partitions, shared by the files that act on
 * it: the flusher fills a partition's write buffer and advances its durable end, the reader reads
 * its tail cache and segments, recovery rebuilds its segments on open, the engine owns the topics.
 */
import { invariant } from '../../../errors/index.js';
import type { AppendResult, StoredRecord, TopicConfig } from '../base.js';
import type { Segment } from './segment.js';

/** An append encoded into the write buffer, waiting for the flush that makes it durable. */
export interface PendingAppend {
  readonly offset: number;
  /** Position of the frame relative to the start of this partition's unflushed bytes. */
  readonly relPos: number;
  readonly tsMs: number;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: unknown) => void;
  readonly id: string | undefined;
}

export class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  readonly segments: Segment[] = [];
  /** Offset the next append gets. */
  nextOffset = 0;
  /** Offsets below this are durable (fsynced) and visible to readers. */
  durableNext = 0;
  lastTsMs = 0;
  // ---- write buffer (since the last flush; see flusher.ts) ----
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

export interface TopicState {
  readonly name: string;
  readonly config: TopicConfig;
  readonly dir: string;
  readonly parts: PartitionLog[];
  /** id -> where it was stored (insertion order ~ time order, evicted from the front). */
  readonly ids: Map<string, { partition: number; offset: number; tsMs: number }>;
  /** id -> the append in flight, so a concurrent duplicate waits for the first one. */
  readonly pendingIds: Map<string, Promise<AppendResult>>;
}
