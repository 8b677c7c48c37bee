/**
 * The contract every storage engine meets, per shard. One `ShardEngine` = one shard = one SQLite
 * file or one PostgreSQL database/schema. Everything above (routing, group commit, the change
 * feed, TTL sweeps, the public kv/table API) talks only to this interface, and the conformance
 * suite in test/store runs the same cases against every implementation.
 *
 * The write path is shaped for what comes next:
 *  - `commit` takes a batch of independent requests and runs them in ONE transaction; each request
 *    is all-or-nothing inside it (SQLite: savepoints; PostgreSQL: the failed request is dropped and
 *    the rest re-run). A request's outcome is final only when `commit` resolves, and `commit`
 *    resolves only after the transaction is durable (see docs/store.md for what that means per
 *    engine). Group commit (group-commit.ts) sits on top and feeds it batches.
 *  - Each engine runs a batch as execute -> verify -> commit. Cross-shard two-phase commit (the tx
 *    issue) will add `prepare(txId, requests)` / `commitPrepared(txId)` / `abortPrepared(txId)` that
 *    split the last step (PostgreSQL: PREPARE TRANSACTION; SQLite: a durable prepared-record in the
 *    shard file), with the same request/outcome types.
 *  - Every applied write appends a change record in the same transaction (transactional outbox,
 *    `pp_feed`) at a position that strictly increases per shard and is assigned in commit order
 *    (writers on one shard are serialized: SQLite's single writer, PostgreSQL's transaction-scoped
 *    advisory lock). A replica that has applied up to position P of a shard holds exactly the
 *    shard's state after P, so positions are what replicas and read-your-writes compare.
 */
import type { PowerplantError } from '../../errors/index.js';
import type { SqlValue, TableDef } from '../schema.js';

/**
 * `check` writes nothing: it is a condition of its request (the row's live version must equal
 * `expectVersion`, 0 = no live row), so a request can be made conditional on rows it does not
 * write (the tx layer's read validation and lock checks). A passing check has outcome
 * { applied: false, version: 0, position: 0 } and no change record.
 */
export type OpKind = 'insert' | 'upsert' | 'update' | 'delete' | 'check';

/** One write on one row. Built and validated by the kv/table layer; engines trust it. */
export interface WriteOp {
  readonly table: TableDef;
  readonly kind: OpKind;
  /** Primary-key values, in `table.primaryKey` order. */
  readonly key: readonly SqlValue[];
  /** insert/upsert: every column's value, in `table.columns` order. */
  readonly values?: readonly SqlValue[];
  /** update: [column index, value] pairs to set; other columns keep their value. */
  readonly patch?: readonly (readonly [number, SqlValue])[];
  /**
   * Optimistic concurrency. undefined: unconditional (last writer wins). A number: the live row's
   * version must equal it, 0 meaning "must not exist" (upsert with 0 = insert).
   */
  readonly expectVersion?: number;
  /** Expiry in epoch ms; null = never. For update, undefined keeps the row's expiry. */
  readonly expiresAtMs?: number | null;
  /**
   * What the change record needs, computed once by the kv/table layer so engines encode nothing:
   * `keyJson(key)` (the record's `key`, also what engines tell ops apart by within a batch).
   */
  readonly keyJson: string;
  /** insert/upsert: the record's document (msgpack of the row as written; kv: the value's bytes). */
  readonly doc?: Buffer;
  /**
   * update: encodes the record's document from the row after the patch (the write's RETURNING
   * row), inside the transaction. One function per table, not a closure per op.
   */
  readonly docOf?: (row: RawRow) => Buffer;
}

/** A request is atomic: all of its ops apply or none do. */
export interface WriteRequest {
  readonly ops: readonly WriteOp[];
}

export interface OpOutcome {
  /** false only for a delete that found no live row. */
  readonly applied: boolean;
  /** Row version after the write (0 after a delete). */
  readonly version: number;
  /** Change-feed position of this write on its shard; 0 when nothing was applied. */
  readonly position: number;
}

export type RequestResult =
  | { readonly ok: true; readonly outcomes: readonly OpOutcome[] }
  | { readonly ok: false; readonly error: PowerplantError };

/** A row as an engine returns it: column name -> SQL value, plus `_v` and `_exp`. */
export type RawRow = Record<string, unknown>;

/** A range condition on one column. */
export interface RangeCond {
  readonly column: string;
  readonly gt?: SqlValue;
  readonly gte?: SqlValue;
  readonly lt?: SqlValue;
  readonly lte?: SqlValue;
}

/**
 * A keyset scan on one shard: rows matching `eq` and `range`, with no NULL in `notNull`, live at
 * `nowMs`, ordered by `order` (all ascending or all descending), strictly after `after` (a sort
 * key, from a cursor), at most `limit` rows.
 */
export interface ScanPlan {
  readonly table: TableDef;
  readonly eq: readonly (readonly [string, SqlValue])[];
  readonly range: RangeCond | undefined;
  readonly notNull: readonly string[];
  readonly order: readonly string[];
  readonly desc: boolean;
  readonly after: readonly SqlValue[] | undefined;
  readonly limit: number;
}

/** A change record as stored in a shard's outbox. */
export interface FeedRow {
  readonly pos: number;
  /** Physical table name: `t_<table>` or `kv_<namespace>`. */
  readonly tbl: string;
  /** 1 = put (insert/upsert/update), 2 = delete. */
  readonly op: number;
  /** JSON array of primary-key values (bytes as {"b": base64}): `keyJson(key)`. */
  readonly key: string;
  /** msgpack of the row after the write (kv: the value itself); null for deletes. */
  readonly doc: Buffer | null;
  readonly ver: number;
  readonly exp: number | null;
  /** Commit wall time, epoch ms. */
  readonly ts: number;
}

export interface Migration {
  readonly id: number;
  readonly table: string;
  /** What the migration did, e.g. {"createTable": ...} or {"addColumn": "note"}. */
  readonly change: Record<string, unknown>;
  readonly appliedAtMs: number;
}

export interface ShardEngine {
  /** Shard name used by partitioners (e.g. "s0"). */
  readonly shard: string;
  readonly dialect: 'sqlite' | 'postgres';
  /** Where the shard lives, with any password removed. */
  readonly location: string;
  /** Engine-specific counters (PostgreSQL: commits, roundTrips, diagnosed), for stats and tests. */
  readonly stats?: Readonly<Record<string, number>>;
  /**
   * Batches the group committer may have in `commit` at once (default 1). More than one only for
   * an engine whose `commit` applies its batch before its first await (so batches apply in
   * submission order) and then waits for durability alone.
   */
  readonly batchesInFlightMax?: number;

  open(): Promise<void>;
  /** Creates the table or applies additive migrations (recorded); PP_ERR_INCOMPATIBLE_SCHEMA otherwise. */
  ensureTable(def: TableDef): Promise<readonly Migration[]>;
  migrations(table?: string): Promise<Migration[]>;

  get(def: TableDef, key: readonly SqlValue[], nowMs: number): Promise<RawRow | undefined>;
  /**
   * OPTIONAL CAPABILITY — synchronous point reads. An engine whose reads run on the calling thread
   * (SQLite: better-sqlite3 is synchronous) provides it; one whose reads are I/O (PostgreSQL)
   * leaves it out. Same answer as `get` (throws what `get` would reject with). The kv/table layer
   * calls it whenever present (see `hasSyncReads`), so a point read on such an engine costs no
   * promise hop inside the store.
   */
  getSync?(def: TableDef, key: readonly SqlValue[], nowMs: number): RawRow | undefined;
  getMany(def: TableDef, keys: readonly (readonly SqlValue[])[], nowMs: number): Promise<RawRow[]>;
  scan(plan: ScanPlan, nowMs: number): Promise<RawRow[]>;
  count(plan: ScanPlan, nowMs: number): Promise<number>;

  /** Runs the requests in one durable transaction; see the file comment. Never rejects for a conflict. */
  commit(requests: readonly WriteRequest[], nowMs: number): Promise<RequestResult[]>;

  /** Deletes at most `limit` rows expired at `nowMs`; returns how many. */
  sweepExpired(def: TableDef, nowMs: number, limit: number): Promise<number>;

  /** Change records with position > `after`, ascending, at most `limit`. */
  readFeed(after: number, limit: number): Promise<FeedRow[]>;
  /** Highest committed position (0 if none). */
  feedHead(): Promise<number>;
  /** Lowest retained position (0 if the feed is empty). */
  feedTail(): Promise<number>;
  /** Deletes the records with position <= `through` (the caller keeps the newest); returns how many. */
  trimFeed(through: number): Promise<number>;
  loadOffset(consumer: string): Promise<number | undefined>;
  saveOffset(consumer: string, position: number): Promise<void>;
  /**
   * The shard's stored metadata value `name` (table `pp_meta`), storing `proposed` first when there
   * is none. Atomic across processes: callers racing on a fresh shard all get the value stored
   * first, and it never changes afterwards. For store-wide settings made on first open (the
   * cursor secret). Durable before it resolves.
   */
  metaValue(name: string, proposed: string): Promise<string>;

  close(): Promise<void>;
}

/** An engine that declares the synchronous-read capability. */
export type SyncReadEngine = ShardEngine & Required<Pick<ShardEngine, 'getSync'>>;

export function hasSyncReads(e: ShardEngine): e is SyncReadEngine {
  return typeof e.getSync === 'function';
}

/**
 * The change record's key (`FeedRow.key`): JSON of the primary-key values, bytes as
 * {"b": base64}. Unique per row of a table, so engines also match ops and returned rows by it.
 */
export function keyJson(key: readonly SqlValue[]): string {
  if (key.length === 1 && typeof key[0] === 'string') return JSON.stringify(key);
  return JSON.stringify(key.map((v) => (Buffer.isBuffer(v) ? { b: v.toString('base64') } : v)));
}

/** The primary-key values of a `keyJson` string (bytes back to Buffers). */
export function parseKeyJson(s: string): unknown[] {
  return (JSON.parse(s) as unknown[]).map((v) =>
    typeof v === 'object' && v !== null && typeof (v as { b?: unknown }).b === 'string' ? Buffer.from((v as { b: string }).b, 'base64') : v,
  );
}
