/**
 * `explain`: DuckDB's physical plan of a query, and from its EXPLAIN ANALYZE profile, per mirrored
 * table, which partitions were scanned (and how many rows each scan read) and which were pruned
 * (DuckDB's statistics showed no row could match, so the scan was replaced by an empty result).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Mirror } from './mirror.js';
import { bindParams, prepareSelect, runPrepared, tableNames, type Params, type QueryLimits } from './query.js';

export interface ExplainScan {
  /** Partition ordinal, or -1 for an archive (Parquet) scan. */
  readonly partition: number;
  /** The DuckDB table (or Parquet file) read. */
  readonly source: string;
  readonly rowsScanned: number;
}

export interface ExplainTable {
  readonly mirror: string;
  /** Live partitions plus archives. */
  readonly partitions: number;
  readonly scanned: readonly ExplainScan[];
  /** Ordinals of the live partitions not read at all. */
  readonly pruned: readonly number[];
}

export interface Explain {
  /** DuckDB's physical plan (text). */
  readonly plan: string;
  readonly rowsScanned: number;
  readonly tables: readonly ExplainTable[];
}

interface ProfileNode {
  readonly operator_name?: string;
  readonly operator_type?: string;
  readonly operator_rows_scanned?: number;
  readonly extra_info?: Record<string, unknown>;
  readonly children?: readonly ProfileNode[];
}

function scans(node: ProfileNode, out: { table: string; rows: number }[]): void {
  const info = node.extra_info ?? {};
  const rows = node.operator_rows_scanned ?? 0;
  if (typeof info.Table === 'string') out.push({ table: info.Table, rows });
  else if (typeof info.Function === 'string' && /PARQUET/i.test(info.Function)) out.push({ table: 'parquet', rows });
  for (const ch of node.children ?? []) scans(ch, out);
}

export async function explainPlan(
  c: DuckDBConnection,
  sql: string,
  params: Params | undefined,
  isTable: (name: string) => boolean,
  mirrors: readonly Mirror[],
  limits: QueryLimits,
  deadlineMs: number,
  signal: AbortSignal | undefined,
): Promise<Explain> {
  // Validates the query exactly as `query` does (one SELECT over mirrored tables, parameters).
  (await prepareSelect(c, sql, params, isTable)).destroySync();
  // DuckDB names the tables behind the views: `pp.<mirror>__p<n>`.
  const referenced = new Set(
    tableNames(c, sql).map((t) => {
      const name = t.startsWith('main.') ? t.slice(5) : t;
      const cut = name.indexOf('__');
      return name.startsWith('pp.') && cut > 3 ? name.slice(3, cut) : name;
    }),
  );
  const started = performance.now();
  const planP = await c.prepare(`EXPLAIN ${sql}`);
  bindParams(planP, params);
  const plan = (await runPrepared<{ explain_value: string }>(c, planP, limits, deadlineMs, signal, started)).rows.map((r) => String(r.explain_value)).join('\n');
  const profP = await c.prepare(`EXPLAIN (ANALYZE, FORMAT json) ${sql}`);
  bindParams(profP, params);
  const prof = (await runPrepared<{ explain_value: string }>(c, profP, limits, deadlineMs, signal, started)).rows[0]?.explain_value;
  const found: { table: string; rows: number }[] = [];
  if (prof !== undefined) scans(JSON.parse(String(prof)) as ProfileNode, found);
  const tables: ExplainTable[] = [];
  for (const m of mirrors) {
    if (!referenced.has(m.name)) continue;
    const parts = m.layout.partitions;
    const scanned: ExplainScan[] = [];
    const read = new Set<number>();
    for (const f of found) {
      const short = f.table.slice(f.table.lastIndexOf('.') + 1);
      const p = parts.find((x) => x.table === short);
      if (p !== undefined) {
        read.add(p.ordinal);
        scanned.push({ partition: p.ordinal, source: short, rowsScanned: f.rows });
      }
    }
    for (const f of found) if (f.table === 'parquet' && parts.some((p) => p.archive !== undefined)) scanned.push({ partition: -1, source: 'parquet', rowsScanned: f.rows });
    const live = parts.filter((p) => p.table !== undefined);
    tables.push({
      mirror: m.name,
      partitions: live.length + parts.filter((p) => p.archive !== undefined).length,
      scanned,
      pruned: live.filter((p) => !read.has(p.ordinal)).map((p) => p.ordinal),
    });
  }
  return { plan, rowsScanned: found.reduce((a, f) => a + f.rows, 0), tables };
}
