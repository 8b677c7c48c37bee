/**
 * SQLite engine (better-sqlite3): one database file per shard, WAL journal.
 *
 * Durability: by default (`synchronous: 'full'`) a commit is acknowledged only after the WAL
 * holding it is fsynced, so an acknowledged write survives a process crash AND a power loss / OS
 * crash. The fsync does not run on the event loop: SQLite runs with `synchronous = NORMAL` (WAL
 * frames written at COMMIT, not synced; the WAL synced before each checkpoint and the database
 * after it, so checkpoints stay safe) and `commit` then calls `fdatasync` on the WAL file through
 * libuv's thread pool and resolves after it. Loop time per commit drops from the fsync (about 1 ms
 * on this machine's disk, several under load) to the statements' own CPU. What a reader can
 * observe: a row committed and not yet synced is visible to reads before its writer is
 * acknowledged (a power loss in that window loses it, and that write was never acknowledged).
 * With `synchronous: 'normal'` the sync is skipped: an acknowledged write survives a process crash
 * (it is in the OS page cache) but the last commits may be lost on power loss.
 *
 * better-sqlite3 is synchronous: a statement runs on the event loop thread. That is what makes
 * point reads fast (no thread hop); batches bound the statements' time per commit. The async
 * interface exists so PostgreSQL and future engines share the contract.
 */
import Database from 'better-sqlite3';
import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { PowerplantError, ppError, invariant } from '../../errors/index.js';
import { defToJSON, diffDefs, type SqlValue, type TableDef } from '../schema.js';
import type { FeedRow, Migration, OpOutcome, RawRow, RequestResult, ScanPlan, ShardEngine, WriteRequest } from './base.js';
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
  probeStatement,
  q,
  renderQ,
  scanParams,
  scanShape,
  scanTpl,
  sweepTpl,
  type Dialect,
  type Tpl,
} from './sql.js';

export interface SqliteOptions {
  /** 'full' (default): fsync per commit, durable against power loss. 'normal': durable against process crash only. */
  readonly synchronous?: 'full' | 'normal';
  /** How long a writer waits for another process's write lock before PP_ERR_UNAVAILABLE. Default 5000. */
  readonly busyTimeoutMs?: number;
}

const DIALECT: Dialect = {
  name: 'sqlite',
  table: (physical) => q(physical),
  columnType: (t) => {
    switch (t) {
      case 'string':
      case 'json':
        return 'TEXT';
      case 'integer':
      case 'boolean':
        return 'INTEGER';
      case 'number':
        return 'REAL';
      case 'bytes':
        return 'BLOB';
    }
  },
};

/** Bound on prepared statements kept per shard. */
const STATEMENT_CACHE_MAX = 1024;

export function mapSqliteError(err: unknown): PowerplantError {
  if (err instanceof PowerplantError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_FULL' || code === 'SQLITE_IOERR' || code === 'SQLITE_CANTOPEN') {
    return ppError('PP_ERR_UNAVAILABLE', { message: `sqlite: ${message}`, cause: err, data: { sqliteCode: code } });
  }
  return ppError('PP_ERR_INTERNAL', { message: `sqlite: ${message}`, cause: err, data: { sqliteCode: typeof code === 'string' ? code : null } });
}

export class SqliteShard implements ShardEngine {
  readonly dialect = 'sqlite' as const;
  readonly location: string;
  readonly #file: string;
  readonly #options: SqliteOptions;
  #db: Database.Database | undefined;
  /** A descriptor of the WAL file, for `fdatasync` off the event loop (undefined with 'normal'). */
  #walFd: number | undefined;
  /** The WAL sync running now, and the one queued to start after it (covering later commits). */
  #syncing: Promise<void> | undefined;
  #syncQueued: Promise<void> | undefined;
  /** Batches apply synchronously in `commit`; only the WAL sync is awaited, and syncs coalesce. */
  readonly batchesInFlightMax = 8;
  readonly #stmts = new Map<string, Database.Statement>();
  readonly #tpls = new TplCache(DIALECT);
  #getStmts = new WeakMap<TableDef, Database.Statement>();
  /** Prepared statement per template object: a write does not re-join its SQL text per op. */
  #tplStmts = new WeakMap<Tpl, Database.Statement>();

  constructor(
    readonly shard: string,
    file: string,
    options: SqliteOptions = {},
  ) {
    this.#file = file;
    this.location = `sqlite:${file}`;
    this.#options = options;
  }

  get #d(): Database.Database {
    const db = this.#db;
    if (db === undefined) throw ppError('PP_ERR_CLOSED', { message: `shard ${this.shard} is not open` });
    return db;
  }

  #stmt(sql: string): Database.Statement {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      if (this.#stmts.size >= STATEMENT_CACHE_MAX) this.#forgetStatements();
      s = this.#d.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #tplStmt(t: Tpl): Database.Statement {
    let s = this.#tplStmts.get(t);
    if (s === undefined) {
      s = this.#stmt(renderQ(t));
      this.#tplStmts.set(t, s);
    }
    return s;
  }

  #forgetStatements(): void {
    this.#stmts.clear();
    this.#getStmts = new WeakMap();
    this.#tplStmts = new WeakMap();
  }

  async open(): Promise<void> {
    if (this.#db !== undefined) return;
    try {
      mkdirSync(dirname(this.#file), { recursive: true });
      const db = new Database(this.#file);
      db.pragma('journal_mode = WAL');
      // NORMAL in both modes: 'full' syncs the WAL itself, off the loop, before acknowledging.
      db.pragma('synchronous = NORMAL');
      db.pragma(`busy_timeout = ${this.#options.busyTimeoutMs ?? 5000}`);
      db.exec(`
        CREATE TABLE IF NOT EXISTS "pp_feed" ("pos" INTEGER PRIMARY KEY AUTOINCREMENT, "tbl" TEXT NOT NULL, "op" INTEGER NOT NULL,
          "key" TEXT NOT NULL, "doc" BLOB, "ver" INTEGER NOT NULL, "exp" INTEGER, "ts" INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS "pp_schema" ("tbl" TEXT PRIMARY KEY, "def" TEXT NOT NULL, "updated_ms" INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS "pp_migrations" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "tbl" TEXT NOT NULL, "change" TEXT NOT NULL, "applied_ms" INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS "pp_offsets" ("consumer" TEXT PRIMARY KEY, "pos" INTEGER NOT NULL, "updated_ms" INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS "pp_meta" ("name" TEXT PRIMARY KEY, "value" TEXT NOT NULL);
      `);
      if (this.#options.synchronous !== 'normal') {
        // The WAL exists from the first write above and lives as long as this connection. Its
        // directory entry is made durable once here; its contents after every commit.
        this.#walFd = openSync(`${this.#file}-wal`, 'r');
        fsyncSync(this.#walFd);
        const dirFd = openSync(dirname(this.#file), 'r');
        try {
          fsyncSync(dirFd);
        } finally {
          closeSync(dirFd);
        }
      }
      this.#db = db;
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async ensureTable(def: TableDef): Promise<readonly Migration[]> {
    const db = this.#d;
    try {
      return db.transaction((): Migration[] => {
        const now = Date.now();
        const rec = db.prepare('SELECT "def" FROM "pp_schema" WHERE "tbl" = ?').get(def.physical) as { def: string } | undefined;
        const changes: Record<string, unknown>[] = [];
        if (rec === undefined) {
          db.exec(createTableSql(DIALECT, def));
          db.exec(createExpIndexSql(DIALECT, def));
          for (const name of Object.keys(def.indexes)) db.exec(createIndexSql(DIALECT, def, name));
          changes.push({ createTable: JSON.parse(defToJSON(def)) as unknown });
        } else if (rec.def !== defToJSON(def)) {
          const diff = diffDefs(rec.def, def);
          for (const c of diff.addColumns) {
            db.exec(addColumnSql(DIALECT, def, c.name));
            changes.push({ addColumn: c.name, type: c.type });
          }
          for (const name of diff.addIndexes) {
            db.exec(createIndexSql(DIALECT, def, name));
            changes.push({ addIndex: name, columns: def.indexes[name] });
          }
        }
        if (changes.length === 0) return [];
        db.prepare('INSERT INTO "pp_schema" ("tbl", "def", "updated_ms") VALUES (?, ?, ?) ON CONFLICT ("tbl") DO UPDATE SET "def" = excluded."def", "updated_ms" = excluded."updated_ms"').run(def.physical, defToJSON(def), now);
        const ins = db.prepare('INSERT INTO "pp_migrations" ("tbl", "change", "applied_ms") VALUES (?, ?, ?) RETURNING "id"');
        const out: Migration[] = [];
        for (const ch of changes) {
          const r = ins.get(def.physical, JSON.stringify(ch), now) as { id: number };
          out.push({ id: r.id, table: def.physical, change: ch, appliedAtMs: now });
        }
        // Statements prepared against the old shape would miss new columns (SELECT * is expanded at prepare).
        this.#forgetStatements();
        return out;
      }).immediate();
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async migrations(table?: string): Promise<Migration[]> {
    const rows = (
      table === undefined
        ? this.#d.prepare('SELECT * FROM "pp_migrations" ORDER BY "id"').all()
        : this.#d.prepare('SELECT * FROM "pp_migrations" WHERE "tbl" = ? ORDER BY "id"').all(table)
    ) as { id: number; tbl: string; change: string; applied_ms: number }[];
    return rows.map((r) => ({ id: r.id, table: r.tbl, change: JSON.parse(r.change) as Record<string, unknown>, appliedAtMs: r.applied_ms }));
  }

  async get(def: TableDef, key: readonly SqlValue[], nowMs: number): Promise<RawRow | undefined> {
    return this.getSync(def, key, nowMs);
  }

  /** The contract's synchronous-read capability: the kv/table layer's point reads call it directly. */
  getSync(def: TableDef, key: readonly SqlValue[], nowMs: number): RawRow | undefined {
    // Point reads skip the template cache (a key string and a join per call cost ~40% of a get in
    // the store benchmark): the prepared statement is cached per table definition object.
    let s = this.#getStmts.get(def);
    if (s === undefined) {
      s = this.#tplStmt(this.#tpls.get(`g|${def.physical}`, () => getTpl(DIALECT, def)));
      this.#getStmts.set(def, s);
    }
    try {
      // Single-column keys are the common case (kv): bind without building a params array.
      return (key.length === 1 ? s.get(key[0], nowMs) : s.get(...key, nowMs)) as RawRow | undefined;
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async getMany(def: TableDef, keys: readonly (readonly SqlValue[])[], nowMs: number): Promise<RawRow[]> {
    if (keys.length === 0) return [];
    const s = this.#tplStmt(this.#tpls.get(`m|${def.physical}|${keys.length}`, () => getManyTpl(DIALECT, def, keys.length)));
    try {
      return s.all(...keys.flat(), nowMs) as RawRow[];
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async scan(plan: ScanPlan, nowMs: number): Promise<RawRow[]> {
    const s = this.#tplStmt(this.#tpls.get(scanShape(plan, false), () => scanTpl(DIALECT, plan, false)));
    try {
      return s.all(scanParams(plan, nowMs, false)) as RawRow[];
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async count(plan: ScanPlan, nowMs: number): Promise<number> {
    const s = this.#tplStmt(this.#tpls.get(scanShape(plan, true), () => scanTpl(DIALECT, plan, true)));
    try {
      return (s.get(scanParams(plan, nowMs, true)) as { n: number }).n;
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async commit(requests: readonly WriteRequest[], nowMs: number): Promise<RequestResult[]> {
    const results = this.commitSync(requests, nowMs);
    // A batch that wrote nothing (deletes of missing rows, checks alone) has nothing to make durable.
    if (this.#walFd !== undefined && results.some((r) => r.ok && r.outcomes.some((o) => o.applied))) await this.#sync();
    return results;
  }

  /**
   * Resolves after an fdatasync that STARTED after this call: joins the queued sync if there is
   * one (it starts after every write made so far), else queues one behind the running sync (which
   * may have started before this commit's write), else starts one.
   */
  #sync(): Promise<void> {
    if (this.#syncQueued !== undefined) return this.#syncQueued;
    const running = this.#syncing;
    if (running === undefined) return this.#startSync();
    const queued = running.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      this.#syncQueued = undefined;
      return this.#startSync();
    });
    this.#syncQueued = queued;
    return queued;
  }

  #startSync(): Promise<void> {
    const fd = this.#walFd;
    if (fd === undefined) return Promise.reject(ppError('PP_ERR_CLOSED', { message: `shard ${this.shard} is closed` }));
    const p = syncFile(fd, this.shard);
    this.#syncing = p;
    const clear = (): void => {
      if (this.#syncing === p) this.#syncing = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /**
   * One transaction for the whole batch; a savepoint around each multi-op request so a failed
   * request rolls back alone. Single-op requests need none: a failed op changed nothing (its
   * condition is in the statement's WHERE).
   */
  commitSync(requests: readonly WriteRequest[], nowMs: number): RequestResult[] {
    const db = this.#d;
    const results: RequestResult[] = [];
    const feedIns = this.#stmt(`INSERT INTO "pp_feed" (${FEED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING "pos"`);
    try {
      this.#stmt('BEGIN IMMEDIATE').run();
      for (const req of requests) {
        const multi = req.ops.length > 1;
        if (multi) this.#stmt('SAVEPOINT "r"').run();
        const outcomes: OpOutcome[] = [];
        let failed: PowerplantError | undefined;
        for (const op of req.ops) {
          const st = opStatement(this.#tpls, op, nowMs);
          const row = this.#tplStmt(st.tpl).get(st.params) as RawRow | undefined;
          const verdict = judge(op, row, nowMs);
          if (verdict === 'failed') {
            const p = probeStatement(this.#tpls, op);
            failed = failure(op, this.#tplStmt(p.tpl).get(p.params) as RawRow | undefined, nowMs);
            break;
          }
          if (verdict === 'noop') {
            outcomes.push({ applied: false, version: 0, position: 0 });
            continue;
          }
          invariant(row !== undefined, 'an applied op returned its row');
          const del = op.kind === 'delete';
          const version = del ? 0 : (row._v as number);
          const exp = del ? null : ((row._exp as number | null) ?? null);
          const f = feedIns.get(op.table.physical, feedOp(op), op.keyJson, feedDocOf(op, row), version, exp, nowMs) as { pos: number };
          outcomes.push({ applied: true, version, position: f.pos });
        }
        if (failed !== undefined) {
          if (multi) {
            this.#stmt('ROLLBACK TO "r"').run();
            this.#stmt('RELEASE "r"').run();
          }
          results.push({ ok: false, error: failed });
        } else {
          if (multi) this.#stmt('RELEASE "r"').run();
          results.push({ ok: true, outcomes });
        }
      }
      this.#stmt('COMMIT').run();
      return results;
    } catch (err) {
      if (db.inTransaction) this.#stmt('ROLLBACK').run();
      throw mapSqliteError(err);
    }
  }

  async sweepExpired(def: TableDef, nowMs: number, limit: number): Promise<number> {
    const s = this.#tplStmt(this.#tpls.get(`w|${def.physical}`, () => sweepTpl(DIALECT, def)));
    try {
      return s.run(nowMs, limit, nowMs).changes;
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async readFeed(after: number, limit: number): Promise<FeedRow[]> {
    try {
      return this.#stmt('SELECT * FROM "pp_feed" WHERE "pos" > ? ORDER BY "pos" LIMIT (? + 0)').all(after, limit) as FeedRow[];
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async feedHead(): Promise<number> {
    // sqlite_sequence holds the AUTOINCREMENT high-water mark even after trimming.
    const r = this.#stmt('SELECT "seq" FROM "sqlite_sequence" WHERE "name" = \'pp_feed\'').get() as { seq: number } | undefined;
    return r?.seq ?? 0;
  }

  async feedTail(): Promise<number> {
    const r = this.#stmt('SELECT min("pos") AS "p" FROM "pp_feed"').get() as { p: number | null };
    return r.p ?? 0;
  }

  async trimFeed(through: number): Promise<number> {
    try {
      // The head survives trimming in sqlite_sequence (AUTOINCREMENT), whatever is deleted.
      return this.#stmt('DELETE FROM "pp_feed" WHERE "pos" <= ?').run(through).changes;
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async loadOffset(consumer: string): Promise<number | undefined> {
    const r = this.#stmt('SELECT "pos" FROM "pp_offsets" WHERE "consumer" = ?').get(consumer) as { pos: number } | undefined;
    return r?.pos;
  }

  async saveOffset(consumer: string, position: number): Promise<void> {
    try {
      this.#stmt('INSERT INTO "pp_offsets" ("consumer", "pos", "updated_ms") VALUES (?, ?, ?) ON CONFLICT ("consumer") DO UPDATE SET "pos" = excluded."pos", "updated_ms" = excluded."updated_ms"').run(consumer, position, Date.now());
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async metaValue(name: string, proposed: string): Promise<string> {
    try {
      // Another process inserting at the same time holds the write lock until it commits (we wait
      // up to busyTimeoutMs), so the SELECT after the no-op insert sees its value.
      const stored = this.#stmt('INSERT INTO "pp_meta" ("name", "value") VALUES (?, ?) ON CONFLICT ("name") DO NOTHING').run(name, proposed).changes > 0;
      if (stored && this.#walFd !== undefined) await this.#sync();
      return (this.#stmt('SELECT "value" FROM "pp_meta" WHERE "name" = ?').get(name) as { value: string }).value;
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    this.#forgetStatements();
    db?.close();
    // Syncs still running hold the descriptor (the committers drained, so normally none).
    await Promise.allSettled([this.#syncing, this.#syncQueued]);
    if (this.#walFd !== undefined) {
      closeSync(this.#walFd);
      this.#walFd = undefined;
    }
  }
}

/** fdatasync on libuv's pool; a failure is a retryable PP_ERR_UNAVAILABLE (nothing is acknowledged). */
function syncFile(fd: number, shard: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fdatasync(fd, (err) => {
      if (err === null) resolve();
      else reject(ppError('PP_ERR_UNAVAILABLE', { message: `sqlite shard ${shard}: syncing the WAL failed (${err.code ?? err.message})` }));
    });
  });
}
