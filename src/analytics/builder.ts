/**
 * A small typed builder for the common analytics queries over one mirror: filters, group-by,
 * time buckets, aggregates, order and limit. Column names are checked by `tsc` against the row
 * type and at run time against the mirror (PP_ERR_QUERY_INVALID naming the column); values are
 * always bound parameters.
 *
 *   const r = await analytics.select(lines)
 *     .where('createdAt', '>=', from).where('createdAt', '<', to)
 *     .bucket('createdAt', 86_400_000, 'day').groupBy('category')
 *     .agg({ revenue: ['sum', 'amount'], lines: 'count' })
 *     .orderBy('revenue', 'desc').limit(10).run();
 *   // r.rows: { day: number; category: string; revenue: number; lines: number }[]
 */
import { ppError, requireArg } from '../errors/index.js';
import { q } from './columns.js';
import type { Params, QueryOptions, QueryResult, Scalar } from './query.js';

type NumericKeys<T> = { [K in keyof T]-?: NonNullable<T[K]> extends number ? K : never }[keyof T] & string;
type Keys<T> = keyof T & string;

export type AggSpec<T> =
  | 'count'
  | readonly ['count' | 'countDistinct', Keys<T>]
  | readonly ['sum' | 'avg' | 'min' | 'max', NumericKeys<T>]
  | readonly ['sumProduct', NumericKeys<T>, NumericKeys<T>];

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

export interface BuiltQuery {
  readonly sql: string;
  readonly params: Params;
}

/** What the builder runs its query through (the analytics instance). */
export interface BuilderHost {
  query<R>(sql: string, params: Params, options?: QueryOptions): Promise<QueryResult<R>>;
}

export const BUILDER_TERMS_MAX = 64;

interface State {
  readonly where: readonly { readonly col: string; readonly op: CompareOp | 'in'; readonly value: Scalar | readonly Scalar[] }[];
  readonly groups: readonly { readonly expr: string; readonly as: string; readonly param?: number }[];
  readonly aggs: readonly { readonly as: string; readonly expr: string }[];
  readonly order: readonly { readonly col: string; readonly dir: 'asc' | 'desc' }[];
  readonly limit: number | undefined;
}

export class Select<T, Out extends Record<string, unknown> = Record<never, never>> {
  readonly #host: BuilderHost;
  readonly #table: string;
  readonly #columns: ReadonlySet<string>;
  readonly #s: State;

  /** Use `analytics.select(mirror)`. */
  constructor(host: BuilderHost, table: string, columns: ReadonlySet<string>, s?: State) {
    this.#host = host;
    this.#table = table;
    this.#columns = columns;
    this.#s = s ?? { where: [], groups: [], aggs: [], order: [], limit: undefined };
  }

  #col(c: unknown, field: string): string {
    if (typeof c !== 'string' || !this.#columns.has(c)) {
      throw ppError('PP_ERR_QUERY_INVALID', { field, message: `${field}: ${this.#table} has no column ${JSON.stringify(c)}`, data: { column: c, table: this.#table } });
    }
    return c;
  }

  #next<O extends Record<string, unknown>>(patch: Partial<State>): Select<T, O> {
    const s = { ...this.#s, ...patch };
    requireArg(s.where.length + s.groups.length + s.aggs.length + s.order.length <= BUILDER_TERMS_MAX, 'query', `at most ${BUILDER_TERMS_MAX} terms`);
    return new Select<T, O>(this.#host, this.#table, this.#columns, s);
  }

  #checkAlias(as: unknown): string {
    requireArg(typeof as === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(as), 'as', 'must be an identifier');
    requireArg(!this.#s.groups.some((g) => g.as === as) && !this.#s.aggs.some((a) => a.as === as), 'as', `"${as}" is already an output column`);
    return as;
  }

  where<K extends Keys<T>>(col: K, op: CompareOp, value: NonNullable<T[K]>): Select<T, Out>;
  where<K extends Keys<T>>(col: K, op: 'in', values: readonly NonNullable<T[K]>[]): Select<T, Out>;
  where(col: string, op: CompareOp | 'in', value: unknown): Select<T, Out> {
    this.#col(col, 'where');
    requireArg(['=', '!=', '<', '<=', '>', '>=', 'in'].includes(op), 'op', 'must be one of = != < <= > >= in');
    if (op === 'in') requireArg(Array.isArray(value) && value.length >= 1 && value.length <= 1000, 'values', 'must be an array of 1..1000 values');
    return this.#next({ where: [...this.#s.where, { col, op, value: value as Scalar }] });
  }

  /** Groups by these columns (each becomes an output column). */
  groupBy<K extends Keys<T>>(...cols: K[]): Select<T, Out & Pick<T, K>> {
    const groups = cols.map((c) => ({ expr: q(this.#col(c, 'groupBy')), as: this.#checkAlias(c) }));
    return this.#next({ groups: [...this.#s.groups, ...groups] });
  }

  /** Groups by `floor(col / everyMs) * everyMs` (an epoch-ms column), output as `as`. */
  bucket<K extends NumericKeys<T>, A extends string>(col: K, everyMs: number, as: A): Select<T, Out & Record<A, number>> {
    this.#col(col, 'bucket');
    requireArg(Number.isSafeInteger(everyMs) && everyMs >= 1, 'everyMs', 'must be a positive integer');
    const expr = `CAST(floor(${q(col)} / ${everyMs}) * ${everyMs} AS BIGINT)`;
    return this.#next({ groups: [...this.#s.groups, { expr, as: this.#checkAlias(as) }] });
  }

  agg<A extends Record<string, AggSpec<T>>>(aggs: A): Select<T, Out & { [K in keyof A]: number }> {
    requireArg(typeof aggs === 'object' && aggs !== null && Object.keys(aggs).length > 0, 'agg', 'must name at least one aggregate');
    const out: { as: string; expr: string }[] = [];
    for (const [as, spec] of Object.entries(aggs) as [string, AggSpec<T>][]) {
      this.#checkAlias(as);
      out.push({ as, expr: this.#aggExpr(spec, `agg.${as}`) });
    }
    return this.#next({ aggs: [...this.#s.aggs, ...out] });
  }

  #aggExpr(spec: AggSpec<T>, field: string): string {
    if (spec === 'count') return 'count(*)';
    requireArg(Array.isArray(spec), field, 'must be "count" or [fn, column]');
    const [fn, a, b] = spec as readonly [string, string, string?];
    switch (fn) {
      case 'count':
        return `count(${q(this.#col(a, field))})`;
      case 'countDistinct':
        return `count(DISTINCT ${q(this.#col(a, field))})`;
      case 'sum':
      case 'avg':
      case 'min':
      case 'max':
        return `${fn}(${q(this.#col(a, field))})`;
      case 'sumProduct':
        return `sum(${q(this.#col(a, field))} * ${q(this.#col(b, field))})`;
      default:
        throw ppError('PP_ERR_QUERY_INVALID', { field, message: `${field}: unknown aggregate ${JSON.stringify(fn)}` });
    }
  }

  orderBy(col: keyof Out & string, dir: 'asc' | 'desc' = 'asc'): Select<T, Out> {
    const known = this.#s.groups.some((g) => g.as === col) || this.#s.aggs.some((a) => a.as === col);
    if (!known) throw ppError('PP_ERR_QUERY_INVALID', { field: 'orderBy', message: `orderBy: ${JSON.stringify(col)} is not an output column` });
    requireArg(dir === 'asc' || dir === 'desc', 'dir', 'must be asc or desc');
    return this.#next({ order: [...this.#s.order, { col, dir }] });
  }

  limit(n: number): Select<T, Out> {
    requireArg(Number.isInteger(n) && n >= 1 && n <= 1_000_000, 'limit', 'must be an integer in [1, 1000000]');
    return this.#next({ limit: n });
  }

  /** The SQL and its parameters. */
  toSql(): BuiltQuery {
    const s = this.#s;
    requireArg(s.groups.length + s.aggs.length > 0, 'query', 'select at least one group or aggregate');
    const params: Scalar[] = [];
    const bind = (v: Scalar): string => {
      params.push(v);
      return `$${params.length}`;
    };
    const select = [...s.groups.map((g) => `${g.expr} AS ${q(g.as)}`), ...s.aggs.map((a) => `${a.expr} AS ${q(a.as)}`)].join(', ');
    let sql = `SELECT ${select} FROM ${q(this.#table)}`;
    if (s.where.length > 0) {
      sql += ` WHERE ${s.where
        .map((w) => (w.op === 'in' ? `${q(w.col)} IN (${(w.value as Scalar[]).map(bind).join(', ')})` : `${q(w.col)} ${w.op === '!=' ? '<>' : w.op} ${bind(w.value as Scalar)}`))
        .join(' AND ')}`;
    }
    if (s.groups.length > 0 && s.aggs.length > 0) sql += ` GROUP BY ${s.groups.map((_g, i) => String(i + 1)).join(', ')}`;
    else if (s.groups.length > 0) sql = sql.replace('SELECT ', 'SELECT DISTINCT ');
    if (s.order.length > 0) sql += ` ORDER BY ${s.order.map((o) => `${q(o.col)} ${o.dir.toUpperCase()}`).join(', ')}`;
    if (s.limit !== undefined) sql += ` LIMIT ${s.limit}`;
    return { sql, params };
  }

  run(options?: QueryOptions): Promise<QueryResult<Out>> {
    const { sql, params } = this.toSql();
    return this.#host.query<Out>(sql, params, options);
  }
}
