/**
 * The reference backend: a shop on Powerplant's public API (CONTRACT.md is its specification).
 *
 *   startShop()                         embedded: SQLite shards + file queue under ./data/shop,
 *                                       in-process cache and transport, http://127.0.0.1:3000
 *   startShop({ store: 'postgres://…', redis: 'redis://…', nats: 'nats://…' })   the same code across machines
 *   powerplant start examples/shop      `start(ctx)` below: the platform's application-module
 *                                       contract (npm start); options from the PP_* environment
 *   powerplant bench examples/shop      `loadMix` (loadmix.ts): the shop's request mix
 *
 * One node = one store handle, one queue handle, the caches, the services it runs
 * (`services`, default all six) and optionally the HTTP gateway. What flows where:
 * - reads of products go through the cache (L1, + Redis L2), invalidated from the store's change
 *   feed on every node; category pages and search results are cached briefly and dropped on any
 *   product write (same feed);
 * - an order row commits with its change record; an outbox turns that record into an
 *   order-created message on the queue, which the notifier's consumer group turns into a
 *   notification; messages between users travel through the queue into the recipient's inbox.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  createCache, createGateway, createNode, createOutbox, openQueue, openStore, openTransactions, openWorkflows, readThroughTable, tx,
  type ChangeRecord, type Gateway, type Logger, type RunningApp, type ServiceNode, type StartContext, type Store, type Transactions, type Workflows,
} from 'powerplant';
import { sessionKey as makeSessionKey } from './auth.js';
import { shopDetails } from './banner.js';
import { DEFAULT_PREFERENCES, TABLES, type Preferences, type Product } from './schema.js';
import { seedShop } from './seed.js';
import { catalogService } from './services/catalog.js';
import { checkoutWorkflow, type NodeRef } from './services/checkout.js';
import type { PaymentsConfig, ShopDeps, ShopTables } from './services/deps.js';
import { inventoryService } from './services/inventory.js';
import { messagesService } from './services/messages.js';
import { notifierService, type OrderCreatedEvent } from './services/notifier.js';
import { ordersService } from './services/orders.js';
import { DEFAULT_PAYMENTS, paymentsService } from './services/payments.js';
import { usersService } from './services/users.js';
import { walletService } from './services/wallet.js';
import { openSales, salesRoutes, salesService, type Sales } from './services/sales.js';
import { shopGateway } from './routes.js';
import { ViewRecorder, startShopStats, statsService, statsTables, statsTopics, type StatsOptions } from './stats.js';

// Registering the services' types makes ctx.call('catalog.get', …) type-checked everywhere.
// Augmented through 'powerplant/service' (where ServiceRegistry is declared): an augmentation of
// 'powerplant' itself does not reach the interface ctx.call reads (tsc 5.9; see the report).
declare module 'powerplant/service' {
  interface ServiceRegistry {
    users: ReturnType<typeof usersService>;
    catalog: ReturnType<typeof catalogService>;
    inventory: ReturnType<typeof inventoryService>;
    orders: ReturnType<typeof ordersService>;
    messages: ReturnType<typeof messagesService>;
    notifier: ReturnType<typeof notifierService>;
    payments: ReturnType<typeof paymentsService>;
    wallet: ReturnType<typeof walletService>;
    stats: ReturnType<typeof statsService>;
  }
}

export const SERVICE_NAMES = ['users', 'catalog', 'inventory', 'orders', 'messages', 'notifier', 'payments', 'wallet'] as const;
export type ShopServiceName = (typeof SERVICE_NAMES)[number];

export interface ShopOptions {
  /** Gateway port (0 = a free one). Default 3000. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Embedded SQLite shards and queue log. Default ./data/shop. */
  dataDir?: string;
  /** Store engine URL. Default `sqlite:<dataDir>/store`. */
  store?: string;
  /** Store shards. Default 4. */
  shards?: number;
  /** `redis://…`: cache L2 and invalidation bus. Default none (L1 only). */
  redis?: string;
  /** `nats://…`: transport and JetStream queue. Default in-process transport, embedded queue. */
  nats?: string;
  /** The live statistics (stats.ts: stream jobs over orders and catalog reads); false turns them off. Default on. */
  stats?: StatsOptions | false;
  nodeId?: string;
  /** Cluster namespace; also prefixes Redis keys and queue topics. Default 'shop'. */
  namespace?: string;
  /** Services this node runs. Default all. */
  services?: readonly string[];
  /** Serve HTTP. Default true. */
  gateway?: boolean;
  /** Write the seed data (idempotent). Default true. */
  seed?: boolean;
  /**
   * Columnar mirrors of orders and products (DuckDB, `<dataDir>/analytics.duckdb`) and the admin's
   * `GET /admin/sales` on them (services/sales.ts). Default false (PP_ANALYTICS=1).
   */
  analytics?: boolean;
  /** HMAC key of session tokens (>= 16 bytes). Default: random per store, kept in its kv. */
  sessionSecret?: string;
  /** A logger or options for one. Default: warnings and errors only (PP_LOG_LEVEL overrides). */
  logger?: Logger | { level?: string } | false;
  /** The simulated payment provider (services/payments.ts). Default: instant, never fails. */
  payments?: Partial<PaymentsConfig>;
  /** Store credit of a new user's wallet, cents. Default 10,000. */
  signUpCreditCents?: number;
}

export interface Shop {
  /** The gateway's address ('' when this node runs no gateway). */
  readonly url: string;
  readonly node: ServiceNode;
  readonly store: Store;
  /** The platform's transactions and workflows this node opened on the store. */
  readonly txs: Transactions;
  readonly workflows: Workflows;
  /** How long startShop took, and whether it wrote seed data. */
  readonly startup: { readonly ms: number; readonly seeded: boolean };
  stop(): Promise<void>;
}

/**
 * CONTRACT.md's environment (PP_PORT, PP_STORE, …) as options. Throws a RangeError naming the
 * variable for a bad value.
 */
export function shopOptionsFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): ShopOptions {
  const o: ShopOptions = {};
  const get = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (k: string, min: number, max: number): number | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${k} must be an integer in [${min}, ${max}] (got '${v}')`);
    return n;
  };
  const bool = (k: string): boolean | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    if (v === '1' || v === 'true') return true;
    if (v === '0' || v === 'false') return false;
    throw new RangeError(`${k} must be 0 or 1 (got '${v}')`);
  };
  const port = int('PP_PORT', 0, 65_535);
  if (port !== undefined) o.port = port;
  const shards = int('PP_SHARDS', 1, 1024);
  if (shards !== undefined) o.shards = shards;
  for (const [k, key] of [['PP_HOST', 'host'], ['PP_DATA_DIR', 'dataDir'], ['PP_STORE', 'store'], ['PP_REDIS', 'redis'], ['PP_NATS', 'nats'],
    ['PP_NODE_ID', 'nodeId'], ['PP_NAMESPACE', 'namespace'], ['PP_SESSION_SECRET', 'sessionSecret']] as const) {
    const v = get(k);
    if (v !== undefined) o[key] = v;
  }
  const services = get('PP_SERVICES');
  if (services !== undefined && services !== 'all') o.services = services.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const gateway = bool('PP_GATEWAY');
  if (gateway !== undefined) o.gateway = gateway;
  const seed = bool('PP_SEED');
  if (seed !== undefined) o.seed = seed;
  const analytics = bool('PP_ANALYTICS');
  if (analytics !== undefined) o.analytics = analytics;
  const rate = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n > 1) throw new RangeError(`${k} must be a number in [0, 1] (got '${v}')`);
    return n;
  };
  const payments: { -readonly [K in keyof PaymentsConfig]?: PaymentsConfig[K] } = {};
  const latencyMs = int('PP_PAYMENTS_LATENCY_MS', 0, 60_000);
  if (latencyMs !== undefined) payments.latencyMs = latencyMs;
  const pseed = int('PP_PAYMENTS_SEED', 0, 2 ** 31 - 1);
  if (pseed !== undefined) payments.seed = pseed;
  for (const [k, key] of [['PP_PAYMENTS_DECLINE_RATE', 'declineRate'], ['PP_PAYMENTS_TIMEOUT_RATE', 'timeoutRate'], ['PP_PAYMENTS_CRASH_RATE', 'crashRate']] as const) {
    const v = rate(k);
    if (v !== undefined) payments[key] = v;
  }
  if (Object.keys(payments).length > 0) o.payments = payments;
  if (bool('PP_STATS') === false) o.stats = false;
  return o;
}

/** Reads the store's session secret, creating it once (insert-if-absent, so every node agrees). */
async function storedSecret(store: Store): Promise<string> {
  const meta = await store.kv<string>('meta');
  for (;;) {
    const have = await meta.get('sessionSecret');
    if (have !== undefined) return have.value;
    try {
      await meta.cas('sessionSecret', 0, randomBytes(32).toString('base64url'));
    } catch {
      // Another node created it first (or the write failed): read again.
    }
  }
}

export async function startShop(options: ShopOptions = {}): Promise<Shop> {
  const t0 = performance.now();
  const ns = options.namespace ?? 'shop';
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(ns)) throw new RangeError(`namespace must match [A-Za-z0-9_-]{1,40} (got '${ns}')`);
  const wanted = options.services ?? SERVICE_NAMES;
  for (const s of wanted) if (!(SERVICE_NAMES as readonly string[]).includes(s)) throw new RangeError(`unknown service '${s}' (services: ${SERVICE_NAMES.join(', ')})`);
  const runs = (s: ShopServiceName): boolean => wanted.includes(s);
  const dataDir = options.dataDir ?? './data/shop';
  const nodeId = options.nodeId ?? `${ns}-${randomBytes(4).toString('hex')}`;
  const closers: (() => Promise<unknown>)[] = []; // in reverse order of opening
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  };

  try {
    const storeUrl = options.store ?? `sqlite:${join(dataDir, 'store')}`;
    if (storeUrl.startsWith('sqlite:') || options.nats === undefined) mkdirSync(dataDir, { recursive: true });
    const store = await openStore({ engine: storeUrl, shards: options.shards ?? 4 });
    closers.push(() => store.close());
    const T = TABLES;
    const [users, emails, categories, productsTable, productTerms, inventory, orders, wallets, transfers, payments, inbox, notifications] = await Promise.all([
      store.table('users', T.users),
      store.table('emails', T.emails),
      store.table('categories', T.categories),
      store.table('products', T.products),
      store.table('productTerms', T.productTerms),
      store.table('inventory', T.inventory),
      store.table('orders', T.orders),
      store.table('wallets', T.wallets),
      store.table('transfers', T.transfers),
      store.table('payments', T.payments),
      store.table('inbox', T.inbox),
      store.table('notifications', T.notifications),
    ]);
    const tables: ShopTables = { users, emails, categories, products: productsTable, productTerms, inventory, orders, wallets, transfers, payments, inbox, notifications };
    // The platform's transactions and workflows on the same store (their tables on every shard).
    const txs = await openTransactions(store);
    closers.push(() => txs.close());
    const workflows = await openWorkflows(store, txs, { owner: nodeId, pollMs: 10 });
    closers.push(() => workflows.close());
    const [meta, preferences] = await Promise.all([store.kv<unknown>('meta'), store.kv<Preferences>('preferences')]);

    // Seeding runs while the rest starts (it only needs the tables).
    const seeding = options.seed === false ? Promise.resolve(false) : seedShop(tables, meta);
    seeding.catch(() => undefined); // awaited below; not unhandled if something else fails first

    const secret = options.sessionSecret ?? (await storedSecret(store));
    const sessionKey = makeSessionKey(secret);

    // Caches. Redis keys and the invalidation channel carry the namespace.
    const redis = options.redis === undefined ? {} : { l2: options.redis, l2Options: { prefix: `${ns}:cache:` }, busOptions: { channel: `${ns}:cache:inv` } };
    const productCache = await createCache<Product>({ namespace: 'products', nodeId, l1: { entriesMax: 50_000 }, ttlMs: 300_000, ...redis });
    closers.push(() => productCache.close());
    const pages = await createCache<unknown>({ namespace: 'pages', nodeId, l1: { entriesMax: 20_000 }, ttlMs: 10_000, negativeTtlMs: 0 });
    closers.push(() => pages.close());
    const products = await readThroughTable(productCache, tables.products, store.feed, { pollIntervalMs: 50 });
    closers.push(() => products.close());
    const derived = new Set(['products', 'productTerms', 'categories']);
    const pagesFeed = await store.feed.subscribe({
      from: 'latest',
      only: { tables: [...derived] },
      pollIntervalMs: 50,
      retryDelayMs: 100,
      handler: (records: readonly ChangeRecord[]) => {
        for (const r of records) {
          if (r.source === 'table' && derived.has(r.name)) {
            pages.clearLocal();
            return;
          }
        }
      },
    });
    closers.push(() => pagesFeed.close());

    // Queue: JetStream with NATS, else the embedded log. Topic names carry the namespace.
    const queue = await openQueue({ engine: options.nats ?? `file:${join(dataDir, 'queue')}` });
    closers.push(() => queue.close());
    const topics = { orderCreated: `${ns}-order-created`, messages: `${ns}-messages` };
    await Promise.all([queue.createTopic(topics.orderCreated, { partitions: 4 }), queue.createTopic(topics.messages, { partitions: 4 })]);

    // Live statistics: catalog nodes turn reads into view events, orders nodes run the jobs and serve them.
    const statsOn = options.stats !== false;
    const statsOptions = options.stats === false ? {} : (options.stats ?? {});
    const views = statsOn && runs('catalog') ? new ViewRecorder(queue, statsTopics(ns).productEvents, statsOptions) : undefined;
    if (views !== undefined) {
      await queue.createTopic(statsTopics(ns).productEvents, { partitions: 4 });
      closers.push(() => views.close());
    }
    const statsT = statsOn && runs('orders') ? await statsTables(store) : undefined;
    const paymentsConfig: PaymentsConfig = { ...DEFAULT_PAYMENTS, ...options.payments };
    for (const k of ['declineRate', 'timeoutRate', 'crashRate'] as const) {
      if (!(paymentsConfig[k] >= 0 && paymentsConfig[k] <= 1)) throw new RangeError(`payments.${k} must be in [0, 1]`);
    }
    const signUpCreditCents = options.signUpCreditCents ?? 10_000;
    if (!Number.isInteger(signUpCreditCents) || signUpCreditCents < 0) throw new RangeError('signUpCreditCents must be an integer >= 0');
    const deps: ShopDeps = { namespace: ns, store, tables, preferences, products, pages, queue, topics, sessionKey, txs, workflows, payments: paymentsConfig, signUpCreditCents, ...(views === undefined ? {} : { views }) };
    // The checkout workflow calls services through this node (set once it exists); every node
    // running orders registers it, so any of them resumes a checkout whose node died.
    const nodeRef: NodeRef = { node: undefined };
    const checkout = checkoutWorkflow(deps, nodeRef);
    if (runs('orders')) workflows.register(checkout);
    const factories = {
      users: usersService,
      catalog: catalogService,
      inventory: inventoryService,
      orders: (x: ShopDeps) => ordersService(x, checkout),
      messages: messagesService,
      notifier: notifierService,
      payments: paymentsService,
      wallet: walletService,
    };
    const services = [...SERVICE_NAMES.filter(runs).map((s) => factories[s](deps)), ...(statsT === undefined ? [] : [statsService(statsT, statsOptions)])];
    let sales: Sales | undefined;
    if (options.analytics === true) {
      sales = await openSales(store, tables, dataDir);
      closers.push(() => sales!.close());
    }

    const seeded = await seeding;

    const node = createNode({
      nodeId,
      namespace: ns,
      transport: options.nats ?? `inproc://${nodeId}`,
      services: sales === undefined ? services : [...services, salesService(sales)],
      logger: options.logger ?? { level: process.env.PP_LOG_LEVEL ?? 'warn' },
    });
    // Every record a consumer gives up on is logged and counted on this node (pp_queue_dead_letters_total).
    queue.instrument({ logger: node.logger, metrics: node.metrics });
    nodeRef.node = node;
    await node.start();
    closers.push(() => node.stop());

    // The order-created event: a transactional outbox over the orders table's change feed. Every
    // node running orders runs it; they publish the same records under the same message ids
    // (`outbox:<name>:<shard>:<position>:<i>`), which the queue dedups (embedded log: per topic;
    // JetStream: Nats-Msg-Id in the stream's duplicate window), and the notifier's insert is
    // idempotent besides.
    if (runs('orders')) {
      const outbox = await createOutbox({
        store,
        queue,
        name: `${ns}-orders`,
        pollIntervalMs: 50,
        routes: {
          // The checkout's capture step sets paidAt (the row's second version): then the order is made.
          orders: (c) => {
            if (c.op !== 'put' || c.version !== 2 || c.row === undefined || (c.row as { paidAt?: number }).paidAt === undefined) return undefined;
            const r = c.row as { userId: string; orderId: string; totalCents: number; createdAt: number };
            const message: OrderCreatedEvent = { userId: r.userId, orderId: r.orderId, totalCents: r.totalCents, createdAt: r.createdAt };
            return { topic: topics.orderCreated, key: r.userId, message };
          },
        },
        onError: (err) => node.logger.warn({ err }, 'shop: order-created outbox error'),
      });
      closers.push(() => outbox.close());
    }

    let stats: Awaited<ReturnType<typeof startShopStats>> | undefined;
    if (statsT !== undefined) {
      stats = await startShopStats({ store, queue, ns, tables: statsT, product: (sku) => products.get(sku), options: statsOptions, metrics: node.metrics, onError: (err) => node.logger.warn({ err }, 'shop: stats error') });
      const running = stats;
      closers.push(() => running.close());
    }

    let url = '';
    if (options.gateway !== false) {
      // The platform's Idempotency-Key header on every POST/PUT/PATCH route (CONTRACT.md), keys
      // scoped per user (per client address before sign-in).
      const idempotencyKeys = await tx.openIdempotency(store);
      const gw = shopGateway(sessionKey);
      const routes = sales === undefined ? gw.routes : [...(gw.routes ?? []), ...salesRoutes()];
      const gateway: Gateway = createGateway(node, {
        ...gw,
        routes,
        idempotency: { keys: idempotencyKeys, scope: (req, me) => (me === undefined ? `ip:${req.ip}` : me.uid) },
        status: async () => ({
          partitions: store.describe(),
          workflows: { counts: await workflows.counts(), running: await workflows.list({ limit: 20 }), transactions: txs.stats() },
          ...(stats === undefined ? {} : { streams: await Promise.all(stats.jobs.map((j) => j.status())) }),
        }),
      });
      closers.push(() => gateway.close());
      url = await gateway.listen(options.port ?? 3000, options.host ?? '127.0.0.1');
    }

    // Order of closing: gateway, outbox, node (stop() closes the services' queue consumers), then
    // the feed followers, queue, caches and store.
    const ordered = closers.splice(0);
    const stopOrder = [...ordered].reverse();
    let stopping: Promise<void> | undefined;
    return {
      url,
      node,
      store,
      txs,
      workflows,
      startup: { ms: Math.round(performance.now() - t0), seeded },
      stop() {
        stopping ??= (async () => {
          for (const c of stopOrder) {
            try {
              await c();
            } catch (err) {
              node.logger.warn({ err }, 'shop: error while stopping');
            }
          }
        })();
        return stopping;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * `powerplant start examples/shop`: the shop as an application module (the CLI's `StartModule`
 * contract). The PP_* environment (CONTRACT.md) configures it; the CLI's resolved port, host and
 * NATS URL (`--port`, `--host`, `--nats`, which win over PP_PORT, PP_HOST, PP_NATS) override it. A
 * bad variable is a RangeError naming it, which the CLI reports as a command-line error.
 */
export async function start(ctx: StartContext): Promise<RunningApp> {
  const options: ShopOptions = { ...shopOptionsFromEnv(ctx.env), port: ctx.port, host: ctx.host };
  if (ctx.nats !== undefined) options.nats = ctx.nats;
  const shop = await startShop(options);
  return { url: shop.url, stop: () => shop.stop(), banner: shopDetails(shop, options) };
}

export { DEFAULT_PREFERENCES };
export { shopBanner, shopDetails } from './banner.js';
export { loadMix } from './loadmix.js';
