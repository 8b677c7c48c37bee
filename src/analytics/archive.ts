/**
 * Archive: a mirror's old time partitions moved out of DuckDB into Parquet files, still queried
 * through the mirror's view. A partition is archived when its whole time range ends at least
 * `olderThanMs` before now. The file is written first (to a temporary name, then renamed), and
 * only then, in one transaction, the partition's live table is dropped and the catalog and view
 * point at the file: a crash in between leaves the live table in place (the file is rewritten by
 * the next archive). Changes to archived rows keep applying: a delete or update records the key
 * as a tombstone (hiding the file's row), an update's new row goes to a live table of the same
 * partition, and archiving that partition again merges both into a new file.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { renameSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ppError, requireArg } from '../errors/index.js';
import { duckType, lit, q } from './columns.js';
import { archiveBranch, tombName, viewSql } from './layout.js';
import type { Mirror } from './mirror.js';

export interface ArchiveOptions {
  /** Archive partitions whose time range ended at least this long ago, in ms. */
  readonly olderThanMs: number;
  /** "Now" for the cut-off (default Date.now()). */
  readonly nowMs?: number;
}

export interface ArchiveResult {
  readonly archived: readonly { readonly partition: number; readonly file: string; readonly rows: number }[];
}

/** The tombstone table of a mirror (primary key + the generation it was written in). */
export async function ensureTomb(c: DuckDBConnection, m: Mirror): Promise<void> {
  const cols = m.def.primaryKey.map((k) => `${q(k)} ${duckType(m.def.columns.find((col) => col.name === k)!)}`);
  await c.run(`CREATE TABLE IF NOT EXISTS pp.${q(tombName(m.name))} (${cols.join(', ')}, "_gen" BIGINT)`);
}

export async function archivePartitions(c: DuckDBConnection, m: Mirror, archiveDir: string, options: ArchiveOptions): Promise<ArchiveResult> {
  requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object');
  const by = m.layout.by;
  if (by?.kind !== 'time') throw ppError('PP_ERR_INVALID_ARGUMENT', { field: 'mirror', message: `mirror ${m.name}: only a time-partitioned mirror can be archived` });
  requireArg(Number.isSafeInteger(options.olderThanMs) && options.olderThanMs >= 0, 'olderThanMs', 'must be an integer >= 0');
  const now = options.nowMs ?? Date.now();
  requireArg(Number.isSafeInteger(now), 'nowMs', 'must be an integer (epoch ms)');
  const cut = now - options.olderThanMs;
  const dir = join(archiveDir, m.name);
  mkdirSync(dir, { recursive: true });
  const archived: { partition: number; file: string; rows: number }[] = [];
  const cols = m.def.columns.map((col) => q(col.name));
  for (const p of m.layout.partitions) {
    const range = m.layout.range(p);
    if (range === undefined || range.hi > cut || p.table === undefined) continue;
    const gen = m.archiveGen + 1;
    const file = join(dir, `p${p.ordinal}-g${gen}.parquet`);
    const tmp = `${file}.tmp`;
    const live = `SELECT ${[...cols, '"_v"', '"_exp"'].join(', ')} FROM pp.${q(p.table)}`;
    const source = p.archive === undefined ? live : `${live} UNION ALL ${archiveBranch(m.def, m.def.columns, m.name, p, false, true)}`;
    const rows = Number((await c.runAndReadAll(`SELECT count(*) AS n FROM (${source})`)).getRowObjectsJS()[0]!.n);
    await c.run(`COPY (${source}) TO ${lit(tmp)} (FORMAT parquet)`);
    renameSync(tmp, file);
    const previous = p.archive;
    await c.run('BEGIN');
    try {
      await c.run(`DROP TABLE pp.${q(p.table)}`);
      await c.run(`UPDATE pp.partitions SET tbl = NULL, archive = ${lit(file)}, archive_gen = ${gen}, archive_cols = ${lit(JSON.stringify(m.def.columns.map((col) => col.name)))} WHERE mirror = ${lit(m.name)} AND ordinal = ${p.ordinal}`);
      await c.run(`UPDATE pp.mirrors SET archive_gen = ${gen} WHERE name = ${lit(m.name)}`);
      const before = { table: p.table, archive: p.archive, archiveGen: p.archiveGen, archiveColumns: p.archiveColumns };
      p.table = undefined;
      p.archive = file;
      p.archiveGen = gen;
      p.archiveColumns = m.def.columns.map((col) => col.name);
      try {
        await c.run(viewSql(m.def, m.def.columns, m.layout, m.ttl));
        await c.run('COMMIT');
      } catch (err) {
        Object.assign(p, before);
        throw err;
      }
      m.archiveGen = gen;
    } catch (err) {
      await c.run('ROLLBACK').catch(() => undefined);
      rmSync(file, { force: true });
      throw err;
    }
    if (previous !== undefined) rmSync(previous, { force: true });
    archived.push({ partition: p.ordinal, file, rows });
  }
  return { archived };
}
