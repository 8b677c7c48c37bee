/**
 * Running a query: one SELECT with bound parameters over the mirrored tables, on a pooled read
 * connection, under a row limit and a time limit, cancellable. What DuckDB refuses (syntax, an
 * unknown table or column, a parameter of the wrong type) is PP_ERR_QUERY_INVALID (400) naming
 * it; a query over its limits is interrupted and is PP_ERR_QUERY_LIMIT (422) naming the limit.
 */
import { StatementType, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { isPowerplantError, ppError, requireArg, type PowerplantError } from '../errors/index.js';

export type Scalar = string | number | boolean | bigint | Uint8Array | null;
export type Params = readonly Scalar[] | Readonly<Record<string, Scalar>>;

export interface QueryLimits {
  /** Rows a query may return; more is PP_ERR_QUERY_LIMIT. Default 10,000. */
  readonly rowsMax: number;
  /** Wall time of a query (queue wait included), in ms; past it the query is interrupted. Default 10,000. */
  readonly timeoutMs: number;
}

export interface QueryOptions extends Partial<QueryLimits> {
  readonly signal?: AbortSignal;
}

export interface QueryColumn {
  readonly name: string;
  /** DuckDB's type name (BIGINT, DOUBLE, VARCHAR, …). */
  readonly type: string;
}

export interface QueryResult<R> {
  readonly rows: R[];
  readonly columns: readonly QueryColumn[];
  readonly elapsedMs: number;
}

export const QUERY_DEFAULTS: QueryLimits = { rowsMax: 10_000, timeoutMs: 10_000 };
export const ROWS_MAX_LIMIT = 1_000_000;
export const TIMEOUT_MS_MAX = 600_000;
export const SQL_CHARS_MAX = 100_000;

export function checkLimits(o: Partial<QueryLimits>, prefix: string): void {
  if (o.rowsMax !== undefined) requireArg(Number.isInteger(o.rowsMax) && o.rowsMax >= 1 && o.rowsMax <= ROWS_MAX_LIMIT, `${prefix}rowsMax`, `must be an integer in [1, ${ROWS_MAX_LIMIT}]`);
  if (o.timeoutMs !== undefined) requireArg(Number.isFinite(o.timeoutMs) && o.timeoutMs >= 1 && o.timeoutMs <= TIMEOUT_MS_MAX, `${prefix}timeoutMs`, `must be in [1, ${TIMEOUT_MS_MAX}]`);
}

function invalid(message: string, data?: Record<string, unknown>, cause?: unknown): PowerplantError {
  return ppError('PP_ERR_QUERY_INVALID', { field: 'sql', message, ...(data === undefined ? {} : { data }), ...(cause === undefined ? {} : { cause }) });
}

/** DuckDB's error (first line, without its "LINE n" pointer) as a catalogue error. */
export function fromDuckError(err: unknown): PowerplantError {
  if (isPowerplantError(err)) return err;
  const text = err instanceof Error ? err.message : String(err);
  // DuckDB's text is "<Kind> Error: <what>", sometimes behind a prefix ("Failed to extract statements: ").
  const first = text.split('\n')[0]!.trim().replace(/^Failed to [^:]+: /, '');
  let m = /Referenced column "([^"]+)" not found/.exec(text) ?? /column "?([^"\s]+)"? (?:not found|does not exist)/i.exec(text);
  if (m !== null) return invalid(`unknown column "${m[1]}": ${first}`, { column: m[1] }, err);
  m = /Table with name ([^\s!]+) does not exist/.exec(text);
  if (m !== null) return invalid(`unknown table "${m[1]}"`, { table: m[1] }, err);
  if (/\b(Parser|Binder|Catalog|Conversion|Invalid Input|Not implemented|Permission|Constraint|Syntax|Out of Range) Error/i.test(first)) return invalid(first, undefined, err);
  if (/\bOut of Memory Error/i.test(first)) return ppError('PP_ERR_QUERY_LIMIT', { field: 'memoryLimit', message: `the query ran out of memory (memoryLimit): ${first}`, cause: err });
  return ppError('PP_ERR_INTERNAL', { message: `analytics: ${first}`, cause: err });
}

/** Bounded pool of read connections; a caller waits (bounded) for a free one. */
export class ConnectionPool {
  readonly #idle: DuckDBConnection[];
  readonly #waiters: { resolve: (c: DuckDBConnection) => void; reject: (e: unknown) => void }[] = [];
  readonly #queueMax: number;
  #closed = false;

  constructor(connections: readonly DuckDBConnection[], queueMax: number) {
    this.#idle = [...connections];
    this.#queueMax = queueMax;
  }

  acquire(deadlineMs: number, signal: AbortSignal | undefined): Promise<DuckDBConnection> {
    if (this.#closed) return Promise.reject(ppError('PP_ERR_CLOSED', { message: 'the analytics instance is closed' }));
    const c = this.#idle.pop();
    if (c !== undefined) return Promise.resolve(c);
    if (this.#waiters.length >= this.#queueMax) {
      return Promise.reject(ppError('PP_ERR_OVERLOADED', { field: 'query.queueMax', message: `analytics: more than ${this.#queueMax} queries waiting for a connection (query.queueMax)` }));
    }
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (conn: DuckDBConnection): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(conn);
        },
        reject: (e: unknown): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const drop = (e: PowerplantError): void => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        w.reject(e);
      };
      const onAbort = (): void => drop(ppError('PP_ERR_ABORTED', { message: 'the query was cancelled while waiting for a connection' }));
      const timer = setTimeout(
        () => drop(ppError('PP_ERR_QUERY_LIMIT', { field: 'timeoutMs', message: 'the query exceeded its time limit (timeoutMs) waiting for a connection (query.concurrentMax)' })),
        Math.max(0, deadlineMs - Date.now()),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(w);
    });
  }

  release(c: DuckDBConnection): void {
    const w = this.#waiters.shift();
    if (w !== undefined) w.resolve(c);
    else this.#idle.push(c);
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.reject(ppError('PP_ERR_CLOSED', { message: 'the analytics instance is closed' }));
  }
}

/**
 * The tables a query reads (views expanded), as DuckDB names them. DuckDB answers nothing for a
 * query with parameters, so they are replaced by NULL for this question only.
 */
export function tableNames(c: DuckDBConnection, sql: string): readonly string[] {
  return c.getTableNames(sql.replace(/\$[A-Za-z0-9_]+|\?/g, 'NULL'), true);
}

/**
 * Checks `sql` is one SELECT over known tables and prepares it (parameters not bound). `isTable`
 * answers whether a name (as DuckDB gives it, views expanded) may be read.
 */
export async function prepareChecked(c: DuckDBConnection, sql: unknown, isTable: (name: string) => boolean): Promise<DuckDBPreparedStatement> {
  if (typeof sql !== 'string' || sql.trim() === '') throw invalid('sql: must be a non-empty string');
  if (sql.length > SQL_CHARS_MAX) throw invalid(`sql: longer than ${SQL_CHARS_MAX} chars`);
  let statements: number;
  let tables: readonly string[];
  try {
    statements = (await c.extractStatements(sql)).count;
    tables = tableNames(c, sql);
  } catch (err) {
    throw fromDuckError(err);
  }
  if (statements !== 1) throw invalid(`sql: must be exactly one statement, got ${statements}`);
  for (const t of tables) {
    const name = t.startsWith('main.') ? t.slice(5) : t;
    if (!isTable(name)) throw invalid(`unknown table "${t}" (the mirrored tables can be queried)`, { table: t });
  }
  let p: DuckDBPreparedStatement;
  try {
    p = await c.prepare(sql);
  } catch (err) {
    throw fromDuckError(err);
  }
  if (p.statementType !== StatementType.SELECT) {
    p.destroySync();
    throw invalid('sql: only SELECT statements can be run as queries');
  }
  return p;
}

/** `prepareChecked` with `params` bound (a statement of its own, destroyed after its run). */
export async function prepareSelect(c: DuckDBConnection, sql: unknown, params: Params | undefined, isTable: (name: string) => boolean): Promise<DuckDBPreparedStatement> {
  const p = await prepareChecked(c, sql, isTable);
  try {
    bindParams(p, params);
  } catch (err) {
    p.destroySync();
    throw err;
  }
  return p;
}

export const STATEMENTS_CACHED_MAX = 64;

/**
 * The checked, prepared statements of one connection by SQL text, for the catalog generation they
 * were checked under (a mirror opened, closed or given a new partition starts a new generation).
 * Measured: checking and preparing a query over a 9-partition view is 1–3 ms of a 30 ms query.
 */
export class StatementCache {
  readonly #byText = new Map<string, DuckDBPreparedStatement>();
  #generation = -1;

  async get(c: DuckDBConnection, sql: unknown, generation: number, isTable: (name: string) => boolean): Promise<DuckDBPreparedStatement> {
    if (generation !== this.#generation) {
      this.clear();
      this.#generation = generation;
    }
    if (typeof sql === 'string') {
      const hit = this.#byText.get(sql);
      if (hit !== undefined) {
        this.#byText.delete(sql);
        this.#byText.set(sql, hit);
        return hit;
      }
    }
    const p = await prepareChecked(c, sql, isTable);
    if (this.#byText.size >= STATEMENTS_CACHED_MAX) {
      const oldest = this.#byText.keys().next().value as string;
      this.#byText.get(oldest)!.destroySync();
      this.#byText.delete(oldest);
    }
    this.#byText.set(sql as string, p);
    return p;
  }

  clear(): void {
    for (const p of this.#byText.values()) p.destroySync();
    this.#byText.clear();
  }
}

function checkScalar(v: unknown, field: string): Scalar {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint' || v instanceof Uint8Array) return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw ppError('PP_ERR_QUERY_INVALID', { field, message: `${field}: must be a finite number` });
    return v;
  }
  throw ppError('PP_ERR_QUERY_INVALID', { field, message: `${field}: must be a string, number, boolean, bigint, Uint8Array or null (got ${v === undefined ? 'undefined' : typeof v})` });
}

export function bindParams(p: DuckDBPreparedStatement, params: Params | undefined): void {
  const n = p.parameterCount;
  if (params === undefined) {
    if (n > 0) throw ppError('PP_ERR_QUERY_INVALID', { field: 'params', message: `params: the query has ${n} parameter(s) and none were given` });
    return;
  }
  requireArg(typeof params === 'object' && params !== null, 'params', 'must be an array or an object');
  if (Array.isArray(params)) {
    if (params.length !== n) throw ppError('PP_ERR_QUERY_INVALID', { field: 'params', message: `params: the query has ${n} parameter(s), ${params.length} given` });
    for (let i = 0; i < n; i++) bindOne(p, i + 1, checkScalar(params[i], `params[${i}]`), `params[${i}]`);
    return;
  }
  const rec = params as Readonly<Record<string, Scalar>>;
  const names = new Set<string>();
  for (let i = 1; i <= n; i++) {
    const name = p.parameterName(i);
    names.add(name);
    if (!Object.hasOwn(rec, name)) throw ppError('PP_ERR_QUERY_INVALID', { field: `params.${name}`, message: `params.${name}: missing` });
    bindOne(p, i, checkScalar(rec[name], `params.${name}`), `params.${name}`);
  }
  for (const k of Object.keys(rec)) if (!names.has(k)) throw ppError('PP_ERR_QUERY_INVALID', { field: `params.${k}`, message: `params.${k}: the query has no parameter $${k}` });
}

function bindOne(p: DuckDBPreparedStatement, i: number, v: Scalar, field: string): void {
  try {
    if (v === null) p.bindNull(i);
    else if (typeof v === 'string') p.bindVarchar(i, v);
    else if (typeof v === 'boolean') p.bindBoolean(i, v);
    else if (typeof v === 'bigint') p.bindBigInt(i, v);
    else if (v instanceof Uint8Array) p.bindBlob(i, v);
    else if (Number.isSafeInteger(v)) p.bindBigInt(i, BigInt(v));
    else p.bindDouble(i, v);
  } catch (err) {
    throw ppError('PP_ERR_QUERY_INVALID', { field, message: `${field}: ${fromDuckError(err).message}`, cause: err });
  }
}

/** Converts DuckDB's JS values: integers to numbers when safe (else bigint); the rest as the JS converter gives them. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  return v;
}

/**
 * Runs a prepared SELECT: streams until `rowsMax` + 1 rows, interrupting the connection at the
 * deadline or on `signal`. Rows are objects keyed by column name.
 */
export async function runPrepared<R>(
  c: DuckDBConnection,
  p: DuckDBPreparedStatement,
  limits: QueryLimits,
  deadlineMs: number,
  signal: AbortSignal | undefined,
  startedMs: number,
  keep = false,
): Promise<QueryResult<R>> {
  let why: 'time' | 'abort' | undefined;
  const interrupt = (w: 'time' | 'abort'): void => {
    why ??= w;
    c.interrupt();
  };
  const timer = setTimeout(() => interrupt('time'), Math.max(0, deadlineMs - Date.now()));
  const onAbort = (): void => interrupt('abort');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted === true) throw ppError('PP_ERR_ABORTED', { message: 'the query was cancelled' });
    const reader = await p.startStream().readUntil(limits.rowsMax + 1);
    if (why !== undefined) throw new Error('INTERRUPT Error: Interrupted!');
    if (reader.currentRowCount > limits.rowsMax) {
      throw ppError('PP_ERR_QUERY_LIMIT', { field: 'rowsMax', message: `the query returns more than ${limits.rowsMax} rows (rowsMax); add a LIMIT or raise rowsMax`, data: { rowsMax: limits.rowsMax } });
    }
    const names = reader.deduplicatedColumnNames();
    const types = reader.columnTypes();
    const cols = reader.getColumnsJS();
    const n = reader.currentRowCount;
    const rows = new Array<R>(n);
    for (let r = 0; r < n; r++) {
      const o: Record<string, unknown> = {};
      for (let k = 0; k < names.length; k++) o[names[k]!] = plain(cols[k]![r]);
      rows[r] = o as R;
    }
    return { rows, columns: names.map((name, k) => ({ name, type: String(types[k]) })), elapsedMs: performance.now() - startedMs };
  } catch (err) {
    if (isPowerplantError(err)) throw err;
    if (why === 'time' || (why === undefined && /INTERRUPT/i.test(String(err)))) {
      throw ppError('PP_ERR_QUERY_LIMIT', { field: 'timeoutMs', message: `the query exceeded its time limit of ${limits.timeoutMs} ms (timeoutMs) and was cancelled`, data: { timeoutMs: limits.timeoutMs } });
    }
    if (why === 'abort') throw ppError('PP_ERR_ABORTED', { message: 'the query was cancelled' });
    throw fromDuckError(err);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (!keep) p.destroySync();
  }
}
