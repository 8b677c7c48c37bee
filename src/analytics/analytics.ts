/**
 * `openAnalytics(store, options)`: one DuckDB database (a file beside the store's data by default),
 * one writer connection that every mirror applies its batches on (serialized), a bounded pool of
 * read connections for queries, and the mirrors themselves.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ppError, requireArg } from '../errors/index.js';
import type { Store, Table } from '../store/index.js';
import { archivePartitions, ensureTomb, type ArchiveOptions, type ArchiveResult } from './archive.js';
import { Select } from './builder.js';
import { lit, q } from './columns.js';
import { explainPlan, type Explain } from './explain.js';
import { CATALOG_DDL } from './layout.js';
import { Mirror, type MirrorHost, type MirrorOptions } from './mirror.js';
import {
  ConnectionPool,
  QUERY_DEFAULTS,
  checkLimits,
  StatementCache,
  bindParams,
  runPrepared,
  type Params,
  type QueryLimits,
  type QueryOptions,
  type QueryResult,
} from './query.js';

export interface AnalyticsOptions {
  /**
   * The DuckDB file. Default: `analytics.duckdb` beside the store's first SQLite shard (embedded),
   * or `./data/analytics.duckdb` for a PostgreSQL store (one per node). `:memory:` keeps it in memory.
   */
  readonly path?: string;
  /** Where archived partitions are written as Parquet. Default `<dir of path>/archive`. */
  readonly archiveDir?: string;
  /** DuckDB worker threads. Default: the machine's parallelism. */
  readonly threads?: number;
  /** DuckDB's memory limit (`'2GB'`); default DuckDB's (80% of RAM). A query past it is PP_ERR_QUERY_LIMIT. */
  readonly memoryLimit?: string;
  readonly query?: Partial<QueryLimits> & {
    /** Read connections, i.e. queries running at once. Default 4. */
    readonly concurrentMax?: number;
    /** Queries waiting for a connection; more is PP_ERR_OVERLOADED. Default 256. */
    readonly queueMax?: number;
  };
}

const CONCURRENT_MAX_LIMIT = 64;
const QUEUE_MAX_LIMIT = 100_000;

function defaultPath(store: Store): string {
  const first = store.describe().shards[0];
  if (first?.engine === 'sqlite' && first.location.startsWith('sqlite:')) return join(dirname(first.location.slice('sqlite:'.length)), 'analytics.duckdb');
  return resolve('data', 'analytics.duckdb');
}

export class Analytics implements MirrorHost {
  readonly path: string;
  readonly archiveDir: string;
  readonly #store: Store;
  readonly #instance: DuckDBInstance;
  readonly #writer: DuckDBConnection;
  readonly #pool: ConnectionPool;
  readonly #readers: readonly DuckDBConnection[];
  readonly #statements = new Map<DuckDBConnection, StatementCache>();
  /** Bumped whenever the set of queryable tables or their views change (invalidates prepared statements). */
  #generation = 0;
  readonly #limits: QueryLimits;
  readonly #mirrors = new Map<string, Mirror<Record<string, unknown>>>();
  readonly #opening = new Set<string>();
  #lock: Promise<unknown> = Promise.resolve();
  /** Queries and explains running (close interrupts them and waits). */
  readonly #running = new Set<Promise<unknown>>();
  #closed = false;

  private constructor(store: Store, path: string, archiveDir: string, instance: DuckDBInstance, writer: DuckDBConnection, readers: DuckDBConnection[], limits: QueryLimits, queueMax: number) {
    this.#store = store;
    this.path = path;
    this.archiveDir = archiveDir;
    this.#instance = instance;
    this.#writer = writer;
    this.#readers = readers;
    this.#pool = new ConnectionPool(readers, queueMax);
    for (const c of readers) this.#statements.set(c, new StatementCache());
    this.#limits = limits;
  }

  static async open(store: Store, options: AnalyticsOptions = {}): Promise<Analytics> {
    requireArg(typeof options === 'object' && options !== null, 'options', 'must be an object');
    const path = options.path ?? defaultPath(store);
    requireArg(typeof path === 'string' && path.length > 0, 'path', 'must be a file path or ":memory:"');
    const memory = path === ':memory:';
    const archiveDir = resolve(options.archiveDir ?? (memory ? join('data', 'archive') : join(dirname(path), 'archive')));
    const threads = options.threads ?? availableParallelism();
    requireArg(Number.isInteger(threads) && threads >= 1 && threads <= 256, 'threads', 'must be an integer in [1, 256]');
    if (options.memoryLimit !== undefined) requireArg(typeof options.memoryLimit === 'string' && /^\d+(\.\d+)?\s*[KMGT]i?B$/i.test(options.memoryLimit), 'memoryLimit', 'must be like "512MB" or "2GB"');
    const qo = options.query ?? {};
    checkLimits(qo, 'query.');
    const concurrentMax = qo.concurrentMax ?? 4;
    const queueMax = qo.queueMax ?? 256;
    requireArg(Number.isInteger(concurrentMax) && concurrentMax >= 1 && concurrentMax <= CONCURRENT_MAX_LIMIT, 'query.concurrentMax', `must be an integer in [1, ${CONCURRENT_MAX_LIMIT}]`);
    requireArg(Number.isInteger(queueMax) && queueMax >= 0 && queueMax <= QUEUE_MAX_LIMIT, 'query.queueMax', `must be an integer in [0, ${QUEUE_MAX_LIMIT}]`);
    if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
    const config: Record<string, string> = { threads: String(threads) };
    if (options.memoryLimit !== undefined) config.memory_limit = options.memoryLimit;
    const instance = await DuckDBInstance.create(memory ? ':memory:' : resolve(path), config);
    const connections: DuckDBConnection[] = [];
    try {
      const writer = await instance.connect();
      connections.push(writer);
      for (const ddl of CATALOG_DDL) await writer.run(ddl);
      // Queries may read files only under the archive folder (Parquet partitions), never elsewhere.
      await writer.run(`SET allowed_directories = [${lit(archiveDir)}]`);
      await writer.run('SET enable_external_access = false');
      const readers: DuckDBConnection[] = [];
      for (let i = 0; i < concurrentMax; i++) {
        const c = await instance.connect();
        connections.push(c);
        readers.push(c);
      }
      return new Analytics(store, memory ? path : resolve(path), archiveDir, instance, writer, readers, { ...QUERY_DEFAULTS, ...qo }, queueMax);
    } catch (err) {
      for (const c of connections) c.closeSync();
      instance.closeSync();
      throw err;
    }
  }

  // ---- MirrorHost ---------------------------------------------------------------------------

  get feed(): Store['feed'] {
    return this.#store.feed;
  }

  get shards(): readonly string[] {
    return this.#store.shards;
  }

  get pageMax(): number {
    return this.#store.limits.pageMax;
  }

  write<T>(fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
    const run = this.#lock.then(() => {
      if (this.#closed) throw ppError('PP_ERR_CLOSED', { message: 'the analytics instance is closed' });
      return fn(this.#writer);
    });
    this.#lock = run.catch(() => undefined);
    return run;
  }

  forget(name: string): void {
    this.#mirrors.delete(name);
    this.#generation++;
  }

  viewChanged(): void {
    this.#generation++;
  }

  // ---- mirrors -------------------------------------------------------------------------------

  /**
   * Keeps a DuckDB table `name` (the store table's name, or `options.as`) in step with a store
   * table from the change feed; resumes from its own positions when it already exists. Resolves
   * once it follows the feed (a new mirror of a table whose feed was trimmed first loads the rows).
   */
  async mirror<T extends Record<string, unknown>>(table: Table<T>, options: MirrorOptions = {}): Promise<Mirror<T>> {
    this.#checkOpen();
    requireArg(typeof table === 'object' && table !== null && typeof (table as { def?: unknown }).def === 'object', 'table', 'must be a store table handle (await store.table(...))');
    const name = options.as ?? table.def.name;
    requireArg(!this.#mirrors.has(name) && !this.#opening.has(name), 'as', `mirror ${JSON.stringify(name)} is already open; close it first`);
    this.#opening.add(name);
    try {
      const m = await Mirror.open(this, table, options);
      this.#mirrors.set(m.name, m as unknown as Mirror<Record<string, unknown>>);
      this.#generation++;
      return m;
    } finally {
      this.#opening.delete(name);
    }
  }

  /** The open mirrors. */
  mirrors(): readonly Mirror[] {
    return [...this.#mirrors.values()];
  }

  /** Closes the mirror if open and removes its tables, view and positions (Parquet archives stay on disk). */
  async dropMirror(name: string): Promise<void> {
    this.#checkOpen();
    await this.#mirrors.get(name)?.close();
    await this.write(async (c) => {
      const tables = (await c.runAndReadAll(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'pp' AND starts_with(table_name, ${lit(`${name}__`)})`)).getRowObjectsJS();
      await c.run('BEGIN');
      try {
        await c.run(`DROP VIEW IF EXISTS main.${q(name)}`);
        for (const t of tables) await c.run(`DROP TABLE IF EXISTS pp.${q(String(t.table_name))}`);
        for (const cat of ['mirrors', 'positions', 'partitions']) await c.run(`DELETE FROM pp.${cat} WHERE ${cat === 'mirrors' ? 'name' : 'mirror'} = ${lit(name)}`);
        await c.run('COMMIT');
      } catch (err) {
        await c.run('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /** Moves a mirror's old time partitions to Parquet files (see archive.ts). */
  archive(mirror: Mirror | string, options: ArchiveOptions): Promise<ArchiveResult> {
    this.#checkOpen();
    const m = this.#mirrorOf(mirror);
    return this.write(async (c) => {
      if (m.layout.by?.kind === 'time' && !m.layout.hasArchive) await ensureTomb(c, m);
      try {
        return await archivePartitions(c, m, this.archiveDir, options);
      } finally {
        this.#generation++;
      }
    });
  }

  #mirrorOf(mirror: Mirror | string): Mirror {
    const m = typeof mirror === 'string' ? this.#mirrors.get(mirror) : mirror;
    if (m === undefined || this.#mirrors.get(m.name) !== m) throw ppError('PP_ERR_NOT_FOUND', { field: 'mirror', message: `no open mirror ${JSON.stringify(typeof mirror === 'string' ? mirror : mirror.name)}` });
    return m;
  }

  // ---- queries -------------------------------------------------------------------------------

  /**
   * DuckDB names the tables a query reads after expanding views, so a mirror's partition tables
   * (`pp.<mirror>__…`) are allowed beside the mirrors' names; anything else is an unknown table.
   */
  #isTable = (name: string): boolean => {
    if (this.#mirrors.has(name)) return true;
    if (!name.startsWith('pp.')) return false;
    const cut = name.indexOf('__');
    return cut > 3 && this.#mirrors.has(name.slice(3, cut));
  };

  /**
   * Runs one SELECT over the mirrored tables with bound parameters (`$1` / `?` with an array,
   * `$name` with an object). Rows come back as objects; integers as numbers (bigint beyond 2^53).
   * At most `rowsMax` rows and `timeoutMs` of wall time (defaults from `query`); `signal` cancels.
   */
  async query<R = Record<string, unknown>>(sql: string, params?: Params, options: QueryOptions = {}): Promise<QueryResult<R>> {
    this.#checkOpen();
    const started = performance.now();
    checkLimits(options, '');
    const limits: QueryLimits = { rowsMax: options.rowsMax ?? this.#limits.rowsMax, timeoutMs: options.timeoutMs ?? this.#limits.timeoutMs };
    const deadline = Date.now() + limits.timeoutMs;
    if (options.signal?.aborted === true) throw ppError('PP_ERR_ABORTED', { message: 'the query was cancelled' });
    return this.#track(async () => {
      const c = await this.#pool.acquire(deadline, options.signal);
      try {
        const p = await this.#statements.get(c)!.get(c, sql, this.#generation, this.#isTable);
        bindParams(p, params);
        return await runPrepared<R>(c, p, limits, deadline, options.signal, started, true);
      } finally {
        this.#pool.release(c);
      }
    });
  }

  #track<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    this.#running.add(p);
    const done = (): void => void this.#running.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * Runs the query under EXPLAIN ANALYZE and reports DuckDB's plan and, per mirrored table it
   * reads, which partitions were scanned (rows scanned) and which were pruned without a read.
   */
  async explain(sql: string, params?: Params, options: QueryOptions = {}): Promise<Explain> {
    this.#checkOpen();
    checkLimits(options, '');
    const timeoutMs = options.timeoutMs ?? this.#limits.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    return this.#track(async () => {
      const c = await this.#pool.acquire(deadline, options.signal);
      try {
        return await explainPlan(c, sql, params, this.#isTable, [...this.#mirrors.values()], { rowsMax: 1_000_000, timeoutMs }, deadline, options.signal);
      } finally {
        this.#pool.release(c);
      }
    });
  }

  /** The typed builder over one mirror. */
  select<T extends Record<string, unknown>>(mirror: Mirror<T>): Select<T> {
    this.#checkOpen();
    const m = this.#mirrorOf(mirror as unknown as Mirror);
    return new Select<T>(this, m.name, new Set(m.def.columns.map((c) => c.name)));
  }

  #checkOpen(): void {
    if (this.#closed) throw ppError('PP_ERR_CLOSED', { message: 'the analytics instance is closed' });
  }

  /** Closes the mirrors (after their batch in progress), then DuckDB. The store stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#mirrors.values()].map((m) => m.close()));
    await this.#lock;
    this.#closed = true;
    this.#pool.close();
    for (const c of this.#readers) c.interrupt();
    await Promise.allSettled([...this.#running]);
    for (const s of this.#statements.values()) s.clear();
    for (const c of this.#readers) c.closeSync();
    this.#writer.closeSync();
    this.#instance.closeSync();
  }
}

/** Opens the analytics instance of a store (see AnalyticsOptions). */
export function openAnalytics(store: Store, options?: AnalyticsOptions): Promise<Analytics> {
  return Analytics.open(store, options);
}
