/**
 * PostgreSQL engine (`pg`): one shard = one database schema (the `schema` URL parameter, default
 * "powerplant"); several URLs are several shards.
 *
 * Reads go through a bounded pool with named prepared statements. Writes go through ONE dedicated
 * connection per shard (the group-commit writer), a batch per transaction, normally in ONE round
 * trip: a single simple-query message `BEGIN; advisory lock; <each write with its outbox record,
 * one data-modifying CTE per op, values inlined as literals>; COMMIT`. A request whose condition
 * fails aborts that message (see `writeWithFeedLiteral`); the batch is then diagnosed on the
 * two-trip path (writes RETURNING rows, then outbox + COMMIT), which drops the failed request and
 * commits the others. Batches holding an update also take that path (the feed document is the row
 * after the patch, known only once written).
 *
 * Every wait is bounded: connect and pool checkout (`connectTimeoutMs`), every statement, lock
 * waits included (`statement_timeout` = `queryTimeoutMs`: cancelled, nothing commits), and a
 * client-side backstop 1 s later for a server that does not answer. A writer connection that
 * failed is ended at once and replaced on the next batch. DDL runs on a pooled connection.
 *
 * Durability: the writer session sets synchronous_commit = on, so COMMIT returns only after the
 * WAL record is flushed to disk on the primary (given the server runs with fsync = on).
 *
 * Positions: `pp_feed.pos` is a bigserial, and every write transaction first takes a
 * transaction-scoped advisory lock for its schema, so transactions that append to the outbox are
 * serialized and positions become visible in increasing order (a subscriber reading "pos > P"
 * never misses a smaller position that commits later), even with several writer processes.
 */
import pg from 'pg';
import { PowerplantError, ppError, invariant, requireArg } from '../../errors/index.js';
import { defToJSON, diffDefs, type SqlValue, type TableDef } from '../schema.js';
import { keyJson, type FeedRow, type Migration, type OpOutcome, type RawRow, type RequestResult, type ScanPlan, type ShardEngine, type WriteOp, type WriteRequest } from './base.js';
import {
  FEED_COLUMNS,
  TplCache,
  addColumnSql,
  createExpIndexSql,
  createIndexSql,
  createTableSql,
  failure,
  feedDocOf,
  feedOp,
  getManyTpl,
  getTpl,
  judge,
  opStatement,
  pgLiteral,
  probeStatement,
  q,
  renderDollar,
  renderLiterals,
  scanParams,
  scanShape,
  scanTpl,
  sweepTpl,
  upsertManyLiteral,
  upsertManyWithFeedLiteral,
  batchStatements,
  checkWithFeedLiteral,
  checksWithFeedLiteral,
  writeWithFeedLiteral,
  type Dialect,
  type Tpl,
} from './sql.js';

/** Bound on rows in one coalesced upsert statement. */
const UPSERT_ROWS_MAX = 1000;

export interface PostgresOptions {
  /** Connections for reads, per shard. Default 4. */
  readonly readPoolMax?: number;
  /** Connect timeout, and the longest a read waits for a pooled connection. Default 5000. */
  readonly connectTimeoutMs?: number;
  /**
   * Longest a statement may run, lock waits included (server `statement_timeout`: the transaction
   * is cancelled and nothing of it commits -> PP_ERR_TIMEOUT). The client gives up 1 s later if
   * the server does not answer at all (outcome unknown -> PP_ERR_TIMEOUT). Default 30000.
   */
  readonly queryTimeoutMs?: number;
  /**
   * What the store's connections call themselves on the server (`application_name`, seen in
   * pg_stat_activity and the server log), as `<applicationName>:<shard>:<writer|reader>`; 1..40
   * printable ASCII characters. A URL's own `application_name` parameter takes precedence for
   * that URL's shards. Default 'powerplant'.
   */
  readonly applicationName?: string;
}

const APP_NAME_RE = /^[\x20-\x7e]{1,40}$/;

/** What the PostgreSQL write path did (for tests and the benchmark). */
// A type alias (not an interface) so it is assignable to ShardEngine's Record<string, number>.
export type PostgresWriteStats = {
  /** Batches committed or attempted. */
  commits: number;
  /** Messages sent to the server by the write path. */
  roundTrips: number;
  /** Batches that took the diagnosing path (an update in the batch, or a failed condition). */
  diagnosed: number;
};

/** The schema name is an identifier we quote into SQL: keep it to a strict, short pattern. */
const SCHEMA_RE = /^[A-Za-z_][A-Za-z0-9_]{0,54}$/;

/** Our signal that a request's condition failed on the one-trip path (see `writeWithFeedLiteral`). */
function isConditionFailed(err: unknown): boolean {
  const e = err as { code?: unknown; table?: unknown; column?: unknown };
  return e.code === '23502' && e.table === 'pp_feed' && e.column === 'ver';
}

const INT8_OID = 20;

/**
 * int8 -> number. Versions, positions, integer columns and counts are all bounded to safe integers
 * (writes are validated), so the conversion is exact; the invariant guards the assumption.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (v: string) => unknown {
    if (oid === INT8_OID) {
      return (v: string) => {
        const n = Number(v);
        invariant(Number.isSafeInteger(n), 'int8 values stay within safe integers');
        return n;
      };
    }
    return pg.types.getTypeParser(oid, format ?? 'text') as (v: string) => unknown;
  },
};

export function mapPgError(err: unknown): PowerplantError {
  if (err instanceof PowerplantError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  // Class 08 = connection exceptions, 57P = operator intervention (shutdown), 53 = resources,
  // 40001/40P01 serialization/deadlock; node socket errors have string codes like ECONNREFUSED.
  // 57014 = query_canceled: our statement_timeout fired, the transaction did not commit.
  if (code === '57014' || /Query read timeout/.test(message)) {
    return ppError('PP_ERR_TIMEOUT', { message: `postgres: ${message}`, cause: err, data: { pgCode: typeof code === 'string' ? code : null } });
  }
  if (typeof code === 'string' && (/^(08|57P|53|40001|40P01)/.test(code) || code.startsWith('E'))) {
    return ppError('PP_ERR_UNAVAILABLE', { message: `postgres: ${message}`, cause: err, data: { pgCode: code } });
  }
  if (/Connection terminated|not queryable|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(message)) {
    return ppError('PP_ERR_UNAVAILABLE', { message: `postgres: ${message}`, cause: err });
  }
  return ppError('PP_ERR_INTERNAL', { message: `postgres: ${message}`, cause: err, data: { pgCode: typeof code === 'string' ? code : null } });
}

/** Splits our `schema` and `application_name` parameters off a postgres:// URL. */
export function parsePgUrl(url: string): { connectionString: string; schema: string; location: string; applicationName: string | undefined } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw ppError('PP_ERR_INVALID_ARGUMENT', { field: 'engine', message: 'engine: not a valid postgres:// URL' });
  }
  const schema = u.searchParams.get('schema') ?? 'powerplant';
  if (!SCHEMA_RE.test(schema)) {
    throw ppError('PP_ERR_INVALID_ARGUMENT', { field: 'engine', message: `engine: schema must match ${SCHEMA_RE.source}` });
  }
  u.searchParams.delete('schema');
  const applicationName = u.searchParams.get('application_name') ?? undefined;
  if (applicationName !== undefined && !APP_NAME_RE.test(applicationName)) {
    throw ppError('PP_ERR_INVALID_ARGUMENT', { field: 'engine', message: 'engine: application_name must be 1..40 printable ASCII characters' });
  }
  u.searchParams.delete('application_name');
  const location = new URL(u.href);
  location.password = '';
  return { connectionString: u.href, schema, location: `${location.href}${location.search ? '&' : '?'}schema=${schema}`, applicationName };
}

function lockKeyOf(schema: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < schema.length; i++) h = Math.imul(h ^ schema.charCodeAt(i), 0x01000193);
  return h | 0;
}

export class PostgresShard implements ShardEngine {
  readonly dialect = 'postgres' as const;
  readonly location: string;
  readonly #connectionString: string;
  readonly #schema: string;
  readonly #d: Dialect;
  readonly #tpls: TplCache;
  readonly #options: PostgresOptions;
  readonly #lockKey: number;
  #pool: pg.Pool | undefined;
  #writer: pg.Client | undefined;
  #writerBroken = false;
  readonly #names = new Map<string, string>();
  /** Point-read statement per table definition: no text rendering or key building per get. */
  #getQueries = new WeakMap<TableDef, { name: string; text: string }>();
  readonly #queryTimeoutMs: number;
  readonly #applicationName: string;
  readonly stats: PostgresWriteStats = { commits: 0, roundTrips: 0, diagnosed: 0 };

  constructor(
    readonly shard: string,
    url: string,
    options: PostgresOptions = {},
  ) {
    const p = parsePgUrl(url);
    this.#connectionString = p.connectionString;
    this.#schema = p.schema;
    this.location = p.location;
    this.#options = options;
    this.#queryTimeoutMs = options.queryTimeoutMs ?? 30_000;
    requireArg(Number.isInteger(this.#queryTimeoutMs) && this.#queryTimeoutMs >= 1 && this.#queryTimeoutMs <= 3_600_000, 'postgres.queryTimeoutMs', 'must be an integer in [1, 3600000]');
    requireArg(options.readPoolMax === undefined || (Number.isInteger(options.readPoolMax) && options.readPoolMax >= 1 && options.readPoolMax <= 100), 'postgres.readPoolMax', 'must be an integer in [1, 100]');
    requireArg(options.connectTimeoutMs === undefined || (Number.isInteger(options.connectTimeoutMs) && options.connectTimeoutMs >= 1), 'postgres.connectTimeoutMs', 'must be a positive integer');
    requireArg(options.applicationName === undefined || (typeof options.applicationName === 'string' && APP_NAME_RE.test(options.applicationName)), 'postgres.applicationName', 'must be 1..40 printable ASCII characters');
    this.#applicationName = p.applicationName ?? options.applicationName ?? 'powerplant';
    this.#lockKey = lockKeyOf(p.schema);
    const s = q(p.schema);
    this.#d = {
      name: 'postgres',
      table: (physical) => `${s}.${q(physical)}`,
      columnType: (t) => {
        switch (t) {
          case 'string':
            return 'TEXT COLLATE "C"';
          case 'json':
            return 'TEXT';
          case 'integer':
            return 'BIGINT';
          case 'boolean':
            return 'SMALLINT';
          case 'number':
            return 'DOUBLE PRECISION';
          case 'bytes':
            return 'BYTEA';
        }
      },
    };
    this.#tpls = new TplCache(this.#d);
  }

  get #p(): pg.Pool {
    const p = this.#pool;
    if (p === undefined) throw ppError('PP_ERR_CLOSED', { message: `shard ${this.shard} is not open` });
    return p;
  }

  #meta(name: string): string {
    return `${q(this.#schema)}.${q(name)}`;
  }

  /** Connection settings shared by the writer and the read pool: every wait is bounded. */
  #clientConfig(role: 'writer' | 'reader'): pg.ClientConfig {
    return {
      connectionString: this.#connectionString,
      types,
      connectionTimeoutMillis: this.#options.connectTimeoutMs ?? 5000,
      statement_timeout: this.#queryTimeoutMs,
      query_timeout: this.#queryTimeoutMs + 1000,
      application_name: `${this.#applicationName}:${this.shard}:${role}`,
    };
  }

  #newPool(): pg.Pool {
    const pool = new pg.Pool({ ...this.#clientConfig('reader'), max: this.#options.readPoolMax ?? 4, idleTimeoutMillis: 10_000 });
    pool.on('error', () => undefined); // idle client errors: the pool discards the client
    return pool;
  }

  async #newClient(): Promise<pg.Client> {
    const c = new pg.Client(this.#clientConfig('writer'));
    // A dropped connection emits 'error'; without a listener Node would crash the process.
    c.on('error', () => {
      if (this.#writer === c) this.#writerBroken = true;
    });
    await c.connect();
    // Literals in writes rely on standard strings; durability relies on synchronous commit.
    await c.query("SET standard_conforming_strings = on; SET synchronous_commit = on; SET client_encoding = 'UTF8'");
    // PostgreSQL >= 14: a backend whose client is gone stops waiting (e.g. on a lock) and rolls
    // back instead of committing a batch nobody will be told about. Older servers lack the setting.
    await c.query('SET client_connection_check_interval = 1000').catch(() => undefined);
    return c;
  }

  async #writerClient(): Promise<pg.Client> {
    if (this.#pool === undefined) throw ppError('PP_ERR_CLOSED', { message: `shard ${this.shard} is not open` });
    if (this.#writer !== undefined && !this.#writerBroken) return this.#writer;
    if (this.#writer !== undefined) {
      const old = this.#writer;
      this.#writer = undefined;
      old.end().catch(() => undefined);
    }
    try {
      this.#writer = await this.#newClient();
      this.#writerBroken = false;
      return this.#writer;
    } catch (err) {
      throw mapPgError(err);
    }
  }

  async open(): Promise<void> {
    if (this.#pool !== undefined) return;
    this.#pool = this.#newPool();
    try {
      const c = await this.#writerClient();
      await c.query('BEGIN');
      await c.query(`SELECT pg_advisory_xact_lock(${this.#lockKey})`);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${q(this.#schema)}`);
      await c.query(`
        CREATE TABLE IF NOT EXISTS ${this.#meta('pp_feed')} ("pos" BIGSERIAL PRIMARY KEY, "tbl" TEXT NOT NULL, "op" SMALLINT NOT NULL,
          "key" TEXT NOT NULL, "doc" BYTEA, "ver" BIGINT NOT NULL, "exp" BIGINT, "ts" BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS ${this.#meta('pp_schema')} ("tbl" TEXT PRIMARY KEY, "def" TEXT NOT NULL, "updated_ms" BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS ${this.#meta('pp_migrations')} ("id" BIGSERIAL PRIMARY KEY, "tbl" TEXT NOT NULL, "change" TEXT NOT NULL, "applied_ms" BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS ${this.#meta('pp_offsets')} ("consumer" TEXT PRIMARY KEY, "pos" BIGINT NOT NULL, "updated_ms" BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS ${this.#meta('pp_meta')} ("name" TEXT PRIMARY KEY, "value" TEXT NOT NULL);
      `);
      await c.query('COMMIT');
    } catch (err) {
      await this.#writer?.query('ROLLBACK').catch(() => undefined);
      await this.close();
      throw mapPgError(err);
    }
  }

  /**
   * DDL runs on a pooled connection, never on the writer: a batch in flight on the writer spans
   * two messages on the diagnosing path, and a BEGIN/COMMIT interleaved there would commit half
   * of it. The advisory lock serializes DDL with write transactions on the shard.
   */
  async ensureTable(def: TableDef): Promise<readonly Migration[]> {
    let c: pg.PoolClient;
    try {
      c = await this.#p.connect();
    } catch (err) {
      throw mapPgError(err);
    }
    const d = this.#d;
    let migrated = false;
    let broken = false;
    try {
      await c.query('BEGIN');
      await c.query(`SELECT pg_advisory_xact_lock(${this.#lockKey})`);
      const now = Date.now();
      const rec = await c.query<{ def: string }>(`SELECT "def" FROM ${this.#meta('pp_schema')} WHERE "tbl" = $1`, [def.physical]);
      const changes: Record<string, unknown>[] = [];
      if (rec.rows.length === 0) {
        await c.query(createTableSql(d, def));
        await c.query(createExpIndexSql(d, def));
        for (const name of Object.keys(def.indexes)) await c.query(createIndexSql(d, def, name));
        changes.push({ createTable: JSON.parse(defToJSON(def)) as unknown });
      } else if (rec.rows[0]!.def !== defToJSON(def)) {
        const diff = diffDefs(rec.rows[0]!.def, def);
        for (const col of diff.addColumns) {
          await c.query(addColumnSql(d, def, col.name));
          changes.push({ addColumn: col.name, type: col.type });
        }
        for (const name of diff.addIndexes) {
          await c.query(createIndexSql(d, def, name));
          changes.push({ addIndex: name, columns: def.indexes[name] });
        }
      }
      const out: Migration[] = [];
      if (changes.length > 0) {
        await c.query(
          `INSERT INTO ${this.#meta('pp_schema')} ("tbl", "def", "updated_ms") VALUES ($1, $2, $3) ON CONFLICT ("tbl") DO UPDATE SET "def" = excluded."def", "updated_ms" = excluded."updated_ms"`,
          [def.physical, defToJSON(def), now],
        );
        for (const ch of changes) {
          const r = await c.query<{ id: number }>(`INSERT INTO ${this.#meta('pp_migrations')} ("tbl", "change", "applied_ms") VALUES ($1, $2, $3) RETURNING "id"`, [def.physical, JSON.stringify(ch), now]);
          out.push({ id: r.rows[0]!.id, table: def.physical, change: ch, appliedAtMs: now });
        }
      }
      await c.query('COMMIT');
      // Only a changed shape can leave stale prepared statements behind; a new table has none.
      migrated = changes.length > 0 && rec.rows.length > 0;
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => (broken = true));
      throw mapPgError(err);
    } finally {
      c.release(broken);
      if (migrated) {
        // `SELECT *` prepared statements would keep the old row shape on pooled connections.
        this.#names.clear();
        await this.#resetPool();
      }
    }
  }

  async #resetPool(): Promise<void> {
    const old = this.#pool;
    invariant(old !== undefined, 'pool is open');
    this.#pool = this.#newPool();
    this.#getQueries = new WeakMap();
    // Callers already queued on the old pool (other ensureTable calls, reads) are still served by
    // it: ending it now would leave them waiting until their connect timeout. End it once its
    // queue is empty (bounded: each waiter is served or times out within connectTimeoutMs).
    while (old.waitingCount > 0) await new Promise((r) => setTimeout(r, 10));
    await old.end();
  }

  async migrations(table?: string): Promise<Migration[]> {
    const r = await this.#read<{ id: number; tbl: string; change: string; applied_ms: number }>(
      table === undefined ? `SELECT * FROM ${this.#meta('pp_migrations')} ORDER BY "id"` : `SELECT * FROM ${this.#meta('pp_migrations')} WHERE "tbl" = $1 ORDER BY "id"`,
      table === undefined ? [] : [table],
    );
    return r.map((x) => ({ id: x.id, table: x.tbl, change: JSON.parse(x.change) as Record<string, unknown>, appliedAtMs: x.applied_ms }));
  }

  /** A pooled read with a named (server-side prepared) statement per SQL text. */
  #nameOf(text: string): string {
    let name = this.#names.get(text);
    if (name === undefined) {
      if (this.#names.size >= 1024) this.#names.clear();
      name = `pp_${this.#names.size}_${lockKeyOf(text) >>> 0}`;
      this.#names.set(text, name);
    }
    return name;
  }

  async #read<R extends object = RawRow>(text: string, values: readonly unknown[]): Promise<R[]> {
    const name = this.#nameOf(text);
    try {
      const r = await this.#p.query<R>({ name, text, values: values as unknown[] });
      return r.rows;
    } catch (err) {
      throw mapPgError(err);
    }
  }

  #tplText(t: Tpl): string {
    return renderDollar(t);
  }

  async get(def: TableDef, key: readonly SqlValue[], nowMs: number): Promise<RawRow | undefined> {
    let gq = this.#getQueries.get(def);
    if (gq === undefined) {
      const text = this.#tplText(this.#tpls.get(`g|${def.physical}`, () => getTpl(this.#d, def)));
      gq = { name: this.#nameOf(text), text };
      this.#getQueries.set(def, gq);
    }
    try {
      const r = await this.#p.query<RawRow>({ name: gq.name, text: gq.text, values: key.length === 1 ? [key[0], nowMs] : [...key, nowMs] });
      return r.rows[0];
    } catch (err) {
      throw mapPgError(err);
    }
  }

  async getMany(def: TableDef, keys: readonly (readonly SqlValue[])[], nowMs: number): Promise<RawRow[]> {
    if (keys.length === 0) return [];
    const t = this.#tpls.get(`m|${def.physical}|${keys.length}`, () => getManyTpl(this.#d, def, keys.length));
    return this.#read(this.#tplText(t), [...keys.flat(), nowMs]);
  }

  async scan(plan: ScanPlan, nowMs: number): Promise<RawRow[]> {
    const t = this.#tpls.get(scanShape(plan, false), () => scanTpl(this.#d, plan, false));
    return this.#read(this.#tplText(t), scanParams(plan, nowMs, false));
  }

  async count(plan: ScanPlan, nowMs: number): Promise<number> {
    const t = this.#tpls.get(scanShape(plan, true), () => scanTpl(this.#d, plan, true));
    const rows = await this.#read<{ n: number }>(this.#tplText(t), scanParams(plan, nowMs, true));
    return rows[0]!.n;
  }

  /**
   * Runs a batch in one transaction. The common path is ONE round trip: BEGIN, the advisory lock,
   * every write with its outbox record (one statement each, see `writeWithFeedLiteral`; runs of
   * unconditional upserts as one multi-row statement), COMMIT — a single simple-query message, so
   * a write at concurrency 1 costs what the raw driver's autocommit costs. If a request's
   * condition failed (a conflict, a missing row), the message aborts at that statement and
   * nothing of it commits; the batch then goes through `#commitDiagnosed`, which names the failed
   * request(s) and commits the others.
   */
  async commit(requests: readonly WriteRequest[], nowMs: number): Promise<RequestResult[]> {
    const c = await this.#writerClient();
    this.stats.commits++;
    let oneTrip = true;
    for (const r of requests) for (const op of r.ops) if (op.kind === 'update') oneTrip = false;
    if (oneTrip) {
      const done = await this.#commitOneTrip(c, requests, nowMs);
      if (done !== undefined) return done;
    }
    return this.#commitDiagnosed(c, requests, nowMs);
  }

  /** The one-round-trip path; undefined when some request's condition failed (rolled back). */
  async #commitOneTrip(c: pg.Client, requests: readonly WriteRequest[], nowMs: number): Promise<RequestResult[] | undefined> {
    const feed = this.#meta('pp_feed');
    const stmts = batchStatements(requests, requests.map((_, i) => i), UPSERT_ROWS_MAX, true);
    let sql = `BEGIN;SELECT pg_advisory_xact_lock(${this.#lockKey});`;
    for (const st of stmts) {
      if (st.ops.length === 1) sql += `${this.#oneWithFeed(feed, st.ops[0]!, nowMs)};`;
      else if (st.ops[0]!.kind === 'check') sql += `${checksWithFeedLiteral(this.#d, feed, st.ops, nowMs)};`;
      else sql += `${upsertManyWithFeedLiteral(this.#d, st.ops[0]!.table, feed, st.ops, nowMs)};`;
    }
    sql += 'COMMIT';
    let res: pg.QueryResult<{ pos: number; ver: number; key?: string }>[];
    try {
      this.stats.roundTrips++;
      res = (await c.query(sql)) as unknown as pg.QueryResult<{ pos: number; ver: number; key?: string }>[];
    } catch (err) {
      if (isConditionFailed(err)) {
        this.stats.roundTrips++;
        await c.query('ROLLBACK').catch(() => undefined);
        return undefined;
      }
      throw await this.#failed(c, err, true);
    }
    invariant(Array.isArray(res) && res.length === stmts.length + 3, 'one result per statement');
    // Outcomes in batch op order (statements keep it). Positions: every record of statement i
    // precedes every record of statement i + 1.
    const outcomes: OpOutcome[] = [];
    let prevMax = 0;
    stmts.forEach((st, i) => {
      const rows = res[i + 2]!.rows;
      let min = Infinity;
      let max = 0;
      for (const r of rows) {
        if (r.pos < min) min = r.pos;
        if (r.pos > max) max = r.pos;
      }
      invariant(rows.length === 0 || min > prevMax, 'positions increase statement by statement');
      if (rows.length > 0) prevMax = max;
      // A multi-row statement's records are matched to its ops by key.
      const byKey = st.ops.length > 1 ? new Map(rows.map((r) => [r.key!, r])) : undefined;
      for (const op of st.ops) {
        const rec = byKey === undefined ? rows[0] : byKey.get(op.keyJson);
        if (rec === undefined) {
          invariant(op.kind === 'check' || (op.kind === 'delete' && op.expectVersion === undefined), 'only a check or an unconditional delete may leave no record');
          outcomes.push({ applied: false, version: 0, position: 0 });
        } else {
          outcomes.push({ applied: true, version: rec.ver, position: rec.pos });
        }
      }
    });
    let k = 0;
    return requests.map((req) => ({ ok: true, outcomes: outcomes.slice(k, (k += req.ops.length)) }));
  }

  /** One op's statement together with its outbox record (one-trip batches hold no update). */
  #oneWithFeed(feed: string, op: WriteOp, nowMs: number): string {
    if (op.kind === 'check') return checkWithFeedLiteral(this.#d, feed, op, nowMs);
    const st = opStatement(this.#tpls, op, nowMs);
    return writeWithFeedLiteral(renderLiterals(st.tpl, st.params), feed, op, nowMs);
  }

  /**
   * After a failed write round trip: roll back if the session may be in a transaction, and drop
   * the connection unless the error was an ordinary statement error (a lost or timed-out
   * connection may still be running the transaction: its outcome is unknown, reported as a
   * retryable PP_ERR_UNAVAILABLE / PP_ERR_TIMEOUT, never as success).
   */
  async #failed(c: pg.Client, err: unknown, inTx: boolean): Promise<PowerplantError> {
    const mapped = mapPgError(err);
    let drop = mapped.retryable || mapped.code === 'PP_ERR_INTERNAL';
    if (!drop && inTx) await c.query('ROLLBACK').catch(() => (drop = true));
    if (drop) {
      // Ended now, not on the next write: a session left inside a transaction would keep the
      // shard's advisory lock and stall every other writer of the shard.
      if (this.#writer === c) this.#writer = undefined;
      c.end().catch(() => undefined);
    }
    return mapped;
  }

  /**
   * The diagnosing path: writes first (RETURNING their rows), then the outbox records + COMMIT, two
   * round trips. Used when a batch holds an update (its feed document is the row after the patch,
   * known only once written) and to find which request's condition failed after the one-trip
   * path aborted. Each pass commits the remaining requests or drops at least one failed one.
   */
  async #commitDiagnosed(c: pg.Client, requests: readonly WriteRequest[], nowMs: number): Promise<RequestResult[]> {
    this.stats.diagnosed++;
    const results = new Array<RequestResult | undefined>(requests.length);
    let live: number[] = requests.map((_, i) => i);
    let inTx = false;
    try {
      // Each pass either commits the remaining requests or removes at least one failed request.
      while (live.length > 0) {
        let sql = `BEGIN;SELECT pg_advisory_xact_lock(${this.#lockKey});`;
        const stmts = batchStatements(requests, live, UPSERT_ROWS_MAX);
        // Result index of each statement, and of the probe that follows a conditional one.
        const at: number[] = [];
        const probeAt: number[] = [];
        let n = 2;
        for (const st of stmts) {
          at.push(n++);
          if (st.ops.length > 1) {
            sql += `${upsertManyLiteral(this.#d, st.ops[0]!.table, st.ops)};`;
            probeAt.push(-1);
            continue;
          }
          const op = st.ops[0]!;
          const one = opStatement(this.#tpls, op, nowMs);
          sql += `${renderLiterals(one.tpl, one.params)};`;
          if (op.kind === 'insert' || op.kind === 'update' || (op.kind !== 'check' && op.expectVersion !== undefined)) {
            // The row as this op found it (it changed nothing if it failed), read right after it in
            // the same message: a later write of the batch to the same key cannot hide the version
            // that conflicted (the same answer SQLite gives, probing after the failed op).
            const p = probeStatement(this.#tpls, op);
            sql += `${renderLiterals(p.tpl, p.params)};`;
            probeAt.push(n++);
          } else probeAt.push(-1);
        }
        inTx = true;
        this.stats.roundTrips++;
        const res = (await c.query(sql)) as unknown as pg.QueryResult<RawRow>[];
        invariant(Array.isArray(res) && res.length === n, 'one result per statement');
        // One slot per op, in batch order, with the row its statement returned (a multi-row
        // statement's rows are matched back to its ops by primary key) and its probe.
        const slots: { req: number; op: WriteOp; row: RawRow | undefined; probe: RawRow | undefined; verdict: 'ok' | 'noop' | 'failed' }[] = [];
        const slot = (req: number, op: WriteOp, row: RawRow | undefined, probe: RawRow | undefined): void => void slots.push({ req, op, row, probe, verdict: judge(op, row, nowMs) });
        stmts.forEach((st, i) => {
          const rows = res[at[i]!]!.rows;
          if (st.ops.length === 1) return slot(st.reqs[0]!, st.ops[0]!, rows[0], probeAt[i]! < 0 ? undefined : res[probeAt[i]!]!.rows[0]);
          invariant(rows.length === st.ops.length, 'a multi-row upsert returns every row');
          const pk = st.ops[0]!.table.primaryKey;
          const byKey = new Map(rows.map((row) => [keyJson(pk.map((col) => row[col] as SqlValue)), row]));
          st.ops.forEach((op, j) => slot(st.reqs[j]!, op, byKey.get(op.keyJson), undefined));
        });
        const failedReqs = new Set<number>();
        for (const s of slots) {
          if (s.verdict !== 'failed' || failedReqs.has(s.req)) continue;
          failedReqs.add(s.req);
          results[s.req] = { ok: false, error: failure(s.op, s.op.kind === 'check' ? s.row : s.probe, nowMs) };
          // A failed request of several ops may have written some of them in this pass (SQLite
          // rolls them back before the next request runs): verdicts after it are not final; the
          // next pass, without it, decides them.
          if (requests[s.req]!.ops.length > 1) break;
        }
        if (failedReqs.size > 0) {
          this.stats.roundTrips++;
          await c.query('ROLLBACK');
          inTx = false;
          live = live.filter((r) => !failedReqs.has(r));
          continue;
        }
        // All conditions held: append the outbox records and commit, in one round trip.
        const values: string[] = [];
        for (const { op, row: r, verdict } of slots) {
          if (verdict !== 'ok') continue;
          const row = r!;
          const del = op.kind === 'delete';
          const doc = feedDocOf(op, row);
          values.push(
            `(${pgLiteral(op.table.physical)}, ${feedOp(op)}, ${pgLiteral(op.keyJson)}, ${doc === null ? 'NULL' : pgLiteral(doc)}, ${del ? 0 : (row._v as number)}, ${del ? 'NULL' : pgLiteral((row._exp as number | null) ?? null)}, ${nowMs})`,
          );
        }
        let positions: number[] = [];
        if (values.length > 0) {
          this.stats.roundTrips++;
          const r2 = (await c.query(`INSERT INTO ${this.#meta('pp_feed')} (${FEED_COLUMNS}) VALUES ${values.join(', ')} RETURNING "pos";COMMIT`)) as unknown as pg.QueryResult<{ pos: number }>[];
          positions = r2[0]!.rows.map((x) => x.pos);
          invariant(positions.length === values.length, 'one position per appended record');
        } else {
          this.stats.roundTrips++;
          await c.query('COMMIT');
        }
        inTx = false;
        let k = 0;
        const perReq = new Map<number, OpOutcome[]>();
        for (const s of slots) {
          let out: OpOutcome;
          if (s.verdict === 'ok') {
            const pos = positions[k++]!;
            invariant(k === 1 || pos > positions[k - 2]!, 'positions increase within a batch');
            out = { applied: true, version: s.op.kind === 'delete' ? 0 : (s.row!._v as number), position: pos };
          } else {
            out = { applied: false, version: 0, position: 0 };
          }
          let arr = perReq.get(s.req);
          if (arr === undefined) perReq.set(s.req, (arr = []));
          arr.push(out);
        }
        for (const r of live) results[r] = { ok: true, outcomes: perReq.get(r) ?? [] };
        live = [];
      }
    } catch (err) {
      throw await this.#failed(c, err, inTx);
    }
    return results.map((r) => {
      invariant(r !== undefined, 'every request has a result');
      return r;
    });
  }

  async sweepExpired(def: TableDef, nowMs: number, limit: number): Promise<number> {
    const t = this.#tpls.get(`w|${def.physical}`, () => sweepTpl(this.#d, def));
    try {
      const r = await this.#p.query(this.#tplText(t), [nowMs, limit, nowMs]);
      return r.rowCount ?? 0;
    } catch (err) {
      throw mapPgError(err);
    }
  }

  async readFeed(after: number, limit: number): Promise<FeedRow[]> {
    return this.#read<FeedRow>(`SELECT * FROM ${this.#meta('pp_feed')} WHERE "pos" > $1 ORDER BY "pos" LIMIT $2`, [after, limit]);
  }

  async feedHead(): Promise<number> {
    const r = await this.#read<{ p: number | null }>(`SELECT max("pos") AS "p" FROM ${this.#meta('pp_feed')}`, []);
    return r[0]?.p ?? 0;
  }

  async feedTail(): Promise<number> {
    const r = await this.#read<{ p: number | null }>(`SELECT min("pos") AS "p" FROM ${this.#meta('pp_feed')}`, []);
    return r[0]?.p ?? 0;
  }

  async trimFeed(through: number): Promise<number> {
    const head = await this.feedHead();
    try {
      // Never removes the newest record, so max(pos) stays the head after a trim.
      const r = await this.#p.query(`DELETE FROM ${this.#meta('pp_feed')} WHERE "pos" <= $1 AND "pos" < $2`, [through, head]);
      return r.rowCount ?? 0;
    } catch (err) {
      throw mapPgError(err);
    }
  }

  async loadOffset(consumer: string): Promise<number | undefined> {
    const r = await this.#read<{ pos: number }>(`SELECT "pos" FROM ${this.#meta('pp_offsets')} WHERE "consumer" = $1`, [consumer]);
    return r[0]?.pos;
  }

  async saveOffset(consumer: string, position: number): Promise<void> {
    try {
      await this.#p.query(
        `INSERT INTO ${this.#meta('pp_offsets')} ("consumer", "pos", "updated_ms") VALUES ($1, $2, $3) ON CONFLICT ("consumer") DO UPDATE SET "pos" = excluded."pos", "updated_ms" = excluded."updated_ms"`,
        [consumer, position, Date.now()],
      );
    } catch (err) {
      throw mapPgError(err);
    }
  }

  async metaValue(name: string, proposed: string): Promise<string> {
    try {
      // Two statements: a racing insert waits for the first one's commit and does nothing; the
      // SELECT then runs with a new snapshot (read committed) that sees the stored value.
      await this.#p.query(`INSERT INTO ${this.#meta('pp_meta')} ("name", "value") VALUES ($1, $2) ON CONFLICT ("name") DO NOTHING`, [name, proposed]);
      const r = await this.#p.query<{ value: string }>(`SELECT "value" FROM ${this.#meta('pp_meta')} WHERE "name" = $1`, [name]);
      return r.rows[0]!.value;
    } catch (err) {
      throw mapPgError(err);
    }
  }

  /** Drops this shard's schema and everything in it. For tests and tooling; never called implicitly. */
  async dropSchema(): Promise<void> {
    const c = await this.#writerClient();
    await c.query(`DROP SCHEMA IF EXISTS ${q(this.#schema)} CASCADE`);
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    const writer = this.#writer;
    this.#pool = undefined;
    this.#writer = undefined;
    await Promise.allSettled([pool?.end(), writer?.end()]);
  }
}
