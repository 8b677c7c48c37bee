/**
 * The peer's storage: ONE SQLite file (better-sqlite3) in WAL mode with `synchronous = FULL`, so a
 * committed order survives a power cut just as on the shop's default (its SQLite shards also sync
 * every commit). Every query is a prepared statement made once at start. Seeding is idempotent.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { hashPassword } from '../../examples/shop/auth.js';
import { STOCK_PER_SKU, seedCategories, seedProducts, seedUsers } from '../../examples/shop/seed-data.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  user_id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, bio TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL DEFAULT 'user', password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS preferences (
  user_id TEXT PRIMARY KEY, language TEXT NOT NULL, currency TEXT NOT NULL, newsletter INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS categories (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
  id TEXT PRIMARY KEY, category_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, price_cents INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS products_by_category ON products (category_id, id);
-- Search: name words by prefix. unicode61 splits on non-letters/digits and folds case, like the
-- contract's nameTerms; diacritics are kept (the contract matches case-insensitively only).
CREATE VIRTUAL TABLE IF NOT EXISTS product_words USING fts5 (name, tokenize = 'unicode61 remove_diacritics 0');
CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL CHECK (available >= 0));
CREATE TABLE IF NOT EXISTS orders (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL,
  idempotency_key TEXT, items TEXT NOT NULL, total_cents INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS orders_by_key ON orders (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE, to_id TEXT NOT NULL, from_id TEXT NOT NULL,
  text TEXT NOT NULL, sent_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages (to_id, seq);
CREATE TABLE IF NOT EXISTS notifications (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, kind TEXT NOT NULL,
  order_id TEXT NOT NULL, total_cents INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, seq);
CREATE TABLE IF NOT EXISTS wallets (user_id TEXT PRIMARY KEY, balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0));
CREATE TABLE IF NOT EXISTS transfers (
  user_id TEXT NOT NULL, transfer_id TEXT NOT NULL, to_user_id TEXT NOT NULL, amount_cents INTEGER NOT NULL,
  created_at INTEGER NOT NULL, PRIMARY KEY (user_id, transfer_id));
-- A checkout between its stock reservation and its outcome (the order row, or the stock given
-- back): at most one per idempotency key. Rows left by a crash are undone at start.
CREATE TABLE IF NOT EXISTS checkouts (
  order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, idempotency_key TEXT, items TEXT NOT NULL,
  total_cents INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS checkouts_by_key ON checkouts (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
`;

/** Store credit of a seeded user's wallet, and of a new user's (CONTRACT.md), cents. */
export const SEED_CREDIT_CENTS = 100_000;
export const SIGN_UP_CREDIT_CENTS = 10_000;
/** Marks a seeded data file (v2: with wallets; a v1 file gets the seeded users' wallets). */
const SEED_MARK = 'seeded:v2';

export interface UserRow { user_id: string; email: string; name: string; bio: string; role: 'user' | 'admin'; password_hash: string; created_at: number }
export interface ProductRow { id: string; categoryId: string; name: string; description: string; priceCents: number }
export interface OrderRow { seq: number; order_id: string; user_id: string; items: string; total_cents: number; created_at: number }
export interface MessageRow { seq: number; messageId: string; from: string; to: string; text: string; sentAt: number }
export interface CheckoutRow { order_id: string; user_id: string; idempotency_key: string | null; items: string; total_cents: number; created_at: number }
export interface TransferRow { user_id: string; transfer_id: string; to_user_id: string; amount_cents: number; created_at: number }
export interface NotificationRow { seq: number; id: string; kind: string; orderId: string; totalCents: number; createdAt: number }

const PRODUCT_COLUMNS = 'id, category_id AS categoryId, name, description, price_cents AS priceCents';

export type ShopDb = ReturnType<typeof prepare>;
// Named here so the statements' types can be written in declarations (tsconfig has
// declaration: true, and @types/better-sqlite3's inner namespace cannot be named from here).
export type Db = Database.Database;
/** The part of a better-sqlite3 statement the peer uses. */
export interface Stmt<P extends unknown[], R> {
  get(...params: P): R | undefined;
  all(...params: P): R[];
  run(...params: P): { changes: number };
}

function prepare(db: Db) {
  const st = <P extends unknown[] = [], R = unknown>(sql: string): Stmt<P, R> => db.prepare<P, R>(sql);
  return {
    db: db as Db,
    meta: st<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: st<[string, string]>('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)'),
    userById: st<[string], UserRow>('SELECT * FROM users WHERE user_id = ?'),
    userByEmail: st<[string], UserRow>('SELECT * FROM users WHERE email = ?'),
    insertUser: st<[string, string, string, string, string, number]>(
      'INSERT INTO users (user_id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    insertUserIfNew: st<[string, string, string, string, string, number]>(
      'INSERT OR IGNORE INTO users (user_id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    updateUser: st<[string | null, string | null, string], UserRow>(
      'UPDATE users SET name = coalesce(?, name), bio = coalesce(?, bio) WHERE user_id = ? RETURNING *'),
    preferences: st<[string], { language: string; currency: string; newsletter: number }>(
      'SELECT language, currency, newsletter FROM preferences WHERE user_id = ?'),
    putPreferences: st<[string, string, string, number]>(
      'INSERT INTO preferences (user_id, language, currency, newsletter) VALUES (?, ?, ?, ?) ' +
      'ON CONFLICT (user_id) DO UPDATE SET language = excluded.language, currency = excluded.currency, newsletter = excluded.newsletter'),
    categories: st<[], { id: string; name: string }>('SELECT id, name FROM categories ORDER BY id'),
    category: st<[string], { id: string }>('SELECT id FROM categories WHERE id = ?'),
    product: st<[string], ProductRow>(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = ?`),
    productRowid: st<[string], { rowid: number }>('SELECT rowid FROM products WHERE id = ?'),
    categoryPage: st<[string, string, number], ProductRow>(
      `SELECT ${PRODUCT_COLUMNS} FROM products WHERE category_id = ? AND id > ? ORDER BY id LIMIT ?`),
    upsertProduct: st<[string, string, string, string, number], { rowid: number }>(
      'INSERT INTO products (id, category_id, name, description, price_cents) VALUES (?, ?, ?, ?, ?) ' +
      'ON CONFLICT (id) DO UPDATE SET category_id = excluded.category_id, name = excluded.name, ' +
      'description = excluded.description, price_cents = excluded.price_cents RETURNING rowid'),
    deleteWords: st<[number]>('DELETE FROM product_words WHERE rowid = ?'),
    insertWords: st<[number, string]>('INSERT INTO product_words (rowid, name) VALUES (?, ?)'),
    search: st<[string, number], ProductRow>(
      `SELECT ${PRODUCT_COLUMNS} FROM products WHERE rowid IN (SELECT rowid FROM product_words WHERE product_words MATCH ?) ORDER BY id LIMIT ?`),
    stock: st<[string], { available: number }>('SELECT available FROM stock WHERE sku = ?'),
    insertStockIfNew: st<[string, number]>('INSERT OR IGNORE INTO stock (sku, available) VALUES (?, ?)'),
    price: st<[string], { priceCents: number }>(
      'SELECT p.price_cents AS priceCents FROM products p JOIN stock s ON s.sku = p.id WHERE p.id = ?'),
    reserve: st<[number, string, number]>('UPDATE stock SET available = available - ? WHERE sku = ? AND available >= ?'),
    orderByKey: st<[string, string], OrderRow>('SELECT * FROM orders WHERE user_id = ? AND idempotency_key = ?'),
    order: st<[string], OrderRow>('SELECT * FROM orders WHERE order_id = ?'),
    insertOrder: st<[string, string, string | null, string, number, number], { seq: number }>(
      'INSERT INTO orders (order_id, user_id, idempotency_key, items, total_cents, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq'),
    ordersPage: st<[string, number, number], OrderRow>(
      'SELECT * FROM orders WHERE user_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
    insertNotification: st<[string, string, string, number, number]>(
      "INSERT INTO notifications (id, user_id, kind, order_id, total_cents, created_at) VALUES (?, ?, 'order-created', ?, ?, ?)"),
    notificationsPage: st<[string, number, number], NotificationRow>(
      'SELECT seq, id, kind, order_id AS orderId, total_cents AS totalCents, created_at AS createdAt FROM notifications ' +
      'WHERE user_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
    insertCheckout: st<[string, string, string | null, string, number, number]>(
      'INSERT INTO checkouts (order_id, user_id, idempotency_key, items, total_cents, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    checkoutByKey: st<[string, string], CheckoutRow>('SELECT * FROM checkouts WHERE user_id = ? AND idempotency_key = ?'),
    checkouts: st<[], CheckoutRow>('SELECT * FROM checkouts'),
    deleteCheckout: st<[string]>('DELETE FROM checkouts WHERE order_id = ?'),
    release: st<[number, string]>('UPDATE stock SET available = available + ? WHERE sku = ?'),
    wallet: st<[string], { balance_cents: number }>('SELECT balance_cents FROM wallets WHERE user_id = ?'),
    insertWallet: st<[string, number]>('INSERT INTO wallets (user_id, balance_cents) VALUES (?, ?)'),
    insertWalletIfNew: st<[string, number]>('INSERT OR IGNORE INTO wallets (user_id, balance_cents) VALUES (?, ?)'),
    addToWallet: st<[number, string], { balance_cents: number }>(
      'UPDATE wallets SET balance_cents = balance_cents + ? WHERE user_id = ? RETURNING balance_cents'),
    transfer: st<[string, string], TransferRow>('SELECT * FROM transfers WHERE user_id = ? AND transfer_id = ?'),
    insertTransfer: st<[string, string, string, number, number]>(
      'INSERT INTO transfers (user_id, transfer_id, to_user_id, amount_cents, created_at) VALUES (?, ?, ?, ?, ?)'),
    insertMessage: st<[string, string, string, string, number]>(
      'INSERT INTO messages (message_id, to_id, from_id, text, sent_at) VALUES (?, ?, ?, ?, ?)'),
    messagesPage: st<[string, number, number], MessageRow>(
      'SELECT seq, message_id AS messageId, from_id AS "from", to_id AS "to", text, sent_at AS sentAt FROM messages ' +
      'WHERE to_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
  };
}

/** Opens (creating if needed) `<dataDir>/shop.db`, seeds it once, and returns its statements and session secret. */
export async function openShopDb(dataDir: string): Promise<{ q: ShopDb; sessionSecret: Buffer }> {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'shop.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  const q = prepare(db);
  q.setMeta.run('session_secret', randomBytes(32).toString('base64url'));
  const sessionSecret = Buffer.from((q.meta.get('session_secret') as { value: string }).value, 'base64url');
  if (q.meta.get(SEED_MARK) === undefined) await seed(q);
  return { q, sessionSecret };
}

async function seed(q: ShopDb): Promise<void> {
  // Hash first (scrypt runs on the thread pool, in parallel), then write everything in one transaction.
  const users = await Promise.all(seedUsers().map(async (u) => ({ ...u, hash: await hashPassword(u.password) })));
  const now = Date.now();
  q.db.transaction(() => {
    const insertCategory = q.db.prepare<[string, string]>('INSERT OR IGNORE INTO categories (id, name) VALUES (?, ?)');
    for (const c of seedCategories()) insertCategory.run(c.id, c.name);
    for (const p of seedProducts()) {
      if (q.productRowid.get(p.id) === undefined) {
        const { rowid } = q.upsertProduct.get(p.id, p.categoryId, p.name, p.description, p.priceCents) as { rowid: number };
        q.insertWords.run(rowid, p.name);
      }
      q.insertStockIfNew.run(p.id, STOCK_PER_SKU);
    }
    for (const u of users) {
      q.insertUserIfNew.run(u.userId, u.email, u.name, u.role, u.hash, now);
      // Only where missing: a seeder never resets a balance.
      q.insertWalletIfNew.run(u.userId, SEED_CREDIT_CENTS);
    }
    q.setMeta.run(SEED_MARK, String(now));
  })();
}
