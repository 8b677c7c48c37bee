/**
 * Table definitions: from a TypeBox / JSON Schema object to the normalized, engine-facing shape
 * (typed columns, primary key, partition key, indexes), row validation and encoding to SQL
 * values, decoding back, and the sort-key comparator the cross-shard merge uses (cursors: cursor.ts).
 *
 * Every engine stores a table the same way: one SQL column per schema property plus two reserved
 * columns, `_v` (row version, starts at 1, +1 per write) and `_exp` (expiry in epoch ms, NULL =
 * never). Orders must agree between SQL and JavaScript (the fan-out merge compares in JS what each
 * shard sorted in SQL), so values are restricted to types whose order is the same everywhere:
 * strings by Unicode code point (SQLite BINARY on UTF-8, PostgreSQL COLLATE "C"), numbers, and
 * bytes by memcmp. Booleans are stored as 0/1, JSON as text (not indexable).
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TObject, TSchema } from '@sinclair/typebox';
import { ppError, requireArg } from '../errors/index.js';

export type ColumnType = 'string' | 'integer' | 'number' | 'boolean' | 'bytes' | 'json';
/** What a column holds at the SQL boundary. */
export type SqlValue = string | number | Buffer | null;

export interface ColumnDef {
  readonly name: string;
  readonly type: ColumnType;
  readonly nullable: boolean;
}

/** Bounds on a definition: identifiers must fit PostgreSQL's 63-byte limit once prefixed. */
export const NAME_CHARS_MAX = 48;
export const COLUMNS_MAX = 200;
export const INDEXES_MAX = 32;
export const INDEX_COLUMNS_MAX = 8;

const NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;

export function checkName(name: unknown, field: string): asserts name is string {
  requireArg(typeof name === 'string' && NAME_RE.test(name) && name.length <= NAME_CHARS_MAX, field, `must match ${NAME_RE.source} and be at most ${NAME_CHARS_MAX} chars`);
}

/**
 * The normalized definition every engine receives. `physical` is the SQL table name
 * (`t_<name>` for tables, `kv_<namespace>` for key-value namespaces).
 */
export interface TableDef {
  readonly kind: 'table' | 'kv';
  readonly name: string;
  readonly physical: string;
  readonly columns: readonly ColumnDef[];
  readonly primaryKey: readonly string[];
  readonly partitionKey: readonly string[];
  /** index name -> columns, in declaration order. */
  readonly indexes: Readonly<Record<string, readonly string[]>>;
}

/** What is persisted in pp_schema and compared on open (schema evolution). */
export function defToJSON(def: TableDef): string {
  return JSON.stringify({ kind: def.kind, columns: def.columns, primaryKey: def.primaryKey, partitionKey: def.partitionKey, indexes: def.indexes });
}

export interface SchemaChange {
  readonly addColumns: readonly ColumnDef[];
  readonly addIndexes: readonly string[];
}

/**
 * What it takes to go from the recorded definition to the requested one. Only additive changes
 * are migrations (a nullable column, an index); anything else is PP_ERR_INCOMPATIBLE_SCHEMA, so
 * opening a table with a wrong definition never rewrites or loses data.
 */
export function diffDefs(recordedJson: string, next: TableDef): SchemaChange {
  const prev = JSON.parse(recordedJson) as Pick<TableDef, 'kind' | 'columns' | 'primaryKey' | 'partitionKey' | 'indexes'>;
  const incompatible = (message: string): never => {
    throw ppError('PP_ERR_INCOMPATIBLE_SCHEMA', { field: next.name, message: `${next.name}: ${message}`, data: { table: next.name } });
  };
  if (prev.kind !== next.kind) incompatible(`was a ${prev.kind}, now a ${next.kind}`);
  if (JSON.stringify(prev.primaryKey) !== JSON.stringify(next.primaryKey)) incompatible('the primary key cannot change');
  if (JSON.stringify(prev.partitionKey) !== JSON.stringify(next.partitionKey)) incompatible('the partition key cannot change (it decides where rows live)');
  const nextCols = new Map(next.columns.map((c) => [c.name, c]));
  for (const c of prev.columns) {
    const n = nextCols.get(c.name);
    if (n === undefined) incompatible(`column "${c.name}" cannot be removed`);
    else if (n.type !== c.type) incompatible(`column "${c.name}" cannot change type (${c.type} -> ${n.type})`);
    else if (n.nullable !== c.nullable) incompatible(`column "${c.name}" cannot change nullability`);
  }
  const prevNames = new Set(prev.columns.map((c) => c.name));
  const addColumns = next.columns.filter((c) => !prevNames.has(c.name));
  for (const c of addColumns) if (!c.nullable) incompatible(`new column "${c.name}" must be optional (nullable): existing rows have no value`);
  for (const [name, cols] of Object.entries(prev.indexes)) {
    const n = next.indexes[name];
    if (n === undefined) incompatible(`index "${name}" cannot be removed by redefinition`);
    else if (JSON.stringify(n) !== JSON.stringify(cols)) incompatible(`index "${name}" cannot change columns`);
  }
  const addIndexes = Object.keys(next.indexes).filter((n) => prev.indexes[n] === undefined);
  return { addColumns, addIndexes };
}

// ---- from a TypeBox / JSON Schema object ------------------------------------------------------

export interface TableOptions<S extends TObject = TObject> {
  /** A TypeBox `Type.Object({...})` (JSON Schema). Optional properties become nullable columns. */
  readonly schema: S;
  /** Primary-key columns (non-nullable, not json). */
  readonly primaryKey: readonly string[];
  /**
   * Columns that decide the shard: a subset of the primary key (so a primary key is unique across
   * shards). Default: the first primary-key column.
   */
  readonly partitionKey?: readonly string[];
  /** Secondary indexes: name -> columns. Queries name an index; rows with a NULL in it are skipped. */
  readonly indexes?: Readonly<Record<string, readonly string[]>>;
}

function columnTypeOf(prop: TSchema, field: string): ColumnType {
  const t = (prop as { type?: unknown }).type;
  switch (t) {
    case 'string':
      return 'string';
    case 'integer':
      return 'integer';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'Uint8Array': // TypeBox's Type.Uint8Array()
    case 'uint8array':
      return 'bytes';
    case 'object':
    case 'array':
      return 'json';
    default:
      requireArg(false, field, `unsupported column type ${JSON.stringify(t)} (string, integer, number, boolean, Uint8Array, object, array)`);
      return 'json';
  }
}

export function defineTable(name: string, options: TableOptions): TableDef {
  checkName(name, 'name');
  requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object');
  const schema = options.schema as TObject | undefined;
  requireArg(typeof schema === 'object' && schema !== null && schema.type === 'object' && typeof schema.properties === 'object', 'schema', 'must be a TypeBox Type.Object (JSON Schema of type object)');
  const required = new Set(schema.required ?? []);
  const columns: ColumnDef[] = [];
  for (const [col, prop] of Object.entries(schema.properties)) {
    checkName(col, `schema.properties.${col}`);
    columns.push({ name: col, type: columnTypeOf(prop, `schema.properties.${col}`), nullable: !required.has(col) });
  }
  requireArg(columns.length > 0 && columns.length <= COLUMNS_MAX, 'schema', `must have 1..${COLUMNS_MAX} properties`);
  const byName = new Map(columns.map((c) => [c.name, c]));
  const pk = options.primaryKey;
  requireArg(Array.isArray(pk) && pk.length > 0 && pk.length <= INDEX_COLUMNS_MAX, 'primaryKey', `must name 1..${INDEX_COLUMNS_MAX} columns`);
  for (const c of pk) {
    const d = byName.get(c);
    if (d === undefined) throw ppError('PP_ERR_UNKNOWN_COLUMN', { field: 'primaryKey', message: `primaryKey: unknown column "${c}"` });
    requireArg(!d.nullable, 'primaryKey', `column "${c}" must be required (not optional)`);
    requireArg(d.type !== 'json', 'primaryKey', `column "${c}" is json and cannot be a key`);
  }
  requireArg(new Set(pk).size === pk.length, 'primaryKey', 'duplicate column');
  const partitionKey = options.partitionKey ?? [pk[0]!];
  requireArg(Array.isArray(partitionKey) && partitionKey.length > 0, 'partitionKey', 'must name at least one column');
  for (const c of partitionKey) {
    requireArg(pk.includes(c), 'partitionKey', `"${c}" must be a primary-key column (a key must be unique across shards)`);
  }
  const indexes: Record<string, readonly string[]> = {};
  const idx = options.indexes ?? {};
  requireArg(Object.keys(idx).length <= INDEXES_MAX, 'indexes', `at most ${INDEXES_MAX}`);
  for (const [iname, cols] of Object.entries(idx)) {
    checkName(iname, `indexes.${iname}`);
    requireArg(Array.isArray(cols) && cols.length > 0 && cols.length <= INDEX_COLUMNS_MAX, `indexes.${iname}`, `must name 1..${INDEX_COLUMNS_MAX} columns`);
    for (const c of cols) {
      const d = byName.get(c);
      if (d === undefined) throw ppError('PP_ERR_UNKNOWN_COLUMN', { field: `indexes.${iname}`, message: `indexes.${iname}: unknown column "${c}"` });
      requireArg(d.type !== 'json', `indexes.${iname}`, `column "${c}" is json and cannot be indexed`);
    }
    indexes[iname] = Object.freeze(cols.slice());
  }
  return Object.freeze({
    kind: 'table',
    name,
    physical: `t_${name}`,
    columns: Object.freeze(columns),
    primaryKey: Object.freeze(pk.slice()),
    partitionKey: Object.freeze(partitionKey.slice()),
    indexes: Object.freeze(indexes),
  });
}

/** The physical definition of a key-value namespace: key text, value bytes (msgpack). */
export function defineKv(namespace: string): TableDef {
  checkName(namespace, 'namespace');
  return Object.freeze({
    kind: 'kv',
    name: namespace,
    physical: `kv_${namespace}`,
    columns: Object.freeze([
      { name: 'k', type: 'string', nullable: false },
      { name: 'v', type: 'bytes', nullable: false },
    ] as const),
    primaryKey: Object.freeze(['k']),
    partitionKey: Object.freeze(['k']),
    indexes: Object.freeze({}),
  });
}

// ---- values ------------------------------------------------------------------------------------

/**
 * Strings must survive UTF-8 and PostgreSQL text: no NUL, no lone surrogates (better-sqlite3 would
 * silently turn them into U+FFFD and a key would change identity).
 */
interface WellFormed {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

export function checkString(s: string, field: string): void {
  // String.prototype.isWellFormed is in Node 20 but not in our ES2023 lib typings.
  if (s.includes('\0') || !(s as unknown as WellFormed).isWellFormed()) {
    throw ppError('PP_ERR_VALIDATION', { field, message: `${field}: strings may not contain NUL or lone surrogates` });
  }
}

/**
 * Where inside `value` a string or an object key holds a lone surrogate: the path below `value`
 * ('' = the value itself, 'a.0' = value.a[0]), or undefined if none does. Such strings cannot be
 * encoded as UTF-8, so msgpack (kv values, change-feed documents) would turn them into U+FFFD:
 * the store refuses them rather than store something else than it was given. Callers run it only
 * when a cheap scan of the encoded form says a lone surrogate may be there.
 */
export function illFormedPath(value: unknown): string | undefined {
  if (typeof value === 'string') return (value as unknown as WellFormed).isWellFormed() ? undefined : '';
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || value instanceof Date) return undefined;
  const entries: Iterable<readonly [unknown, unknown]> = Array.isArray(value)
    ? value.entries()
    : value instanceof Map
      ? value.entries()
      : value instanceof Set
        ? [...value].entries()
        : Object.entries(value);
  for (const [k, v] of entries) {
    // An ill-formed key is named with U+FFFD in its place (the field must itself be well formed).
    if (typeof k === 'string' && !(k as unknown as WellFormed).isWellFormed()) return (k as unknown as WellFormed).toWellFormed();
    const below = illFormedPath(v);
    if (below !== undefined) return below === '' ? String(k) : `${String(k)}.${below}`;
  }
  return undefined;
}

function illFormed(field: string): never {
  throw ppError('PP_ERR_VALIDATION', { field, message: `${field}: strings may not contain lone surrogates` });
}

function badType(field: string, expected: string): never {
  throw ppError('PP_ERR_VALIDATION', { field, message: `${field}: expected ${expected}` });
}

/** Encodes one JS value for a column; throws PP_ERR_VALIDATION naming the field. */
export function encodeValue(col: ColumnDef, v: unknown, field: string): SqlValue {
  if (v === undefined || v === null) {
    if (!col.nullable) throw ppError('PP_ERR_VALIDATION', { field, message: `${field}: is required` });
    return null;
  }
  switch (col.type) {
    case 'string':
      if (typeof v !== 'string') badType(field, 'a string');
      checkString(v, field);
      return v;
    case 'integer':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) badType(field, 'a safe integer');
      return v;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) badType(field, 'a finite number');
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') badType(field, 'a boolean');
      return v ? 1 : 0;
    case 'bytes':
      if (!(v instanceof Uint8Array)) badType(field, 'a Uint8Array');
      return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    case 'json': {
      const text = JSON.stringify(v);
      // JSON.stringify escapes a lone surrogate as \udXXX (lowercase hex); only then look closer.
      // The table keeps the text faithfully, but the change record (msgpack) could not.
      if (text.includes('\\ud')) {
        const at = illFormedPath(v);
        if (at !== undefined) illFormed(at === '' ? field : `${field}.${at}`);
      }
      return text;
    }
  }
}

/** Decodes one column read back from an engine. */
export function decodeValue(col: ColumnDef, v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  switch (col.type) {
    case 'boolean':
      return v === 1 || v === true;
    case 'json':
      return JSON.parse(v as string) as unknown;
    case 'bytes':
      return v as Buffer;
    default:
      return v;
  }
}

/** Approximate encoded size in bytes, used only to enforce the row size bound. */
export function sizeOf(v: SqlValue): number {
  if (v === null) return 1;
  if (typeof v === 'number') return 8;
  if (typeof v === 'string') return v.length * 3 > 1024 ? Buffer.byteLength(v) : v.length * 3;
  return v.byteLength;
}

// ---- order: the JS comparator that matches SQL -----------------------------------------------

/**
 * Code-point order (what UTF-8 byte order gives). JS `<` compares UTF-16 code units, which differs
 * only when one side has a surrogate (astral character) and the other a BMP char >= U+E000.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? (y >= 0xe000 ? 1 : x - y) : x >= 0xe000 ? -1 : x - y;
    return x - y;
  }
  return a.length - b.length;
}

export function compareSql(a: SqlValue, b: SqlValue): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return compareStrings(a, b);
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return Buffer.compare(a, b);
  throw ppError('PP_ERR_INTERNAL', { message: 'invariant violated: mixed types in one sort column' });
}

/** The smallest string greater than every string starting with `prefix`; undefined = none. */
export function prefixUpperBound(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return cps.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

// ---- compiled row codec -------------------------------------------------------------------------

export interface RowCodec {
  readonly def: TableDef;
  readonly check: TypeCheck<TObject> | undefined;
  readonly colIndex: ReadonlyMap<string, number>;
}

export function rowCodec(def: TableDef, schema: TObject | undefined): RowCodec {
  return {
    def,
    check: schema === undefined ? undefined : TypeCompiler.Compile(schema),
    colIndex: new Map(def.columns.map((c, i) => [c.name, i])),
  };
}
