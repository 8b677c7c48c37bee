/**
 * Engine fixtures for the store suites: every case opens a fresh store on a unique SQLite temp
 * directory or a unique PostgreSQL schema prefix (test files run in parallel forks), and `cleanup`
 * removes them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.js';

export const PG_BASE = 'postgres://postgres@127.0.0.1:5432/test';

export interface EngineCase {
  readonly name: 'sqlite' | 'postgres';
  /** Opens a new store with its own storage; the same `id` reopens the same storage. */
  open(options?: Omit<StoreOptions, 'engine'>, id?: string): Promise<Store>;
  /** An engine URL for storage `id` (for child processes). */
  url(id: string): string;
  cleanup(): Promise<void>;
}

let seq = 0;
export function uniqueId(tag: string): string {
  return `${tag}_${process.pid}_${Date.now().toString(36)}_${seq++}`;
}

export function sqliteCase(): EngineCase {
  const root = mkdtempSync(join(tmpdir(), 'pp-store-'));
  const stores: Store[] = [];
  return {
    name: 'sqlite',
    url: (id) => `sqlite:${join(root, id)}`,
    async open(options = {}, id = uniqueId('s')) {
      const s = await openStore({ sweep: { intervalMs: 0 }, ...options, engine: `sqlite:${join(root, id)}` });
      stores.push(s);
      return s;
    },
    async cleanup() {
      await Promise.allSettled(stores.map((s) => s.close()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export function postgresCase(): EngineCase {
  const prefix = uniqueId('pp_t').toLowerCase();
  const stores: Store[] = [];
  return {
    name: 'postgres',
    url: (id) => `${PG_BASE}?schema=${prefix}_${id}`,
    async open(options = {}, id = `${seq++}`) {
      const s = await openStore({ sweep: { intervalMs: 0 }, postgres: { readPoolMax: 2 }, ...options, engine: `${PG_BASE}?schema=${prefix}_${id}` });
      stores.push(s);
      return s;
    },
    async cleanup() {
      await Promise.allSettled(stores.map((s) => s.close()));
      await dropSchemas(prefix);
    },
  };
}

/** Drops every schema whose name starts with `prefix`. */
export async function dropSchemas(prefix: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try {
    const r = await c.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", [prefix]);
    for (const { nspname } of r.rows) await c.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
  } finally {
    await c.end();
  }
}

export async function expectCode(p: Promise<unknown> | (() => unknown), code: string, field?: string): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  const e = err as { code?: string; field?: string } | undefined;
  if (e?.code !== code) throw new Error(`expected ${code}${field ? ` (${field})` : ''}, got ${e === undefined ? 'success' : `${e.code}: ${String(err)}`}`);
  if (field !== undefined && e.field !== field) throw new Error(`expected field ${field}, got ${e.field}`);
}
