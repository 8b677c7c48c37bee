/**
 * Tables: typed rows (a TypeBox schema), a primary key, a partition key (part of the primary key),
 * secondary indexes; writes with optimistic concurrency; point reads; index queries with keyset
 * cursors that work across shards; count.
 */
import type { Static, TObject, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { PowerplantError, invariant, ppError, requireArg } from '../errors/index.js';
import {
  allShards,
  checkBatchSize,
  checkLimit,
  checkVersion,
  expiryOf,
  scanShards,
  submit,
  submitAcross,
  type ShardContext,
  type StoreOp,
  type WriteResult,
} from './collection.js';
import { decodeRow, feedDoc, feedDocOfValues } from './codec.js';
import { cursorShape, type CursorColumn, type CursorShape } from './cursor.js';
import { hasSyncReads, keyJson, type Migration, type RangeCond, type RawRow, type ScanPlan, type SyncReadEngine, type WriteOp } from './engines/base.js';
import type { Router } from './router.js';
import { encodeValue, sizeOf, type ColumnDef, type SqlValue, type TableDef } from './schema.js';

/** A stored row with its version (for optimistic concurrency) and expiry. */
export interface Versioned<T> {
  readonly row: T;
  readonly version: number;
  /** Epoch ms after which the row is invisible; null = never. */
  readonly expiresAtMs: number | null;
}

export interface TableWriteOptions {
  /** Expected current version (first writer wins); 0 = the row must not exist. Omit: last writer wins. */
  readonly version?: number;
  /** The row expires this many ms after the write. */
  readonly ttlMs?: number;
}

/** A primary key: an object with the key columns, or the bare value for a one-column key. */
export type KeyOf<T> = Partial<T> | string | number;

export interface RangeBounds {
  /** The sort column the range applies to; default: the first sort column after `where`'s prefix. */
  readonly column?: string;
  readonly gt?: unknown;
  readonly gte?: unknown;
  readonly lt?: unknown;
  readonly lte?: unknown;
}

export interface Query<T> {
  /** Index name; omit to query by primary key. */
  readonly index?: string;
  /**
   * Equality conditions: a prefix of the index's columns (then primary-key columns), and/or the
   * partition key (which routes the query to one shard).
   */
  readonly where?: Partial<T>;
  /** A range on the next sort column after the equality prefix. */
  readonly range?: RangeBounds;
  readonly order?: 'asc' | 'desc';
  /** Page size, 1..pageMax (default 100). */
  readonly limit?: number;
  /** From the previous page's `cursor`. */
  readonly cursor?: string;
}

export interface Page<T> {
  readonly items: Versioned<T>[];
  /** Present when more rows may follow; pass it as `cursor` with the same query. */
  readonly cursor: string | undefined;
}

export type TableOp<T> =
  | { readonly op: 'insert'; readonly row: T; readonly ttlMs?: number }
  | { readonly op: 'upsert'; readonly row: T; readonly version?: number; readonly ttlMs?: number }
  | { readonly op: 'update'; readonly key: KeyOf<T>; readonly patch: Partial<T>; readonly version?: number; readonly ttlMs?: number }
  | { readonly op: 'delete'; readonly key: KeyOf<T>; readonly version?: number };

/**
 * What a query through one index (or the primary key) needs that does not depend on the query,
 * built once per table: planning a query then allocates only its own conditions (measured: the
 * per-call column lists, sets and eagerly built error messages were a quarter of `query`'s own
 * time in the shop's GET /orders).
 */
interface IndexShape {
  /** For error messages: `primary key` or `index "<name>"`. */
  readonly label: string;
  /** The sort key: the index's columns, then the primary-key columns not among them. */
  readonly order: readonly string[];
  /** Nullable index columns (rows with a NULL there are not in the index). */
  readonly notNull: readonly string[];
  /** What a cursor of this index is scoped to and carries: the columns of `order`, typed. */
  readonly cursor: CursorShape;
}

function indexShape(def: TableDef, colIndex: ReadonlyMap<string, number>, index: string | undefined, keyBytesMax: number): IndexShape {
  const idxCols = index === undefined ? def.primaryKey : def.indexes[index]!;
  const col = (c: string): ColumnDef => def.columns[colIndex.get(c)!]!;
  const order = Object.freeze([...idxCols, ...def.primaryKey.filter((c) => !idxCols.includes(c))]);
  return {
    label: index === undefined ? 'primary key' : `index "${index}"`,
    order,
    notNull: Object.freeze(index === undefined ? [] : idxCols.filter((c) => col(c).nullable)),
    cursor: cursorShape(
      def.physical,
      index ?? '',
      order.map((c): CursorColumn => {
        const t = col(c).type;
        invariant(t !== 'json', 'json columns are not indexable');
        return { name: c, type: t, bytesMax: def.primaryKey.includes(c) ? keyBytesMax : undefined };
      }),
    ),
  };
}

/** Position of column `c` in `eq`, or -1. */
function eqIndexOf(eq: readonly (readonly [string, SqlValue])[], c: string): number {
  for (let i = 0; i < eq.length; i++) if (eq[i]![0] === c) return i;
  return -1;
}

export class Table<T extends Record<string, unknown>> {
  readonly name: string;
  readonly def: TableDef;
  readonly #ctx: ShardContext;
  readonly #router: Router;
  readonly #check: TypeCheck<TObject>;
  readonly #colIndex: ReadonlyMap<string, number>;
  readonly #pkIdx: readonly number[];
  readonly #partIdx: readonly number[];
  readonly #columnChecks = new Map<string, TypeCheck<TSchema>>();
  readonly #schema: TObject;
  readonly #pkShape: IndexShape;
  readonly #indexShapes: ReadonlyMap<string, IndexShape>;
  readonly #allShards: readonly number[];
  /** Where each partition-key column sits in the primary key. */
  readonly #partInPk: readonly number[];
  /** Per shard: the engine if it declares synchronous reads (SQLite), to skip a promise hop (as kv does). */
  readonly #sync: readonly (SyncReadEngine | undefined)[];
  /** An update's change-record document from the row after the patch; one function, shared by every op. */
  readonly #docOf = (raw: RawRow): Buffer => feedDoc(this.def, raw);

  constructor(ctx: ShardContext, def: TableDef, schema: TObject, router: Router) {
    this.#ctx = ctx;
    this.def = def;
    this.name = def.name;
    this.#router = router;
    this.#schema = schema;
    this.#check = TypeCompiler.Compile(schema);
    this.#colIndex = new Map(def.columns.map((c, i) => [c.name, i]));
    this.#pkIdx = def.primaryKey.map((c) => this.#colIndex.get(c)!);
    this.#partIdx = def.partitionKey.map((c) => this.#colIndex.get(c)!);
    this.#pkShape = indexShape(def, this.#colIndex, undefined, ctx.limits.keyBytesMax);
    this.#indexShapes = new Map(Object.keys(def.indexes).map((n) => [n, indexShape(def, this.#colIndex, n, ctx.limits.keyBytesMax)]));
    this.#allShards = Object.freeze(allShards(ctx));
    this.#partInPk = def.partitionKey.map((c) => def.primaryKey.indexOf(c));
    this.#sync = ctx.engines.map((e) => (hasSyncReads(e) ? e : undefined));
  }

  // ---- encoding ---------------------------------------------------------------------------------

  #validationError(value: unknown, check: TypeCheck<TSchema>, prefix: string): PowerplantError {
    const e = check.Errors(value).First();
    const path = e === undefined ? '' : e.path.replace(/^\//, '').replaceAll('/', '.');
    const field = path === '' ? prefix : `${prefix}.${path}`;
    return ppError('PP_ERR_VALIDATION', { field, message: `${field}: ${e?.message ?? 'invalid'}` });
  }

  /** Validates a full row and returns its column values in definition order. */
  #encodeRow(row: unknown): SqlValue[] {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw ppError('PP_ERR_VALIDATION', { field: 'row', message: 'row: must be an object' });
    for (const k in row) {
      if (!this.#colIndex.has(k)) throw ppError('PP_ERR_UNKNOWN_COLUMN', { field: `row.${k}`, message: `row.${k}: ${this.name} has no column "${k}"` });
    }
    this.#checkKeyPresent(row as Record<string, unknown>, 'row');
    if (!this.#check.Check(row)) throw this.#validationError(row, this.#check, 'row');
    const cols = this.def.columns;
    const out = new Array<SqlValue>(cols.length);
    let size = 0;
    for (let i = 0; i < cols.length; i++) {
      const c = cols[i]!;
      const v = encodeValue(c, (row as Record<string, unknown>)[c.name], `row.${c.name}`);
      size += sizeOf(v);
      out[i] = v;
    }
    this.#checkSize(size, out);
    for (const i of this.#pkIdx) this.#checkKeySize(out[i]!, `row.${cols[i]!.name}`);
    return out;
  }

  #checkSize(approx: number, values: readonly SqlValue[]): void {
    const max = this.#ctx.limits.valueBytesMax;
    if (approx <= max) return;
    let exact = 0;
    for (const v of values) exact += typeof v === 'string' ? Buffer.byteLength(v) : sizeOf(v);
    if (exact > max) {
      throw ppError('PP_ERR_TOO_LARGE', { field: 'row', message: `row: ${exact} bytes exceeds valueBytesMax ${max}`, data: { max, size: exact } });
    }
  }

  #checkKeySize(v: SqlValue, field: string): void {
    const max = this.#ctx.limits.keyBytesMax;
    const n = typeof v === 'string' ? (v.length * 3 <= max ? 0 : Buffer.byteLength(v)) : Buffer.isBuffer(v) ? v.byteLength : 0;
    if (n > max) throw ppError('PP_ERR_TOO_LARGE', { field, message: `${field}: key of ${n} bytes exceeds keyBytesMax ${max}`, data: { max, size: n } });
  }

  #encodeColumn(name: string, v: unknown, field: string): SqlValue {
    const i = this.#colIndex.get(name);
    if (i === undefined) throw ppError('PP_ERR_UNKNOWN_COLUMN', { field, message: `${field}: ${this.name} has no column "${name}"` });
    const col = this.def.columns[i]!;
    if (col.type === 'json' && v !== undefined && v !== null) {
      let check = this.#columnChecks.get(name);
      if (check === undefined) {
        check = TypeCompiler.Compile(this.#schema.properties[name]!);
        this.#columnChecks.set(name, check);
      }
      if (!check.Check(v)) throw this.#validationError(v, check, field);
    }
    return encodeValue(col, v, field);
  }

  /** The partition key decides the shard, so its absence is reported as such, before the rest of the key. */
  #checkKeyPresent(obj: Record<string, unknown>, field: string): void {
    for (const c of this.def.partitionKey) {
      const v = obj[c];
      if (v === undefined || v === null) throw ppError('PP_ERR_MISSING_PARTITION_KEY', { field: `${field}.${c}`, message: `${field}.${c}: the partition key (${this.def.partitionKey.join(', ')}) is required` });
    }
    for (const c of this.def.primaryKey) {
      const v = obj[c];
      if (v === undefined || v === null) throw ppError('PP_ERR_MISSING_KEY', { field: `${field}.${c}`, message: `${field}.${c}: primary-key column is missing` });
    }
  }

  /** Primary-key values from a key argument. */
  #encodeKey(key: unknown, field = 'key'): SqlValue[] {
    const pk = this.def.primaryKey;
    if (typeof key !== 'object' || key === null) {
      if (key === undefined || key === null) throw ppError('PP_ERR_MISSING_KEY', { field, message: `${field}: the primary key is required` });
      requireArg(pk.length === 1, field, `${this.name} has a ${pk.length}-column primary key: pass an object`);
      const v = this.#encodeColumn(pk[0]!, key, field);
      this.#checkKeySize(v, field);
      return [v];
    }
    this.#checkKeyPresent(key as Record<string, unknown>, field);
    const out: SqlValue[] = [];
    for (const c of pk) {
      const v = (key as Record<string, unknown>)[c];
      const e = this.#encodeColumn(c, v, `${field}.${c}`);
      this.#checkKeySize(e, `${field}.${c}`);
      out.push(e);
    }
    return out;
  }

  #shardOfRowValues(values: readonly SqlValue[]): number {
    return this.#router.shardIndexOf(this.#partIdx.map((i) => values[i]!));
  }

  #shardOfKey(key: readonly SqlValue[]): number {
    // partitionKey is a subset of primaryKey: pick its columns out of the key.
    return this.#router.shardIndexOf(this.#partInPk.map((i) => key[i]!));
  }

  #decode(raw: RawRow): Versioned<T> {
    return { row: decodeRow(this.def, raw) as T, version: raw._v as number, expiresAtMs: (raw._exp as number | null) ?? null };
  }

  // ---- op building (validation happens here, before anything is submitted) ----------------------

  #buildOp(op: TableOp<T>, nowMs: number): { op: WriteOp; shard: number } {
    const ttl = op.op === 'delete' ? undefined : op.ttlMs;
    const version = op.op === 'insert' ? undefined : checkVersion(op.version);
    switch (op.op) {
      case 'insert':
      case 'upsert': {
        const values = this.#encodeRow(op.row);
        const key = this.#pkIdx.map((i) => values[i]!);
        const exp = expiryOf(ttl, this.#ctx.limits, nowMs);
        const w: WriteOp = { table: this.def, kind: op.op, key, values, expiresAtMs: exp, keyJson: keyJson(key), doc: feedDocOfValues(this.def, values), ...(version === undefined ? {} : { expectVersion: version }) };
        return { op: w, shard: this.#shardOfRowValues(values) };
      }
      case 'update': {
        const key = this.#encodeKey(op.key);
        const patch = op.patch as Record<string, unknown> | undefined;
        requireArg(typeof patch === 'object' && patch !== null && !Array.isArray(patch), 'patch', 'must be an object');
        const pairs: [number, SqlValue][] = [];
        let size = 0;
        for (const k of Object.keys(patch).sort()) {
          const i = this.#colIndex.get(k);
          if (i === undefined) throw ppError('PP_ERR_UNKNOWN_COLUMN', { field: `patch.${k}`, message: `patch.${k}: ${this.name} has no column "${k}"` });
          if (this.def.primaryKey.includes(k)) {
            requireArg(false, `patch.${k}`, 'primary-key columns cannot be updated (delete and insert instead)');
          }
          const v = this.#encodeColumn(k, patch[k], `patch.${k}`);
          size += sizeOf(v);
          pairs.push([i, v]);
        }
        this.#checkSize(size, pairs.map((p) => p[1]));
        const w: WriteOp = {
          table: this.def,
          kind: 'update',
          key,
          patch: pairs,
          keyJson: keyJson(key),
          docOf: this.#docOf,
          ...(ttl === undefined ? {} : { expiresAtMs: expiryOf(ttl, this.#ctx.limits, nowMs) }),
          ...(version === undefined ? {} : { expectVersion: version }),
        };
        return { op: w, shard: this.#shardOfKey(key) };
      }
      case 'delete': {
        const key = this.#encodeKey(op.key);
        return { op: { table: this.def, kind: 'delete', key, keyJson: keyJson(key), ...(version === undefined ? {} : { expectVersion: version }) }, shard: this.#shardOfKey(key) };
      }
      default:
        requireArg(false, 'op', 'must be insert, upsert, update or delete');
        throw new Error('unreachable');
    }
  }

  async #one(op: TableOp<T>): Promise<WriteResult> {
    const b = this.#buildOp(op, Date.now());
    const [o] = await submit(this.#ctx, b.shard, [b.op]);
    return { version: o!.version, shard: this.#ctx.engines[b.shard]!.shard, position: o!.position };
  }

  // ---- building blocks for atomic requests (src/tx) -----------------------------------------------

  /** The write as a `StoreOp` (validated, not submitted), for `store.atomic` and transactions. */
  writeOp(op: TableOp<T>): StoreOp {
    const b = this.#buildOp(op, Date.now());
    return { shard: b.shard, write: b.op };
  }

  /** A condition for `store.atomic`: the row's live version is `version` (0 = no live row). */
  checkOp(key: KeyOf<T>, version: number): StoreOp {
    requireArg(Number.isSafeInteger(version) && version >= 0, 'version', 'must be an integer >= 0');
    const k = this.#encodeKey(key);
    return { shard: this.#shardOfKey(k), write: { table: this.def, kind: 'check', key: k, keyJson: keyJson(k), expectVersion: version } };
  }

  /** The shard index and canonical key string of a primary key (validated). */
  locate(key: KeyOf<T>): { shard: number; keyJson: string } {
    const k = this.#encodeKey(key);
    return { shard: this.#shardOfKey(k), keyJson: keyJson(k) };
  }

  /** The row's primary key as an object, from a full row. */
  keyOfRow(row: T): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of this.def.primaryKey) out[c] = row[c];
    return out;
  }

  // ---- writes -------------------------------------------------------------------------------------

  /** Inserts a new row; PP_ERR_CONFLICT if a live row with this key exists. */
  insert(row: T, options: { ttlMs?: number } = {}): Promise<WriteResult> {
    return this.#one({ op: 'insert', row, ...options });
  }

  /** Inserts or replaces the whole row. With `version`: only if the current version matches. */
  upsert(row: T, options: TableWriteOptions = {}): Promise<WriteResult> {
    return this.#one({ op: 'upsert', row, ...options });
  }

  /** Sets some columns of an existing row (PP_ERR_NOT_FOUND if none). `undefined` in the patch sets NULL. */
  update(key: KeyOf<T>, patch: Partial<T>, options: TableWriteOptions = {}): Promise<WriteResult> {
    return this.#one({ op: 'update', key, patch, ...options });
  }

  /** Deletes a row; resolves false if there was none. With `version`: PP_ERR_CONFLICT on mismatch. */
  async delete(key: KeyOf<T>, options: { version?: number } = {}): Promise<boolean> {
    const r = await this.#one({ op: 'delete', key, ...options });
    return r.position > 0;
  }

  /**
   * Several writes. Everything is validated before anything is written. Ops on one shard (e.g. all
   * with the same partition key) are one atomic request: all apply or none. Ops spanning shards
   * are atomic per shard only (cross-shard atomicity is two-phase commit, the tx layer's job).
   */
  async batch(ops: readonly TableOp<T>[]): Promise<WriteResult[]> {
    requireArg(Array.isArray(ops), 'ops', 'must be an array');
    checkBatchSize(ops.length, this.#ctx.limits, 'ops');
    if (ops.length === 0) return [];
    const now = Date.now();
    const built = ops.map((o, i) => {
      try {
        return this.#buildOp(o, now);
      } catch (err) {
        if (err instanceof PowerplantError && err.field !== undefined) {
          throw new PowerplantError(err.code, { field: `ops[${i}].${err.field}`, message: `ops[${i}].${err.message}`, ...(err.data === undefined ? {} : { data: err.data }) });
        }
        throw err;
      }
    });
    return submitAcross(this.#ctx, built.map((b) => b.shard), built.map((b) => b.op));
  }

  // ---- reads --------------------------------------------------------------------------------------

  async get(key: KeyOf<T>): Promise<Versioned<T> | undefined> {
    this.#ctx.checkOpen();
    const k = this.#encodeKey(key);
    const s = this.#shardOfKey(k);
    const sync = this.#sync[s];
    const raw = sync !== undefined ? sync.getSync(this.def, k, Date.now()) : await this.#ctx.engines[s]!.get(this.def, k, Date.now());
    return raw === undefined ? undefined : this.#decode(raw);
  }

  /** Point reads of several keys (grouped per shard, in parallel). Results in input order. */
  async getMany(keys: readonly KeyOf<T>[]): Promise<(Versioned<T> | undefined)[]> {
    this.#ctx.checkOpen();
    requireArg(Array.isArray(keys), 'keys', 'must be an array');
    checkBatchSize(keys.length, this.#ctx.limits, 'keys');
    const enc = keys.map((k, i) => this.#encodeKey(k, `keys[${i}]`));
    const groups = new Map<number, number[]>();
    enc.forEach((k, i) => {
      const s = this.#shardOfKey(k);
      let g = groups.get(s);
      if (g === undefined) groups.set(s, (g = []));
      g.push(i);
    });
    const now = Date.now();
    const out = new Array<Versioned<T> | undefined>(keys.length).fill(undefined);
    const pk = this.def.primaryKey;
    const keyStr = (vals: readonly unknown[]): string => JSON.stringify(vals.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v)));
    await Promise.all(
      [...groups].map(async ([s, idx]) => {
        const rows = await this.#ctx.engines[s]!.getMany(this.def, idx.map((i) => enc[i]!), now);
        const byKey = new Map(rows.map((r) => [keyStr(pk.map((c) => r[c])), r]));
        for (const i of idx) {
          const r = byKey.get(keyStr(enc[i]!));
          if (r !== undefined) out[i] = this.#decode(r);
        }
      }),
    );
    return out;
  }

  #plan(q: Query<T>, forCount: boolean): { plan: ScanPlan; shape: IndexShape; shards: readonly number[]; limit: number } {
    requireArg(typeof q === 'object' && q !== null, 'query', 'must be an object');
    const def = this.def;
    const shape = q.index === undefined ? this.#pkShape : typeof q.index === 'string' ? this.#indexShapes.get(q.index) : undefined;
    if (shape === undefined) {
      throw ppError('PP_ERR_UNKNOWN_INDEX', { field: 'index', message: `index: ${this.name} has no index "${String(q.index)}" (indexes: ${Object.keys(def.indexes).join(', ') || 'none'})` });
    }
    const order = shape.order;
    const where = (q.where ?? {}) as Record<string, unknown>;
    requireArg(typeof where === 'object' && where !== null, 'where', 'must be an object');
    const eq: [string, SqlValue][] = [];
    for (const k of Object.keys(where)) {
      const v = where[k];
      if (v === undefined) continue;
      if (v === null) requireArg(false, `where.${k}`, 'NULL cannot be matched by equality (rows with NULL in an index are not in it)');
      eq.push([k, this.#encodeColumn(k, v, `where.${k}`)]);
    }
    let prefix = 0;
    while (prefix < order.length && eqIndexOf(eq, order[prefix]!) >= 0) prefix++;
    for (const [k] of eq) {
      const at = order.indexOf(k);
      if (!((at >= 0 && at < prefix) || def.partitionKey.includes(k))) {
        requireArg(false, `where.${k}`, `must be a leading column of the ${shape.label} (${order.join(', ')}) or a partition-key column`);
      }
    }
    let range: RangeCond | undefined;
    if (q.range !== undefined) {
      const r = q.range;
      requireArg(typeof r === 'object' && r !== null, 'range', 'must be an object');
      const col = order[prefix];
      requireArg(col !== undefined, 'range', 'every sort column is already fixed by where');
      if (r.column !== undefined && r.column !== col) requireArg(false, 'range.column', `must be "${col}", the next sort column after where's prefix`);
      const b = (v: unknown, f: string): SqlValue | undefined => {
        if (v === undefined) return undefined;
        requireArg(v !== null, `range.${f}`, 'must not be null');
        return this.#encodeColumn(col, v, `range.${f}`);
      };
      const bounds: { column: string; gt?: SqlValue; gte?: SqlValue; lt?: SqlValue; lte?: SqlValue } = { column: col };
      for (const f of ['gt', 'gte', 'lt', 'lte'] as const) {
        const v = b(r[f], f);
        if (v !== undefined) bounds[f] = v;
      }
      range = bounds;
    }
    requireArg(q.order === undefined || q.order === 'asc' || q.order === 'desc', 'order', "must be 'asc' or 'desc'");
    const limit = forCount ? 1 : checkLimit(q.limit, this.#ctx.limits.pageMax);
    const after = q.cursor !== undefined && !forCount ? this.#ctx.cursors.decode(shape.cursor, q.cursor) : undefined;
    const plan: ScanPlan = { table: def, eq, range, notNull: shape.notNull, order, desc: q.order === 'desc', after, limit: limit + 1 };
    return { plan, shape, shards: this.#shardsOf(eq), limit };
  }

  /** The one shard holding every match when `eq` fixes the whole partition key; else all shards. */
  #shardsOf(eq: readonly (readonly [string, SqlValue])[]): readonly number[] {
    const pk = this.def.partitionKey;
    const values = new Array<SqlValue>(pk.length);
    for (let i = 0; i < pk.length; i++) {
      const at = eqIndexOf(eq, pk[i]!);
      if (at < 0) return this.#allShards;
      values[i] = eq[at]![1];
    }
    return [this.#router.shardIndexOf(values)];
  }

  /**
   * One page of rows in index order. With the whole partition key in `where` it reads one shard;
   * otherwise every shard in parallel, merged in order. Cursors are sort keys, so paging is exact
   * across shards and stable under concurrent writes (no row is returned twice in one traversal;
   * rows inserted behind the cursor are not seen).
   */
  async query(q: Query<T> = {}): Promise<Page<T>> {
    this.#ctx.checkOpen();
    const { plan, shape, shards, limit } = this.#plan(q, false);
    const { rows, more } = await scanShards(this.#ctx, shards, plan, limit, Date.now());
    const items = rows.map((r) => this.#decode(r));
    const last = rows[rows.length - 1];
    return { items, cursor: more && last !== undefined ? this.#ctx.cursors.encode(shape.cursor, plan.order.map((c) => last[c] as SqlValue)) : undefined };
  }

  /** Which shards a query would read (one when `where` holds the whole partition key). */
  explain(q: Query<T> = {}): { shards: string[]; order: readonly string[] } {
    const { plan, shards } = this.#plan(q, false);
    return { shards: shards.map((s) => this.#ctx.engines[s]!.shard), order: plan.order };
  }

  /** Live rows matching `where`/`range` (index semantics as in query), summed over shards. */
  async count(q: Omit<Query<T>, 'cursor' | 'limit' | 'order'> = {}): Promise<number> {
    this.#ctx.checkOpen();
    const { plan, shards } = this.#plan(q, true);
    const now = Date.now();
    const counts = await Promise.all(shards.map((s) => this.#ctx.engines[s]!.count(plan, now)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Migrations recorded for this table, from the first shard (every shard applies the same ones). */
  async migrations(): Promise<Migration[]> {
    return this.#ctx.engines[0]!.migrations(this.def.physical);
  }
}

export type TableOf<S extends TObject> = Table<Static<S>>;
