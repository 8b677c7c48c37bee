/**
 * From a WriteOp to the statement that performs it, and from what the statement returned to the
 * op's outcome. Shared by every SQL engine so conflict semantics are identical everywhere.
 */
import { ppError, invariant, type PowerplantError } from '../../errors/index.js';
import type { SqlValue, TableDef } from '../schema.js';
import type { RawRow, WriteOp } from './base.js';
import { deleteTpl, insertTpl, probeTpl, replaceTpl, updateTpl, upsertTpl, type Dialect, type Tpl } from './sql.js';

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
  if (op.kind === 'insert' || op.expectVersion === 0) {
    return ppError('PP_ERR_CONFLICT', { message: `${name} already exists (version ${actual})`, data });
  }
  if (op.expectVersion === undefined) {
    return ppError('PP_ERR_NOT_FOUND', { message: `${name} not found`, data });
  }
  return ppError('PP_ERR_CONFLICT', { message: `${name}: expected version ${op.expectVersion}, found ${actual === 0 ? 'none' : actual}`, data });
}

/** For a judged-ok op: the feed op code and the row's version. */
export function feedOp(op: WriteOp): number {
  return op.kind === 'delete' ? 2 : 1;
}

export function tableOf(op: WriteOp): TableDef {
  return op.table;
}
