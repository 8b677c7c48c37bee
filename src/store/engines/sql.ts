/**
 * The SQL module shared by the SQL engines: the statement text, and from a WriteOp to the statement
 * that performs it and from what the statement returned to the op's outcome (so conflict semantics
 * are identical everywhere). Both SQLite (>= 3.35) and PostgreSQL speak the same subset we need:
 * INSERT .. AS x .. ON CONFLICT .. DO UPDATE .. WHERE, RETURNING, row-value comparison for keyset
 * pagination. What differs (quoting of schema names, column types, placeholders, how a value is
 * inlined) lives in `Dialect`.
 *
 * A statement is built once per shape as a template: `parts` with a parameter slot between each
 * two parts. SQLite joins them with `?` and caches the prepared statement; PostgreSQL reads join
 * them with `$n` (named prepared statements); PostgreSQL writes inline literals so a whole group
 * commit batch goes to the server in one round trip (simple query protocol, several statements).
 */
import { ppError, invariant, type PowerplantError } from '../../errors/index.js';
import type { ColumnType, SqlValue, TableDef } from '../schema.js';
import type { RawRow, ScanPlan, WriteOp, WriteRequest } from './base.js';

export type Tpl = readonly string[];

export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** Qualified, quoted table name. */
  table(physical: string): string;
  columnType(t: ColumnType): string;
}

export function q(ident: string): string {
  invariant(!ident.includes('"'), 'identifiers never contain a double quote');
  return `"${ident}"`;
}

class B {
  readonly parts: string[] = [''];
  s(text: string): this {
    this.parts[this.parts.length - 1] += text;
    return this;
  }
  p(): this {
    this.parts.push('');
    return this;
  }
  done(): Tpl {
    return Object.freeze(this.parts.slice());
  }
}

export function renderQ(t: Tpl): string {
  return t.join('?');
}

export function renderDollar(t: Tpl): string {
  let out = t[0]!;
  for (let i = 1; i < t.length; i++) out += `$${i}${t[i]!}`;
  return out;
}

/** A PostgreSQL literal. Requires standard_conforming_strings = on (set by the engine). */
export function pgLiteral(v: SqlValue): string {
  if (v === null) return 'NULL';
  if (typeof v === 'number') {
    invariant(Number.isFinite(v), 'only finite numbers reach SQL');
    return v < 0 ? `(${String(v)})` : String(v);
  }
  if (typeof v === 'string') return `'${v.replaceAll("'", "''")}'`;
  return `'\\x${v.toString('hex')}'::bytea`;
}

export function renderLiterals(t: Tpl, params: readonly SqlValue[]): string {
  invariant(params.length === t.length - 1, 'one parameter per template slot');
  let out = t[0]!;
  for (let i = 1; i < t.length; i++) out += pgLiteral(params[i - 1]!) + t[i]!;
  return out;
}

function pkWhere(b: B, def: TableDef, alias = ''): void {
  def.primaryKey.forEach((c, i) => {
    b.s(i === 0 ? '' : ' AND ').s(`${alias}${q(c)} = `).p();
  });
}

function live(b: B, alias = ''): void {
  b.s(` AND (${alias}"_exp" IS NULL OR ${alias}"_exp" > `).p().s(')');
}

/**
 * ` LIMIT <param>`. SQLite (3.53 here) reads a bare `LIMIT ?` when planning and marks the
 * statement to be re-prepared whenever that parameter is bound again, so a cached `LIMIT ?`
 * statement is recompiled on every run (measured: a 20-row page scan 72 -> 54 µs, a 1-row one
 * 17 -> 5 µs). `? + 0` is an expression the planner does not evaluate: one compiled statement
 * serves every page size. PostgreSQL keeps the bare parameter.
 */
function limit(b: B, d: Dialect): void {
  if (d.name === 'sqlite') b.s(' LIMIT (').p().s(' + 0)');
  else b.s(' LIMIT ').p();
}

// ---- DDL ---------------------------------------------------------------------------------------

export function createTableSql(d: Dialect, def: TableDef): string {
  const cols = def.columns.map((c) => `${q(c.name)} ${d.columnType(c.type)}${c.nullable ? '' : ' NOT NULL'}`);
  cols.push(`"_v" ${d.columnType('integer')} NOT NULL`, `"_exp" ${d.columnType('integer')}`);
  const pk = `PRIMARY KEY (${def.primaryKey.map(q).join(', ')})`;
  // SQLite: STRICT enforces column types; WITHOUT ROWID clusters rows by primary key (one b-tree
  // lookup per get instead of two).
  const tail = d.name === 'sqlite' ? ' STRICT, WITHOUT ROWID' : '';
  return `CREATE TABLE IF NOT EXISTS ${d.table(def.physical)} (${cols.join(', ')}, ${pk})${tail}`;
}

/** Index names are schema-wide in PostgreSQL and limited to 63 bytes: make them short and unique. */
export function indexName(def: TableDef, index: string): string {
  let h = 0x811c9dc5;
  const s = `${def.physical}.${index}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return `ix_${(h >>> 0).toString(16)}_${index}`.slice(0, 63);
}

export function createIndexSql(d: Dialect, def: TableDef, index: string): string {
  const cols = def.indexes[index];
  invariant(cols !== undefined, 'index exists in the definition');
  // The primary key is appended so the index order is total and matches the keyset sort key.
  const all = [...cols, ...def.primaryKey.filter((c) => !cols.includes(c))];
  return `CREATE INDEX IF NOT EXISTS ${q(indexName(def, index))} ON ${d.table(def.physical)} (${all.map(q).join(', ')})`;
}

export function createExpIndexSql(d: Dialect, def: TableDef): string {
  return `CREATE INDEX IF NOT EXISTS ${q(indexName(def, '_exp'))} ON ${d.table(def.physical)} ("_exp") WHERE "_exp" IS NOT NULL`;
}

export function addColumnSql(d: Dialect, def: TableDef, column: string): string {
  const c = def.columns.find((x) => x.name === column);
  invariant(c !== undefined && c.nullable, 'added columns are nullable');
  return `ALTER TABLE ${d.table(def.physical)} ADD COLUMN ${q(c.name)} ${d.columnType(c.type)}`;
}

// ---- writes ------------------------------------------------------------------------------------

/** params: values..., exp, now. Applies only if no live row exists (an expired one is replaced). */
export function insertTpl(d: Dialect, def: TableDef): Tpl {
  const b = new B();
  const names = def.columns.map((c) => q(c.name));
  b.s(`INSERT INTO ${d.table(def.physical)} AS x (${names.join(', ')}, "_v", "_exp") VALUES (`);
  def.columns.forEach(() => b.p().s(', '));
  b.s('1, ').p().s(`) ON CONFLICT (${def.primaryKey.map(q).join(', ')}) DO UPDATE SET `);
  for (const n of names) b.s(`${n} = excluded.${n}, `);
  b.s('"_v" = x."_v" + 1, "_exp" = excluded."_exp" WHERE x."_exp" IS NOT NULL AND x."_exp" <= ').p().s(' RETURNING *');
  return b.done();
}

/** params: values..., exp. Last writer wins. */
export function upsertTpl(d: Dialect, def: TableDef): Tpl {
  const b = new B();
  const names = def.columns.map((c) => q(c.name));
  b.s(`INSERT INTO ${d.table(def.physical)} AS x (${names.join(', ')}, "_v", "_exp") VALUES (`);
  def.columns.forEach(() => b.p().s(', '));
  b.s('1, ').p().s(`) ON CONFLICT (${def.primaryKey.map(q).join(', ')}) DO UPDATE SET `);
  for (const n of names) b.s(`${n} = excluded.${n}, `);
  b.s('"_v" = x."_v" + 1, "_exp" = excluded."_exp" RETURNING *');
  return b.done();
}

/** params: non-key values (column order)..., exp, key..., now, version. Compare-and-set replace. */
export function replaceTpl(d: Dialect, def: TableDef): Tpl {
  const b = new B();
  b.s(`UPDATE ${d.table(def.physical)} SET `);
  for (const c of def.columns) if (!def.primaryKey.includes(c.name)) b.s(`${q(c.name)} = `).p().s(', ');
  b.s('"_v" = "_v" + 1, "_exp" = ').p().s(' WHERE ');
  pkWhere(b, def);
  live(b);
  b.s(' AND "_v" = ').p().s(' RETURNING *');
  return b.done();
}

/** params: patch values..., [exp], key..., now, [version]. */
export function updateTpl(d: Dialect, def: TableDef, patchCols: readonly number[], setExp: boolean, withVersion: boolean): Tpl {
  const b = new B();
  b.s(`UPDATE ${d.table(def.physical)} SET `);
  for (const i of patchCols) b.s(`${q(def.columns[i]!.name)} = `).p().s(', ');
  b.s('"_v" = "_v" + 1');
  if (setExp) b.s(', "_exp" = ').p();
  b.s(' WHERE ');
  pkWhere(b, def);
  live(b);
  if (withVersion) b.s(' AND "_v" = ').p();
  b.s(' RETURNING *');
  return b.done();
}

/** params: key..., [now, version]. */
export function deleteTpl(d: Dialect, def: TableDef, withVersion: boolean): Tpl {
  const b = new B();
  b.s(`DELETE FROM ${d.table(def.physical)} WHERE `);
  pkWhere(b, def);
  if (withVersion) {
    live(b);
    b.s(' AND "_v" = ').p();
  }
  b.s(' RETURNING "_v", "_exp"');
  return b.done();
}

/** params: key... ; the row's version and expiry, live or not (for diagnosing a failed write). */
export function probeTpl(d: Dialect, def: TableDef): Tpl {
  const b = new B();
  b.s(`SELECT "_v", "_exp" FROM ${d.table(def.physical)} WHERE `);
  pkWhere(b, def);
  return b.done();
}

// ---- ops: statement per WriteOp, verdict per returned row ----------------------------------------

/** Bound on cached statement templates per engine (shapes: tables x op kinds x patch sets). */
export const TEMPLATE_CACHE_MAX = 1024;

export class TplCache {
  readonly #map = new Map<string, Tpl>();
  constructor(readonly dialect: Dialect) {}

  get(key: string, build: () => Tpl): Tpl {
    let t = this.#map.get(key);
    if (t === undefined) {
      if (this.#map.size >= TEMPLATE_CACHE_MAX) this.#map.clear();
      t = build();
      this.#map.set(key, t);
    }
    return t;
  }
}

export interface OpStatement {
  readonly tpl: Tpl;
  readonly params: SqlValue[];
}

export function opStatement(c: TplCache, op: WriteOp, nowMs: number): OpStatement {
  const def = op.table;
  const d = c.dialect;
  const exp = op.expiresAtMs ?? null;
  switch (op.kind) {
    case 'insert':
    case 'upsert': {
      const values = op.values;
      invariant(values !== undefined && values.length === def.columns.length, 'insert/upsert carry every column');
      const v = op.expectVersion;
      if (op.kind === 'insert' || v === 0) {
        return { tpl: c.get(`i|${def.physical}`, () => insertTpl(d, def)), params: [...values, exp, nowMs] };
      }
      if (v === undefined) return { tpl: c.get(`u|${def.physical}`, () => upsertTpl(d, def)), params: [...values, exp] };
      const params: SqlValue[] = [];
      for (let i = 0; i < def.columns.length; i++) if (!def.primaryKey.includes(def.columns[i]!.name)) params.push(values[i]!);
      params.push(exp, ...op.key, nowMs, v);
      return { tpl: c.get(`r|${def.physical}`, () => replaceTpl(d, def)), params };
    }
    case 'update': {
      const patch = op.patch ?? [];
      const cols = patch.map((p) => p[0]);
      const setExp = op.expiresAtMs !== undefined;
      const withVersion = op.expectVersion !== undefined;
      const tpl = c.get(`p|${def.physical}|${cols.join(',')}|${setExp ? 1 : 0}${withVersion ? 1 : 0}`, () => updateTpl(d, def, cols, setExp, withVersion));
      const params: SqlValue[] = patch.map((p) => p[1]);
      if (setExp) params.push(exp);
      params.push(...op.key, nowMs);
      if (withVersion) params.push(op.expectVersion!);
      return { tpl, params };
    }
    case 'check':
      return probeStatement(c, op);
    case 'delete': {
      const withVersion = op.expectVersion !== undefined;
      const tpl = c.get(`d|${def.physical}|${withVersion ? 1 : 0}`, () => deleteTpl(d, def, withVersion));
      return { tpl, params: withVersion ? [...op.key, nowMs, op.expectVersion!] : [...op.key] };
    }
  }
}

export function probeStatement(c: TplCache, op: WriteOp): OpStatement {
  return { tpl: c.get(`q|${op.table.physical}`, () => probeTpl(c.dialect, op.table)), params: [...op.key] };
}

export function isLive(row: RawRow, nowMs: number): boolean {
  const e = row._exp;
  return e === null || e === undefined || (e as number) > nowMs;
}

/**
 * What a statement's returned row means. `row` is the RETURNING row (undefined: none).
 * Returns 'ok' (applied), 'noop' (an unconditional delete that found no live row) or 'failed'
 * (the op's condition did not hold: the request must not apply).
 */
export function judge(op: WriteOp, row: RawRow | undefined, nowMs: number): 'ok' | 'noop' | 'failed' {
  if (op.kind === 'check') {
    // The probe's row, live or not: a passing check changes nothing and records nothing.
    const actual = row !== undefined && isLive(row, nowMs) ? (row._v as number) : 0;
    return actual === op.expectVersion ? 'noop' : 'failed';
  }
  if (op.kind === 'delete') {
    if (row === undefined) return op.expectVersion === undefined ? 'noop' : 'failed';
    return op.expectVersion !== undefined || isLive(row, nowMs) ? 'ok' : 'noop';
  }
  return row === undefined ? 'failed' : 'ok';
}

/** The typed error for a failed op, given the row's state at that moment (from a probe). */
export function failure(op: WriteOp, probe: RawRow | undefined, nowMs: number): PowerplantError {
  const actual = probe !== undefined && isLive(probe, nowMs) ? (probe._v as number) : 0;
  const name = op.table.kind === 'kv' ? `${op.table.name}/${String(op.key[0])}` : `${op.table.name} ${JSON.stringify(op.key)}`;
  const data = { table: op.table.name, expectedVersion: op.expectVersion ?? (op.kind === 'insert' ? 0 : null), actualVersion: actual };
  if (op.kind === 'check') {
    return ppError('PP_ERR_CONFLICT', { message: `${name}: expected ${op.expectVersion === 0 ? 'no row' : `version ${op.expectVersion}`}, found ${actual === 0 ? 'none' : `version ${actual}`}`, data });
  }
  if (op.kind === 'insert' || op.expectVersion === 0) {
    return ppError('PP_ERR_CONFLICT', { message: `${name} already exists (version ${actual})`, data });
  }
  if (op.expectVersion === undefined) {
    return ppError('PP_ERR_NOT_FOUND', { message: `${name} not found`, data });
  }
  return ppError('PP_ERR_CONFLICT', { message: `${name}: expected version ${op.expectVersion}, found ${actual === 0 ? 'none' : actual}`, data });
}

/** For a judged-ok op: the change record's op code (1 = put, 2 = delete). */
export function feedOp(op: WriteOp): number {
  return op.kind === 'delete' ? 2 : 1;
}

/**
 * For a judged-ok op: the change record's document, as the kv/table layer prepared it (engines
 * encode nothing): null for a delete, `doc` for insert/upsert, `docOf(row)` for an update (the
 * row after the patch, `row` being what the write returned).
 */
export function feedDocOf(op: WriteOp, row: RawRow | undefined): Buffer | null {
  if (op.kind === 'delete') return null;
  if (op.doc !== undefined) return op.doc;
  invariant(op.docOf !== undefined && row !== undefined, 'an update carries docOf and returned its row');
  return op.docOf(row);
}

// ---- reads -------------------------------------------------------------------------------------

/** params: key..., now. */
export function getTpl(d: Dialect, def: TableDef): Tpl {
  const b = new B();
  b.s(`SELECT * FROM ${d.table(def.physical)} WHERE `);
  pkWhere(b, def);
  live(b);
  return b.done();
}

/** params: keys (flattened)..., now. */
export function getManyTpl(d: Dialect, def: TableDef, n: number): Tpl {
  invariant(n > 0, 'getMany has at least one key');
  const b = new B();
  const k = def.primaryKey.length;
  b.s(`SELECT * FROM ${d.table(def.physical)} WHERE `);
  if (k === 1) {
    b.s(`${q(def.primaryKey[0]!)} IN (`);
    for (let i = 0; i < n; i++) b.s(i === 0 ? '' : ', ').p();
    b.s(')');
  } else {
    b.s(`(${def.primaryKey.map(q).join(', ')}) IN (`);
    for (let i = 0; i < n; i++) {
      b.s(i === 0 ? '(' : ', (');
      for (let j = 0; j < k; j++) b.s(j === 0 ? '' : ', ').p();
      b.s(')');
    }
    b.s(')');
  }
  live(b);
  return b.done();
}

export function scanShape(plan: ScanPlan, count: boolean): string {
  const r = plan.range;
  return [
    count ? 'c' : 's',
    plan.table.physical,
    plan.eq.map((e) => e[0]).join(','),
    r === undefined ? '' : `${r.column}:${r.gt !== undefined ? 1 : 0}${r.gte !== undefined ? 1 : 0}${r.lt !== undefined ? 1 : 0}${r.lte !== undefined ? 1 : 0}`,
    plan.notNull.join(','),
    count ? '' : plan.order.join(','),
    plan.desc ? 'd' : 'a',
    plan.after === undefined ? '' : 'after',
  ].join('|');
}

/** params (see scanParams): eq..., range..., now, [after...], [limit]. */
export function scanTpl(d: Dialect, plan: ScanPlan, count: boolean): Tpl {
  const b = new B();
  b.s(count ? `SELECT count(*) AS "n" FROM ${d.table(plan.table.physical)} WHERE 1 = 1` : `SELECT * FROM ${d.table(plan.table.physical)} WHERE 1 = 1`);
  for (const [c] of plan.eq) b.s(` AND ${q(c)} = `).p();
  const r = plan.range;
  if (r !== undefined) {
    if (r.gt !== undefined) b.s(` AND ${q(r.column)} > `).p();
    if (r.gte !== undefined) b.s(` AND ${q(r.column)} >= `).p();
    if (r.lt !== undefined) b.s(` AND ${q(r.column)} < `).p();
    if (r.lte !== undefined) b.s(` AND ${q(r.column)} <= `).p();
  }
  for (const c of plan.notNull) b.s(` AND ${q(c)} IS NOT NULL`);
  live(b);
  if (count) return b.done();
  if (plan.after !== undefined) {
    b.s(` AND (${plan.order.map(q).join(', ')}) ${plan.desc ? '<' : '>'} (`);
    plan.order.forEach((_, i) => b.s(i === 0 ? '' : ', ').p());
    b.s(')');
  }
  const dir = plan.desc ? ' DESC' : '';
  b.s(` ORDER BY ${plan.order.map((c) => q(c) + dir).join(', ')}`);
  limit(b, d);
  return b.done();
}

export function scanParams(plan: ScanPlan, nowMs: number, count: boolean): SqlValue[] {
  const out: SqlValue[] = [];
  for (const [, v] of plan.eq) out.push(v);
  const r = plan.range;
  if (r !== undefined) {
    if (r.gt !== undefined) out.push(r.gt);
    if (r.gte !== undefined) out.push(r.gte);
    if (r.lt !== undefined) out.push(r.lt);
    if (r.lte !== undefined) out.push(r.lte);
  }
  out.push(nowMs);
  if (count) return out;
  if (plan.after !== undefined) out.push(...plan.after);
  out.push(plan.limit);
  return out;
}

/** params: now, limit, now. Bounded: removes at most `limit` expired rows. */
export function sweepTpl(d: Dialect, def: TableDef): Tpl {
  const t = d.table(def.physical);
  const pk = def.primaryKey.map(q).join(', ');
  const b = new B();
  // The outer `_exp <=` re-check means a row revived by a concurrent write is never swept.
  b.s(`DELETE FROM ${t} WHERE (${pk}) IN (SELECT ${pk} FROM ${t} WHERE "_exp" <= `).p();
  limit(b, d);
  b.s(') AND "_exp" <= ').p();
  return b.done();
}

// ---- meta tables -----------------------------------------------------------------------------

export const FEED_COLUMNS = '"tbl", "op", "key", "doc", "ver", "exp", "ts"';

/** One statement of a PostgreSQL batch: one op, or a run of upserts written by one multi-row statement. */
export interface BatchStatement {
  readonly ops: WriteOp[];
  /** The request of each op. */
  readonly reqs: number[];
}

/**
 * PostgreSQL only: the statements of a batch (the requests `live`, in order). Runs of consecutive
 * unconditional upserts on one table with distinct keys, at most `rowsMax` — within a request or
 * across requests — become one multi-row statement (same effect: no two touch the same row, none
 * can fail). With `mergeChecks` (the one-trip path, where any failed condition aborts the whole
 * message anyway) runs of consecutive checks become one statement too. Every other op is a
 * statement of its own. Statements, and the ops within each, keep the batch's op order.
 */
export function batchStatements(requests: readonly WriteRequest[], live: readonly number[], rowsMax: number, mergeChecks = false): BatchStatement[] {
  const out: BatchStatement[] = [];
  let run: { kind: 'upsert' | 'check'; ops: WriteOp[]; reqs: number[]; keys: Set<string> } | undefined;
  for (const r of live) {
    for (const op of requests[r]!.ops) {
      const kind = op.kind === 'upsert' && op.expectVersion === undefined ? 'upsert' : mergeChecks && op.kind === 'check' ? 'check' : undefined;
      if (kind !== undefined) {
        if (run !== undefined && (run.kind !== kind || (kind === 'upsert' && (run.ops[0]!.table !== op.table || run.keys.has(op.keyJson))) || run.ops.length >= rowsMax)) run = undefined;
        if (run === undefined) {
          run = { kind, ops: [], reqs: [], keys: new Set() };
          out.push(run);
        }
        run.ops.push(op);
        run.reqs.push(r);
        run.keys.add(op.keyJson);
        continue;
      }
      run = undefined;
      out.push({ ops: [op], reqs: [r] });
    }
  }
  return out;
}

/**
 * PostgreSQL only: several `check` ops in one statement on the one-trip path (see
 * `checkWithFeedLiteral`): it appends a NULL-version record — the abort signal — when ANY of them
 * fails, and nothing otherwise.
 */
export function checksWithFeedLiteral(d: Dialect, feed: string, ops: readonly WriteOp[], ts: number): string {
  const failed = ops.map((op) => {
    const def = op.table;
    const where = def.primaryKey.map((c, i) => `${q(c)} = ${pgLiteral(op.key[i]!)}`).join(' AND ');
    const liveRow = `SELECT 1 FROM ${d.table(def.physical)} WHERE ${where} AND ("_exp" IS NULL OR "_exp" > ${ts})`;
    const v = op.expectVersion ?? 0;
    return v === 0 ? `EXISTS (${liveRow})` : `NOT EXISTS (${liveRow} AND "_v" = ${v})`;
  });
  return `INSERT INTO ${feed} (${FEED_COLUMNS}) SELECT ${pgLiteral(ops[0]!.table.physical)}, 1, ${pgLiteral(ops[0]!.keyJson)}, NULL, NULL, NULL, ${ts} WHERE ${failed.join(' OR ')} RETURNING "pos", "ver", "key"`;
}

/**
 * PostgreSQL only: one multi-row upsert for several unconditional upserts of distinct keys, values
 * inlined. Planning one statement instead of N is most of a batch's server time (measured: ~0.1 ms
 * per planned statement, against ~1 ms for the commit's WAL flush).
 */
export function upsertManyLiteral(d: Dialect, def: TableDef, ops: readonly WriteOp[]): string {
  invariant(ops.length > 0, 'at least one row');
  const names = def.columns.map((c) => q(c.name));
  const tuples = ops.map((op) => `(${op.values!.map(pgLiteral).join(', ')}, 1, ${pgLiteral(op.expiresAtMs ?? null)})`);
  return (
    `INSERT INTO ${d.table(def.physical)} AS x (${names.join(', ')}, "_v", "_exp") VALUES ${tuples.join(', ')} ` +
    `ON CONFLICT (${def.primaryKey.map(q).join(', ')}) DO UPDATE SET ${names.map((n) => `${n} = excluded.${n}`).join(', ')}, "_v" = x."_v" + 1, "_exp" = excluded."_exp" RETURNING *`
  );
}

/**
 * PostgreSQL only: a write and its outbox record in ONE statement (a data-modifying CTE), so a
 * whole batch — BEGIN, lock, every write with its record, COMMIT — is one simple-query message,
 * one round trip. `write` is the op's statement with its RETURNING clause (`w`); `feed` the
 * qualified outbox table; the op is an insert, upsert or delete (its document known before the
 * write). Returns "pos", "ver". How the record follows from `w`:
 *  - a put must apply: if its condition failed, `w` is empty, the record's "ver" is NULL and
 *    pp_feed's NOT NULL constraint aborts the transaction (SQLSTATE 23502 on pp_feed.ver): the
 *    signal, without a server-side function, that a request's condition failed;
 *  - a conditional delete: the same (its record carries version 0);
 *  - an unconditional delete: a record only if it removed a live row, no error otherwise.
 */
export function writeWithFeedLiteral(write: string, feed: string, op: WriteOp, ts: number): string {
  const del = op.kind === 'delete';
  const ifLive = del && op.expectVersion === undefined;
  const ver = !del ? 'w."_v"' : ifLive ? '0' : 'w."_v" * 0';
  const from = ifLive ? ` FROM w WHERE w."_exp" IS NULL OR w."_exp" > ${ts}` : ' FROM (VALUES (1)) AS o LEFT JOIN w ON true';
  const doc = feedDocOf(op, undefined);
  return (
    `WITH w AS (${write}) INSERT INTO ${feed} (${FEED_COLUMNS}) SELECT ${pgLiteral(op.table.physical)}, ${feedOp(op)}, ${pgLiteral(op.keyJson)}, ` +
    `${doc === null ? 'NULL::bytea' : pgLiteral(doc)}, ${ver}, CAST(${pgLiteral(del ? null : (op.expiresAtMs ?? null))} AS BIGINT), ${ts}${from} RETURNING "pos", "ver"`
  );
}

/**
 * PostgreSQL only: a `check` op on the one-trip path. It writes nothing when the condition holds;
 * when it does not, it appends a record with a NULL version, which pp_feed's NOT NULL constraint
 * refuses: the same abort signal as a failed write (`writeWithFeedLiteral`), so a batch of
 * checks and writes still goes to the server in one message. Returns "pos", "ver" (no rows).
 */
export function checkWithFeedLiteral(d: Dialect, feed: string, op: WriteOp, ts: number): string {
  return checksWithFeedLiteral(d, feed, [op], ts);
}

/**
 * PostgreSQL only: the multi-row upsert of `upsertManyLiteral` and one outbox record per row, in
 * one statement. Records are matched to rows by primary key (keys are distinct within a group) and
 * appended in input order. Returns "pos", "key", "ver" per row.
 */
export function upsertManyWithFeedLiteral(
  d: Dialect,
  def: TableDef,
  feed: string,
  ops: readonly WriteOp[],
  ts: number,
): string {
  const pk = def.primaryKey;
  const dcols = ['"o"', ...pk.map((_, i) => `"c${i}"`), '"key"', '"doc"', '"exp"'];
  const tuples = ops.map((op, o) => `(${o}, ${op.key.map(pgLiteral).join(', ')}, ${pgLiteral(op.keyJson)}, ${pgLiteral(op.doc!)}, CAST(${pgLiteral(op.expiresAtMs ?? null)} AS BIGINT))`);
  const on = pk.map((c, i) => `w.${q(c)} = d."c${i}"`).join(' AND ');
  return (
    `WITH w AS (${upsertManyLiteral(d, def, ops)}) INSERT INTO ${feed} (${FEED_COLUMNS}) ` +
    `SELECT ${pgLiteral(def.physical)}, 1, d."key", d."doc", w."_v", d."exp", ${ts} FROM (VALUES ${tuples.join(', ')}) AS d(${dcols.join(', ')}) ` +
    `JOIN w ON ${on} ORDER BY d."o" RETURNING "pos", "key", "ver"`
  );
}
