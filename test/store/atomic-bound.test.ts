/** `store.atomic` is bounded by `limits.atomicOpsMax` (not batchOpsMax): a stream checkpoint's one request may hold every changed key. */
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { sqliteCase } from './helpers.js';

const c = sqliteCase();
afterAll(() => c.cleanup());

describe('store.atomic bound', () => {
  it('takes more than batchOpsMax ops up to atomicOpsMax, and refuses more with PP_ERR_TOO_LARGE naming ops', async () => {
    const store = await c.open({ limits: { batchOpsMax: 2, atomicOpsMax: 3 } });
    const t = await store.table('bound', { schema: Type.Object({ p: Type.Integer(), k: Type.Integer() }), primaryKey: ['p', 'k'], partitionKey: ['p'] });
    const ops = (n: number) => Array.from({ length: n }, (_, k) => t.writeOp({ op: 'upsert', row: { p: 1, k } }));
    expect((await store.atomic(ops(3))).length).toBe(3);
    let err: unknown;
    try {
      await store.atomic(ops(4));
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_TOO_LARGE')).toBe(true);
    expect((err as { field?: string }).field).toBe('ops');
    expect(await t.get({ p: 1, k: 3 })).toBeUndefined();
  });
});
