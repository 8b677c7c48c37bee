/**
 * HTTP helpers for the shop's end-to-end tests (examples/shop/CONTRACT.md is their spec): a fetch
 * wrapper that records every status it saw (so a file can assert it never got a 5xx), the
 * contract's shapes, the error-body check, and session tokens crafted with a known secret.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startShop, type Shop, type ShopOptions } from '../../examples/shop/index.js';
import { TABLES } from '../../examples/shop/schema.js';
import { openQueue } from '../../src/queue/index.js';
import { dropSchemas, PG_BASE } from '../store/helpers.js';
import { deleteKeysWithPrefix } from './redis.js';

// ---- the contract's shapes --------------------------------------------------------------------

export interface User { userId: string; email: string; name: string; bio: string; createdAt: number }
export interface Session { token: string; userId: string; expiresAt: number }
export interface Preferences { language: string; currency: string; newsletter: boolean }
export interface Category { id: string; name: string }
export interface Product { id: string; categoryId: string; name: string; description: string; priceCents: number }
export interface OrderItem { sku: string; qty: number; priceCents: number }
export interface Order { orderId: string; userId: string; items: OrderItem[]; totalCents: number; status: string; createdAt: number }
export interface Message { messageId: string; from: string; to: string; text: string; sentAt: number }
export interface Notification { id: string; kind: string; orderId: string; totalCents: number; createdAt: number }
export interface Wallet { userId: string; balanceCents: number }
export interface Transfer { transferId: string; from: string; to: string; amountCents: number; balanceCents: number; createdAt: number }
export interface Page<T> { items: T[]; cursor?: string }
export interface ErrorBody { error: { code: string; message: string; requestId: string; field?: string } }

export const USER_KEYS = ['bio', 'createdAt', 'email', 'name', 'userId'];
export const PRODUCT_KEYS = ['categoryId', 'description', 'id', 'name', 'priceCents'];
export const ORDER_KEYS = ['createdAt', 'items', 'orderId', 'status', 'totalCents', 'userId'];
export const MESSAGE_KEYS = ['from', 'messageId', 'sentAt', 'text', 'to'];
export const NOTIFICATION_KEYS = ['createdAt', 'id', 'kind', 'orderId', 'totalCents'];

export const USER_ID_RE = /^u[0-9a-f]{12}$/;
export const ORDER_ID_RE = /^o[0-9a-f]{20}$/;
export const MESSAGE_ID_RE = /^m[0-9a-f]{20}$/;

/** The seed's product i (CONTRACT.md "Seed data"). */
export function seedSku(i: number): string {
  return `p${String(i).padStart(5, '0')}`;
}
export function seedCategoryOf(i: number): string {
  return `c${String(((i - 1) % 20) + 1).padStart(2, '0')}`;
}
export function seedPriceCents(i: number): number {
  return 100 + ((i * 7919) % 100_000);
}

// ---- requests ---------------------------------------------------------------------------------

export interface HttpResult<T = unknown> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface RequestOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** The whole Authorization header, verbatim (for malformed ones). */
  authorization?: string;
  /** Serialised with JSON.stringify, content-type application/json. */
  json?: unknown;
  /** Sent verbatim (content-type application/json unless `contentType` says otherwise). */
  raw?: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface Sent {
  method: string;
  path: string;
  status: number;
}

/** fetch against one shop, recording each response's status for the file's final no-5xx check. */
export class ShopHttp {
  readonly sent: Sent[] = [];

  constructor(readonly baseUrl: string) {}

  async request<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
    if (o.authorization !== undefined) headers.authorization = o.authorization;
    let body: string | Uint8Array | undefined;
    if (o.json !== undefined) body = JSON.stringify(o.json);
    if (o.raw !== undefined) body = o.raw;
    if (body !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
    const res = await fetch(this.baseUrl + path, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    this.sent.push({ method, path: path.length > 200 ? `${path.slice(0, 200)}…` : path, status: res.status });
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text; // left as text: the assertions on it will say what came back
      }
    }
    return { status: res.status, body: parsed as T, text, headers: res.headers };
  }

  get<T = unknown>(path: string, o?: RequestOptions): Promise<HttpResult<T>> {
    return this.request<T>('GET', path, o);
  }
  post<T = unknown>(path: string, json: unknown, o: RequestOptions = {}): Promise<HttpResult<T>> {
    return this.request<T>('POST', path, { ...o, json });
  }
  put<T = unknown>(path: string, json: unknown, o: RequestOptions = {}): Promise<HttpResult<T>> {
    return this.request<T>('PUT', path, { ...o, json });
  }
  patch<T = unknown>(path: string, json: unknown, o: RequestOptions = {}): Promise<HttpResult<T>> {
    return this.request<T>('PATCH', path, { ...o, json });
  }

  /** Every response at or above 500 this client saw (the contract: never a 500 for bad input). */
  serverErrors(): Sent[] {
    return this.sent.filter((s) => s.status >= 500);
  }
}

/** Asserts a contract error: status, `{error:{code, message, requestId, field?}}`, request id echoed. */
export function expectError(res: HttpResult, status: number, code: string, field?: string): ErrorBody['error'] {
  const what = `${status} ${code}${field === undefined ? '' : ` ${field}`}; got ${res.status} ${res.text.slice(0, 300)}`;
  expect(res.status, what).toBe(status);
  expect(res.headers.get('content-type') ?? '', what).toContain('application/json');
  const body = res.body as ErrorBody;
  expect(typeof body, what).toBe('object');
  expect(body.error, what).toBeDefined();
  expect(body.error.code, what).toBe(code);
  expect(typeof body.error.message, what).toBe('string');
  expect(body.error.message.length, what).toBeGreaterThan(0);
  expect(typeof body.error.requestId, what).toBe('string');
  expect(body.error.requestId.length, what).toBeGreaterThan(0);
  expect(res.headers.get('x-request-id'), what).toBe(body.error.requestId);
  if (field !== undefined) expect(body.error.field, what).toBe(field);
  return body.error;
}

/** Asserts a success status, showing the body when it is not. */
export function expectStatus(res: HttpResult, status: number): void {
  expect(res.status, `expected ${status}, got ${res.status} ${res.text.slice(0, 300)}`).toBe(status);
}

/** Walks a paged list from `path` (which may already carry a query) to its end. */
export async function walkPages<T>(http: ShopHttp, path: string, limit: number, o: RequestOptions = {}, pagesMax = 1_000): Promise<{ items: T[]; pages: T[][] }> {
  const items: T[] = [];
  const pages: T[][] = [];
  let cursor: string | undefined;
  const sep = path.includes('?') ? '&' : '?';
  for (let n = 0; n < pagesMax; n++) {
    const q = `${sep}limit=${limit}${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const res = await http.get<Page<T>>(path + q, o);
    expectStatus(res, 200);
    expect(Array.isArray(res.body.items)).toBe(true);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    pages.push(res.body.items);
    items.push(...res.body.items);
    if (res.body.cursor === undefined) return { items, pages };
    expect(typeof res.body.cursor).toBe('string');
    // A page before the last is full: the cursor is there because more may follow.
    expect(res.body.items.length).toBe(limit);
    cursor = res.body.cursor;
  }
  throw new Error(`${path}: more than ${pagesMax} pages`);
}

// ---- session tokens ---------------------------------------------------------------------------

export function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** A token as the contract defines it: base64url(JSON payload) "." base64url(HMAC-SHA256(secret, payload part)). */
export function signToken(secret: string, payload: unknown): string {
  return signPart(secret, b64url(JSON.stringify(payload)));
}

/** `part` "." its signature: for payload parts that are not JSON at all. */
export function signPart(secret: string, part: string): string {
  return `${part}.${createHmac('sha256', secret).update(part).digest('base64url')}`;
}

/** The payload of a token (not verified). */
export function tokenPayload(token: string): { uid: string; role: string; exp: number } {
  const part = token.split('.')[0] ?? '';
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { uid: string; role: string; exp: number };
}

/** The same token with its payload replaced and the original signature kept (a forgery). */
export function tamperPayload(token: string, payload: unknown): string {
  const sig = token.split('.')[1] ?? '';
  return `${b64url(JSON.stringify(payload))}.${sig}`;
}

/** Seconds since the epoch. */
export function nowS(): number {
  return Math.floor(Date.now() / 1000);
}

/** A unique e-mail address for a test user. */
let emailSeq = 0;
export function freshEmail(tag: string): string {
  emailSeq += 1;
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${emailSeq}@test.example.com`;
}

/** Signs a new user up and in; returns the user, its token and password. */
export async function newUser(http: ShopHttp, tag: string): Promise<{ user: User; token: string; email: string; password: string }> {
  const email = freshEmail(tag);
  const password = `pw-${tag}-secret`;
  const su = await http.post<User>('/users', { email, password, name: `Test ${tag}` });
  expectStatus(su, 201);
  const si = await http.post<Session>('/sessions', { email, password });
  expectStatus(si, 201);
  return { user: su.body, token: si.body.token, email, password };
}

/** Signs a seeded account in. */
export async function signIn(http: ShopHttp, email: string, password: string): Promise<Session> {
  const si = await http.post<Session>('/sessions', { email, password });
  expectStatus(si, 201);
  return si.body;
}

// ---- one shop per test file -------------------------------------------------------------------

export interface TestShop {
  http: ShopHttp;
  /** The HMAC key the shop was started with (so tests can craft expired and admin tokens). */
  secret: string;
  /** The running shop (its store, for tests that check what the HTTP API cannot show, e.g. reservations). */
  shop: Shop;
  /**
   * Sets a SKU's stock by writing its inventory row through the shop's store. Test set-up only:
   * the contract has no stock setter and the seed stocks 1,000,000 per SKU (qty <= 100 per order),
   * so "not enough stock" cannot be reached over HTTP in reasonable time.
   */
  setStock(sku: string, available: number): Promise<void>;
  stop(): Promise<void>;
}

/** Where a test shop runs: the embedded default, or PostgreSQL (2 shards) + Redis + NATS. */
export type ShopEngines = 'embedded' | 'postgres';

export const SHOP_REDIS = 'redis://127.0.0.1:6379';
export const SHOP_NATS = 'nats://127.0.0.1:4222';
/** Every queue topic a shop namespace makes (`<ns>-<topic>`): a test's stop() deletes them all. */
export const SHOP_TOPICS = ['order-created', 'messages', 'sales', 'product-events'] as const;

/**
 * Starts the shop on a free port with a known session secret: on the embedded default (SQLite
 * shards in a temp dir, in-process cache, queue and transport), or with `engines: 'postgres'` on
 * PostgreSQL (its own schemas) + Redis (its own key prefix) + NATS (its own topics), all removed
 * again by stop().
 */
export async function startTestShop(tag: string, o: { engines?: ShopEngines; payments?: ShopOptions['payments'] } = {}): Promise<TestShop> {
  const dataDir = mkdtempSync(join(tmpdir(), `pp-shop-${tag}-`));
  const secret = `test-secret-${tag}-${process.pid}`;
  const pg = o.engines === 'postgres';
  const ns = `shop_${tag.replace(/[^A-Za-z0-9]/g, '')}_${process.pid}_${Date.now().toString(36)}`.toLowerCase();
  const shop = await startShop({
    dataDir,
    port: 0,
    sessionSecret: secret,
    ...(o.payments === undefined ? {} : { payments: o.payments }),
    ...(pg ? { store: `${PG_BASE}?schema=${ns}`, shards: 2, redis: SHOP_REDIS, nats: SHOP_NATS, namespace: ns } : {}),
  });
  return {
    http: new ShopHttp(shop.url),
    secret,
    shop,
    async setStock(sku, available) {
      const inventory = await shop.store.table('inventory', TABLES.inventory);
      await inventory.update(sku, { available });
    },
    async stop() {
      await shop.stop();
      rmSync(dataDir, { recursive: true, force: true });
      if (!pg) return;
      const q = await openQueue({ engine: SHOP_NATS });
      try {
        await Promise.allSettled(SHOP_TOPICS.map((t) => q.deleteTopic(`${ns}-${t}`)));
      } finally {
        await q.close();
      }
      await dropSchemas(`${ns}_`);
      await deleteKeysWithPrefix(SHOP_REDIS, `${ns}:`);
    },
  };
}
