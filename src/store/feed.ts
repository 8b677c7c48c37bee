/**
 * The change feed: every committed write, per shard, in commit order.
 *
 * Contract (what the cache, queue, analytics and stream layers rely on):
 *  - Source of truth is each shard's outbox table `pp_feed`, appended in the SAME transaction as
 *    the write it describes (transactional outbox): a record exists iff its write committed.
 *  - A record's `position` strictly increases per shard in commit order. Positions are not dense
 *    (PostgreSQL may skip numbers) and are not comparable across shards. A shard's state after
 *    applying records up to P is the same for every reader — the basis for replicas and
 *    read-your-writes (a write returns its shard and position).
 *  - Delivery is at least once: `subscribe` hands records to the handler in position order per
 *    shard (shards are independent and concurrent) and advances only after the handler resolved;
 *    a handler that throws gets the same records again after `retryDelayMs`. With a `consumer`
 *    name the position is stored durably in the shard after each handled batch, so a restarted
 *    subscriber resumes where it left off (it may see the last batch again: handlers must be
 *    idempotent, e.g. keyed on (shard, position) or the row version).
 *  - TTL expiry is not a change event: records carry `expiresAtMs`, consumers apply it themselves.
 *  - Retention is bounded (`retainMax` records per shard, trimmed by the background sweeper);
 *    reading from a trimmed position fails with PP_ERR_FEED_TRUNCATED rather than skipping silently.
 *    A trim first records its watermark, then deletes; a reader reads, then checks the watermark.
 *    So a read that raced a trim and lost records always sees the watermark that explains it. A
 *    subscriber that falls behind the watermark gets PP_ERR_FEED_TRUNCATED through `onError` and
 *    stops following that shard (it must restart from a position it chooses).
 */
import { isPowerplantError, ppError, requireArg } from '../errors/index.js';
import { unpack } from './codec.js';
import { parseKeyJson, type FeedRow, type ShardEngine } from './engines/base.js';

export interface ChangeRecord {
  readonly shard: string;
  readonly position: number;
  readonly source: 'table' | 'kv';
  /** Table name or kv namespace. */
  readonly name: string;
  readonly op: 'put' | 'delete';
  /** Primary-key values (kv: [key]). */
  readonly key: readonly unknown[];
  /** Table puts: the row after the write. */
  readonly row?: Readonly<Record<string, unknown>>;
  /** Kv puts: the value after the write. */
  readonly value?: unknown;
  /** Row version after the write (0 for deletes). */
  readonly version: number;
  readonly expiresAtMs: number | null;
  readonly committedAtMs: number;
}

/** Shard name -> position. */
export type Positions = Record<string, number>;

export interface SubscribeOptions {
  /** Receives each batch (records of one shard, ascending). Must be idempotent (at-least-once). */
  readonly handler: (records: readonly ChangeRecord[], shard: string) => Promise<void> | void;
  /** Durable consumer name: positions are stored per shard and resumed after a restart. */
  readonly consumer?: string;
  /** Start (exclusive) when there is no stored position: 'earliest' (default), 'latest', or per shard. */
  readonly from?: 'earliest' | 'latest' | Positions;
  /** Shards to follow; default all. */
  readonly shards?: readonly string[];
  /**
   * Only changes of these tables / kv namespaces reach the handler (others are skipped without
   * being decoded, and their positions are passed). Default: everything.
   */
  readonly only?: { readonly tables?: readonly string[]; readonly kv?: readonly string[] };
  /** Records per handler call. Default 256. */
  readonly batchMax?: number;
  /** How often to look for writes made by other processes, in ms. Default 200. */
  readonly pollIntervalMs?: number;
  /** Wait after a handler or engine error before retrying, in ms. Default 1000. */
  readonly retryDelayMs?: number;
  readonly onError?: (err: unknown, shard: string) => void;
}

export interface Subscription {
  /** Last handled position per shard. */
  positions(): Positions;
  /** Stops after the handler call in progress (if any) returns. */
  close(): Promise<void>;
}

export const FEED_BATCH_MAX_LIMIT = 10_000;
const TRIMMED_MARK = 'pp:trimmed';
/**
 * A read of a shard's feed is shared by the subscribers of this process that ask within this many
 * ms and with no local commit in between (a commit wakes them all at once; one SQL read serves
 * them). Writes of other processes are seen at most this much later than without sharing.
 */
const SHARED_READ_AGE_MS_MAX = 5;
/** A consumer that only skips records (none matched `only`) saves its position after this many. */
const SKIPPED_SAVE_EVERY = 10_000;

interface SharedRead {
  readonly after: number;
  readonly limit: number;
  readonly generation: number;
  readonly atMs: number;
  readonly rows: Promise<FeedRow[]>;
}

/** Decoded records, shared by every subscriber that receives the same row object. */
const decoded = new WeakMap<FeedRow, ChangeRecord>();

function decodeShared(shard: string, r: FeedRow): ChangeRecord {
  let rec = decoded.get(r);
  if (rec === undefined) {
    rec = decodeFeedRow(shard, r);
    decoded.set(r, rec);
  }
  return rec;
}

/** Rows of `rows` (ascending) with position > `after`, at most `limit`. */
function rowsAfter(rows: readonly FeedRow[], after: number, limit: number): FeedRow[] {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rows[mid]!.pos <= after) lo = mid + 1;
    else hi = mid;
  }
  return rows.slice(lo, lo + limit);
}

export function decodeFeedRow(shard: string, r: FeedRow): ChangeRecord {
  const kv = r.tbl.startsWith('kv_');
  const base = {
    shard,
    position: r.pos,
    source: kv ? ('kv' as const) : ('table' as const),
    name: r.tbl.slice(kv ? 3 : 2),
    op: r.op === 2 ? ('delete' as const) : ('put' as const),
    key: parseKeyJson(r.key),
    version: r.ver,
    expiresAtMs: r.exp ?? null,
    committedAtMs: r.ts,
  };
  if (r.doc === null) return base;
  return kv ? { ...base, value: unpack(r.doc) } : { ...base, row: unpack(r.doc) as Record<string, unknown> };
}

/**
 * A wait that ends on a wake-up, a timeout, or close. A wake-up that arrives while nobody waits
 * (the handler is running) is remembered, so a commit is never left waiting for the poll timer.
 */
class Waker {
  #resolve: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #pending = false;

  wait(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => this.wake(), ms);
    });
  }

  wake(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const r = this.#resolve;
    this.#resolve = undefined;
    if (r === undefined) this.#pending = true;
    else r();
  }
}

export class ChangeFeed {
  readonly #engines: readonly ShardEngine[];
  readonly #byName: ReadonlyMap<string, number>;
  readonly #wakers: Set<Waker>[];
  /** Per shard: local commits seen (a shared read from before one is not reused). */
  readonly #generation: number[];
  readonly #shared: (SharedRead | undefined)[];

  constructor(engines: readonly ShardEngine[]) {
    this.#engines = engines;
    this.#byName = new Map(engines.map((e, i) => [e.shard, i]));
    this.#wakers = engines.map(() => new Set<Waker>());
    this.#generation = engines.map(() => 0);
    this.#shared = engines.map(() => undefined);
  }

  /** Called by the store after a durable commit on a shard: wakes that shard's subscribers now. */
  notify(shardIndex: number): void {
    if (shardIndex in this.#generation) this.#generation[shardIndex]! += 1;
    for (const w of this.#wakers[shardIndex] ?? []) w.wake();
  }

  /**
   * Feed rows of shard `i` after `after`, at most `limit`: from a read another subscriber made a
   * moment ago when it covers this one, else from the engine (and then shared). A shared read
   * that stopped at its limit answers only while it still has rows past `after`.
   */
  #readRows(i: number, after: number, limit: number): Promise<FeedRow[]> {
    const c = this.#shared[i];
    const now = performance.now();
    if (c !== undefined && c.generation === this.#generation[i] && now - c.atMs < SHARED_READ_AGE_MS_MAX && c.after <= after) {
      return c.rows.then((rows) => {
        const out = rowsAfter(rows, after, limit);
        if (out.length > 0 || rows.length < c.limit) return out;
        return this.#engines[i]!.readFeed(after, limit);
      });
    }
    const rows = this.#engines[i]!.readFeed(after, limit);
    this.#shared[i] = { after, limit, generation: this.#generation[i]!, atMs: now, rows };
    rows.catch(() => {
      if (this.#shared[i]?.rows === rows) this.#shared[i] = undefined;
    });
    return rows;
  }

  #shardIndex(shard: string): number {
    const i = this.#byName.get(shard);
    if (i === undefined) throw ppError('PP_ERR_UNKNOWN_SHARD', { field: 'shard', message: `shard: unknown shard "${shard}"` });
    return i;
  }

  /** Records of one shard with position > `after`, ascending, at most `limit` (<= 10000). */
  async read(shard: string, after: number, limit = 256): Promise<ChangeRecord[]> {
    requireArg(Number.isSafeInteger(after) && after >= 0, 'after', 'must be an integer >= 0');
    requireArg(Number.isInteger(limit) && limit >= 1 && limit <= FEED_BATCH_MAX_LIMIT, 'limit', `must be an integer in [1, ${FEED_BATCH_MAX_LIMIT}]`);
    const e = this.#engines[this.#shardIndex(shard)]!;
    const rows = await e.readFeed(after, limit);
    await this.#checkNotTrimmed(e, after);
    return rows.map((r) => decodeFeedRow(shard, r));
  }

  /** Positions up to this one were trimmed from the shard (0 = none). */
  async #trimmedThrough(e: ShardEngine): Promise<number> {
    return (await e.loadOffset(TRIMMED_MARK)) ?? 0;
  }

  async #checkNotTrimmed(e: ShardEngine, after: number): Promise<void> {
    const trimmed = await this.#trimmedThrough(e);
    if (after < trimmed) {
      throw ppError('PP_ERR_FEED_TRUNCATED', {
        field: 'after',
        message: `shard ${e.shard}: positions up to ${trimmed} were trimmed; cannot resume after ${after}`,
        data: { shard: e.shard, after, trimmedThrough: trimmed },
      });
    }
  }

  /** The highest committed position of every shard (0 = empty). */
  async heads(): Promise<Positions> {
    const hs = await Promise.all(this.#engines.map((e) => e.feedHead()));
    return Object.fromEntries(this.#engines.map((e, i) => [e.shard, hs[i]!]));
  }

  /** The stored position of a durable consumer, per shard (absent = none stored). */
  async consumerPositions(consumer: string): Promise<Positions> {
    checkConsumer(consumer);
    const out: Positions = {};
    await Promise.all(
      this.#engines.map(async (e) => {
        const p = await e.loadOffset(consumer);
        if (p !== undefined) out[e.shard] = p;
      }),
    );
    return out;
  }

  /**
   * Trims each shard to (about) its newest `keepMax` records — the newest record is always kept,
   * it carries the head position. The watermark is stored before anything is deleted.
   */
  async trim(keepMax: number): Promise<number> {
    requireArg(Number.isInteger(keepMax) && keepMax >= 0, 'keepMax', 'must be an integer >= 0');
    let n = 0;
    for (const e of this.#engines) {
      const head = await e.feedHead();
      const through = Math.min(head - keepMax, head - 1);
      if (through <= (await this.#trimmedThrough(e))) continue;
      await e.saveOffset(TRIMMED_MARK, through);
      n += await e.trimFeed(through);
    }
    return n;
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    requireArg(typeof options === 'object' && options !== null && typeof options.handler === 'function', 'handler', 'must be a function');
    if (options.consumer !== undefined) checkConsumer(options.consumer);
    const batchMax = options.batchMax ?? 256;
    const pollMs = options.pollIntervalMs ?? 200;
    const retryMs = options.retryDelayMs ?? 1000;
    requireArg(Number.isInteger(batchMax) && batchMax >= 1 && batchMax <= FEED_BATCH_MAX_LIMIT, 'batchMax', `must be an integer in [1, ${FEED_BATCH_MAX_LIMIT}]`);
    requireArg(Number.isFinite(pollMs) && pollMs >= 1 && pollMs <= 60_000, 'pollIntervalMs', 'must be in [1, 60000]');
    requireArg(Number.isFinite(retryMs) && retryMs >= 1 && retryMs <= 600_000, 'retryDelayMs', 'must be in [1, 600000]');
    const shardIdx = (options.shards ?? this.#engines.map((e) => e.shard)).map((s) => this.#shardIndex(s));
    let wanted: Set<string> | undefined;
    if (options.only !== undefined) {
      const { tables = [], kv = [] } = options.only;
      requireArg(Array.isArray(tables) && Array.isArray(kv) && [...tables, ...kv].every((n) => typeof n === 'string'), 'only', 'must list table and kv names');
      wanted = new Set([...tables.map((n) => `t_${n}`), ...kv.map((n) => `kv_${n}`)]);
    }
    const positions: Positions = {};
    const from = options.from ?? 'earliest';
    for (const i of shardIdx) {
      const e = this.#engines[i]!;
      const stored = options.consumer === undefined ? undefined : await e.loadOffset(options.consumer);
      let start: number;
      if (stored !== undefined) start = stored;
      else if (from === 'earliest') start = await this.#trimmedThrough(e);
      else if (from === 'latest') start = await e.feedHead();
      else {
        const p = from[e.shard] ?? 0;
        requireArg(Number.isSafeInteger(p) && p >= 0, `from.${e.shard}`, 'must be an integer >= 0');
        start = p;
      }
      if (start > 0 || from !== 'earliest' || stored !== undefined) await this.#checkNotTrimmed(e, start);
      positions[e.shard] = start;
    }
    let closed = false;
    const wakers = shardIdx.map(() => new Waker());
    shardIdx.forEach((i, k) => this.#wakers[i]!.add(wakers[k]!));
    const report = (err: unknown, shard: string): void => {
      try {
        options.onError?.(err, shard);
      } catch {
        // a failing error hook must not stop the feed
      }
    };
    const loop = async (i: number, waker: Waker): Promise<void> => {
      const e = this.#engines[i]!;
      const shard = e.shard;
      let skippedSinceSave = 0;
      while (!closed) {
        let rows: FeedRow[];
        const after = positions[shard]!;
        try {
          rows = await this.#readRows(i, after, batchMax);
        } catch (err) {
          if (closed) return;
          report(err, shard);
          await waker.wait(retryMs);
          continue;
        }
        if (rows.length === 0) {
          await waker.wait(pollMs);
          continue;
        }
        // Positions are consecutive within a shard's feed unless records were trimmed (or, on
        // PostgreSQL, a sequence value was skipped): only a gap needs the trim watermark.
        if (rows[0]!.pos !== after + 1) {
          try {
            await this.#checkNotTrimmed(e, after);
          } catch (err) {
            if (closed) return;
            report(err, shard);
            // Truncated: this shard cannot be followed from here without losing records.
            if (isPowerplantError(err, 'PP_ERR_FEED_TRUNCATED')) return;
            await waker.wait(retryMs);
            continue;
          }
        }
        const last = rows[rows.length - 1]!.pos;
        const mine = wanted === undefined ? rows : rows.filter((r) => wanted.has(r.tbl));
        if (mine.length > 0) {
          try {
            await options.handler(
              mine.map((r) => decodeShared(shard, r)),
              shard,
            );
          } catch (err) {
            report(err, shard);
            if (!closed) await waker.wait(retryMs);
            continue;
          }
        }
        positions[shard] = last;
        skippedSinceSave += rows.length;
        if (options.consumer !== undefined && (mine.length > 0 || skippedSinceSave >= SKIPPED_SAVE_EVERY)) {
          try {
            await e.saveOffset(options.consumer, last);
            skippedSinceSave = 0;
          } catch (err) {
            // Not saved: after a restart this batch is delivered again (at least once).
            report(err, shard);
          }
        }
      }
    };
    const loops = shardIdx.map((i, k) => loop(i, wakers[k]!));
    return {
      positions: () => ({ ...positions }),
      close: async () => {
        closed = true;
        for (const w of wakers) w.wake();
        await Promise.allSettled(loops);
        shardIdx.forEach((i, k) => this.#wakers[i]!.delete(wakers[k]!));
      },
    };
  }
}

interface WellFormed {
  isWellFormed(): boolean;
}

function checkConsumer(consumer: unknown): void {
  requireArg(typeof consumer === 'string' && consumer.length > 0 && consumer.length <= 200 && !consumer.startsWith('pp:'), 'consumer', 'must be a non-empty string of at most 200 chars, not starting with "pp:"');
  // Stored as text (PostgreSQL refuses NUL; a lone surrogate would change the name).
  requireArg(!consumer.includes('\0') && (consumer as unknown as WellFormed).isWellFormed(), 'consumer', 'may not contain NUL or lone surrogates');
}
