/**
 * The queue: topics, publish, subscribe, replay — one API over any engine (`engines/index.ts`
 * resolves `file:<dir>` or `nats://…`). Producer-side work (validation, size limits, encoding,
 * key -> partition) happens here once; consumer semantics live in `consumer/`.
 */
import { hash32, jumpHash } from '../partition/index.js';
import { isPowerplantError, ppError, requireArg } from '../errors/index.js';
import type { CounterSeries, Logger, MetricsRegistry } from '../observe/index.js';
import { renamedOptions } from '../util/index.js';
import { decodePayload, encodePayload } from './codec.js';
import { Member, type ConsumerHost, type DeadLettered, type LeaseLapse, type SubscribeOptions, type Subscription } from './consumer/index.js';
import { ENCODING_BYTES, RESERVED_HEADER_PREFIX, type QueueEngine, type ReadFrom, type RecoveryEvent, type StoredRecord, type TopicConfig, type TopicRetention } from './engines/base.js';
import { createEngine, type EngineOptions } from './engines/index.js';

export interface QueueLimits {
  /** Encoded message bytes. Default 1 MiB. */
  readonly messageBytesMax: number;
  /** Key bytes (UTF-8). Default 1024. */
  readonly keyBytesMax: number;
  /** Message id bytes (UTF-8). Default 256. */
  readonly idBytesMax: number;
  /** Headers, as JSON bytes. Default 16 KiB. */
  readonly headersBytesMax: number;
  /** Longest delay, in ms. Default 7 days. */
  readonly delayMsMax: number;
  /** Partitions per topic. Default 1024. */
  readonly partitionsMax: number;
}

export const DEFAULT_QUEUE_LIMITS: QueueLimits = {
  messageBytesMax: 1024 * 1024,
  keyBytesMax: 1024,
  idBytesMax: 256,
  headersBytesMax: 16 * 1024,
  delayMsMax: 7 * 86_400_000,
  partitionsMax: 1024,
};

export interface TopicOptions {
  /** Default 4 (or `topicDefaults.partitions`). */
  readonly partitions?: number;
  readonly retention?: Partial<TopicRetention> & {
    /** @deprecated use bytesMax */
    readonly maxBytes?: number;
    /** @deprecated use ageMsMax */
    readonly maxAgeMs?: number;
  };
}

export interface QueueOptions extends EngineOptions {
  /** `file:<dir>` (embedded log, default `file:./data/queue`) or `nats://host:port`. */
  readonly engine?: string;
  readonly limits?: Partial<QueueLimits> & {
    /** @deprecated use messageBytesMax */
    readonly messageMaxBytes?: number;
    /** @deprecated use keyBytesMax */
    readonly keyMaxBytes?: number;
    /** @deprecated use idBytesMax */
    readonly idMaxBytes?: number;
    /** @deprecated use headersBytesMax */
    readonly headersMaxBytes?: number;
    /** @deprecated use delayMsMax */
    readonly delayMaxMs?: number;
  };
  /** Publishing to / subscribing to a missing topic creates it with `topicDefaults` (else PP_ERR_UNKNOWN_TOPIC). Default false. */
  readonly autoCreateTopics?: boolean;
  readonly topicDefaults?: TopicOptions;
  /** A message id seen within this window is not appended again, in ms. Default 120000. */
  readonly dedupWindowMs?: number;
  /** Ids remembered per topic (embedded engine), newest kept. Default 100000. */
  readonly dedupMax?: number;
  /** Where dead-lettered records (error) and consumer incidents such as lease lapses (warn) are logged. Default: nowhere (see `instrument`). */
  readonly logger?: Logger;
  /** Where the queue's metrics (`pp_queue_dead_letters_total`, `pp_queue_lease_lapses_total`) are registered. Default: none (see `instrument`). */
  readonly metrics?: MetricsRegistry;
}

/** What the queue reports to (a node's logger and metrics registry). */
export interface QueueInstruments {
  readonly logger?: Logger;
  readonly metrics?: MetricsRegistry;
}

export interface PublishOptions {
  /** Same key -> same partition -> handled in order within a group. */
  readonly key?: string;
  /** Dedup id: a second publish with the same id within the window appends nothing. */
  readonly id?: string;
  /** Not delivered before this many ms from now. */
  readonly delayMs?: number;
  /** String headers; names starting with `pp-` are reserved. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Explicit partition (overrides the key's). */
  readonly partition?: number;
}

export interface PublishResult {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** True when the id was already in the dedup window: the earlier record's place is returned. */
  readonly duplicate: boolean;
}

/** A record read for inspection or replay (`queue.read`). */
export interface QueueMessage<T = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | undefined;
  readonly id: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestampMs: number;
  readonly deliverAtMs: number;
  readonly value: T;
}

/** Headers a dead letter carries (besides the original's). */
export const DEAD_LETTER_HEADERS = {
  reason: 'pp-dead-reason',
  topic: 'pp-dead-topic',
  partition: 'pp-dead-partition',
  offset: 'pp-dead-offset',
  group: 'pp-dead-group',
  attempts: 'pp-dead-attempts',
} as const;
const DEAD_REASON_CHARS_MAX = 2000;
/** `read`: one wait for the engine to deliver, and how long it may deliver nothing below the partition's end, in ms. */
const READ_WAIT_MS = 500;
export const READ_STALL_MS = 10_000;

const TOPIC_DEFAULTS = { partitions: 4, retention: { bytesMax: 1024 * 1024 * 1024, ageMsMax: 7 * 86_400_000 } } as const;

export class Queue implements ConsumerHost {
  readonly engine: QueueEngine;
  readonly limits: QueueLimits;
  readonly #autoCreate: boolean;
  readonly #defaults: TopicConfig;
  /** Topic configs seen (publish checks a Map, not the engine). */
  readonly #topics = new Map<string, TopicConfig>();
  readonly #subs = new Set<Member>();
  #rr = 0;
  #closed = false;
  #logger: Logger | undefined;
  #deadLetters: ((topic: string, group: string, dlq: string) => CounterSeries) | undefined;
  #leaseLapses: ((topic: string, group: string) => CounterSeries) | undefined;

  /** Use `openQueue`. */
  constructor(engine: QueueEngine, limits: QueueLimits, options: QueueOptions) {
    this.engine = engine;
    this.limits = limits;
    this.#autoCreate = options.autoCreateTopics ?? false;
    this.#defaults = this.#config(options.topicDefaults ?? {}, TOPIC_DEFAULTS);
    this.instrument(options);
  }

  /**
   * Reports to `logger` and `metrics` from now on (for a queue opened before the node whose
   * logger and registry it should use). Every record a consumer gives up on — moved to its
   * dead-letter topic or dropped — is one error log line (topic, group, partition, offset, key, id,
   * attempts, reason, dead-letter topic) and one count of `pp_queue_dead_letters_total{topic,
   * group, dlq}` (`dlq` = the dead-letter topic, or `-` when dropped). A consumer whose lease
   * lapsed (a handler, or anything else, held the event loop longer than sessionTimeoutMs) is one
   * warn log line (topic, group, member, partitions, the record whose handler blocked and for how
   * long) and one count of `pp_queue_lease_lapses_total{topic, group}`.
   */
  instrument(o: QueueInstruments): void {
    if (o.logger !== undefined) this.#logger = o.logger;
    if (o.metrics !== undefined) {
      const c = o.metrics.counter('pp_queue_dead_letters_total', 'Records that failed deliveriesMax times: moved to the dead-letter topic (dlq) or dropped (dlq="-").', ['topic', 'group', 'dlq']);
      this.#deadLetters = (topic, group, dlq) => c.labels(topic, group, dlq);

      const l = o.metrics.counter('pp_queue_lease_lapses_total', 'Times a consumer found its partition lease lapsed because the event loop was held past sessionTimeoutMs (by a handler or anything else).', ['topic', 'group']);
      this.#leaseLapses = (topic, group) => l.labels(topic, group);
    }
  }

  /** ConsumerHost: a record a consumer gave up on, logged and counted (never silent). */
  deadLettered(d: DeadLettered): void {
    const dlq = d.dlq === false ? '-' : d.dlq;
    try {
      this.#deadLetters?.(d.topic, d.group, dlq).inc();
    } catch {
      // over the family's series bound: the log line below still records it
    }
    this.#logger?.error(
      { topic: d.topic, group: d.group, partition: d.rec.partition, offset: d.rec.offset, key: d.rec.key, id: d.rec.id, attempts: d.attempts, reason: d.reason, dlq },
      d.dlq === false ? 'queue: record dropped after its last delivery failed' : 'queue: record dead-lettered after its last delivery failed',
    );
  }

  /** ConsumerHost: a consumer's lease lapsed, logged and counted. */
  leaseLapsed(l: LeaseLapse): void {
    try {
      this.#leaseLapses?.(l.topic, l.group).inc();
    } catch {
      // over the family's series bound: the log line below still records it
    }
    this.#logger?.warn(
      { topic: l.topic, group: l.group, member: l.member, partitions: l.partitions, sessionTimeoutMs: l.sessionTimeoutMs, sinceRenewalMs: l.sinceRenewalMs, ...(l.record === undefined ? {} : { partition: l.record.partition, offset: l.record.offset, key: l.record.key, blockedMs: l.record.blockedMs }) },
      l.record === undefined
        ? 'queue: consumer lease lapsed (the event loop was held past sessionTimeoutMs); another member may take its partitions over'
        : 'queue: a handler blocked the event loop past the consumer lease; another member may take its partitions over',
    );
  }

  /** What the embedded engine's recovery found on open (torn tails cut, indexes rebuilt). */
  get recovery(): readonly RecoveryEvent[] {
    return this.engine.recovery;
  }

  #config(o: TopicOptions, base: TopicConfig): TopicConfig {
    requireArg(typeof o === 'object' && o !== null, 'topic options', 'must be an object');
    const partitions = o.partitions ?? base.partitions;
    const retention = renamedOptions(o.retention ?? {}, { bytesMax: 'maxBytes', ageMsMax: 'maxAgeMs' }, 'retention.');
    const bytesMax = retention.bytesMax ?? base.retention.bytesMax;
    const ageMsMax = retention.ageMsMax ?? base.retention.ageMsMax;
    requireArg(Number.isInteger(partitions) && partitions >= 1 && partitions <= this.limits.partitionsMax, 'partitions', `must be an integer in [1, ${this.limits.partitionsMax}]`);
    requireArg(Number.isSafeInteger(bytesMax) && bytesMax >= 4096, 'retention.bytesMax', 'must be an integer >= 4096');
    requireArg(Number.isSafeInteger(ageMsMax) && ageMsMax >= 1000, 'retention.ageMsMax', 'must be an integer >= 1000');
    return { partitions, retention: { bytesMax, ageMsMax } };
  }

  #checkOpen(): void {
    if (this.#closed) throw ppError('PP_ERR_CLOSED', { message: 'the queue is closed' });
  }

  // ---- topics -----------------------------------------------------------------------------------

  /** Creates a topic (idempotent with the same partition count; another count is PP_ERR_CONFLICT). */
  async createTopic(name: string, options: TopicOptions = {}): Promise<TopicConfig> {
    this.#checkOpen();
    checkTopicName(name);
    const cfg = await this.engine.createTopic(name, this.#config(options, this.#defaults));
    this.#topics.set(name, cfg);
    return cfg;
  }

  async topic(name: string): Promise<TopicConfig | undefined> {
    checkTopicName(name);
    return this.#topics.get(name) ?? this.engine.topic(name);
  }

  async deleteTopic(name: string): Promise<boolean> {
    this.#checkOpen();
    checkTopicName(name);
    this.#topics.delete(name);
    return this.engine.deleteTopic(name);
  }

  async #resolve(name: string, create: boolean): Promise<TopicConfig> {
    const cached = this.#topics.get(name);
    if (cached !== undefined) return cached;
    checkTopicName(name);
    let cfg = await this.engine.topic(name);
    if (cfg === undefined) {
      if (!create) throw ppError('PP_ERR_UNKNOWN_TOPIC', { field: 'topic', message: `unknown topic "${name}" (create it, or open the queue with autoCreateTopics)`, data: { topic: name } });
      cfg = await this.engine.createTopic(name, this.#defaults);
    }
    this.#topics.set(name, cfg);
    return cfg;
  }

  async partitionsOf(topic: string): Promise<number> {
    return (await this.#resolve(topic, this.#autoCreate)).partitions;
  }

  // ---- publish ----------------------------------------------------------------------------------

  /**
   * Appends a message; resolves once it is durable (embedded: fsynced; JetStream: stored by the
   * server — see docs/queue.md). Bad input is a typed error before anything is written.
   */
  async publish(topic: string, message: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    this.#checkOpen();
    const cfg = this.#topics.get(topic) ?? (await this.#resolve(topic, this.#autoCreate));
    const { key, id, delayMs, headers } = options;
    const L = this.limits;
    if (key !== undefined) {
      requireArg(typeof key === 'string' && key.length > 0, 'key', 'must be a non-empty string');
      if (key.length * 3 > L.keyBytesMax && Buffer.byteLength(key) > L.keyBytesMax) throw tooLarge('key', Buffer.byteLength(key), L.keyBytesMax);
    }
    if (id !== undefined) {
      requireArg(typeof id === 'string' && id.length > 0, 'id', 'must be a non-empty string');
      if (id.length * 3 > L.idBytesMax && Buffer.byteLength(id) > L.idBytesMax) throw tooLarge('id', Buffer.byteLength(id), L.idBytesMax);
    }
    let deliverAtMs = 0;
    if (delayMs !== undefined) {
      requireArg(Number.isFinite(delayMs) && delayMs >= 0 && delayMs <= L.delayMsMax, 'delayMs', `must be in [0, ${L.delayMsMax}] ms`);
      if (delayMs > 0) deliverAtMs = Date.now() + delayMs;
    }
    if (headers !== undefined) checkHeaders(headers, L.headersBytesMax);
    let encoded: ReturnType<typeof encodePayload>;
    try {
      encoded = encodePayload(message);
    } catch (err) {
      throw ppError('PP_ERR_VALIDATION', { field: 'message', message: `message: cannot be encoded (${(err as Error).message})` });
    }
    if (encoded.payload.length > L.messageBytesMax) throw tooLarge('message', encoded.payload.length, L.messageBytesMax);
    let partition: number;
    if (options.partition !== undefined) {
      requireArg(Number.isInteger(options.partition) && options.partition >= 0 && options.partition < cfg.partitions, 'partition', `must be an integer in [0, ${cfg.partitions})`);
      partition = options.partition;
    } else if (key !== undefined) partition = jumpHash(hash32(key), cfg.partitions);
    else partition = this.#rr++ % cfg.partitions;
    const r = await this.engine.append(topic, partition, {
      key,
      id,
      deliverAtMs,
      headers: headers === undefined || Object.keys(headers).length === 0 ? undefined : headers,
      encoding: encoded.encoding,
      payload: encoded.payload,
    });
    return { topic, partition: r.partition, offset: r.offset, duplicate: r.duplicate };
  }

  // ---- subscribe --------------------------------------------------------------------------------

  /** Joins `options.group` on `topic`; resolves once the member took its first partitions. */
  async subscribe<T = unknown>(topic: string, options: SubscribeOptions<T>): Promise<Subscription> {
    this.#checkOpen();
    checkTopicName(topic);
    await this.#resolve(topic, this.#autoCreate);
    const m = new Member(this, topic, options as SubscribeOptions<unknown>);
    this.#subs.add(m);
    try {
      await m.start();
    } catch (err) {
      this.#subs.delete(m);
      await m.close();
      throw err;
    }
    const close = m.close.bind(m);
    Object.defineProperty(m, 'close', {
      value: async () => {
        await close();
        this.#subs.delete(m);
      },
    });
    return m;
  }

  /** ConsumerHost: publishes a record that failed deliveriesMax times to its dead-letter topic. */
  async deadLetter(topic: string, rec: StoredRecord, meta: { reason: string; attempts: number; group: string; dlq: string }): Promise<void> {
    if (!this.#topics.has(meta.dlq) && (await this.engine.topic(meta.dlq)) === undefined) {
      const src = await this.#resolve(topic, false);
      try {
        await this.engine.createTopic(meta.dlq, { partitions: src.partitions, retention: src.retention });
      } catch (err) {
        if (!isPowerplantError(err, 'PP_ERR_CONFLICT')) throw err;
      }
    }
    const cfg = await this.#resolve(meta.dlq, false);
    const headers: Record<string, string> = { ...rec.headers };
    headers[DEAD_LETTER_HEADERS.reason] = meta.reason.slice(0, DEAD_REASON_CHARS_MAX);
    headers[DEAD_LETTER_HEADERS.topic] = topic;
    headers[DEAD_LETTER_HEADERS.partition] = String(rec.partition);
    headers[DEAD_LETTER_HEADERS.offset] = String(rec.offset);
    headers[DEAD_LETTER_HEADERS.group] = meta.group;
    headers[DEAD_LETTER_HEADERS.attempts] = String(meta.attempts);
    const partition = rec.key !== undefined ? jumpHash(hash32(rec.key), cfg.partitions) : rec.partition % cfg.partitions;
    // The id makes a dead letter sent twice (crash after publish, before commit) appear once.
    await this.engine.append(meta.dlq, partition, {
      key: rec.key,
      id: `dead:${meta.group}:${topic}:${rec.partition}:${rec.offset}`,
      deliverAtMs: 0,
      headers,
      encoding: rec.encoding,
      payload: rec.payload,
    });
  }

  // ---- replay and inspection --------------------------------------------------------------------

  /**
   * Moves a group's committed offsets (replay or skip): `'earliest'`, `'latest'`, `{ offset }` (every
   * partition) or `{ timeMs }` (first record appended at or after). No member may be running.
   */
  async seek(topic: string, group: string, to: ReadFrom): Promise<number[]> {
    this.#checkOpen();
    const cfg = await this.#resolve(topic, false);
    requireArg(typeof group === 'string' && /^[A-Za-z0-9_-]{1,100}$/.test(group), 'group', 'must match [A-Za-z0-9_-]{1,100}');
    const out: number[] = [];
    for (let p = 0; p < cfg.partitions; p++) {
      let off: number;
      if (to === 'earliest') off = (await this.engine.bounds(topic, p)).first;
      else if (to === 'latest') off = (await this.engine.bounds(topic, p)).next;
      else if ('offset' in to) {
        requireArg(Number.isSafeInteger(to.offset) && to.offset >= 0, 'offset', 'must be an integer >= 0');
        off = to.offset;
      } else off = await this.engine.offsetForTime(topic, p, to.timeMs);
      await this.engine.groups.seek(topic, group, p, off);
      out.push(off);
    }
    return out;
  }

  /** A group's committed offset per partition (undefined = never committed). */
  async committed(topic: string, group: string): Promise<(number | undefined)[]> {
    const cfg = await this.#resolve(topic, false);
    return this.engine.groups.committed(topic, group, cfg.partitions);
  }

  /**
   * Up to `max` records of one partition from `from`, without a group (inspection, dead letters,
   * paging with `{ offset: last.offset + 1 }`). Reads to the partition's end as it was when the call
   * began (`bounds().next`), never less: fewer than `max` records means the end was reached, and
   * `[]` means `from` is at the end — never "nothing arrived yet". If the engine delivers nothing for
   * READ_STALL_MS while records below the end remain, it fails with PP_ERR_TIMEOUT instead.
   */
  async read<T = unknown>(topic: string, partition: number, from: ReadFrom = 'earliest', max = 100): Promise<QueueMessage<T>[]> {
    this.#checkOpen();
    const cfg = await this.#resolve(topic, false);
    requireArg(Number.isInteger(partition) && partition >= 0 && partition < cfg.partitions, 'partition', `must be an integer in [0, ${cfg.partitions})`);
    requireArg(Number.isInteger(max) && max >= 1 && max <= 10_000, 'max', 'must be an integer in [1, 10000]');
    const end = (await this.engine.bounds(topic, partition)).next;
    const reader = await this.engine.openReader(topic, partition, from);
    try {
      const out: QueueMessage<T>[] = [];
      let stallMs = 0;
      while (out.length < max && reader.position < end) {
        const recs = await reader.next(max - out.length, READ_WAIT_MS);
        for (const r of recs) out.push(toMessage<T>(topic, r));
        if (recs.length > 0) {
          stallMs = 0;
          continue;
        }
        // Nothing within the wait: retention may have removed the rest — or the engine is slow,
        // which is an error, not an empty page.
        if ((await this.engine.bounds(topic, partition)).first >= end) break;
        stallMs += READ_WAIT_MS;
        if (reader.position < end && stallMs >= READ_STALL_MS) {
          throw ppError('PP_ERR_TIMEOUT', { message: `read ${topic}/${partition}: no record arrived for ${READ_STALL_MS} ms at offset ${reader.position}, below the partition's end ${end}` });
        }
      }
      return out;
    } finally {
      await reader.close();
    }
  }

  async bounds(topic: string, partition: number): Promise<{ first: number; next: number }> {
    await this.#resolve(topic, false);
    return this.engine.bounds(topic, partition);
  }

  /** Closes every subscription (each drains and commits), then the engine. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#subs].map((s) => s.close()));
    await this.engine.close();
  }
}

function toMessage<T>(topic: string, r: StoredRecord): QueueMessage<T> {
  return {
    topic,
    partition: r.partition,
    offset: r.offset,
    key: r.key,
    id: r.id,
    headers: r.headers ?? {},
    timestampMs: r.timestampMs,
    deliverAtMs: r.deliverAtMs,
    value: (r.encoding === ENCODING_BYTES ? r.payload : decodePayload(r.payload)) as T,
  };
}

function tooLarge(field: string, size: number, max: number): Error {
  return ppError('PP_ERR_TOO_LARGE', { field, message: `${field}: ${size} bytes exceeds limits.${field}BytesMax ${max}`, data: { sizeBytes: size, bytesMax: max } });
}

const TOPIC_RE = /^[A-Za-z0-9_-]{1,100}$/;
function checkTopicName(name: unknown): asserts name is string {
  requireArg(typeof name === 'string' && TOPIC_RE.test(name), 'topic', 'must match [A-Za-z0-9_-]{1,100}');
}

function checkHeaders(h: Readonly<Record<string, string>>, bytesMax: number): void {
  requireArg(typeof h === 'object' && h !== null && !Array.isArray(h), 'headers', 'must be an object of strings');
  let bytes = 2;
  for (const k of Object.keys(h)) {
    const v = h[k];
    requireArg(/^[A-Za-z0-9_-]{1,100}$/.test(k), `headers.${k}`, 'header names must match [A-Za-z0-9_-]{1,100}');
    requireArg(!k.toLowerCase().startsWith(RESERVED_HEADER_PREFIX), `headers.${k}`, `names starting with "${RESERVED_HEADER_PREFIX}" are reserved`);
    requireArg(typeof v === 'string' && !/[\r\n]/.test(v), `headers.${k}`, 'must be a string without line breaks');
    bytes += k.length + Buffer.byteLength(v) + 6;
  }
  if (bytes > bytesMax) throw tooLarge('headers', bytes, bytesMax);
}

/**
 * Opens a queue: `openQueue()` is the embedded log under ./data/queue;
 * `openQueue({ engine: 'nats://127.0.0.1:4222' })` is NATS JetStream.
 */
export async function openQueue(options: QueueOptions = {}): Promise<Queue> {
  const renamed = { messageBytesMax: 'messageMaxBytes', keyBytesMax: 'keyMaxBytes', idBytesMax: 'idMaxBytes', headersBytesMax: 'headersMaxBytes', delayMsMax: 'delayMaxMs' } as const;
  const limits: QueueLimits = { ...DEFAULT_QUEUE_LIMITS, ...renamedOptions(options.limits ?? {}, renamed, 'limits.') };
  for (const [k, v] of Object.entries(limits)) requireArg(Number.isSafeInteger(v) && v > 0, `limits.${k}`, 'must be a positive integer');
  requireArg(limits.messageBytesMax <= 64 * 1024 * 1024, 'limits.messageBytesMax', 'must be <= 64 MiB');
  requireArg(limits.keyBytesMax <= 0xffff && limits.idBytesMax <= 0xffff, 'limits.keyBytesMax', 'key and id limits must be <= 65535 bytes');
  const dedupWindowMs = options.dedupWindowMs ?? 120_000;
  const dedupMax = options.dedupMax ?? 100_000;
  requireArg(Number.isInteger(dedupWindowMs) && dedupWindowMs >= 1000 && dedupWindowMs <= 86_400_000, 'dedupWindowMs', 'must be an integer in [1000, 86400000]');
  requireArg(Number.isInteger(dedupMax) && dedupMax >= 1 && dedupMax <= 10_000_000, 'dedupMax', 'must be an integer in [1, 10000000]');
  const engine = createEngine(options.engine ?? 'file:./data/queue', { messageBytesMax: limits.messageBytesMax, dedupWindowMs, dedupMax }, options);
  await engine.open();
  return new Queue(engine, limits, options);
}
