/**
 * The NATS JetStream engine: JetStream is the durable log, the consumer semantics are ours
 * (`../consumer/`), so both engines behave the same and pass the same conformance suite.
 *
 *  - A topic is a stream `<ns>_<topic>` with one subject per partition, `<ns>.<topic>.<p>`; file
 *    storage, retention by `max_bytes` / `max_age` (discard old), dedup by `Nats-Msg-Id` over
 *    `duplicate_window`. The partition count is kept in the stream's description.
 *  - Batching (group commit over the wire): appends without an id to the same partition made in
 *    one event-loop turn travel as one JetStream message (header `pp-batch: <n>`, body: the records
 *    one after another), so the server stores and acknowledges many records with one PubAck.
 *    Batches are pipelined (the next turn's batch does not wait for the previous PubAck), sent in
 *    call order on one connection, so per-partition order is kept. A record with an id goes alone
 *    with `Nats-Msg-Id` (the server's dedup works per message), after the partition's open batch.
 *  - An offset is `stream sequence * 1024 + index in the message` (shared by a topic's partitions:
 *    per partition offsets are increasing but not dense). A reader is an ephemeral pull consumer
 *    filtered on the partition's subject, starting at the message that holds its offset.
 *  - Consumer groups live in the KV bucket `<ns>_groups`: one entry per (topic, group, partition)
 *    holding the lease (owner, expiry) and the committed offset, updated by compare-and-set on the
 *    entry's revision (so renewing a lease and committing an offset are one atomic step), and one
 *    entry per live member. Lease expiry uses the members' wall clocks: keep clocks in sync.
 *
 * Durability when `publish` resolves: the server acknowledged the message (PubAck) after storing
 * it in the stream's file store. With the server's default `sync_interval` (2 min) the file is not
 * fsynced per message: an acknowledged message survives a crash of our process and of the NATS
 * server process, but the last ones can be lost on an OS crash or power loss unless the server
 * runs with `sync_interval: always` (or a replicated stream, R3). See docs/queue.md.
 */
import { AckPolicy, connect, DeliverPolicy, DiscardPolicy, headers as natsHeaders, RetentionPolicy, StorageType, type Consumer, type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg, type KV, type NatsConnection } from 'nats';
import { invariant, isPowerplantError, ppError, requireArg } from '../../errors/index.js';
import {
  ENCODING_BYTES,
  ENCODING_MSGPACK,
  type AppendResult,
  type Claimed,
  type CommitEntry,
  type EngineLimits,
  type GroupStore,
  type OutRecord,
  type PartitionBounds,
  type PartitionReader,
  type QueueEngine,
  type ReadFrom,
  type RecoveryEvent,
  type StoredAttempts,
  type StoredRecord,
  type TopicConfig,
} from './base.js';

export interface JetStreamOptions {
  /** Prefix of every stream, subject and bucket this queue uses. Default 'pp'. */
  readonly namespace?: string;
  /** Connection timeout, in ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** PubAck wait, in ms. Default 10000. */
  readonly publishTimeoutMs?: number;
  /** Records a reader buffers ahead of the consumer. Default 512. */
  readonly readBufferMax?: number;
  /** Body bytes of one batch message (capped by the server's max_payload). Default 256 KiB. */
  readonly batchBytesMax?: number;
  /** Appended bytes not yet acknowledged by the server before appends fail with PP_ERR_OVERLOADED. Default 64 MiB. */
  readonly pendingBytesMax?: number;
}

export const JETSTREAM_DEFAULTS = { namespace: 'pp', connectTimeoutMs: 5000, publishTimeoutMs: 10_000, readBufferMax: 512, batchBytesMax: 256 * 1024, pendingBytesMax: 64 * 1024 * 1024 } as const;

/** offset = stream sequence * OFFSET_SCALE + index of the record in its message. */
export const OFFSET_SCALE = 1024;
const H_BATCH = 'pp-batch';
/** Per record in a batch body: u32 entryBytes | u8 encoding | u8 flags | u16 keyBytes | f64 deliverAtMs | u32 headerBytes | key | headers JSON | payload. */
const ENTRY_HEADER_BYTES = 20;
const F_KEY = 1;
const F_HEADERS = 2;
/** Room kept in a message for NATS headers and the protocol line. */
const HEADER_ROOM_BYTES = 4096;

interface PendingRecord {
  readonly rec: OutRecord;
  readonly headersJson: string | undefined;
  readonly bytes: number;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: unknown) => void;
}

interface OpenBatch {
  readonly topic: string;
  readonly partition: number;
  readonly recs: PendingRecord[];
  bytes: number;
}

const H_KEY = 'pp-key';
const H_AT = 'pp-at';
const H_ENC = 'pp-enc';
const NS_RE = /^[A-Za-z0-9_-]{1,40}$/;
const NANOS_PER_MS = 1_000_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

interface SlotValue {
  /** Owner member id, '' = free. */
  o: string;
  /** Lease expiry, epoch ms. */
  e: number;
  /** Committed offset, null = none. */
  c: number | null;
  /** Delivery counts of unfinished records ([offset, attempts]); absent = none. */
  a?: StoredAttempts;
}

export class JetStreamEngine implements QueueEngine {
  readonly kind = 'jetstream';
  readonly recovery: readonly RecoveryEvent[] = [];
  readonly namespace: string;
  readonly #servers: string;
  readonly #opts: Required<JetStreamOptions>;
  readonly #limits: EngineLimits;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #groups: JetStreamGroupStore | undefined;
  readonly #readers = new Set<JetStreamReader>();
  /** Open batches by `topic\0partition`, sent on the next event-loop turn. */
  #batches = new Map<string, OpenBatch>();
  #scheduled = false;
  /** Bytes appended and not yet settled by a PubAck (bounded by pendingBytesMax). */
  #pendingBytes = 0;
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(servers: string, limits: EngineLimits, options: JetStreamOptions = {}) {
    this.#opts = { ...JETSTREAM_DEFAULTS, ...options };
    requireArg(NS_RE.test(this.#opts.namespace), 'jetstream.namespace', 'must match [A-Za-z0-9_-]{1,40}');
    requireArg(Number.isInteger(this.#opts.readBufferMax) && this.#opts.readBufferMax >= 1 && this.#opts.readBufferMax <= 100_000, 'jetstream.readBufferMax', 'must be an integer in [1, 100000]');
    requireArg(Number.isInteger(this.#opts.batchBytesMax) && this.#opts.batchBytesMax >= 0, 'jetstream.batchBytesMax', 'must be an integer >= 0 (0 = no batching)');
    requireArg(Number.isInteger(this.#opts.pendingBytesMax) && this.#opts.pendingBytesMax >= 65536, 'jetstream.pendingBytesMax', 'must be an integer >= 65536');
    this.namespace = this.#opts.namespace;
    this.#servers = servers;
    this.#limits = limits;
  }

  get groups(): GroupStore {
    invariant(this.#groups !== undefined, 'engine opened before use');
    return this.#groups;
  }

  #stream(topic: string): string {
    return `${this.namespace}_${topic}`;
  }

  subject(topic: string, partition: number): string {
    return `${this.namespace}.${topic}.${partition}`;
  }

  async open(): Promise<void> {
    try {
      this.#nc = await connect({ servers: this.#servers, timeout: this.#opts.connectTimeoutMs, maxReconnectAttempts: -1 });
    } catch (err) {
      throw ppError('PP_ERR_UNAVAILABLE', { message: `cannot connect to NATS at ${this.#servers}`, cause: err });
    }
    this.#jsm = await this.#nc.jetstreamManager();
    this.#js = this.#nc.jetstream({ timeout: this.#opts.publishTimeoutMs });
    const kv = await this.#js.views.kv(`${this.namespace}_groups`, { history: 1 });
    this.#groups = new JetStreamGroupStore(kv);
  }

  async close(): Promise<void> {
    // Everything accepted is sent and its PubAck awaited before the connection drains.
    this.#flushAll();
    await Promise.allSettled([...this.#inFlight]);
    for (const r of this.#readers) await r.close();
    const nc = this.#nc;
    this.#nc = undefined;
    if (nc !== undefined && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }

  #m(): { js: JetStreamClient; jsm: JetStreamManager } {
    if (this.#js === undefined || this.#jsm === undefined || this.#nc === undefined) throw ppError('PP_ERR_CLOSED', { message: 'the queue is closed' });
    return { js: this.#js, jsm: this.#jsm };
  }

  async createTopic(name: string, config: TopicConfig): Promise<TopicConfig> {
    const { jsm } = this.#m();
    const existing = await this.topic(name);
    if (existing !== undefined) {
      if (existing.partitions !== config.partitions) {
        throw ppError('PP_ERR_CONFLICT', { field: 'partitions', message: `topic ${name} exists with ${existing.partitions} partitions`, data: { partitions: existing.partitions } });
      }
      return existing;
    }
    const ageNsMax = config.retention.ageMsMax * NANOS_PER_MS;
    await jsm.streams.add({
      name: this.#stream(name),
      subjects: [`${this.namespace}.${name}.*`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_bytes: config.retention.bytesMax,
      max_age: ageNsMax,
      // The dedup window cannot be longer than the age limit.
      duplicate_window: Math.min(this.#limits.dedupWindowMs * NANOS_PER_MS, ageNsMax),
      num_replicas: 1,
      // A stored format: the names it was first written with (before the limits were renamed).
      description: JSON.stringify({ pp: 1, partitions: config.partitions, maxBytes: config.retention.bytesMax, maxAgeMs: config.retention.ageMsMax }),
    });
    return config;
  }

  async topic(name: string): Promise<TopicConfig | undefined> {
    const { jsm } = this.#m();
    try {
      const si = await jsm.streams.info(this.#stream(name));
      const d = JSON.parse(si.config.description ?? '{}') as { partitions?: number; maxBytes?: number; maxAgeMs?: number };
      invariant(typeof d.partitions === 'number', 'a queue stream records its partition count');
      return { partitions: d.partitions, retention: { bytesMax: d.maxBytes ?? si.config.max_bytes, ageMsMax: d.maxAgeMs ?? si.config.max_age / NANOS_PER_MS } };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async deleteTopic(name: string): Promise<boolean> {
    const { jsm } = this.#m();
    try {
      await jsm.streams.delete(this.#stream(name));
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    await this.#groups?.dropTopic(name);
    return true;
  }

  /** Deletes every stream of this namespace and its groups bucket (tests, tear-down). The queue is unusable afterwards. */
  async destroyNamespace(): Promise<void> {
    const { jsm } = this.#m();
    const names: string[] = [];
    for await (const si of jsm.streams.list()) if (si.config.name.startsWith(`${this.namespace}_`)) names.push(si.config.name);
    names.push(`KV_${this.namespace}_groups`);
    for (const n of names) await jsm.streams.delete(n).catch(() => false);
  }

  #payloadBytesMax(): number {
    return this.#nc?.info?.max_payload ?? 1024 * 1024;
  }

  append(topic: string, partition: number, rec: OutRecord): Promise<AppendResult> {
    try {
      this.#m();
    } catch (err) {
      return Promise.reject(err);
    }
    const headersJson = rec.headers === undefined ? undefined : JSON.stringify(rec.headers);
    const bytes = ENTRY_HEADER_BYTES + (rec.key === undefined ? 0 : Buffer.byteLength(rec.key)) + (headersJson === undefined ? 0 : Buffer.byteLength(headersJson)) + rec.payload.length;
    const room = this.#payloadBytesMax() - HEADER_ROOM_BYTES;
    if (bytes > room) {
      return Promise.reject(ppError('PP_ERR_TOO_LARGE', { field: 'message', message: `message: ${bytes} bytes with its key and headers exceed the NATS server's max_payload (${room} usable)`, data: { sizeBytes: bytes, bytesMax: room } }));
    }
    if (this.#pendingBytes + bytes > this.#opts.pendingBytesMax) {
      return Promise.reject(ppError('PP_ERR_OVERLOADED', { message: `JetStream publish buffer full (${this.#opts.pendingBytesMax} bytes waiting for PubAcks: jetstream.pendingBytesMax)` }));
    }
    this.#pendingBytes += bytes;
    const k = `${topic}\u0000${partition}`;
    const batchMax = Math.min(this.#opts.batchBytesMax, room);
    return new Promise<AppendResult>((resolve, reject) => {
      const p: PendingRecord = { rec, headersJson, bytes, resolve, reject };
      let b = this.#batches.get(k);
      if (rec.id !== undefined || bytes > batchMax) {
        // Alone (dedup is per message), after whatever this partition has open: order is kept.
        if (b !== undefined) this.#send(k, b);
        this.#sendOne(topic, partition, p);
        return;
      }
      if (b !== undefined && (b.recs.length >= OFFSET_SCALE || b.bytes + bytes > batchMax)) {
        this.#send(k, b);
        b = undefined;
      }
      if (b === undefined) {
        b = { topic, partition, recs: [], bytes: 0 };
        this.#batches.set(k, b);
      }
      b.recs.push(p);
      b.bytes += bytes;
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flushAll());
      }
    });
  }

  #flushAll(): void {
    this.#scheduled = false;
    const all = this.#batches;
    this.#batches = new Map();
    for (const [k, b] of all) this.#send(k, b, all);
  }

  /** Sends an open batch (removing it from the open set). One record goes as a plain message. */
  #send(k: string, b: OpenBatch, from: Map<string, OpenBatch> = this.#batches): void {
    from.delete(k);
    if (b.recs.length === 1) {
      this.#sendOne(b.topic, b.partition, b.recs[0]!);
      return;
    }
    const body = Buffer.allocUnsafe(b.bytes);
    let pos = 0;
    for (const { rec, headersJson, bytes } of b.recs) {
      const keyBytes = rec.key === undefined ? 0 : Buffer.byteLength(rec.key);
      const headerBytes = headersJson === undefined ? 0 : Buffer.byteLength(headersJson);
      body.writeUInt32LE(bytes, pos);
      body[pos + 4] = rec.encoding;
      body[pos + 5] = (rec.key === undefined ? 0 : F_KEY) | (headersJson === undefined ? 0 : F_HEADERS);
      body.writeUInt16LE(keyBytes, pos + 6);
      body.writeDoubleLE(rec.deliverAtMs, pos + 8);
      body.writeUInt32LE(headerBytes, pos + 16);
      let p = pos + ENTRY_HEADER_BYTES;
      if (rec.key !== undefined) p += body.write(rec.key, p, 'utf8');
      if (headersJson !== undefined) p += body.write(headersJson, p, 'utf8');
      body.set(rec.payload, p);
      pos += bytes;
      invariant(p + rec.payload.length === pos, 'batch entry length matches its encoding');
    }
    invariant(pos === b.bytes, 'batch body length matches its entries');
    const h = natsHeaders();
    h.set(H_BATCH, String(b.recs.length));
    this.#track(b.topic, this.#publish(b.topic, b.partition, body, h, undefined), b.recs, (ack, i) => ({ partition: b.partition, offset: ack.seq * OFFSET_SCALE + i, duplicate: false }));
  }

  #sendOne(topic: string, partition: number, p: PendingRecord): void {
    const { rec } = p;
    const h = natsHeaders();
    if (rec.key !== undefined) h.set(H_KEY, rec.key);
    if (rec.deliverAtMs > 0) h.set(H_AT, String(rec.deliverAtMs));
    if (rec.encoding === ENCODING_MSGPACK) h.set(H_ENC, 'm');
    if (rec.headers !== undefined) for (const k of Object.keys(rec.headers)) h.set(k, rec.headers[k]!);
    this.#track(topic, this.#publish(topic, partition, rec.payload, h, rec.id), [p], (ack) => ({ partition, offset: ack.seq * OFFSET_SCALE, duplicate: ack.duplicate }));
  }

  #publish(topic: string, partition: number, data: Uint8Array, h: ReturnType<typeof natsHeaders>, id: string | undefined): Promise<{ seq: number; duplicate: boolean }> {
    try {
      const { js } = this.#m();
      return js.publish(this.subject(topic, partition), data, { headers: h, ...(id === undefined ? {} : { msgID: id }) });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Settles the records of one message when its PubAck (or failure) arrives. */
  #track(topic: string, sent: Promise<{ seq: number; duplicate: boolean }>, recs: readonly PendingRecord[], result: (ack: { seq: number; duplicate: boolean }, i: number) => AppendResult): void {
    const done = sent.then(
      (ack) => {
        for (let i = 0; i < recs.length; i++) {
          this.#pendingBytes -= recs[i]!.bytes;
          recs[i]!.resolve(result(ack, i));
        }
      },
      (err: unknown) => {
        const e = isPowerplantError(err)
          ? err
          : isNoResponders(err)
          ? ppError('PP_ERR_UNKNOWN_TOPIC', { field: 'topic', message: `unknown topic "${topic}"`, data: { topic } })
          : ppError('PP_ERR_UNAVAILABLE', { message: `JetStream publish failed: ${(err as Error).message}`, cause: err });
        for (const r of recs) {
          this.#pendingBytes -= r.bytes;
          r.reject(e);
        }
      },
    );
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
  }

  /**
   * An ephemeral pull consumer without acks, filtered on the partition's subject. (The client's
   * "ordered consumer" `consume()` does not start against a 2.9 server; a plain ephemeral
   * consumer does, and `inactive_threshold` removes it if this process dies.)
   */
  async #consumer(topic: string, partition: number, from: ReadFrom): Promise<{ consumer: Consumer; name: string }> {
    const { js, jsm } = this.#m();
    const cfg: Partial<ConsumerConfig> = {
      ack_policy: AckPolicy.None,
      filter_subject: this.subject(topic, partition),
      inactive_threshold: 30_000 * NANOS_PER_MS,
      mem_storage: true,
      num_replicas: 1,
    };
    if (from === 'earliest') cfg.deliver_policy = DeliverPolicy.All;
    else if (from === 'latest') cfg.deliver_policy = DeliverPolicy.New;
    else if ('offset' in from) {
      const seq = Math.floor(from.offset / OFFSET_SCALE);
      if (seq <= 1) cfg.deliver_policy = DeliverPolicy.All;
      else {
        cfg.deliver_policy = DeliverPolicy.StartSequence;
        cfg.opt_start_seq = seq;
      }
    } else {
      cfg.deliver_policy = DeliverPolicy.StartTime;
      cfg.opt_start_time = new Date(from.timeMs).toISOString();
    }
    let ci: ConsumerInfo;
    try {
      ci = await jsm.consumers.add(this.#stream(topic), cfg);
    } catch (err) {
      if (isNotFound(err)) throw ppError('PP_ERR_UNKNOWN_TOPIC', { field: 'topic', message: `unknown topic "${topic}"`, data: { topic } });
      throw err;
    }
    return { consumer: await js.consumers.get(this.#stream(topic), ci.name), name: ci.name };
  }

  async openReader(topic: string, partition: number, from: ReadFrom): Promise<PartitionReader> {
    const { jsm } = this.#m();
    // 'latest': the stream's end before the consumer exists (it delivers only later messages), so
    // the reader's position is the end at once and nothing it delivers is below it.
    const latestEnd = from === 'latest' ? ((await this.#streamState(topic)).last_seq + 1) * OFFSET_SCALE : 0;
    const { consumer, name } = await this.#consumer(topic, partition, from);
    const first = (await this.#streamState(topic)).first_seq * OFFSET_SCALE;
    const startOffset = from === 'latest' ? latestEnd : from === 'earliest' || !('offset' in from) ? first : from.offset;
    const messages = await consumer.consume({ max_messages: this.#opts.readBufferMax });
    const stream = this.#stream(topic);
    const r: JetStreamReader = new JetStreamReader(partition, messages, this.#opts.readBufferMax, startOffset, first, async () => {
      this.#readers.delete(r);
      if (this.#nc !== undefined && !this.#nc.isClosed()) await jsm.consumers.delete(stream, name).catch(() => false);
    });
    this.#readers.add(r);
    return r;
  }

  async #streamState(topic: string): Promise<{ first_seq: number; last_seq: number }> {
    const { jsm } = this.#m();
    try {
      return (await jsm.streams.info(this.#stream(topic))).state;
    } catch (err) {
      if (isNotFound(err)) throw ppError('PP_ERR_UNKNOWN_TOPIC', { field: 'topic', message: `unknown topic "${topic}"`, data: { topic } });
      throw err;
    }
  }

  /**
   * `first` is stream-wide (offsets are stream sequences; reading a partition from it yields the
   * partition's first record); `next` is the partition's own end: one past the last record of the
   * last message on its subject (a batch holds several), so a reader whose position reached it
   * has read everything, whatever the other partitions appended after it.
   */
  async bounds(topic: string, partition: number): Promise<PartitionBounds> {
    const { jsm } = this.#m();
    const [state, last] = await Promise.all([
      this.#streamState(topic),
      jsm.streams.getMessage(this.#stream(topic), { last_by_subj: this.subject(topic, partition) }).catch((err: unknown) => {
        if (isNoMessage(err)) return undefined;
        throw err;
      }),
    ]);
    const streamNext = (state.last_seq + 1) * OFFSET_SCALE;
    if (last === undefined) return { first: streamNext, next: streamNext };
    const n = Number(last.header?.get(H_BATCH) ?? '');
    const next = last.seq * OFFSET_SCALE + (n >= 2 ? n : 1);
    return { first: Math.min(state.first_seq * OFFSET_SCALE, next), next };
  }

  async offsetForTime(topic: string, partition: number, timeMs: number): Promise<number> {
    const { jsm } = this.#m();
    const { consumer, name } = await this.#consumer(topic, partition, { timeMs });
    try {
      const batch = await consumer.fetch({ max_messages: 1, expires: 1000 });
      for await (const m of batch) return m.seq * OFFSET_SCALE;
      return (await this.bounds(topic, partition)).next;
    } finally {
      await jsm.consumers.delete(this.#stream(topic), name).catch(() => false);
    }
  }
}

/** Buffers a pull consumer's messages; `next` hands them out as records. */
class JetStreamReader implements PartitionReader {
  readonly #partition: number;
  readonly #messages: ConsumerMessages;
  readonly #max: number;
  readonly #buf: StoredRecord[] = [];
  #head = 0;
  #closed = false;
  #wake: (() => void) | undefined;
  #space: (() => void) | undefined;
  readonly #onClose: () => Promise<void>;
  readonly #pump: Promise<void>;
  #expected: number;
  skipped = 0;

  constructor(partition: number, messages: ConsumerMessages, max: number, start: number, first: number, onClose: () => Promise<void>) {
    this.#partition = partition;
    this.#messages = messages;
    this.#max = max;
    this.#onClose = onClose;
    // Offsets are sparse per partition, so records removed by retention cannot be counted here:
    // `skipped` stays 0 on JetStream (documented).
    this.#expected = Math.max(start, first);
    this.#pump = this.#run();
  }

  async #run(): Promise<void> {
    try {
      for await (const m of this.#messages) {
        if (this.#closed) break;
        // A batch's records before the start offset (the reader starts at the message holding it).
        const had = this.#buf.length;
        for (const r of toRecords(this.#partition, m)) if (r.offset >= this.#expected) this.#buf.push(r);
        // Only records wake a waiting next(): a message whose records all precede the start does not.
        if (this.#buf.length > had) this.#wake?.();
        // Bounded: stop pulling from the iterator while the buffer is full.
        while (this.#buf.length - this.#head >= this.#max && !this.#closed) await new Promise<void>((r) => (this.#space = r));
      }
    } catch {
      // the consumer stopped (closed connection); next() returns [] from now on
    }
  }

  get position(): number {
    return this.#expected;
  }

  async next(max: number, waitMs: number): Promise<readonly StoredRecord[]> {
    if (this.#buf.length - this.#head === 0 && !this.#closed && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.#wake = undefined;
          resolve();
        };
        const t = setTimeout(done, waitMs);
        this.#wake = done;
      });
    }
    const n = Math.min(max, this.#buf.length - this.#head);
    if (n <= 0) return [];
    const out = this.#buf.slice(this.#head, this.#head + n);
    this.#head += n;
    if (this.#head > 1024 && this.#head * 2 > this.#buf.length) {
      this.#buf.splice(0, this.#head);
      this.#head = 0;
    }
    const last = out[out.length - 1]!;
    invariant(last.offset >= this.#expected, 'an ordered consumer moves forward');
    this.#expected = last.offset + 1;
    const s = this.#space;
    this.#space = undefined;
    s?.();
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    this.#space?.();
    // close() settles only once the iterator is drained, i.e. after #pump's loop ends: not awaited.
    this.#messages.close().catch(() => undefined);
    await this.#pump;
    await this.#onClose();
  }
}

/** The records of one JetStream message: a batch (`pp-batch`) or one plain message. */
function toRecords(partition: number, m: JsMsg): StoredRecord[] {
  const n = Number(m.headers?.get(H_BATCH) ?? '');
  if (!(n >= 2)) return [toRecord(partition, m)];
  const timestampMs = Math.floor(m.info.timestampNanos / NANOS_PER_MS);
  const data = m.data;
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = new Array<StoredRecord>(n);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    invariant(pos + ENTRY_HEADER_BYTES <= body.length, 'batch entry within its message');
    const bytes = body.readUInt32LE(pos);
    const encoding = body[pos + 4] === ENCODING_MSGPACK ? ENCODING_MSGPACK : ENCODING_BYTES;
    const flags = body[pos + 5]!;
    const keyBytes = body.readUInt16LE(pos + 6);
    const deliverAtMs = body.readDoubleLE(pos + 8);
    const headerBytes = body.readUInt32LE(pos + 16);
    let p = pos + ENTRY_HEADER_BYTES;
    const key = (flags & F_KEY) !== 0 ? body.toString('utf8', p, p + keyBytes) : undefined;
    p += keyBytes;
    const headers = (flags & F_HEADERS) !== 0 ? (JSON.parse(body.toString('utf8', p, p + headerBytes)) as Record<string, string>) : undefined;
    p += headerBytes;
    invariant(bytes >= p - pos && pos + bytes <= body.length, 'batch entry length');
    out[i] = { partition, offset: m.seq * OFFSET_SCALE + i, timestampMs, deliverAtMs, encoding, key, id: undefined, headers, payload: body.subarray(p, pos + bytes) };
    pos += bytes;
  }
  return out;
}

function toRecord(partition: number, m: JsMsg): StoredRecord {
  const h = m.headers;
  let key: string | undefined;
  let id: string | undefined;
  let deliverAtMs = 0;
  let encoding: StoredRecord['encoding'] = ENCODING_BYTES;
  let headers: Record<string, string> | undefined;
  if (h !== undefined) {
    for (const [k, vs] of h) {
      const v = vs[0] ?? '';
      if (k === H_KEY) key = v;
      else if (k === H_AT) deliverAtMs = Number(v);
      else if (k === H_ENC) encoding = v === 'm' ? ENCODING_MSGPACK : ENCODING_BYTES;
      else if (k === 'Nats-Msg-Id') id = v;
      else (headers ??= {})[k] = v;
    }
  }
  return { partition, offset: m.seq * OFFSET_SCALE, timestampMs: Math.floor(m.info.timestampNanos / NANOS_PER_MS), deliverAtMs, encoding, key, id, headers, payload: m.data };
}

class JetStreamGroupStore implements GroupStore {
  readonly #kv: KV;
  /**
   * The slots this process holds, as it last wrote them (value and revision): a commit is then one
   * compare-and-set round trip instead of a read and a write. Stale entries are harmless: the
   * compare-and-set fails and the commit reads the slot.
   */
  readonly #held = new Map<string, { v: SlotValue; rev: number }>();

  constructor(kv: KV) {
    this.#kv = kv;
  }

  async #get(key: string): Promise<{ v: SlotValue; rev: number } | undefined> {
    const e = await this.#kv.get(key);
    if (e === null || e.operation !== 'PUT') return undefined;
    return { v: JSON.parse(dec.decode(e.value)) as SlotValue, rev: e.revision };
  }

  async join(topic: string, group: string, member: string, ttlMs: number): Promise<void> {
    await this.#kv.put(`m.${topic}.${group}.${member}`, enc.encode(String(Date.now() + ttlMs)));
  }

  async leave(topic: string, group: string, member: string): Promise<void> {
    await this.#kv.delete(`m.${topic}.${group}.${member}`);
  }

  async members(topic: string, group: string): Promise<string[]> {
    const prefix = `m.${topic}.${group}.`;
    const keys: string[] = [];
    for await (const k of await this.#kv.keys(`${prefix}*`)) keys.push(k);
    const now = Date.now();
    const live: string[] = [];
    await Promise.all(
      keys.map(async (k) => {
        const e = await this.#kv.get(k);
        if (e === null || e.operation !== 'PUT') return;
        if (Number(dec.decode(e.value)) >= now) live.push(k.slice(prefix.length));
        else await this.#kv.delete(k, { previousSeq: e.revision }).catch(() => undefined);
      }),
    );
    return live.sort();
  }

  async claim(topic: string, group: string, partition: number, member: string, ttlMs: number): Promise<Claimed | undefined> {
    const key = `s.${topic}.${group}.${partition}`;
    const cur = await this.#get(key);
    const now = Date.now();
    try {
      if (cur === undefined) {
        const v: SlotValue = { o: member, e: now + ttlMs, c: null };
        this.#held.set(key, { v, rev: await this.#kv.create(key, enc.encode(JSON.stringify(v))) });
        return { committed: undefined, attempts: [] };
      }
      if (cur.v.o !== '' && cur.v.o !== member && cur.v.e >= now) return undefined;
      const v: SlotValue = { o: member, e: now + ttlMs, c: cur.v.c, ...(cur.v.a === undefined ? {} : { a: cur.v.a }) };
      this.#held.set(key, { v, rev: await this.#kv.update(key, enc.encode(JSON.stringify(v)), cur.rev) });
      return { committed: cur.v.c ?? undefined, attempts: cur.v.a ?? [] };
    } catch (err) {
      if (isWrongSequence(err)) return undefined; // someone else changed it first
      throw err;
    }
  }

  async commit(topic: string, group: string, member: string, ttlMs: number, entries: readonly CommitEntry[]): Promise<number[]> {
    const lost: number[] = [];
    const now = Date.now();
    await Promise.all(
      entries.map(async (en) => {
        const key = `s.${topic}.${group}.${en.partition}`;
        const write = async (cur: { v: SlotValue; rev: number }): Promise<void> => {
          const a = en.attempts ?? cur.v.a;
          const v: SlotValue = { o: en.release ? '' : member, e: en.release ? 0 : now + ttlMs, c: en.committed ?? cur.v.c, ...(a === undefined || a.length === 0 ? {} : { a }) };
          const rev = await this.#kv.update(key, enc.encode(JSON.stringify(v)), cur.rev);
          if (en.release) this.#held.delete(key);
          else this.#held.set(key, { v, rev });
        };
        const known = this.#held.get(key);
        if (known !== undefined && known.v.o === member) {
          try {
            await write(known);
            return;
          } catch (err) {
            if (!isWrongSequence(err)) throw err;
            // Changed since our last write (taken over, or a write of ours whose reply was lost): read it.
          }
        }
        this.#held.delete(key);
        const cur = await this.#get(key);
        if (cur === undefined || cur.v.o !== member) {
          lost.push(en.partition);
          return;
        }
        try {
          await write(cur);
        } catch (err) {
          if (!isWrongSequence(err)) throw err;
          lost.push(en.partition);
        }
      }),
    );
    return lost.sort((a, b) => a - b);
  }

  async committed(topic: string, group: string, partitions: number): Promise<(number | undefined)[]> {
    return Promise.all(Array.from({ length: partitions }, async (_, p) => (await this.#get(`s.${topic}.${group}.${p}`))?.v.c ?? undefined));
  }

  async seek(topic: string, group: string, partition: number, committed: number): Promise<void> {
    const key = `s.${topic}.${group}.${partition}`;
    const cur = await this.#get(key);
    if (cur !== undefined && cur.v.o !== '' && cur.v.e >= Date.now()) {
      throw ppError('PP_ERR_CONFLICT', { message: `partition ${partition} of ${topic} is held by a member of group ${group}; stop the group before seeking` });
    }
    const v = enc.encode(JSON.stringify({ o: '', e: 0, c: committed } satisfies SlotValue));
    if (cur === undefined) await this.#kv.create(key, v);
    else await this.#kv.update(key, v, cur.rev);
  }

  async dropTopic(topic: string): Promise<void> {
    const keys: string[] = [];
    for (const pattern of [`s.${topic}.>`, `m.${topic}.>`]) for await (const k of await this.#kv.keys(pattern)) keys.push(k);
    await Promise.all(keys.map((k) => this.#kv.purge(k).catch(() => undefined)));
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? `${err.message} ${String((err as { code?: unknown }).code ?? '')}` : String(err);
}
function isNotFound(err: unknown): boolean {
  return /not found|10059/i.test(errText(err));
}
function isNoResponders(err: unknown): boolean {
  return /503|no responders/i.test(errText(err));
}
function isNoMessage(err: unknown): boolean {
  return /no message found|10037/i.test(errText(err));
}
function isWrongSequence(err: unknown): boolean {
  return /wrong last sequence|10071|key exists/i.test(errText(err));
}
