/**
 * The mirror's column layout: from a store table's definition to DuckDB columns, how a feed
 * record's row is checked against them, and how a value is appended. A value that does not fit its
 * column (or a field the mirror has no column for) is a shape change: the mirror stops on it
 * rather than append a wrong row.
 */
import { BIGINT, BLOB, BOOLEAN, DOUBLE, DuckDBDataChunk, VARCHAR, blobValue, type DuckDBAppender, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import { ppError, type PowerplantError } from '../errors/index.js';
import type { Table } from '../store/index.js';

/** A store table's normalized definition (what `Table.def` holds). */
export type TableDef = Table<Record<string, unknown>>['def'];
export type ColumnDef = TableDef['columns'][number];

/** Hidden columns of every partition table: row version and expiry (epoch ms, NULL = never). */
export const HIDDEN_COLUMNS = ['_v', '_exp'] as const;

export function q(ident: string): string {
  return `"${ident.replaceAll('"', '""')}"`;
}

export function lit(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export function duckType(c: ColumnDef): string {
  switch (c.type) {
    case 'string':
      return 'VARCHAR';
    case 'integer':
      return 'BIGINT';
    case 'number':
      return 'DOUBLE';
    case 'boolean':
      return 'BOOLEAN';
    case 'bytes':
      return 'BLOB';
    case 'json':
      return 'VARCHAR';
  }
}

/** The column list of a partition table (`CREATE TABLE … (<this>)`). */
export function tableColumnsSql(columns: readonly ColumnDef[]): string {
  return [...columns.map((c) => `${q(c.name)} ${duckType(c)}`), '"_v" BIGINT NOT NULL', '"_exp" BIGINT'].join(', ');
}

function shapeError(mirror: string, field: string, message: string, position: number, shard: string): PowerplantError {
  return ppError('PP_ERR_MIRROR_STOPPED', {
    field,
    message: `mirror ${mirror}: ${message} (shard ${shard}, position ${position}); the mirror stopped without applying it. Reopen the mirror with the table's current definition`,
    data: { mirror, shard, position, column: field },
  });
}

/** Whether `v` fits a column of type `c.type` (NULL-ness is checked apart). */
function fits(c: ColumnDef, v: unknown): boolean {
  switch (c.type) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' ? Number.isSafeInteger(v) : typeof v === 'bigint';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'bytes':
      return v instanceof Uint8Array;
    case 'json':
      return true;
  }
}

/**
 * Checks a record's row against the mirror's columns: every field must have a column and fit it,
 * every required column must be present. Returns undefined when it does, else the error to stop with.
 */
export function checkRow(
  mirror: string,
  columns: readonly ColumnDef[],
  byName: ReadonlyMap<string, ColumnDef>,
  row: Readonly<Record<string, unknown>>,
  shard: string,
  position: number,
): PowerplantError | undefined {
  for (const k in row) {
    const c = byName.get(k);
    if (c === undefined) return shapeError(mirror, k, `the feed record has a field "${k}" the mirror has no column for`, position, shard);
    const v = row[k];
    if (v !== null && v !== undefined && !fits(c, v)) return shapeError(mirror, k, `field "${k}" holds a ${typeof v}, the mirror's column is ${c.type}`, position, shard);
  }
  for (const c of columns) {
    if (!c.nullable && (row[c.name] === undefined || row[c.name] === null)) return shapeError(mirror, c.name, `required column "${c.name}" is missing from the feed record`, position, shard);
  }
  return undefined;
}

/** Appends one value of column `c` (already checked by `checkRow`). */
export function appendValue(a: DuckDBAppender, c: ColumnDef, v: unknown): void {
  if (v === null || v === undefined) {
    a.appendNull();
    return;
  }
  switch (c.type) {
    case 'string':
      a.appendVarchar(v as string);
      return;
    case 'integer':
      a.appendBigInt(typeof v === 'bigint' ? v : BigInt(v as number));
      return;
    case 'number':
      a.appendDouble(v as number);
      return;
    case 'boolean':
      a.appendBoolean(v as boolean);
      return;
    case 'bytes':
      a.appendBlob(v as Uint8Array);
      return;
    case 'json':
      a.appendVarchar(JSON.stringify(v));
      return;
  }
}

/**
 * A record's primary-key values (`ChangeRecord.key`: SQL values, bytes as Buffers, booleans as
 * 0/1) appended into the key staging table, typed like the columns.
 */
export function appendKey(a: DuckDBAppender, pk: readonly ColumnDef[], key: readonly unknown[]): void {
  for (let i = 0; i < pk.length; i++) {
    const c = pk[i]!;
    const v = key[i];
    appendValue(a, c, c.type === 'boolean' && typeof v === 'number' ? v !== 0 : v);
  }
  a.endRow();
}

/** DuckDB's type object of a column (for data chunks). */
function chunkType(c: ColumnDef): DuckDBType {
  switch (c.type) {
    case 'string':
    case 'json':
      return VARCHAR;
    case 'integer':
      return BIGINT;
    case 'number':
      return DOUBLE;
    case 'boolean':
      return BOOLEAN;
    case 'bytes':
      return BLOB;
  }
}

/** A value (already checked by `checkRow`) as a data chunk takes it. */
function chunkValue(c: ColumnDef, v: unknown): DuckDBValue {
  if (v === null || v === undefined) return null;
  switch (c.type) {
    case 'integer':
      return typeof v === 'bigint' ? v : BigInt(v as number);
    case 'bytes':
      return blobValue(v as Uint8Array);
    case 'json':
      return JSON.stringify(v);
    default:
      return v as DuckDBValue;
  }
}

export interface AppendRow {
  readonly row: Readonly<Record<string, unknown>>;
  readonly version: number;
  readonly expiresAtMs: number | null;
}

/** Rows per data chunk (DuckDB's vector size). */
const CHUNK_ROWS = 2048;

/**
 * Appends rows (columns, then `_v`, `_exp`) as data chunks of 2,048: each column is filled in JS
 * and copied into DuckDB once per chunk. Measured: 1.5x faster than a native call per value
 * (41 vs 60 ms per 10,000 rows of 9 columns on the bench machine).
 */
export function appendRows(a: DuckDBAppender, columns: readonly ColumnDef[], rows: readonly AppendRow[]): void {
  const types = [...columns.map(chunkType), BIGINT, BIGINT];
  for (let off = 0; off < rows.length; off += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, rows.length - off);
    const cols: DuckDBValue[][] = types.map(() => new Array<DuckDBValue>(n));
    for (let k = 0; k < n; k++) {
      const r = rows[off + k]!;
      for (let i = 0; i < columns.length; i++) cols[i]![k] = chunkValue(columns[i]!, r.row[columns[i]!.name]);
      cols[columns.length]![k] = BigInt(r.version);
      cols[columns.length + 1]![k] = r.expiresAtMs === null ? null : BigInt(r.expiresAtMs);
    }
    const chunk = DuckDBDataChunk.create(types, n);
    chunk.setColumns(cols);
    a.appendDataChunk(chunk);
  }
}
