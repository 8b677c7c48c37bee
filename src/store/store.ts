/**
 * `openStore`: shards (engines), one group committer per shard, the change feed, the background
 * sweeper (TTL + feed retention), and the kv/table handles.
 */
import { randomBytes } from 'node:crypto';
import type { Static, TObject } from '@sinclair/typebox';
import { ppError, requireArg } from '../errors/index.js';
import { renamedOptions } from '../util/index.js';
import { DEFAULT_LIMITS, submit, type ShardContext, type StoreLimits, type StoreOp } from './collection.js';
import { feedDocOfValues, pack, unpack } from './codec.js';
import { CURSOR_SECRET_BYTES_MAX, CURSOR_SECRET_BYTES_MIN, CursorCodec } from './cursor.js';
import { keyJson, type Migration, type OpOutcome, type ShardEngine, type WriteOp } from './engines/base.js';
import { createEngines, type EngineOptions } from './engines/index.js';
import { ChangeFeed } from './feed.js';
import { GroupCommitter, type GroupCommitOptions } from './group-commit.js';
import { Kv } from './kv.js';
import { Router, type PartitionConfig, type PartitionDescription } from './router.js';
import { defineKv, defineTable, type TableDef, type TableOptions } from './schema.js';
import { Table } from './table.js';

export interface SweepOptions {
  /** Interval between sweeps in ms; 0 disables the background sweeper. Default 1000. */
  readonly intervalMs?: number;
  /** Most expired rows removed per table per shard per sweep. Default 1000. */
  readonly batchMax?: number;
}

export interface StoreOptions extends EngineOptions {
  /** Engine URL(s). Default `sqlite:./data`. */
  readonly engine?: string | readonly string[];
  /** Default partitioning for kv namespaces and tables without their own. Default hash (jump). */
  readonly partitioning?: Extract<PartitionConfig, { kind: 'hash' }>;
  readonly groupCommit?: GroupCommitOptions;
  readonly limits?: Partial<StoreLimits> & {
    /** @deprecated use valueBytesMax */
    readonly valueMaxBytes?: number;
    /** @deprecated use keyBytesMax */
    readonly keyMaxBytes?: number;
    /** @deprecated use ttlMsMax */
    readonly ttlMaxMs?: number;
  };
  readonly sweep?: SweepOptions;
  /** Change records kept per shard (older ones are trimmed by the sweeper). Default 1,000,000. */
  readonly feedRetainMax?: number;
  /**
   * Key that authenticates page cursors (HMAC-SHA256), 16..1024 bytes (a string counts its UTF-8
   * bytes). Every node of a store must use the same one; changing it invalidates outstanding
   * cursors (their next page is a 400 naming `cursor`). Default: a random secret the store creates
   * on first open and keeps in shard s0's metadata, shared by every node that opens the store.
   */
  readonly cursorSecret?: string | Uint8Array;
}

/** The public methods of the handles, which a forgotten `await` would call on a promise. */
const KV_METHODS = Object.getOwnPropertyNames(Kv.prototype).filter((m) => m !== 'constructor');
const TABLE_METHODS = Object.getOwnPropertyNames(Table.prototype).filter((m) => m !== 'constructor');

/**
 * Gives the promise of a handle the handle's method names, each throwing a clear "await it"
 * instead of JavaScript's `… is not a function` (TypeScript catches it at compile time; plain
 * JavaScript and `any` do not).
 */
function awaitHint<T extends object>(p: Promise<T>, call: string, methods: readonly string[]): Promise<T> {
  const target: object = p;
  for (const m of methods) {
    Object.defineProperty(target, m, {
      enumerable: false,
      value: () => {
        throw ppError('PP_ERR_INVALID_ARGUMENT', { message: `${call} returns a promise of the handle: await it first (const h = await ${call}; then h.${m}(…))` });
      },
    });
  }
  return p;
}

/** Name of the stored cursor secret in shard s0's metadata. */
const CURSOR_SECRET_META = 'cursorSecret';

export interface TableSpec<S extends TObject> extends TableOptions<S> {
  /** How rows are spread over shards; default the store's hash partitioning. */
  readonly partitioning?: PartitionConfig;
}

export interface StoreStats {
  readonly shards: readonly {
    readonly shard: string;
    /** Group-commit batches (transactions) and the write requests they carried. */
    readonly batches: number;
    readonly requests: number;
    readonly batchMaxSeen: number;
    /** Requests waiting for the next batch. */
    readonly pending: number;
    /** Engine counters (PostgreSQL: commits, roundTrips, diagnosed; SQLite: none). */
    readonly engine: Readonly<Record<string, number>>;
  }[];
}

export interface StoreDescription {
  readonly shards: readonly { readonly shard: string; readonly engine: 'sqlite' | 'postgres'; readonly location: string }[];
  readonly tables: readonly {
    readonly name: string;
    readonly kind: 'table' | 'kv';
    readonly primaryKey: readonly string[];
    readonly partitionKey: readonly string[];
    readonly indexes: Readonly<Record<string, readonly string[]>>;
    readonly partitioning: PartitionDescription;
  }[];
}

export class Store {
  /** Shard names, in engine order (s0, s1, ...). */
  readonly shards: readonly string[];
  readonly feed: ChangeFeed;
  readonly limits: StoreLimits;
  readonly #engines: readonly ShardEngine[];
  readonly #committers: readonly GroupCommitter[];
  readonly #ctx: ShardContext;
  readonly #hash: Extract<PartitionConfig, { kind: 'hash' }>;
  readonly #handles = new Map<string, { def: TableDef; router: Router; handle: Promise<Kv<unknown> | Table<Record<string, unknown>>> }>();
  readonly #sweep: Required<SweepOptions>;
  readonly #feedRetainMax: number;
  readonly #cursors = new CursorCodec();
  readonly #cursorSecret: Buffer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #closed = false;

  /** Use `openStore`. */
  constructor(engines: readonly ShardEngine[], options: StoreOptions) {
    this.#engines = engines;
    this.shards = engines.map((e) => e.shard);
    this.limits = { ...DEFAULT_LIMITS, ...renamedOptions(options.limits ?? {}, { valueBytesMax: 'valueMaxBytes', keyBytesMax: 'keyMaxBytes', ttlMsMax: 'ttlMaxMs' }, 'limits.') };
    for (const [k, v] of Object.entries(this.limits)) requireArg(Number.isSafeInteger(v) && v > 0, `limits.${k}`, 'must be a positive integer');
    this.#committers = engines.map((e) => new GroupCommitter(e, options.groupCommit));
    this.feed = new ChangeFeed(engines);
    this.#committers.forEach((c, i) => {
      c.onCommitted = () => this.feed.notify(i);
    });
    this.#ctx = {
      engines,
      committers: this.#committers,
      limits: this.limits,
      cursors: this.#cursors,
      checkOpen: () => {
        if (this.#closed) throw ppError('PP_ERR_CLOSED');
      },
    };
    this.#hash = options.partitioning ?? { kind: 'hash' };
    requireArg(this.#hash.kind === 'hash', 'partitioning.kind', 'the store default must be hash partitioning (range/list are per table)');
    this.#sweep = { intervalMs: options.sweep?.intervalMs ?? 1000, batchMax: options.sweep?.batchMax ?? 1000 };
    requireArg(Number.isInteger(this.#sweep.intervalMs) && this.#sweep.intervalMs >= 0, 'sweep.intervalMs', 'must be an integer >= 0');
    requireArg(Number.isInteger(this.#sweep.batchMax) && this.#sweep.batchMax >= 1 && this.#sweep.batchMax <= 100_000, 'sweep.batchMax', 'must be an integer in [1, 100000]');
    this.#feedRetainMax = options.feedRetainMax ?? 1_000_000;
    requireArg(Number.isInteger(this.#feedRetainMax) && this.#feedRetainMax >= 1, 'feedRetainMax', 'must be an integer >= 1');
    const secret = options.cursorSecret;
    if (secret !== undefined) {
      requireArg(typeof secret === 'string' || secret instanceof Uint8Array, 'cursorSecret', 'must be a string or a Uint8Array');
      const key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
      requireArg(key.byteLength >= CURSOR_SECRET_BYTES_MIN && key.byteLength <= CURSOR_SECRET_BYTES_MAX, 'cursorSecret', `must be ${CURSOR_SECRET_BYTES_MIN}..${CURSOR_SECRET_BYTES_MAX} bytes`);
      this.#cursorSecret = key;
    }
  }

  async open(): Promise<void> {
    const opened = await Promise.allSettled(this.#engines.map((e) => e.open()));
    const failed = opened.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      await Promise.allSettled(this.#engines.map((e) => e.close()));
      throw failed.reason;
    }
    try {
      this.#cursors.setKey(this.#cursorSecret ?? (await this.#storedCursorSecret()));
    } catch (err) {
      await Promise.allSettled(this.#engines.map((e) => e.close()));
      throw err;
    }
    if (this.#sweep.intervalMs > 0) {
      this.#timer = setInterval(() => {
        if (this.#sweeping === undefined) this.#sweeping = this.sweepOnce().then(() => undefined, () => undefined).finally(() => (this.#sweeping = undefined));
      }, this.#sweep.intervalMs);
      this.#timer.unref();
    }
  }

  /**
   * The secret kept in shard s0's metadata. The first process to open the store stores its
   * proposal; `metaValue` is atomic, so processes opening a fresh store at the same time all get
   * that one value (never each their own), and every later open reads it back.
   */
  async #storedCursorSecret(): Promise<Buffer> {
    const stored = await this.#engines[0]!.metaValue(CURSOR_SECRET_META, randomBytes(32).toString('base64url'));
    const key = Buffer.from(stored, 'base64url');
    if (key.byteLength < CURSOR_SECRET_BYTES_MIN) throw ppError('PP_ERR_INTERNAL', { message: `shard ${this.shards[0]}: the stored cursor secret is too short` });
    return key;
  }

  #checkOpen(): void {
    if (this.#closed) throw ppError('PP_ERR_CLOSED');
  }

  async #ensure(def: TableDef): Promise<readonly Migration[]> {
    const res = await Promise.all(this.#engines.map((e) => e.ensureTable(def)));
    return res[0]!;
  }

  /**
   * A key-value namespace (created on first use): resolves the handle once the namespace exists
   * on every shard. A handle method called on the promise itself (a forgotten `await`) throws
   * PP_ERR_INVALID_ARGUMENT saying to await it.
   */
  kv<V = unknown>(namespace: string): Promise<Kv<V>> {
    this.#checkOpen();
    const def = defineKv(namespace);
    const existing = this.#handles.get(def.physical);
    if (existing !== undefined) return existing.handle as Promise<Kv<V>>;
    const router = new Router(this.shards, this.#hash, def);
    const handle = awaitHint(
      this.#ensure(def).then(() => new Kv<V>(this.#ctx, def, router)),
      `store.kv(${JSON.stringify(namespace)})`,
      KV_METHODS,
    );
    this.#handles.set(def.physical, { def, router, handle: handle as Promise<Kv<unknown>> });
    handle.catch(() => this.#handles.delete(def.physical));
    return handle;
  }

  /**
   * A table. Creates it on first use; on a store that already has it, applies additive changes
   * (new optional columns, new indexes) as recorded migrations, and refuses anything else with
   * PP_ERR_INCOMPATIBLE_SCHEMA. The row type is inferred from the TypeBox schema. Like `kv`, a
   * handle method called on the promise says to await it.
   */
  table<S extends TObject>(name: string, spec: TableSpec<S>): Promise<Table<Static<S>>> {
    return awaitHint(this.#table(name, spec), `store.table(${JSON.stringify(name)})`, TABLE_METHODS);
  }

  async #table<S extends TObject>(name: string, spec: TableSpec<S>): Promise<Table<Static<S>>> {
    this.#checkOpen();
    const def = defineTable(name, spec);
    const router = new Router(this.shards, spec.partitioning ?? this.#hash, def);
    const existing = this.#handles.get(def.physical);
    if (existing !== undefined) {
      await existing.handle.catch(() => undefined);
      if (JSON.stringify(existing.def) === JSON.stringify(def)) return existing.handle as Promise<Table<Static<S>>>;
    }
    const handle = this.#ensure(def).then(() => new Table<Static<S>>(this.#ctx, def, spec.schema, router));
    this.#handles.set(def.physical, { def, router, handle: handle as Promise<Table<Record<string, unknown>>> });
    handle.catch(() => this.#handles.delete(def.physical));
    return handle;
  }

  // ---- atomic requests (the tx layer's building blocks) ------------------------------------------

  /**
   * Submits ops of ONE shard (from `table.writeOp` / `checkOp`, `kv.writeOp` / `checkOp`, any
   * tables) as one atomic request through the shard's group committer: every check holds and
   * every write applies, or nothing does (the first failing op's typed error is thrown).
   * Outcomes in op order.
   */
  async atomic(ops: readonly StoreOp[]): Promise<readonly OpOutcome[]> {
    this.#checkOpen();
    requireArg(Array.isArray(ops) && ops.length > 0, 'ops', 'must be a non-empty array');
    if (ops.length > this.limits.atomicOpsMax) {
      throw ppError('PP_ERR_TOO_LARGE', { field: 'ops', message: `ops: at most ${this.limits.atomicOpsMax} ops per atomic request (limits.atomicOpsMax)`, data: { max: this.limits.atomicOpsMax, got: ops.length } });
    }
    const shard = ops[0]!.shard;
    for (const o of ops) requireArg(o.shard === shard, 'ops', 'all ops of one atomic request must be on one shard');
    return submit(this.#ctx, shard, ops.map((o) => o.write));
  }

  /**
   * A put (insert/upsert) or delete as bytes, for durable intents (tx prepares, recovery): the
   * table, the shard, the kind and the encoded values. Conditions are not kept: an intent is
   * applied unconditionally once its transaction committed.
   */
  encodeOp(op: StoreOp): Buffer {
    const w = op.write;
    requireArg(w.kind === 'insert' || w.kind === 'upsert' || w.kind === 'delete', 'op', 'only puts and deletes can be encoded');
    return pack([w.table.physical, op.shard, w.kind === 'delete' ? 'd' : 'u', w.key, w.values ?? null, w.expiresAtMs ?? null]);
  }

  /**
   * The op of `encodeOp`'s bytes, as an unconditional upsert or delete. Its table must have been
   * opened in this process (`store.table` / `store.kv`): PP_ERR_NOT_FOUND otherwise.
   */
  decodeOp(bytes: Uint8Array): StoreOp {
    const [physical, shard, kind, key, values, exp] = unpack(Buffer.from(bytes)) as [string, number, 'u' | 'd', WriteOp['key'], WriteOp['values'] | null, number | null];
    const def = this.#handles.get(physical)?.def;
    if (def === undefined) throw ppError('PP_ERR_NOT_FOUND', { message: `${physical} is not open in this process (open it with store.table / store.kv first)`, data: { table: physical } });
    requireArg(Number.isInteger(shard) && shard >= 0 && shard < this.shards.length, 'op', 'shard out of range');
    if (kind === 'd') return { shard, write: { table: def, kind: 'delete', key, keyJson: keyJson(key) } };
    const vals = values!;
    const doc = def.kind === 'kv' ? (vals[1] as Buffer) : feedDocOfValues(def, vals);
    return { shard, write: { table: def, kind: 'upsert', key, values: vals, expiresAtMs: exp, keyJson: keyJson(key), doc } };
  }

  /** The shard name of a shard index. */
  shardName(index: number): string {
    const s = this.shards[index];
    requireArg(s !== undefined, 'shard', `no shard ${index}`);
    return s;
  }

  /**
   * One bounded sweep: at most `sweep.batchMax` expired rows per table per shard, then feed
   * retention. The background timer calls it; tests and tools may call it directly.
   */
  async sweepOnce(): Promise<number> {
    let removed = 0;
    const now = Date.now();
    const defs = [...this.#handles.values()].map((h) => h.def);
    for (const e of this.#engines) {
      for (const def of defs) {
        if (this.#closed) return removed;
        removed += await e.sweepExpired(def, now, this.#sweep.batchMax);
      }
    }
    if (!this.#closed) await this.feed.trim(this.#feedRetainMax);
    return removed;
  }

  /**
   * The store's layout for status pages and tools: each shard and where it lives (passwords
   * removed), and each table and kv namespace opened by this process with its keys, indexes and
   * placement (for hash partitioning, how many of the slots each shard owns).
   */
  describe(): StoreDescription {
    return {
      shards: this.#engines.map((e) => ({ shard: e.shard, engine: e.dialect, location: e.location })),
      tables: [...this.#handles.values()].map(({ def, router }) => ({
        name: def.name,
        kind: def.kind,
        primaryKey: def.primaryKey,
        partitionKey: def.partitionKey,
        indexes: def.indexes,
        partitioning: router.describe(),
      })),
    };
  }

  stats(): StoreStats {
    return {
      shards: this.#committers.map((c, i) => ({ shard: this.shards[i]!, ...c.stats, pending: c.pending, engine: { ...this.#engines[i]!.stats } })),
    };
  }

  /**
   * Stops accepting writes, lets accepted ones commit (at most `groupCommit.drainTimeoutMs`, after
   * which writes not yet sent fail with PP_ERR_CLOSED), stops the sweeper, closes every shard.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await Promise.allSettled(this.#committers.map((c) => c.close()));
    await this.#sweeping;
    await Promise.allSettled(this.#engines.map((e) => e.close()));
  }
}

/**
 * Opens a store: `openStore()` is SQLite under ./data; `openStore({ engine: 'postgres://…' })`,
 * `openStore({ engine: ['postgres://a/db', 'postgres://b/db'] })`, `openStore({ engine: 'sqlite:./d', shards: 4 })`.
 */
export async function openStore(options: StoreOptions = {}): Promise<Store> {
  const engines = createEngines(options.engine ?? 'sqlite:./data', options);
  const store = new Store(engines, options);
  await store.open();
  return store;
}
