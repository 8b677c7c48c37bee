/**
 * Hostile strings on the general input path, on both engines (issue 20): PostgreSQL's TEXT refuses
 * NUL and UTF-8 cannot carry a lone surrogate, so the store decides before any SQL, the same way on
 * every engine. Refused with PP_ERR_VALIDATION naming the field: NUL or a lone surrogate in a key,
 * a string column, a where/range value, a prefix; a lone surrogate anywhere in a kv value or a
 * json column (msgpack would turn it into U+FFFD). Stored faithfully: NUL inside a kv value or a
 * json column (bytes / escaped JSON text). Never a driver error, and the store keeps working.
 */
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChangeRecord } from '../../src/store/index.js';
import { needEngine } from '../helpers/engines.js';
import { expectCode, postgresCase, sqliteCase, type EngineCase } from './helpers.js';

const pgUp = await needEngine('postgres');
const cases: EngineCase[] = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];
afterAll(async () => {
  await Promise.all(cases.map((c) => c.cleanup()));
});

const Doc = Type.Object({
  owner: Type.String(),
  id: Type.Integer(),
  title: Type.String(),
  meta: Type.Optional(Type.Object({ note: Type.String(), tags: Type.Array(Type.String()) })),
});
const docSpec = { schema: Doc, primaryKey: ['owner', 'id'], indexes: { byTitle: ['title'] } } as const;

const NUL = 'a\u0000b';
const LONE_HIGH = 'a\ud800b';
const LONE_LOW = '\udc00';
const LONG_LONE = `${'x'.repeat(200)}\ud83d`; // long enough for msgpack's native UTF-8 path

/** Byte arrays as plain arrays, so values decoded as Buffer compare with those written as Uint8Array. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe.each(cases)('hostile strings: $name', (engine) => {
  it('kv: NUL / lone surrogates in keys and prefixes are refused naming the field; NUL inside a value is kept', async () => {
    const s = await engine.open({ shards: 3 });
    const kv = await s.kv<unknown>('strings');
    for (const bad of [NUL, LONE_HIGH, LONE_LOW, '\u0000']) {
      await expectCode(kv.put(bad, 1), 'PP_ERR_VALIDATION', 'key');
      await expectCode(kv.get(bad), 'PP_ERR_VALIDATION', 'key');
      await expectCode(kv.delete(bad), 'PP_ERR_VALIDATION', 'key');
      await expectCode(kv.cas(bad, 0, 1), 'PP_ERR_VALIDATION', 'key');
      await expectCode(kv.getMany(['ok', bad]), 'PP_ERR_VALIDATION', 'keys[1]');
      await expectCode(kv.putMany([{ key: 'ok', value: 1 }, { key: bad, value: 1 }]), 'PP_ERR_VALIDATION', 'entries[1].key');
      await expectCode(kv.scan({ prefix: bad }), 'PP_ERR_VALIDATION', 'prefix');
      await expectCode(kv.count({ prefix: bad }), 'PP_ERR_VALIDATION', 'prefix');
    }
    const value = { text: NUL, list: ['\u0000', `x${NUL}`], [NUL]: 'key with NUL', bytes: new Uint8Array([0, 0xed, 0xa0, 0x80]), n: 1.5 };
    const w = await kv.put('nul', value);
    expect(plain((await kv.get('nul'))?.value)).toEqual(plain(value));
    const [rec] = (await s.feed.read(w.shard, w.position - 1, 1)) as ChangeRecord[];
    expect(plain(rec!.value)).toEqual(plain(value));
    // Legitimate U+FFFD, surrogate pairs and 0xED bytes are not mistaken for lone surrogates.
    const fine = { s: '\uFFFD😀\ud83d\ude00', b: new Uint8Array([0xed, 0xbf]), long: `${'y'.repeat(300)}😀` };
    await kv.put('fine', fine);
    expect(plain((await kv.get('fine'))?.value)).toEqual(plain(fine));
    expect(await kv.count()).toBe(2);
  });

  it('kv: a lone surrogate anywhere in a value is refused with its path (it would come back as U+FFFD)', async () => {
    const s = await engine.open({ shards: 2 });
    const kv = await s.kv<unknown>('lone');
    await expectCode(kv.put('k', LONE_HIGH), 'PP_ERR_VALIDATION', 'value');
    await expectCode(kv.put('k', LONG_LONE), 'PP_ERR_VALIDATION', 'value');
    await expectCode(kv.put('k', { a: [1, { b: LONE_LOW }] }), 'PP_ERR_VALIDATION', 'value.a.1.b');
    await expectCode(kv.put('k', { deep: { text: LONG_LONE } }), 'PP_ERR_VALIDATION', 'value.deep.text');
    await expectCode(kv.put('k', { [LONE_HIGH]: 1 }), 'PP_ERR_VALIDATION', 'value.a\ufffdb');
    await expectCode(kv.put('k', new Map([['m', LONE_LOW]])), 'PP_ERR_VALIDATION', 'value.m');
    await expectCode(kv.cas('k', 0, [LONE_LOW]), 'PP_ERR_VALIDATION', 'value.0');
    await expectCode(kv.putMany([{ key: 'ok', value: 1 }, { key: 'k2', value: { t: LONE_HIGH } }]), 'PP_ERR_VALIDATION', 'entries[1].value.t');
    expect(await kv.count()).toBe(0);
  });

  it('tables: NUL / lone surrogates in keys, string columns, patches, where and range are refused naming the field', async () => {
    const s = await engine.open({ shards: 3 });
    const t = await s.table('docs', docSpec);
    await t.insert({ owner: 'ann', id: 1, title: 'first' });
    for (const bad of [NUL, LONE_HIGH, LONE_LOW]) {
      await expectCode(t.insert({ owner: bad, id: 2, title: 'x' }), 'PP_ERR_VALIDATION', 'row.owner');
      await expectCode(t.insert({ owner: 'ann', id: 2, title: bad }), 'PP_ERR_VALIDATION', 'row.title');
      await expectCode(t.upsert({ owner: 'ann', id: 1, title: bad }, { version: 1 }), 'PP_ERR_VALIDATION', 'row.title');
      await expectCode(t.update({ owner: 'ann', id: 1 }, { title: bad }), 'PP_ERR_VALIDATION', 'patch.title');
      await expectCode(t.delete({ owner: bad, id: 1 }), 'PP_ERR_VALIDATION', 'key.owner');
      await expectCode(t.get({ owner: bad, id: 1 }), 'PP_ERR_VALIDATION', 'key.owner');
      await expectCode(t.getMany([{ owner: 'ann', id: 1 }, { owner: bad, id: 1 }]), 'PP_ERR_VALIDATION', 'keys[1].owner');
      await expectCode(t.batch([{ op: 'insert', row: { owner: 'bob', id: 1, title: 'ok' } }, { op: 'insert', row: { owner: 'bob', id: 2, title: bad } }]), 'PP_ERR_VALIDATION', 'ops[1].row.title');
      await expectCode(t.query({ where: { owner: bad } }), 'PP_ERR_VALIDATION', 'where.owner');
      await expectCode(t.query({ index: 'byTitle', where: { title: bad } }), 'PP_ERR_VALIDATION', 'where.title');
      await expectCode(t.query({ index: 'byTitle', range: { gte: bad } }), 'PP_ERR_VALIDATION', 'range.gte');
      await expectCode(t.count({ index: 'byTitle', range: { lt: bad } }), 'PP_ERR_VALIDATION', 'range.lt');
    }
    expect((await t.query({})).items.map((v) => v.row)).toEqual([{ owner: 'ann', id: 1, title: 'first' }]);
  });

  it('tables: a json column keeps NUL faithfully (escaped JSON text) and refuses a lone surrogate with its path', async () => {
    const s = await engine.open({ shards: 2 });
    const t = await s.table('jdocs', docSpec);
    const meta = { note: NUL, tags: ['\u0000', 'b\\ud800'] }; // the last one is a backslash and text, not a surrogate
    const w = await t.insert({ owner: 'ann', id: 1, title: 'j', meta });
    expect((await t.get({ owner: 'ann', id: 1 }))?.row.meta).toEqual(meta);
    const [rec] = await s.feed.read(w.shard, w.position - 1, 1);
    expect(rec!.row).toEqual({ owner: 'ann', id: 1, title: 'j', meta });
    await expectCode(t.insert({ owner: 'ann', id: 2, title: 'j', meta: { note: LONE_HIGH, tags: [] } }), 'PP_ERR_VALIDATION', 'row.meta.note');
    await expectCode(t.update({ owner: 'ann', id: 1 }, { meta: { note: 'n', tags: ['ok', LONE_LOW] } }), 'PP_ERR_VALIDATION', 'patch.meta.tags.1');
    await t.update({ owner: 'ann', id: 1 }, { meta: { note: 'pair 😀', tags: [] } });
    expect((await t.get({ owner: 'ann', id: 1 }))?.row.meta).toEqual({ note: 'pair 😀', tags: [] });
  });

  it('feed consumer names with NUL or a lone surrogate are refused before they reach the offsets table', async () => {
    const s = await engine.open({ shards: 1 });
    for (const bad of [NUL, LONE_HIGH]) {
      await expectCode(s.feed.consumerPositions(bad), 'PP_ERR_INVALID_ARGUMENT', 'consumer');
      await expectCode(s.feed.subscribe({ consumer: bad, handler: () => undefined }), 'PP_ERR_INVALID_ARGUMENT', 'consumer');
    }
    expect(await s.feed.consumerPositions('fine')).toEqual({});
  });
});
