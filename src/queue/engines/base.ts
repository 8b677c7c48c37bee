/**
 * The contract every queue engine implements (Moleculer-style: one base, one file per engine,
 * `index.ts` resolves a URL). An engine is a durable partitioned log plus a small coordination
 * store for consumer groups; everything a consumer does on top of that — per-key ordering, ack
 * deadlines, redelivery with backoff, dead letters, rebalancing — lives once in `../consumer/`,
 * so both engines give the same semantics and pass the same conformance suite.
 *
 * Offsets: per partition, strictly increasing in append order, not necessarily dense (JetStream
 * uses stream sequences shared by all partitions of a topic). A group's committed offset is "the
 * next offset to handle": every record below it has been handled by the group.
 */

/** Payload encodings: raw bytes are stored as given; anything else is msgpack. */
export const ENCODING_BYTES = 0;
export const ENCODING_MSGPACK = 1;
export type Encoding = typeof ENCODING_BYTES | typeof ENCODING_MSGPACK;

export interface TopicRetention {
  /** Bytes kept per topic (all partitions); older data is removed first. */
  readonly bytesMax: number;
  /** Records older than this may be removed, in ms. */
  readonly ageMsMax: number;
}

export interface TopicConfig {
  readonly partitions: number;
  readonly retention: TopicRetention;
}

/**
 * A topic's configuration as the embedded log stores it (topic.json). A stored format: its field
 * names are the ones it was first written with (retention.maxBytes / maxAgeMs, from before the
 * limits were renamed), so a data directory reads the same in every version.
 */
export interface StoredTopicConfig {
  readonly partitions: number;
  readonly retention: { readonly maxBytes: number; readonly maxAgeMs: number };
}

export function toStoredTopic(c: TopicConfig): StoredTopicConfig {
  return { partitions: c.partitions, retention: { maxBytes: c.retention.bytesMax, maxAgeMs: c.retention.ageMsMax } };
}

export function fromStoredTopic(s: StoredTopicConfig): TopicConfig {
  return { partitions: s.partitions, retention: { bytesMax: s.retention.maxBytes, ageMsMax: s.retention.maxAgeMs } };
}

/** A record as the producer hands it to an engine (already validated and encoded). */
export interface OutRecord {
  readonly key: string | undefined;
  readonly id: string | undefined;
  /** Epoch ms before which the record is not handed to consumers; 0 = at once. */
  readonly deliverAtMs: number;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly encoding: Encoding;
  readonly payload: Uint8Array;
}

/** A record read back from the log. */
export interface StoredRecord extends OutRecord {
  readonly partition: number;
  readonly offset: number;
  /** Append time, epoch ms (non-decreasing per partition on the embedded engine). */
  readonly timestampMs: number;
}

export interface AppendResult {
  readonly partition: number;
  readonly offset: number;
  /** True when a record with the same id was already in the dedup window: nothing was appended. */
  readonly duplicate: boolean;
}

/** Where a reader starts. */
export type ReadFrom = { readonly offset: number } | { readonly timeMs: number } | 'earliest' | 'latest';

export interface PartitionReader {
  /**
   * Up to `max` records from the reader's position (only durable ones), waiting up to `waitMs`
   * for at least one. Resolves [] on timeout or close. One call at a time.
   */
  next(max: number, waitMs: number): Promise<readonly StoredRecord[]>;
  /**
   * Where the reader is: every record of the partition below this offset was returned or skipped
   * (tombstones, records before the start), so the next record returned is at or after it. A
   * reader whose position reached `bounds().next` has read the partition to its end.
   */
  readonly position: number;
  /** Records skipped because retention removed them before they were read. */
  readonly skipped: number;
  close(): Promise<void>;
}

export interface PartitionBounds {
  /**
   * Where the partition's records start: reading from here yields its first record (embedded:
   * its lowest offset still stored; JetStream: the stream's, shared by its partitions). `== next`
   * when the partition is empty.
   */
  readonly first: number;
  /**
   * The partition's end: one past its last stored record (embedded: also the offset the next
   * append gets). Every record of the partition is below it, every later append at or above it.
   */
  readonly next: number;
}

/**
 * Delivery counts of a partition's unfinished records at or after its committed offset, as
 * `[offset, attempts]` pairs in offset order (at most ATTEMPTS_STORED_MAX), stored with the offset
 * so a redelivery after a crash or a rebalance keeps its attempt count.
 */
export type StoredAttempts = readonly (readonly [offset: number, attempts: number])[];

/** Most `[offset, attempts]` pairs stored per partition (the oldest unfinished records first). */
export const ATTEMPTS_STORED_MAX = 1000;

/** One partition's slot in a group: who holds it (lease) and the committed offset. */
export interface CommitEntry {
  readonly partition: number;
  /** Next offset to handle; undefined = nothing to store (keep the previous value). */
  readonly committed: number | undefined;
  /** Give the partition up after storing the offset. */
  readonly release: boolean;
  /** Delivery counts to store; undefined = keep the stored ones. */
  readonly attempts?: StoredAttempts;
}

/** What a claim found: the committed offset (undefined = never committed) and the stored delivery counts. */
export interface Claimed {
  readonly committed: number | undefined;
  readonly attempts: StoredAttempts;
}

/**
 * Consumer-group coordination. Partition ownership is a lease with a deadline; storing the
 * committed offset and renewing the lease are one conditional operation, so a member that lost a
 * partition (paused past its lease) can never overwrite the offset of the member that took over.
 */
export interface GroupStore {
  /** Announces (or keeps alive) a member for `ttlMs`. */
  join(topic: string, group: string, member: string, ttlMs: number): Promise<void>;
  leave(topic: string, group: string, member: string): Promise<void>;
  /** Live members, sorted (every member computes the same assignment from it). */
  members(topic: string, group: string): Promise<string[]>;
  /**
   * Takes partition `p` for `member` when free, expired, or already its own. Resolves the stored
   * committed offset (`committed: undefined` when the group never committed one) and delivery
   * counts, or undefined when another live member holds the lease.
   */
  claim(topic: string, group: string, partition: number, member: string, ttlMs: number): Promise<Claimed | undefined>;
  /** Renews the leases of `entries`, stores their offsets, releases those asked. Resolves the partitions that were lost. */
  commit(topic: string, group: string, member: string, ttlMs: number, entries: readonly CommitEntry[]): Promise<number[]>;
  /** Reads a group's committed offset per partition (undefined = none). */
  committed(topic: string, group: string, partitions: number): Promise<(number | undefined)[]>;
  /** Overwrites a group's committed offset of one partition (replay) and forgets its delivery counts. The partition must not be held. */
  seek(topic: string, group: string, partition: number, committed: number): Promise<void>;
}

/** Something the engine noticed while opening (torn tails, skipped files). */
export interface RecoveryEvent {
  /**
   * torn-tail: the end of a segment was cut (nothing valid followed the first bad frame);
   * corrupt-records: a bad region with valid records after it was replaced by tombstones (the
   * records after it are kept, the lost offsets are skipped by readers);
   * index-rebuilt, stale-lock: informational.
   */
  readonly kind: 'torn-tail' | 'corrupt-records' | 'index-rebuilt' | 'stale-lock';
  readonly topic?: string;
  readonly partition?: number;
  readonly file?: string;
  /** Byte position where the log was cut. */
  readonly position?: number;
  readonly droppedBytes?: number;
  /** Complete records kept in the cut segment. */
  readonly keptRecords?: number;
  /** corrupt-records: the first lost offset and how many offsets were lost. */
  readonly offset?: number;
  readonly lostRecords?: number;
  readonly reason?: string;
}

export interface QueueEngine {
  /** 'log' (embedded) or 'jetstream'. */
  readonly kind: string;
  open(): Promise<void>;
  close(): Promise<void>;
  /** What recovery found when opening (embedded: torn tails cut, indexes rebuilt). */
  readonly recovery: readonly RecoveryEvent[];
  /** Creates a topic; same config = no-op; a different partition count = PP_ERR_CONFLICT. */
  createTopic(name: string, config: TopicConfig): Promise<TopicConfig>;
  /** A topic's config, or undefined when it does not exist. */
  topic(name: string): Promise<TopicConfig | undefined>;
  deleteTopic(name: string): Promise<boolean>;
  /** Appends one record; resolves once it is durable (see the engine for exactly what that means). */
  append(topic: string, partition: number, record: OutRecord): Promise<AppendResult>;
  openReader(topic: string, partition: number, from: ReadFrom): Promise<PartitionReader>;
  bounds(topic: string, partition: number): Promise<PartitionBounds>;
  /** The first offset whose append time is >= timeMs (== bounds.next when none). */
  offsetForTime(topic: string, partition: number, timeMs: number): Promise<number>;
  readonly groups: GroupStore;
}

/** Limits an engine needs from the queue's options. */
export interface EngineLimits {
  readonly messageBytesMax: number;
  readonly dedupWindowMs: number;
  readonly dedupMax: number;
}

/** Headers the queue itself sets (dead letters); user headers may not start with this prefix. */
export const RESERVED_HEADER_PREFIX = 'pp-';
