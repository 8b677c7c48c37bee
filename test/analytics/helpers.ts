/**
 * Fixtures for the analytics suites: a store on SQLite (a temp folder) or PostgreSQL (a unique
 * schema prefix), two shards each, with a DuckDB file in a temp folder; the order-line table the
 * suites mirror; and the comparison of a mirror with the store table it follows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { openAnalytics, type Analytics, type AnalyticsOptions } from '../../src/analytics/index.js';
import { openStore, type Store, type StoreOptions, type Table } from '../../src/store/index.js';
import { dropSchemas, PG_BASE, uniqueId } from '../store/helpers.js';

export const LINE_SCHEMA = Type.Object({
  id: Type.String(),
  orderId: Type.Integer(),
  category: Type.String(),
  productId: Type.Integer(),
  qty: Type.Integer(),
  price: Type.Number(),
  createdAt: Type.Integer(),
  paid: Type.Boolean(),
  note: Type.Optional(Type.String()),
});
export type Line = Static<typeof LINE_SCHEMA>;

export const LINE_SCHEMA_V2 = Type.Object({ ...LINE_SCHEMA.properties, coupon: Type.Optional(Type.String()) });

export function lineTable(store: Store, name = 'lines'): Promise<Table<Line>> {
  return store.table(name, { schema: LINE_SCHEMA, primaryKey: ['id'] });
}

export const DAY_MS = 86_400_000;

export function line(i: number, over: Partial<Line> = {}): Line {
  return { id: `l${i}`, orderId: Math.floor(i / 3), category: `c${i % 4}`, productId: i % 17, qty: (i % 5) + 1, price: 1.25 * ((i % 7) + 1), createdAt: (i % 10) * DAY_MS, paid: i % 2 === 0, ...over };
}

export interface AnalyticsCase {
  readonly name: 'sqlite' | 'postgres';
  /** The engine URL of storage `id` (the same id reopens the same data). */
  url(id: string): string;
  openStore(id: string, options?: Omit<StoreOptions, 'engine'>): Promise<Store>;
  openAnalytics(store: Store, id: string, options?: AnalyticsOptions): Promise<Analytics>;
  duckPath(id: string): string;
  cleanup(): Promise<void>;
}

export function analyticsCase(name: 'sqlite' | 'postgres'): AnalyticsCase {
  const root = mkdtempSync(join(tmpdir(), 'pp-an-'));
  const prefix = uniqueId('pp_an').toLowerCase();
  const open: { close(): Promise<void> }[] = [];
  const url = (id: string): string => (name === 'sqlite' ? `sqlite:${join(root, id, 'data')}` : `${PG_BASE}?schema=${prefix}_${id}`);
  const duckPath = (id: string): string => join(root, id, 'analytics.duckdb');
  return {
    name,
    url,
    duckPath,
    async openStore(id, options = {}) {
      const s = await openStore({ shards: 2, sweep: { intervalMs: 0 }, ...(name === 'postgres' ? { postgres: { readPoolMax: 2 } } : {}), ...options, engine: url(id) });
      open.push(s);
      return s;
    },
    async openAnalytics(store, id, options = {}) {
      const a = await openAnalytics(store, { path: duckPath(id), threads: 2, ...options });
      open.unshift(a);
      return a;
    },
    async cleanup() {
      for (const o of open) await o.close().catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
      if (name === 'postgres') await dropSchemas(prefix);
    },
  };
}

/** Every row of a store table, by primary key (the reference a mirror must equal). */
export async function storeRows<T extends Record<string, unknown>>(t: Table<T>): Promise<Map<string, { row: T; version: number }>> {
  const out = new Map<string, { row: T; version: number }>();
  let cursor: string | undefined;
  do {
    const page = await t.query({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const it of page.items) out.set(String(it.row.id), { row: it.row, version: it.version });
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

/** Every row of a mirror with its version, read from its partition tables (the internal layout). */
export async function mirrorRows(a: Analytics, mirror: string): Promise<{ id: string; _v: number; row: Record<string, unknown> }[]> {
  const parts = a.mirrors().find((m) => m.name === mirror)!.layout.partitions.filter((p) => p.table !== undefined);
  if (parts.length === 0) return [];
  const sql = parts.map((p) => `SELECT * FROM pp."${p.table}"`).join(' UNION ALL ');
  const r = await a.query<Record<string, unknown>>(sql, undefined, { rowsMax: 1_000_000 });
  return r.rows.map((row) => {
    const { _v, _exp, ...rest } = row;
    void _exp;
    const clean = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null));
    return { id: String(row.id), _v: Number(_v), row: clean };
  });
}
