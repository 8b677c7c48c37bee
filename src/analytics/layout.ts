/**
 * Where a mirror's rows live in DuckDB: the catalog (schema `pp`), one table per partition, and
 * the view users query (`main.<mirror>`).
 *
 * A mirror is partitioned by a time column (`{ kind: 'time', column, everyMs }`: one partition per
 * bucket of `everyMs`) or a key column (`{ kind: 'key', column }`: one partition per distinct
 * value, up to `partitionsMax`; later values share an overflow partition), or not at all (one
 * partition). Either kind has at most `partitionsMax` partitions: values past it share the overflow
 * partition (still correct, only pruned by its own min/max). Each partition is its own DuckDB table, so its statistics (min/max per column)
 * cover only its rows: a query filtering on the partition column lets DuckDB's statistics
 * propagation replace every partition outside the filter by an empty scan, which `explain` shows.
 * An archived partition is a Parquet file read through the view; rows of it that were deleted or
 * updated after the archive are hidden by the mirror's tombstones (primary keys).
 */
import { ppError, requireArg } from '../errors/index.js';
import { duckType, lit, q, type ColumnDef, type TableDef } from './columns.js';

export type PartitionBy =
  | { readonly kind: 'time'; readonly column: string; readonly everyMs: number }
  | { readonly kind: 'key'; readonly column: string };

export const PARTITIONS_MAX_DEFAULT = 256;
export const PARTITIONS_MAX_LIMIT = 4096;
/** Value of the overflow partition of a key layout (values past `partitionsMax`). */
export const OVERFLOW = '*';

export interface Partition {
  readonly ordinal: number;
  /** JSON of the partition value (time: the bucket start; key: the value), or OVERFLOW. */
  readonly value: string;
  /** The live DuckDB table (`pp."<mirror>__p<ordinal>"`), undefined once archived and not reopened. */
  table: string | undefined;
  /** The Parquet file of the archived rows, if archived. */
  archive: string | undefined;
  /** The archive's generation: tombstones of this generation or later hide its rows. */
  archiveGen: number;
  /** The columns the archive file has (columns added later read as NULL). */
  archiveColumns: readonly string[];
}

/** The catalog, created on open. Plain tables without constraints (updated by the one writer). */
export const CATALOG_DDL = [
  'CREATE SCHEMA IF NOT EXISTS pp',
  // archive_gen: archives made so far; a tombstone carries the generation current when it was written.
  'CREATE TABLE IF NOT EXISTS pp.mirrors (name VARCHAR, source VARCHAR, def VARCHAR, layout VARCHAR, ttl BOOLEAN, archive_gen BIGINT)',
  // pos: last applied feed position of the shard; exact_after: records at or below it may find
  // their row already present (after a snapshot), so inserts are applied as upserts.
  'CREATE TABLE IF NOT EXISTS pp.positions (mirror VARCHAR, shard VARCHAR, pos BIGINT, exact_after BIGINT)',
  'CREATE TABLE IF NOT EXISTS pp.partitions (mirror VARCHAR, ordinal INTEGER, value VARCHAR, tbl VARCHAR, archive VARCHAR, archive_gen BIGINT, archive_cols VARCHAR)',
];

export function checkPartitionBy(p: unknown, def: TableDef): PartitionBy | undefined {
  if (p === undefined) return undefined;
  requireArg(typeof p === 'object' && p !== null, 'partitionBy', 'must be { kind: "time", column, everyMs } or { kind: "key", column }');
  const { kind, column } = p as { kind?: unknown; column?: unknown };
  const col = def.columns.find((c) => c.name === column);
  if (col === undefined) throw ppError('PP_ERR_UNKNOWN_COLUMN', { field: 'partitionBy.column', message: `partitionBy.column: table ${def.name} has no column ${JSON.stringify(column)}` });
  if (kind === 'time') {
    const everyMs = (p as { everyMs?: unknown }).everyMs;
    requireArg(col.type === 'integer' || col.type === 'number', 'partitionBy.column', `a time partition column must be an integer or number (epoch ms); "${col.name}" is ${col.type}`);
    requireArg(typeof everyMs === 'number' && Number.isSafeInteger(everyMs) && everyMs >= 1000, 'partitionBy.everyMs', 'must be an integer >= 1000');
    return { kind, column: col.name, everyMs };
  }
  requireArg(kind === 'key', 'partitionBy.kind', 'must be "time" or "key"');
  requireArg(col.type === 'string' || col.type === 'integer' || col.type === 'boolean', 'partitionBy.column', `a key partition column must be a string, integer or boolean; "${col.name}" is ${col.type}`);
  return { kind, column: col.name };
}

/** The partitions of one mirror and the value -> partition routing. */
export class Layout {
  readonly mirror: string;
  readonly by: PartitionBy | undefined;
  readonly partitionsMax: number;
  readonly #byValue = new Map<string, Partition>();
  #next = 0;

  constructor(mirror: string, by: PartitionBy | undefined, partitionsMax: number, existing: readonly Partition[]) {
    this.mirror = mirror;
    this.by = by;
    this.partitionsMax = partitionsMax;
    for (const p of existing) {
      this.#byValue.set(p.value, p);
      this.#next = Math.max(this.#next, p.ordinal + 1);
    }
  }

  get partitions(): readonly Partition[] {
    return [...this.#byValue.values()].sort((a, b) => a.ordinal - b.ordinal);
  }

  get hasArchive(): boolean {
    for (const p of this.#byValue.values()) if (p.archive !== undefined) return true;
    return false;
  }

  /**
   * The partition value (JSON) a row belongs to. `pending` holds the new key values of the batch
   * being applied (their partitions are created later in it), so they count against `partitionsMax`.
   */
  valueOf(row: Readonly<Record<string, unknown>>, pending: Set<string>): string {
    const by = this.by;
    if (by === undefined) return '0';
    const v = row[by.column];
    if (v === undefined || v === null) return 'null';
    const s = by.kind === 'time' ? String(Math.floor((v as number) / by.everyMs) * by.everyMs) : JSON.stringify(v);
    if (!this.#byValue.has(s) && !pending.has(s)) {
      if (this.#byValue.size + pending.size >= this.partitionsMax - 1) return OVERFLOW;
      pending.add(s);
    }
    return s;
  }

  get(value: string): Partition | undefined {
    return this.#byValue.get(value);
  }

  /** A new partition for `value` (its live table still to be created by the caller). */
  add(value: string): Partition {
    const ordinal = this.#next++;
    const p: Partition = { ordinal, value, table: tableName(this.mirror, ordinal), archive: undefined, archiveGen: 0, archiveColumns: [] };
    this.#byValue.set(value, p);
    return p;
  }

  /** Undoes `add` (or a reopened table of an archived partition) after a rolled-back batch. */
  forget(value: string): void {
    const p = this.#byValue.get(value);
    if (p === undefined) return;
    if (p.archive !== undefined) p.table = undefined;
    else this.#byValue.delete(value);
  }

  /** The time range [lo, hi) of a time partition, undefined otherwise. */
  range(p: Partition): { lo: number; hi: number } | undefined {
    if (this.by?.kind !== 'time' || p.value === 'null' || p.value === OVERFLOW) return undefined;
    const lo = Number(p.value);
    return { lo, hi: lo + this.by.everyMs };
  }
}

export function tableName(mirror: string, ordinal: number): string {
  return `${mirror}__p${ordinal}`;
}

export function tombName(mirror: string): string {
  return `${mirror}__tomb`;
}

const TTL_FILTER = '("_exp" IS NULL OR "_exp" > epoch_ms(now()))';

/**
 * The view over a mirror's partitions: the table's columns of every live partition table and
 * every archive (minus its tombstoned keys), rows past their expiry filtered out when the mirror
 * has seen expiring rows.
 */
export function viewSql(def: TableDef, columns: readonly ColumnDef[], layout: Layout, ttl: boolean): string {
  const cols = columns.map((c) => q(c.name)).join(', ');
  const where = ttl ? ` WHERE ${TTL_FILTER}` : '';
  const branches: string[] = [];
  for (const p of layout.partitions) {
    if (p.table !== undefined) branches.push(`SELECT ${cols} FROM pp.${q(p.table)}${where}`);
    if (p.archive !== undefined) branches.push(archiveBranch(def, columns, layout.mirror, p, ttl, false));
  }
  if (branches.length === 0) branches.push(`SELECT ${columns.map((c) => `CAST(NULL AS ${duckType(c)}) AS ${q(c.name)}`).join(', ')} WHERE false`);
  return `CREATE OR REPLACE VIEW main.${q(layout.mirror)} AS ${branches.join(' UNION ALL ')}`;
}

/**
 * The live rows of an archived partition: its file minus the keys tombstoned since (generation
 * >= the file's). `hidden` adds `_v` and `_exp` (for re-archiving).
 */
export function archiveBranch(def: TableDef, columns: readonly ColumnDef[], mirror: string, p: Partition, ttl: boolean, hidden: boolean): string {
  const has = new Set(p.archiveColumns);
  const pk = def.primaryKey.map((k) => `t.${q(k)} = a.${q(k)}`).join(' AND ');
  const tomb = `NOT EXISTS (SELECT 1 FROM pp.${q(tombName(mirror))} t WHERE ${pk} AND t."_gen" >= ${p.archiveGen})`;
  const cols = columns.map((c) => (has.has(c.name) ? `a.${q(c.name)}` : `CAST(NULL AS ${duckType(c)}) AS ${q(c.name)}`));
  if (hidden) cols.push('a."_v"', 'a."_exp"');
  return `SELECT ${cols.join(', ')} FROM read_parquet(${lit(p.archive!)}) a WHERE ${tomb}${ttl ? ` AND ${TTL_FILTER.replaceAll('"_exp"', 'a."_exp"')}` : ''}`;
}

export function partitionTableSql(table: string, columnsSql: string): string {
  return `CREATE TABLE IF NOT EXISTS pp.${q(table)} (${columnsSql})`;
}

