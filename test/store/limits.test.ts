/**
 * The store's limits under their renamed names (`<what><Unit>Max`): the old names
 * (valueMaxBytes, keyMaxBytes, ttlMaxMs) stay accepted for one release; an old name that
 * contradicts its new one is refused naming both. Engine-independent: SQLite only.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { expectCode, sqliteCase } from './helpers.js';

const engine = sqliteCase();
afterAll(() => engine.cleanup());

describe('store limits: deprecated names', () => {
  it('valueMaxBytes / keyMaxBytes / ttlMaxMs still set valueBytesMax / keyBytesMax / ttlMsMax', async () => {
    const s = await engine.open({ limits: { valueMaxBytes: 100, keyMaxBytes: 8, ttlMaxMs: 60_000 } });
    expect(s.limits).toMatchObject({ valueBytesMax: 100, keyBytesMax: 8, ttlMsMax: 60_000 });
    expect(Object.keys(s.limits)).not.toContain('valueMaxBytes');
    const kv = await s.kv<string>('k');
    await expectCode(kv.put('k', 'x'.repeat(200)), 'PP_ERR_TOO_LARGE', 'value');
    await expectCode(kv.put('123456789', 'v'), 'PP_ERR_TOO_LARGE', 'key');
    await expectCode(kv.put('k', 'v', { ttlMs: 60_001 }), 'PP_ERR_INVALID_ARGUMENT', 'ttlMs');
    await kv.put('k', 'v', { ttlMs: 60_000 });
  });

  it('an old name that contradicts the new one is refused, naming both', async () => {
    let err: unknown;
    try {
      await engine.open({ limits: { valueBytesMax: 100, valueMaxBytes: 200 } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'limits.valueBytesMax' });
    expect((err as Error).message).toMatch(/limits\.valueBytesMax.*limits\.valueMaxBytes/);
  });

  it('errors name the new limit', async () => {
    const s = await engine.open({ limits: { keyBytesMax: 8 } });
    const kv = await s.kv<string>('k');
    await expect(kv.put('123456789', 'v')).rejects.toThrow(/keyBytesMax 8/);
  });
});
