/**
 * PostgreSQL engine (`pg`): one shard = one database schema (the `schema` URL parameter, default
 * "powerplant"); several URLs are several shards.
 *
 * Reads go through a bounded pool with named prepared statements. Writes go through ONE dedicated
 * connection per shard (the group-commit writer), a batch per transaction:
 *   round trip 1: BEGIN; advisory lock; every op's statement (values inlined as literals, so the
 *                 whole batch is one simple-query message);
 *   round trip 2: one multi-row INSERT into the outbox + COMMIT.
 * If some request's condition failed, its ops are diagnosed inside the transaction, the
 * transaction is rolled back and the batch re-runs without it (conflicts are rare; the common
 * path is two round trips for up to `batchMax` writes).
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
import { PowerplantError, ppError, invariant } from '../../errors/index.js';
import { feedDoc, keyJson } from '../codec.js';
import { defToJSON, diffDefs, type SqlValue, type TableDef } from '../schema.js';
import type { FeedRow, Migration, OpOutcome, RawRow, RequestResult, ScanPlan, ShardEngine, WriteOp, WriteRequest } from './base.js';
import { TplCache, failure, feedOp, judge, opStatement, probeStatement } from './ops.js';
import {
  FEED_COLUMNS,
  addColumnSql,
  createExpIndexSql,
  createIndexSql,
  createTableSql,
  getManyTpl,
  getTpl,
  pgLiteral,
  q,
  renderDollar,
  renderLiterals,
  scanParams,
  scanShape,
  scanTpl,
  sweepTpl,
  upsertManyLiteral,
  type Dialect,
  type Tpl,
} from './sql.js';

/** Bound on rows in one coalesced upsert statement. */
const UPSERT_ROWS_MAX = 1000;

export interface PostgresOptions {
  /** Connections for reads, per shard. Default 4. */
  readonly readPoolMax?: number;
  /** Connect timeout. Default 5000. */
  readonly connectTimeoutMs?: number;
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
  if (typeof code === 'string' && (/^(08|57P|53|40001|40P01)/.test(code) || code.startsWith('E'))) {
    return ppError('PP_ERR_UNAVAILABLE', { message: `postgres: ${message}`, cause: err, data: { pgCode: code } });
  }
  if (/Connection terminated|not queryable|Client has encountered a connection error/i.test(message)) {
    return ppError('PP_ERR_UNAVAILABLE', { message: `postgres: ${message}`, cause: err });
  }
  return ppError('PP_ERR_INTERNAL', { message: `postgres: ${message}`, cause: err, data: { pgCode: typeof code === 'string' ? code : null } });
}

/** Splits our `schema` parameter off a postgres:// URL. */
export function parsePgUrl(url: string): { connectionString: string; schema: string; location: string } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? 'powerplant';
  u.searchParams.delete('schema');
  const location = new URL(u.href);
  location.password = '';
  return { connectionString: u.href, schema, location: `${location.href}${location.search ? '&' : '?'}schema=${schema}` };
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

  async #newClient(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.#connectionString, types, connectionTimeoutMillis: this.#options.connectTimeoutMs ?? 5000 });
    // A dropped connection emits 'error'; without a listener Node would crash the process.
    c.on('error', () => {
      if (this.#writer === c) this.#writerBroken = true;
    });
    await c.connect();
    // Literals in writes rely on standard strings; durability relies on synchronous commit.
    await c.query("SET standard_conforming_strings = on; SET synchronous_commit = on; SET client_encoding = 'UTF8'");
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
    const pool = new pg.Pool({
      connectionString: this.#connectionString,
      types,
      max: this.#options.readPoolMax ?? 4,
      connectionTimeoutMillis: this.#options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 10_000,
    });
    pool.on('error', () => undefined); // idle client errors: the pool discards the client
    this.#pool = pool;
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
      `);
      await c.query('COMMIT');
    } catch (err) {
      await this.#writer?.query('ROLLBACK').catch(() => undefined);
      await this.close();
      throw mapPgError(err);
    }
  }

  async ensureTable(def: TableDef): Promise<readonly Migration[]> {
    const c = await this.#writerClient();
    const d = this.#d;
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
      if (changes.length > 0) {
        // `SELECT *` prepared statements would keep the old row shape on pooled connections.
        this.#names.clear();
        await this.#resetPool();
      }
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw mapPgError(err);
    }
  }

  async #resetPool(): Promise<void> {
    const old = this.#pool;
    invariant(old !== undefined, 'pool is open');
    this.#pool = new pg.Pool({
      connectionString: this.#connectionString,
      types,
      max: this.#options.readPoolMax ?? 4,
      connectionTimeoutMillis: this.#options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 10_000,
    });
    this.#pool.on('error', () => undefined);
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
  async #read<R extends object = RawRow>(text: string, values: readonly unknown[]): Promise<R[]> {
    let name = this.#names.get(text);
    if (name === undefined) {
      if (this.#names.size >= 1024) this.#names.clear();
      name = `pp_${this.#names.size}_${lockKeyOf(text) >>> 0}`;
      this.#names.set(text, name);
    }
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
    const t = this.#tpls.get(`g|${def.physical}`, () => getTpl(this.#d, def));
    const rows = await this.#read(this.#tplText(t), key.length === 1 ? [key[0], nowMs] : [...key, nowMs]);
    return rows[0];
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

  async commit(requests: readonly WriteRequest[], nowMs: number): Promise<RequestResult[]> {
    const c = await this.#writerClient();
    const results = new Array<RequestResult | undefined>(requests.length);
    let live: number[] = requests.map((_, i) => i);
    let inTx = false;
    try {
      // Each pass either commits the remaining requests or removes at least one failed request.
      while (live.length > 0) {
        let sql = `BEGIN;SELECT pg_advisory_xact_lock(${this.#lockKey});`;
        const slots: { req: number; op: WriteOp; stmt: number }[] = [];
        // Runs of unconditional single-op upserts on one table with distinct keys become one
        // multi-row statement (same effect: no two touch the same row, none can fail).
        const groups: { def: TableDef; slots: number[]; keys: Set<string> }[] = [];
        let stmt = 0;
        let open: { def: TableDef; slots: number[]; keys: Set<string> } | undefined;
        const flushGroup = (): void => {
          if (open === undefined) return;
          sql += `${upsertManyLiteral(this.#d, open.def, open.slots.map((i) => ({ values: slots[i]!.op.values!, exp: slots[i]!.op.expiresAtMs ?? null })))};`;
          groups[stmt++] = open;
          open = undefined;
        };
        for (const r of live) {
          const ops = requests[r]!.ops;
          for (const op of ops) {
            if (ops.length === 1 && op.kind === 'upsert' && op.expectVersion === undefined) {
              const k = keyJson(op.key);
              if (open !== undefined && (open.def !== op.table || open.keys.has(k) || open.slots.length >= UPSERT_ROWS_MAX)) flushGroup();
              if (open === undefined) open = { def: op.table, slots: [], keys: new Set() };
              open.keys.add(k);
              open.slots.push(slots.length);
              slots.push({ req: r, op, stmt: -1 });
              continue;
            }
            flushGroup();
            const st = opStatement(this.#tpls, op, nowMs);
            sql += `${renderLiterals(st.tpl, st.params)};`;
            slots.push({ req: r, op, stmt: stmt++ });
          }
        }
        flushGroup();
        inTx = true;
        const res = (await c.query(sql)) as unknown as pg.QueryResult<RawRow>[];
        invariant(Array.isArray(res) && res.length === stmt + 2, 'one result per statement');
        // Rows of multi-row statements, matched back to their slots by primary key.
        const grouped = new Map<number, RawRow>();
        groups.forEach((g, si) => {
          const rows = res[si + 2]!.rows;
          invariant(rows.length === g.slots.length, 'a multi-row upsert returns every row');
          const byKey = new Map(rows.map((row) => [keyJson(g.def.primaryKey.map((col) => row[col] as SqlValue)), row]));
          for (const i of g.slots) grouped.set(i, byKey.get(keyJson(slots[i]!.op.key))!);
        });
        const failedReqs = new Set<number>();
        const verdicts: { verdict: 'ok' | 'noop' | 'failed'; row: RawRow | undefined }[] = [];
        for (let i = 0; i < slots.length; i++) {
          const s = slots[i]!;
          const row = s.stmt < 0 ? grouped.get(i) : res[s.stmt + 2]!.rows[0];
          const verdict = judge(s.op, row, nowMs);
          verdicts.push({ verdict, row });
          if (verdict === 'failed' && !failedReqs.has(s.req)) {
            failedReqs.add(s.req);
            // Diagnose while the transaction still sees this batch's earlier writes.
            const p = probeStatement(this.#tpls, s.op);
            const pr = await c.query<RawRow>(renderLiterals(p.tpl, p.params));
            results[s.req] = { ok: false, error: failure(s.op, pr.rows[0], nowMs) };
          }
        }
        if (failedReqs.size > 0) {
          await c.query('ROLLBACK');
          inTx = false;
          live = live.filter((r) => !failedReqs.has(r));
          continue;
        }
        // All conditions held: append the outbox records and commit, in one round trip.
        const values: string[] = [];
        for (let i = 0; i < slots.length; i++) {
          const v = verdicts[i]!;
          if (v.verdict !== 'ok') continue;
          const op = slots[i]!.op;
          const row = v.row!;
          const del = op.kind === 'delete';
          values.push(
            `(${pgLiteral(op.table.physical)}, ${feedOp(op)}, ${pgLiteral(keyJson(op.key))}, ${del ? 'NULL' : pgLiteral(feedDoc(op.table, row))}, ${del ? 0 : (row._v as number)}, ${del ? 'NULL' : pgLiteral((row._exp as number | null) ?? null)}, ${nowMs})`,
          );
        }
        let positions: number[] = [];
        if (values.length > 0) {
          const r2 = (await c.query(`INSERT INTO ${this.#meta('pp_feed')} (${FEED_COLUMNS}) VALUES ${values.join(', ')} RETURNING "pos";COMMIT`)) as unknown as pg.QueryResult<{ pos: number }>[];
          positions = r2[0]!.rows.map((x) => x.pos);
          invariant(positions.length === values.length, 'one position per appended record');
        } else {
          await c.query('COMMIT');
        }
        inTx = false;
        let k = 0;
        const perReq = new Map<number, OpOutcome[]>();
        for (let i = 0; i < slots.length; i++) {
          const s = slots[i]!;
          const v = verdicts[i]!;
          let out: OpOutcome;
          if (v.verdict === 'ok') {
            const pos = positions[k++]!;
            invariant(k === 1 || pos > positions[k - 2]!, 'positions increase within a batch');
            out = { applied: true, version: s.op.kind === 'delete' ? 0 : (v.row!._v as number), position: pos };
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
      if (inTx) await c.query('ROLLBACK').catch(() => undefined);
      // A connection lost mid-commit leaves the outcome unknown; the caller sees UNAVAILABLE.
      this.#writerBroken = this.#writerBroken || !(err instanceof PowerplantError);
      throw mapPgError(err);
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

  async trimFeed(keepMax: number): Promise<number> {
    const head = await this.feedHead();
    try {
      // Never removes the newest record, so max(pos) stays the head after a trim.
      const r = await this.#p.query(`DELETE FROM ${this.#meta('pp_feed')} WHERE "pos" <= $1 AND "pos" < $2`, [head - keepMax, head]);
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
