/**
 * Page cursors on both engines (issue 20): authenticated, so a client cannot craft one; validated
 * against the sort columns' types before any SQL, so even a correctly signed hostile value never
 * reaches the driver; every failure a PP_ERR_VALIDATION naming `cursor` whose message says what is
 * wrong and carries nothing of the engine. Genuine cursors still page exactly.
 *
 * `sign` below re-signs a body the way docs/store.md ("Cursors") specifies, as someone holding the
 * store's secret could: that is how the typed-value checks are reached behind the HMAC.
 */
import { createHmac } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { needEngine } from '../helpers/engines.js';
import { postgresCase, sqliteCase, uniqueId, type EngineCase } from './helpers.js';

const pgUp = await needEngine('postgres');
const cases: EngineCase[] = [sqliteCase(), ...(pgUp ? [postgresCase()] : [])];
afterAll(async () => {
  await Promise.all(cases.map((c) => c.cleanup()));
});

const SECRET = 'cursor-suite-secret-0123456789abcdef';

function sign(scope: string, body: string, secret: string = SECRET): string {
  const b = Buffer.from(body, 'utf8');
  const tag = createHmac('sha256', secret).update(scope).update(Buffer.from([0])).update(b).digest().subarray(0, 16);
  return Buffer.concat([Buffer.from([1]), tag, b]).toString('base64url');
}

function bodyOf(cursor: string): string {
  return Buffer.from(cursor, 'base64url').subarray(17).toString('utf8');
}

/** The driver texts a forged cursor used to surface (issue 20), and engine names. */
const DRIVER_TEXT = /invalid byte sequence|invalid input syntax|out of range|postgres|sqlite|SQLITE|bigint/i;

async function rejected(p: Promise<unknown>, reason: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'the cursor is refused').toBeDefined();
  const e = err as { code?: string; field?: string; message?: string; status?: number };
  expect({ code: e.code, field: e.field, status: e.status }).toEqual({ code: 'PP_ERR_VALIDATION', field: 'cursor', status: 400 });
  expect(e.message).toMatch(/^cursor: /);
  expect(e.message).toMatch(reason);
  expect(e.message).not.toMatch(DRIVER_TEXT);
}

const Item = Type.Object({
  cat: Type.String(),
  id: Type.Integer(),
  price: Type.Number(),
  hot: Type.Boolean(),
  name: Type.String(),
  tag: Type.Optional(Type.Uint8Array()),
});
const itemSpec = {
  schema: Item,
  primaryKey: ['cat', 'id'],
  partitionKey: ['cat'],
  indexes: { byPrice: ['price'], byHot: ['hot', 'name'], byTag: ['tag'] },
} as const;

type ItemRow = { cat: string; id: number; price: number; hot: boolean; name: string; tag?: Uint8Array };
const rowOf = (i: number): ItemRow => ({ cat: `c${i % 3}`, id: i, price: (i * 7) % 11, hot: i % 2 === 0, name: `n${i % 5}`, tag: new Uint8Array([i % 4, i]) });

describe.each(cases)('cursors: $name', (engine) => {
  const open = (opts = {}, id?: string): Promise<Store> => engine.open({ shards: 3, cursorSecret: SECRET, ...opts }, id);

  async function fixture(): Promise<{ s: Store; items: Awaited<ReturnType<Store['table']>>; kv: Awaited<ReturnType<Store['kv']>> }> {
    const s = await open();
    const items = await s.table('items', itemSpec);
    await items.batch(Array.from({ length: 30 }, (_, i) => ({ op: 'insert' as const, row: rowOf(i) })));
    const kv = await s.kv('names');
    await kv.putMany(Array.from({ length: 30 }, (_, i) => ({ key: `k${String(i).padStart(2, '0')}`, value: i })));
    return { s, items: items as never, kv };
  }

  it('genuine cursors page exactly: primary key (one shard), indexes (every shard), kv scans', async () => {
    const { s } = await fixture();
    const items = await s.table('items', itemSpec);
    const kv = await s.kv<number>('names');
    const walk = async (q: Parameters<typeof items.query>[0]): Promise<number[]> => {
      const out: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await items.query({ ...q, limit: 4, ...(cursor === undefined ? {} : { cursor }) });
        out.push(...page.items.map((v) => v.row.id));
        cursor = page.cursor;
      } while (cursor !== undefined);
      return out;
    };
    const all = Array.from({ length: 30 }, (_, i) => rowOf(i));
    expect(await walk({ where: { cat: 'c1' } })).toEqual(all.filter((r) => r.cat === 'c1').map((r) => r.id));
    const byPrice = [...all].sort((a, b) => a.price - b.price || (a.cat < b.cat ? -1 : a.cat > b.cat ? 1 : a.id - b.id)).map((r) => r.id);
    expect(await walk({ index: 'byPrice' })).toEqual(byPrice);
    expect(await walk({ index: 'byPrice', order: 'desc' })).toEqual([...byPrice].reverse());
    expect((await walk({ index: 'byHot', where: { hot: true } })).sort((a, b) => a - b)).toEqual(all.filter((r) => r.hot).map((r) => r.id));
    expect((await walk({ index: 'byTag' })).sort((a, b) => a - b)).toEqual(all.map((r) => r.id));
    const keys: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await kv.scan({ prefix: 'k', limit: 7, ...(cursor === undefined ? {} : { cursor }) });
      keys.push(...page.items.map((e) => e.key));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(keys).toEqual(Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, '0')}`));
  });

  it('a cursor signed as documented is accepted: the forgeries below fail for the reason they name, not the signature', async () => {
    const { s } = await fixture();
    const items = await s.table('items', itemSpec);
    const kv = await s.kv<number>('names');
    const page = await items.query({ where: { cat: 'c0' }, cursor: sign('t_items/', '["c0",9]'), limit: 2 });
    expect(page.items.map((v) => v.row.id)).toEqual([12, 15]);
    const genuine = (await items.query({ where: { cat: 'c0' }, limit: 3 })).cursor!;
    expect(bodyOf(genuine)).toBe('["c0",6]');
    expect(genuine).toBe(sign('t_items/', '["c0",6]'));
    expect((await kv.scan({ cursor: sign('kv_names/', '["k27"]') })).items.map((e) => e.key)).toEqual(['k28', 'k29']);
    expect((await items.query({ index: 'byHot', cursor: sign('t_items/byHot', '[1,"n4","c2",14]'), limit: 50 })).items.map((v) => v.row.id)).toEqual([]);
  });

  it('tampered, truncated, foreign or not-base64 cursors: 400 naming cursor, before any SQL', async () => {
    const { s } = await fixture();
    const items = await s.table('items', itemSpec);
    const other = await s.table('others', itemSpec);
    await other.insert(rowOf(1));
    const kv = await s.kv<number>('names');
    const kv2 = await s.kv<number>('names2');
    const pk = (await items.query({ where: { cat: 'c0' }, limit: 2 })).cursor!;
    const idx = (await items.query({ index: 'byPrice', limit: 2 })).cursor!;
    const kc = (await kv.scan({ limit: 2 })).cursor!;
    // One character changed inside the tag and inside the body.
    const flip = (c: string, at: number): string => c.slice(0, at) + (c[at] === 'A' ? 'B' : 'A') + c.slice(at + 1);
    await rejected(items.query({ where: { cat: 'c0' }, cursor: flip(pk, 5) }), /not issued by this store/);
    await rejected(items.query({ where: { cat: 'c0' }, cursor: flip(pk, pk.length - 3) }), /not issued by this store|not base64url/);
    await rejected(kv.scan({ cursor: flip(kc, 10) }), /not issued by this store/);
    // The body re-written without the secret: `["c0",6]` becomes `["c0",0]`, same tag.
    const raw = Buffer.from(pk, 'base64url');
    raw[raw.length - 2] = '0'.charCodeAt(0);
    await rejected(items.query({ where: { cat: 'c0' }, cursor: raw.toString('base64url') }), /not issued by this store/);
    // Truncated: at the end, to the header, to nothing useful.
    await rejected(items.query({ where: { cat: 'c0' }, cursor: pk.slice(0, -4) }), /not issued by this store|not base64url/);
    await rejected(items.query({ where: { cat: 'c0' }, cursor: pk.slice(0, 23) }), /malformed|not base64url/);
    await rejected(items.query({ where: { cat: 'c0' }, cursor: pk.slice(0, 3) }), /malformed|not base64url/);
    // From another table, another index, the primary key for an index, another namespace, a kv scan for a table.
    await rejected(other.query({ where: { cat: 'c0' }, cursor: pk }), /from another query/);
    await rejected(items.query({ index: 'byHot', cursor: idx }), /from another query/);
    await rejected(items.query({ index: 'byPrice', cursor: pk }), /from another query/);
    await rejected(items.query({ cursor: idx }), /from another query/);
    await rejected(kv2.scan({ cursor: kc }), /from another query/);
    await rejected(items.query({ cursor: kc }), /from another query/);
    // The body alone (the pre-HMAC format), and other garbage.
    await rejected(items.query({ cursor: Buffer.from('["c0",6]').toString('base64url') }), /malformed|not issued/);
    await rejected(items.query({ cursor: 'WyJjMDEiLCJwXHUwMDAwIl0' }), /malformed|not issued/); // ["c01","p\u0000"] from the issue
    await rejected(items.query({ cursor: `${pk}=` }), /not base64url/);
    await rejected(items.query({ cursor: `${pk.slice(0, 10)}.${pk.slice(10)}` }), /not base64url/);
    await rejected(items.query({ cursor: '' }), /non-empty string/);
    await rejected(items.query({ cursor: 5 as unknown as string }), /non-empty string/);
    await rejected(kv.scan({ cursor: 'x'.repeat(9000) }), /longer than 8192/);
    // A cursor signed with another secret, and a store with another secret.
    await rejected(items.query({ where: { cat: 'c0' }, cursor: sign('t_items/', '["c0",6]', 'another-secret-0123456789abcdef') }), /not issued by this store/);
    const s2 = await open({ cursorSecret: 'another-secret-0123456789abcdef' });
    const items2 = await s2.table('items', itemSpec);
    await rejected(items2.query({ where: { cat: 'c0' }, cursor: pk }), /not issued by this store/);
    // Nothing was broken by all that: the genuine cursors still work.
    expect((await items.query({ where: { cat: 'c0' }, cursor: pk, limit: 1 })).items.map((v) => v.row.id)).toEqual([6]);
  });

  it('correctly signed hostile values are checked against the column types: NUL, lone surrogates, 0.1, 2^63, wrong types and arity', async () => {
    const { s } = await fixture();
    const items = await s.table('items', itemSpec);
    const kv = await s.kv<number>('names');
    const pkq = (body: string): Promise<unknown> => items.query({ where: { cat: 'c0' }, cursor: sign('t_items/', body) });
    // String position (cat): NUL, lone surrogates (escaped in the JSON body, so the body is valid UTF-8).
    await rejected(pkq('["c0\\u0000",1]'), /value 0 \(cat\) contains NUL/);
    await rejected(pkq('["p\\u0000x",1]'), /contains NUL/);
    await rejected(pkq('["\\ud800",1]'), /value 0 \(cat\) contains a lone surrogate/);
    await rejected(pkq('["a\\udfffb",1]'), /lone surrogate/);
    await rejected(pkq('[7,1]'), /value 0 \(cat\) must be a string/);
    await rejected(pkq(`["${'x'.repeat(1025)}",1]`), /longer than 1024 bytes/);
    // Integer position (id): a fraction, 2^63 and its neighbours, beyond safe integers, not numbers.
    await rejected(pkq('["c0",0.1]'), /value 1 \(id\) must be a safe integer/);
    await rejected(pkq('["c0",9223372036854775808]'), /safe integer/);
    await rejected(pkq('["c0",9223372036854776000]'), /safe integer/);
    await rejected(pkq('["c0",-9223372036854775809]'), /safe integer/);
    await rejected(pkq('["c0",9007199254740992]'), /safe integer/);
    await rejected(pkq('["c0",1e400]'), /safe integer/);
    await rejected(pkq('["c0","1"]'), /safe integer/);
    await rejected(pkq('["c0",null]'), /safe integer/);
    // Arity and shape.
    await rejected(pkq('["c0"]'), /must carry 2 sort-key values/);
    await rejected(pkq('["c0",1,2]'), /must carry 2/);
    await rejected(pkq('{"cat":"c0","id":1}'), /must carry 2/);
    await rejected(pkq('not json'), /malformed body/);
    // Number, boolean and bytes positions of indexes.
    await rejected(items.query({ index: 'byPrice', cursor: sign('t_items/byPrice', '[1e400,"c0",1]') }), /value 0 \(price\) must be a finite number/);
    await rejected(items.query({ index: 'byPrice', cursor: sign('t_items/byPrice', '["5","c0",1]') }), /finite number/);
    await rejected(items.query({ index: 'byHot', cursor: sign('t_items/byHot', '[2,"n1","c0",1]') }), /value 0 \(hot\) must be 0 or 1/);
    await rejected(items.query({ index: 'byHot', cursor: sign('t_items/byHot', '[1,"n\\u0000","c0",1]') }), /value 1 \(name\) contains NUL/);
    await rejected(items.query({ index: 'byTag', cursor: sign('t_items/byTag', '["AAE=","c0",1]') }), /value 0 \(tag\) must be \{"b": base64\}/);
    await rejected(items.query({ index: 'byTag', cursor: sign('t_items/byTag', '[{"b":"A A E="},"c0",1]') }), /canonical base64/);
    // The kv key position.
    await rejected(kv.scan({ cursor: sign('kv_names/', '["k\\u0000"]') }), /value 0 \(key\) contains NUL/);
    await rejected(kv.scan({ cursor: sign('kv_names/', '["\\udc00"]') }), /lone surrogate/);
    await rejected(kv.scan({ cursor: sign('kv_names/', '[5]') }), /must be a string/);
    // And a well-typed forged value is just a position (no row is invented, none skipped).
    expect((await items.query({ index: 'byTag', cursor: sign('t_items/byTag', '[{"b":"AxM="},"c1",19]'), limit: 3 })).items.map((v) => v.row.id)).toEqual([23, 27]);
  });

  it('without cursorSecret: nodes opening a fresh store at the same time agree on one stored secret, and it survives reopening', async () => {
    const id = uniqueId('sec').toLowerCase();
    const [a, b] = await Promise.all([engine.open({ shards: 2 }, id), engine.open({ shards: 2 }, id)]);
    const ta = await a.table('items', itemSpec);
    const tb = await b.table('items', itemSpec);
    await ta.batch(Array.from({ length: 9 }, (_, i) => ({ op: 'insert' as const, row: rowOf(i) })));
    const fromA = (await ta.query({ index: 'byPrice', limit: 4 })).cursor!;
    const fromB = (await tb.query({ index: 'byPrice', limit: 4 })).cursor!;
    expect(fromA).toBe(fromB);
    expect((await tb.query({ index: 'byPrice', cursor: fromA })).items).toHaveLength(5);
    await a.close();
    await b.close();
    const c = await engine.open({ shards: 2 }, id);
    const tc = await c.table('items', itemSpec);
    expect((await tc.query({ index: 'byPrice', cursor: fromA })).items).toHaveLength(5);
    // A store elsewhere has its own secret.
    const d = await engine.open({ shards: 2 });
    const td = await d.table('items', itemSpec);
    await rejected(td.query({ index: 'byPrice', cursor: fromA }), /not issued by this store/);
  });

  it('cursorSecret is checked when the store opens', async () => {
    for (const bad of ['short', new Uint8Array(8), 'x'.repeat(1025), 42]) {
      await expect(engine.open({ cursorSecret: bad as string })).rejects.toMatchObject({ code: 'PP_ERR_INVALID_ARGUMENT', field: 'cursorSecret' });
    }
    const s = await engine.open({ cursorSecret: new Uint8Array(32).fill(7) });
    expect((await (await s.kv('k')).scan({})).items).toEqual([]);
  });
});
