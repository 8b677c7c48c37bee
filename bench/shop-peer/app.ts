/**
 * The handwritten peer of examples/shop: the same HTTP API (examples/shop/CONTRACT.md) written the
 * way a competent Fastify user would write it without Powerplant — one process, Fastify 5 with JSON
 * schemas for validation and response serialization, one better-sqlite3 database (see db.ts), and
 * lru-cache in front of product reads and category pages. Messages go straight into the
 * recipient's inbox table and the order-created notification is written in the order's
 * transaction (no queue: there is only one process). A checkout reserves stock in one
 * transaction, talks to the simulated payment provider (payments.ts), then writes the order or
 * gives the stock back in a second one. See README.md in this folder.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { bearerToken, DUMMY_PASSWORD_HASH, hashPassword, issueToken, sessionKey, verifyPassword, verifyToken, type TokenPayload } from '../../examples/shop/auth.js';
import { openShopDb, SIGN_UP_CREDIT_CENTS, type CheckoutRow, type OrderRow, type ProductRow, type UserRow } from './db.js';
import { PaymentDeclined, paymentsConfig, ProviderLost, ProviderTimeout, SimulatedProvider, type PaymentsConfig, type PaymentState } from './payments.js';
import * as S from './schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified session of a route behind `auth` (set in its onRequest hook, before validation). */
    shopSession: TokenPayload | undefined;
  }
}

/** A contract error: status and PP_ERR_ code as the shop's catalogue maps them. */
class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

const notFound = (what: string, field?: string): HttpError => new HttpError(404, 'PP_ERR_NOT_FOUND', `${what} not found`, field);
const invalid = (field: string, message: string): HttpError => new HttpError(400, 'PP_ERR_VALIDATION', `${field}: ${message}`, field);

const DEFAULT_PREFERENCES = { language: 'en', currency: 'EUR', newsletter: false } as const;
/** Matches a name word by prefix only if q is letters and digits: name words never hold anything else. */
const SEARCH_TERM_RE = /^[\p{L}\p{N}]+$/u;
/** Before any cursor: every row sequence number is below it. */
const FIRST_SEQ = Number.MAX_SAFE_INTEGER;

interface Page<T> { items: T[]; cursor?: string }
type PageQuery = { limit: number; cursor?: string };

/** The first `limit` of `rows` (fetched as limit + 1) and, when there were more, the cursor after the last. */
function page<R, T>(rows: R[], limit: number, cursorOf: (r: R) => string, map: (r: R) => T): Page<T> {
  const items = rows.slice(0, limit);
  const out: Page<T> = { items: items.map(map) };
  if (rows.length > limit) out.cursor = cursorOf(items[items.length - 1] as R);
  return out;
}

const same = <T>(x: T): T => x;
const bySeq = (r: { seq: number }): string => String(r.seq);
const userOut = (u: UserRow) => ({ userId: u.user_id, email: u.email, name: u.name, bio: u.bio, createdAt: u.created_at });
const orderOut = (o: OrderRow) => ({
  orderId: o.order_id, userId: o.user_id, items: JSON.parse(o.items) as unknown[], totalCents: o.total_cents, status: 'placed', createdAt: o.created_at,
});
const newId = (prefix: string, bytes: number): string => prefix + randomBytes(bytes).toString('hex');

export interface PeerOptions {
  port?: number;
  host?: string;
  dataDir: string;
  /** Entries in each cache (products; category pages). Default 10,000 and 2,000. */
  productCacheMax?: number;
  pageCacheMax?: number;
  /** The simulated payment provider (payments.ts; server.ts reads PP_PAYMENTS_*). Default: instant, never fails. */
  payments?: Partial<PaymentsConfig>;
}

export interface Peer {
  url: string;
  app: FastifyInstance;
  stop(): Promise<void>;
}

/** Attempts of each provider call (the first and its retries) when it times out or its answer is lost. */
const AUTHORIZE_ATTEMPTS = 4;
const CAPTURE_ATTEMPTS = 6;
const VOID_ATTEMPTS = 3;
const RETRY_BACKOFF_MS = 20;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `fn`, tried again (after a growing pause) while the provider times out or loses its answer. */
async function withRetries<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ProviderTimeout || e instanceof ProviderLost) || i >= attempts) throw e;
      await sleep(RETRY_BACKOFF_MS * i);
    }
  }
}

export async function startPeer(options: PeerOptions): Promise<Peer> {
  const provider = new SimulatedProvider(paymentsConfig(options.payments));
  const { q, sessionSecret } = await openShopDb(options.dataDir);
  const key = sessionKey(sessionSecret);
  const products = new LRUCache<string, ProductRow>({ max: options.productCacheMax ?? 10_000 });
  const pages = new LRUCache<string, Page<ProductRow>>({ max: options.pageCacheMax ?? 2_000 });
  const categoryIds = new Set(q.categories.all().map((c) => c.id));

  // Routes that need a user verify the token in onRequest, so a request without a valid session
  // is a 401 before its body is parsed or validated (the shop verifies at the gateway edge too).
  const auth = {
    onRequest: async (req: FastifyRequest): Promise<void> => {
      const token = bearerToken(req.headers.authorization);
      if (token === undefined) throw new HttpError(401, 'PP_ERR_UNAUTHORIZED', 'missing bearer token');
      const v = verifyToken(key, token);
      if (!v.ok) throw new HttpError(401, 'PP_ERR_UNAUTHORIZED', `session token ${v.reason}`);
      req.shopSession = v.payload;
    },
  };
  const caller = (req: FastifyRequest): TokenPayload => req.shopSession as TokenPayload;
  const me = (uid: string): UserRow => {
    const u = q.userById.get(uid);
    if (u === undefined) throw new HttpError(401, 'PP_ERR_UNAUTHORIZED', 'user no longer exists');
    return u;
  };

  const app = Fastify({ bodyLimit: 1024 * 1024 });
  app.decorateRequest('shopSession', undefined);

  app.setErrorHandler((e: Error & { statusCode?: number; validation?: Array<{ instancePath: string; params: Record<string, unknown>; message?: string }> }, req, reply) => {
    let err: HttpError;
    if (e instanceof HttpError) err = e;
    else if (e.validation !== undefined) {
      const first = e.validation[0];
      const path = (first?.instancePath ?? '').split('/').filter((s) => s !== '');
      if (typeof first?.params.missingProperty === 'string') path.push(first.params.missingProperty);
      err = invalid(['params', ...path].join('.'), first?.message ?? 'invalid');
    } else if (e.statusCode === 413) err = new HttpError(413, 'PP_ERR_TOO_LARGE', 'body: too large', 'body');
    else if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) err = invalid('body', e.message);
    else {
      req.log.error(e);
      err = new HttpError(500, 'PP_ERR_INTERNAL', 'internal error');
    }
    void reply.code(err.status).send({
      error: { code: err.code, message: err.message, requestId: req.id, ...(err.field === undefined ? {} : { field: err.field }) },
    });
  });
  app.setNotFoundHandler((req) => {
    throw notFound(`route ${req.method} ${req.url.split('?')[0] ?? ''}`);
  });

  // --- users -------------------------------------------------------------------------------------

  /** One transaction: the user (its email is UNIQUE: the claim) and its wallet. */
  const signUp = q.db.transaction((userId: string, email: string, name: string, hash: string) => {
    q.insertUser.run(userId, email, name, 'user', hash, Date.now());
    q.insertWallet.run(userId, SIGN_UP_CREDIT_CENTS);
  });

  app.post<{ Body: { email: string; password: string; name: string } }>('/users',
    { schema: { body: S.signUpBody, response: { 201: S.userSchema } } },
    async (req, reply) => {
      const { email, password, name } = req.body;
      if (q.userByEmail.get(email) !== undefined) throw new HttpError(409, 'PP_ERR_CONFLICT', 'email already registered', 'params.email');
      const hash = await hashPassword(password);
      const userId = newId('u', 6);
      try {
        signUp(userId, email, name, hash);
      } catch (e) {
        // Two sign-ups of one email raced across the hash's await.
        if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new HttpError(409, 'PP_ERR_CONFLICT', 'email already registered', 'params.email');
        throw e;
      }
      return reply.code(201).send(userOut(q.userById.get(userId) as UserRow));
    });

  app.post<{ Body: { email: string; password: string } }>('/sessions',
    { schema: { body: S.signInBody, response: { 201: S.sessionSchema } } },
    async (req, reply) => {
      const u = q.userByEmail.get(req.body.email);
      // An unknown email costs a hash too: no user enumeration by timing.
      const ok = await verifyPassword(req.body.password, u?.password_hash ?? DUMMY_PASSWORD_HASH);
      if (u === undefined || !ok) throw new HttpError(401, 'PP_ERR_UNAUTHORIZED', 'wrong email or password');
      return reply.code(201).send({ ...issueToken(key, u.user_id, u.role), userId: u.user_id });
    });

  app.get('/me', { ...auth, schema: { response: { 200: S.userSchema } } }, async (req) => userOut(me(caller(req).uid)));

  app.patch<{ Body: { name?: string; bio?: string } }>('/me',
    { ...auth, schema: { body: S.patchMeBody, response: { 200: S.userSchema } } },
    async (req) => {
      const { uid } = caller(req);
      const u = q.updateUser.get(req.body.name ?? null, req.body.bio ?? null, uid);
      if (u === undefined) throw new HttpError(401, 'PP_ERR_UNAUTHORIZED', 'user no longer exists');
      return userOut(u);
    });

  app.get('/me/preferences', { ...auth, schema: { response: { 200: S.preferencesSchema } } }, async (req) => {
    const p = q.preferences.get(me(caller(req).uid).user_id);
    return p === undefined ? DEFAULT_PREFERENCES : { language: p.language, currency: p.currency, newsletter: p.newsletter === 1 };
  });

  app.put<{ Body: { language: string; currency: string; newsletter: boolean } }>('/me/preferences',
    { ...auth, schema: { body: S.preferencesSchema, response: { 200: S.preferencesSchema } } },
    async (req) => {
      const { language, currency, newsletter } = req.body;
      q.putPreferences.run(me(caller(req).uid).user_id, language, currency, newsletter ? 1 : 0);
      return { language, currency, newsletter };
    });

  // --- catalog -----------------------------------------------------------------------------------

  app.get('/categories', { schema: { response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: S.categorySchema } } } } } },
    async () => ({ items: q.categories.all() }));

  app.get<{ Params: { id: string }; Querystring: PageQuery }>('/categories/:id/products',
    { schema: { params: S.idParam, querystring: S.pageQuery(S.PRODUCT_ID), response: { 200: S.pageOf(S.productSchema) } } },
    async (req) => {
      const { id } = req.params;
      const { limit, cursor } = req.query;
      const cacheKey = `${id}\n${limit}\n${cursor ?? ''}`;
      let p = pages.get(cacheKey);
      if (p === undefined) {
        if (!categoryIds.has(id)) throw notFound(`category ${id}`, 'params.id');
        p = page(q.categoryPage.all(id, cursor ?? '', limit + 1), limit, (r) => r.id, same);
        pages.set(cacheKey, p);
      }
      return p;
    });

  app.get<{ Params: { id: string } }>('/products/:id',
    { schema: { params: S.idParam, response: { 200: S.productSchema } } },
    async (req) => {
      const { id } = req.params;
      let p = products.get(id);
      if (p === undefined) {
        p = q.product.get(id);
        if (p === undefined) throw notFound(`product ${id}`, 'params.id');
        products.set(id, p);
      }
      return p;
    });

  const saveProduct = q.db.transaction((id: string, b: { name: string; categoryId: string; priceCents: number; description: string }) => {
    const { rowid } = q.upsertProduct.get(id, b.categoryId, b.name, b.description, b.priceCents) as { rowid: number };
    q.deleteWords.run(rowid);
    q.insertWords.run(rowid, b.name);
  });

  app.put<{ Params: { id: string }; Body: { name: string; categoryId: string; priceCents: number; description: string } }>('/products/:id',
    { ...auth, schema: { params: S.idParam, body: S.putProductBody, response: { 200: S.productSchema } } },
    async (req) => {
      if (caller(req).role !== 'admin') throw new HttpError(403, 'PP_ERR_FORBIDDEN', 'admins only');
      const { id } = req.params;
      // Changes a product, never creates one (CONTRACT.md: 404 for an unknown id).
      if (q.product.get(id) === undefined) throw notFound(`product ${id}`, 'params.id');
      if (!categoryIds.has(req.body.categoryId)) throw notFound(`category ${req.body.categoryId}`, 'params.categoryId');
      saveProduct(id, req.body);
      // After the commit: the next read loads the new row. Category pages are few and cheap to
      // rebuild, so all of them go (the product may have moved between categories).
      products.delete(id);
      pages.clear();
      return q.product.get(id) as ProductRow;
    });

  app.get<{ Querystring: { q: string; limit: number } }>('/search',
    { schema: { querystring: S.searchQuery, response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: S.productSchema } } } } } },
    async (req) => {
      const term = req.query.q.toLowerCase();
      if (!SEARCH_TERM_RE.test(term)) return { items: [] };
      return { items: q.search.all(`"${term}"*`, req.query.limit) };
    });

  app.get<{ Params: { sku: string } }>('/inventory/:sku',
    { schema: { params: { type: 'object', required: ['sku'], properties: { sku: { type: 'string', minLength: 1, maxLength: 64 } } }, response: { 200: S.inventorySchema } } },
    async (req) => {
      const s = q.stock.get(req.params.sku);
      if (s === undefined) throw notFound(`sku ${req.params.sku}`, 'params.sku');
      return { sku: req.params.sku, available: s.available };
    });

  // --- orders ------------------------------------------------------------------------------------

  type Item = { sku: string; qty: number };
  const canonicalItems = (items: readonly Item[]): string => JSON.stringify(items.map((i) => [i.sku, i.qty]).sort());
  const orderRow = (c: CheckoutRow, seq: number): OrderRow =>
    ({ seq, order_id: c.order_id, user_id: c.user_id, items: c.items, total_cents: c.total_cents, created_at: c.created_at });

  /**
   * Step 1, one transaction: the idempotency check (an order of this key is the answer), price and
   * existence of every SKU, the stock reservations (a throw rolls back the earlier ones) and the
   * pending checkout row. With synchronous = FULL the commit is one fsync.
   */
  const reserve = q.db.transaction((uid: string, items: Item[], idempotencyKey: string | undefined): { order: OrderRow } | { checkout: CheckoutRow } => {
    if (idempotencyKey !== undefined) {
      const prev = q.orderByKey.get(uid, idempotencyKey);
      if (prev !== undefined) {
        // A key is bound to its request's items (CONTRACT.md): the same items in any order replay, others are 409.
        if (canonicalItems(JSON.parse(prev.items) as Item[]) !== canonicalItems(items)) {
          throw new HttpError(409, 'PP_ERR_CONFLICT', 'params.idempotencyKey: already used for an order with other items', 'params.idempotencyKey');
        }
        return { order: prev };
      }
    }
    const prices = items.map((it, i) => {
      const p = q.price.get(it.sku);
      if (p === undefined) throw notFound(`sku ${it.sku}`, `params.items.${i}.sku`);
      return p.priceCents;
    });
    items.forEach((it, i) => {
      if (q.reserve.run(it.qty, it.sku, it.qty).changes === 0) throw new HttpError(409, 'PP_ERR_CONFLICT', `not enough stock of ${it.sku}`, `params.items.${i}.qty`);
    });
    const lines = items.map((it, i) => ({ sku: it.sku, qty: it.qty, priceCents: prices[i] as number }));
    const c: CheckoutRow = {
      order_id: newId('o', 10), user_id: uid, idempotency_key: idempotencyKey ?? null,
      items: JSON.stringify(lines), total_cents: lines.reduce((a, l) => a + l.qty * l.priceCents, 0), created_at: Date.now(),
    };
    q.insertCheckout.run(c.order_id, c.user_id, c.idempotency_key, c.items, c.total_cents, c.created_at);
    return { checkout: c };
  });

  /** Step 3 (the payment is captured), one transaction: the order row and its notification; the checkout is done. */
  const complete = q.db.transaction((c: CheckoutRow): OrderRow => {
    const { seq } = q.insertOrder.get(c.order_id, c.user_id, c.idempotency_key, c.items, c.total_cents, c.created_at) as { seq: number };
    q.insertNotification.run(newId('n', 10), c.user_id, c.order_id, c.total_cents, Date.now());
    q.deleteCheckout.run(c.order_id);
    return orderRow(c, seq);
  });

  /** The undo of step 1, one transaction: the stock given back and the checkout gone (its key may be tried again). */
  const giveBack = q.db.transaction((c: CheckoutRow): void => {
    for (const l of JSON.parse(c.items) as Item[]) q.release.run(l.qty, l.sku);
    q.deleteCheckout.run(c.order_id);
  });

  // Checkouts a crash interrupted between the two transactions: their stock goes back. (The
  // provider's records were in the dead process's memory, as a lapsed authorization would be.)
  q.db.transaction(() => {
    for (const c of q.checkouts.all()) giveBack(c);
  })();

  /** Voids the payment (best effort: a provider that never answers is logged); the state it ends in. */
  async function voidPayment(paymentId: string): Promise<PaymentState | undefined> {
    try {
      return await withRetries(VOID_ATTEMPTS, () => provider.void(paymentId));
    } catch (e) {
      app.log.warn({ err: e, paymentId }, 'payment void failed');
      return undefined;
    }
  }

  /**
   * A checkout: reserve (step 1), authorize then capture the payment (step 2: the payment id is the
   * order id, so retries are idempotent), write the order (step 3). When step 2 fails: void, give
   * the stock back, 402.
   */
  async function checkout(uid: string, items: Item[], idempotencyKey: string | undefined): Promise<OrderRow> {
    const r = reserve(uid, items, idempotencyKey);
    if ('order' in r) return r.order;
    const c = r.checkout;
    try {
      await withRetries(AUTHORIZE_ATTEMPTS, () => provider.authorize(c.order_id, c.total_cents));
      await withRetries(CAPTURE_ATTEMPTS, () => provider.capture(c.order_id));
    } catch (e) {
      // A declined payment has nothing to void. Otherwise an authorization (or a capture whose
      // answer was lost) may have gone through: void it; if it was captured after all, the order stands.
      if (e instanceof PaymentDeclined || (await voidPayment(c.order_id)) !== 'captured') {
        giveBack(c);
        if (e instanceof PaymentDeclined) throw new HttpError(402, 'PP_ERR_PAYMENT_DECLINED', e.message);
        if (e instanceof ProviderTimeout || e instanceof ProviderLost) {
          throw new HttpError(402, 'PP_ERR_PAYMENT_DECLINED', 'the payment could not be completed (the provider did not answer)');
        }
        throw e;
      }
    }
    return complete(c);
  }

  /** The running checkout of each (user, idempotency key): one at a time per key. */
  const running = new Map<string, Promise<OrderRow>>();

  /**
   * With a key, a request waits for the key's running checkout, whose outcome decides: its order
   * (replayed, or 409 for other items, by `reserve`), or, when it failed, a checkout of its own.
   */
  async function placeOrder(uid: string, items: Item[], idempotencyKey: string | undefined): Promise<OrderRow> {
    if (idempotencyKey === undefined) return checkout(uid, items, undefined);
    const k = `${uid}\n${idempotencyKey}`;
    for (let other = running.get(k); other !== undefined; other = running.get(k)) await other.catch(() => undefined);
    const p = checkout(uid, items, idempotencyKey);
    running.set(k, p);
    try {
      return await p;
    } finally {
      if (running.get(k) === p) running.delete(k);
    }
  }

  app.post<{ Body: { items: Item[]; idempotencyKey?: string } }>('/orders',
    { ...auth, schema: { body: S.placeOrderBody, response: { 201: S.orderSchema } } },
    async (req, reply) => {
      const { uid } = caller(req);
      const { items, idempotencyKey } = req.body;
      if (new Set(items.map((i) => i.sku)).size !== items.length) throw invalid('params.items', 'skus must be distinct');
      return reply.code(201).send(orderOut(await placeOrder(uid, items, idempotencyKey)));
    });

  app.get<{ Querystring: PageQuery }>('/orders',
    { ...auth, schema: { querystring: S.pageQuery(S.SEQ_CURSOR), response: { 200: S.pageOf(S.orderSchema) } } },
    async (req) => {
      const { uid } = caller(req);
      const { limit, cursor } = req.query;
      return page(q.ordersPage.all(uid, cursor === undefined ? FIRST_SEQ : Number(cursor), limit + 1), limit, bySeq, orderOut);
    });

  app.get<{ Params: { id: string } }>('/orders/:id',
    { ...auth, schema: { params: S.idParam, response: { 200: S.orderSchema } } },
    async (req) => {
      const { uid } = caller(req);
      const o = q.order.get(req.params.id);
      if (o === undefined || o.user_id !== uid) throw notFound(`order ${req.params.id}`, 'params.id');
      return orderOut(o);
    });

  // --- messages and notifications ----------------------------------------------------------------

  app.post<{ Body: { to: string; text: string } }>('/messages',
    { ...auth, schema: { body: S.sendMessageBody, response: { 202: S.messageIdSchema } } },
    async (req, reply) => {
      const { uid } = caller(req);
      if (q.userById.get(req.body.to) === undefined) throw notFound(`user ${req.body.to}`, 'params.to');
      const messageId = newId('m', 10);
      q.insertMessage.run(messageId, req.body.to, uid, req.body.text, Date.now());
      return reply.code(202).send({ messageId });
    });

  app.get<{ Querystring: PageQuery }>('/messages',
    { ...auth, schema: { querystring: S.pageQuery(S.SEQ_CURSOR), response: { 200: S.pageOf(S.messageSchema) } } },
    async (req) => {
      const { uid } = caller(req);
      const { limit, cursor } = req.query;
      return page(q.messagesPage.all(uid, cursor === undefined ? FIRST_SEQ : Number(cursor), limit + 1), limit, bySeq, same);
    });

  app.get<{ Querystring: PageQuery }>('/notifications',
    { ...auth, schema: { querystring: S.pageQuery(S.SEQ_CURSOR), response: { 200: S.pageOf(S.notificationSchema) } } },
    async (req) => {
      const { uid } = caller(req);
      const { limit, cursor } = req.query;
      return page(q.notificationsPage.all(uid, cursor === undefined ? FIRST_SEQ : Number(cursor), limit + 1), limit, bySeq, same);
    });

  // --- wallet ------------------------------------------------------------------------------------

  app.get('/wallet', { ...auth, schema: { response: { 200: S.walletSchema } } }, async (req) => {
    const { uid } = caller(req);
    const w = q.wallet.get(uid);
    if (w === undefined) throw new HttpError(401, 'PP_ERR_UNAUTHORIZED', 'user no longer exists');
    return { userId: uid, balanceCents: w.balance_cents };
  });

  type TransferOut = { transferId: string; from: string; to: string; amountCents: number; balanceCents: number; createdAt: number };
  /**
   * One transaction: both balances and the transfer row. A transferId the sender used before is
   * the first transfer's answer (nothing moves) if it was to the same user for the same amount.
   */
  const transfer = q.db.transaction((uid: string, toUserId: string, amountCents: number, transferId: string): TransferOut => {
    const from = q.wallet.get(uid);
    if (from === undefined) throw new HttpError(401, 'PP_ERR_UNAUTHORIZED', 'user no longer exists');
    const done = q.transfer.get(uid, transferId);
    if (done !== undefined) {
      if (done.to_user_id !== toUserId || done.amount_cents !== amountCents) {
        throw new HttpError(409, 'PP_ERR_CONFLICT', 'params.transferId: already used for another transfer', 'params.transferId');
      }
      return { transferId, from: uid, to: toUserId, amountCents, balanceCents: from.balance_cents, createdAt: done.created_at };
    }
    if (q.wallet.get(toUserId) === undefined) throw notFound(`user ${toUserId}`, 'params.toUserId');
    if (from.balance_cents < amountCents) {
      throw new HttpError(409, 'PP_ERR_CONFLICT', `params.amountCents: ${amountCents} exceeds the balance (${from.balance_cents})`, 'params.amountCents');
    }
    const { balance_cents: balanceCents } = q.addToWallet.get(-amountCents, uid) as { balance_cents: number };
    q.addToWallet.run(amountCents, toUserId);
    const createdAt = Date.now();
    q.insertTransfer.run(uid, transferId, toUserId, amountCents, createdAt);
    return { transferId, from: uid, to: toUserId, amountCents, balanceCents, createdAt };
  });

  app.post<{ Body: { toUserId: string; amountCents: number; transferId?: string } }>('/wallet/transfers',
    { ...auth, schema: { body: S.transferBody, response: { 201: S.transferSchema } } },
    async (req, reply) => {
      const { uid } = caller(req);
      const { toUserId, amountCents, transferId } = req.body;
      if (toUserId === uid) throw invalid('params.toUserId', 'a transfer goes to another user');
      return reply.code(201).send(transfer(uid, toUserId, amountCents, transferId ?? newId('t', 10)));
    });

  app.get('/health', async () => ({ status: 'ok' }));

  const address = await app.listen({ port: options.port ?? 3000, host: options.host ?? '127.0.0.1' });
  return {
    url: address,
    app,
    async stop() {
      await app.close();
      q.db.close();
    },
  };
}
