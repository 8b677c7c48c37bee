/**
 * `table.prepare` + `store.commitAtomic`: writes of several tables on one shard commit as one
 * request — all or none (a version conflict in one fails them all) — and writes on two shards are
 * refused before anything is written. On SQLite and PostgreSQL.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { needEngine } from '../helpers/engines.js';
import { postgresCase, sqliteCase } from './helpers.js';

const pgUp = await needEngine('postgres');
const cases = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];
afterAll(async () => {
  for (const c of cases) await c.cleanup();
});

const A = Type.Object({ p: Type.Integer(), k: Type.String(), n: Type.Integer() });
const B = Type.Object({ p: Type.Integer(), id: Type.Integer(), note: Type.String({ maxLength: 5 }) });

describe.each(cases)('commitAtomic ($name)', (c) => {
  it('commits writes of two tables on one shard together, or none of them', async () => {
    const store = await c.open({ shards: 2 });
    const a = await store.table('atom_a', { schema: A, primaryKey: ['p', 'k'], partitionKey: ['p'] });
    const b = await store.table('atom_b', { schema: B, primaryKey: ['p', 'id'], partitionKey: ['p'] });
    const w1 = a.prepare({ op: 'upsert', row: { p: 1, k: 'x', n: 1 } });
    const w2 = b.prepare({ op: 'insert', row: { p: 1, id: 1, note: 'hi' } });
    expect(w1.shard).toBe(w2.shard);
    const r = await store.commitAtomic([w1, w2]);
    expect(r.map((x) => x.version)).toEqual([1, 1]);
    // A conflict in the second write fails the first too.
    let err: unknown;
    try {
      await store.commitAtomic([a.prepare({ op: 'upsert', row: { p: 1, k: 'x', n: 2 } }), b.prepare({ op: 'insert', row: { p: 1, id: 1, note: 'again' } })]);
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_CONFLICT')).toBe(true);
    expect((await a.get({ p: 1, k: 'x' }))?.row.n).toBe(1);
    // A bad row is refused at prepare, naming the field.
    expect(() => b.prepare({ op: 'insert', row: { p: 1, id: 2, note: 'too long' } })).toThrow(/row\.note/);
    // Two shards: refused, nothing written.
    let p2 = 2;
    while (a.prepare({ op: 'upsert', row: { p: p2, k: 'y', n: 1 } }).shard === w1.shard) p2++;
    let err2: unknown;
    try {
      await store.commitAtomic([a.prepare({ op: 'upsert', row: { p: 1, k: 'z', n: 1 } }), a.prepare({ op: 'upsert', row: { p: p2, k: 'y', n: 1 } })]);
    } catch (e) {
      err2 = e;
    }
    expect(isPowerplantError(err2, 'PP_ERR_INVALID_ARGUMENT')).toBe(true);
    expect((err2 as { field?: string }).field).toBe('writes[1]');
    expect(await a.get({ p: 1, k: 'z' })).toBeUndefined();
  });
});
