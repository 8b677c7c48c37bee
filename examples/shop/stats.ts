/**
 * The shop's live statistics, on the stream jobs (docs/stream.md), fed from the orders table's
 * change feed and from the catalog's reads:
 *
 *   orders (change feed) --outbox, items enriched with their category--> `<ns>-sales` (key: category)
 *                        \-----------------------------------------> `<ns>-product-events` (key: sku)
 *   catalog reads (views, batched per second per product) ---------> `<ns>-product-events`
 *
 *   `<ns>-sales`          -> sales per category per minute (tumbling)          -> category_sales table
 *   `<ns>-product-events` -> views and ordered units per product over a sliding
 *                            hour, every ten minutes (score = views + 10 × units) -> trending table
 *
 * Served by the `stats` service: `GET /stats/categories` (the last minutes of sales per category)
 * and `GET /trending` (the top products of the latest complete hour). Results are written exactly
 * once into the tables; windows close on event time, so the current minute shows once later
 * orders (or views) move event time past it.
 */
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { action, createJob, createOutbox, defineService, sliding, tumbling, type Queue, type Store } from 'powerplant';
import type { MetricsRegistry } from 'powerplant/observe';
import type { Outbox } from 'powerplant/queue';
import type { Job } from 'powerplant/stream';
import type { Product } from './schema.js';

export interface StatsOptions {
  /** The "minute" of the sales windows and the slide of the trending window, in ms. Default 60000. */
  readonly minuteMs?: number;
  /** The trending window, in ms. Default 3600000. */
  readonly hourMs?: number;
  /** How often the trending window slides, in ms (divides hourMs). Default hourMs / 6 (ten minutes): a product event updates 6 windows, not 60. */
  readonly slideMs?: number;
  /** How often catalog reads are published as view events (one per product read in that time), in ms. Default 5000. */
  readonly viewFlushMs?: number;
  /** Products whose views are held between two flushes (more are counted as dropped). Default 10000. */
  readonly viewKeysMax?: number;
}

export const STATS_DEFAULTS = { minuteMs: 60_000, hourMs: 3_600_000, viewKeysMax: 10_000, viewFlushMs: 5000 } as const;

export const CategorySalesRow = Type.Object({ categoryId: Type.String(), minute: Type.Integer(), units: Type.Integer(), cents: Type.Integer() });
export const TrendingRow = Type.Object({ sku: Type.String(), start: Type.Integer(), views: Type.Integer(), units: Type.Integer(), score: Type.Integer() });

interface SaleEvent {
  readonly sku: string;
  readonly categoryId: string;
  readonly units: number;
  readonly cents: number;
  readonly at: number;
}
interface ProductEvent {
  readonly sku: string;
  readonly views: number;
  readonly units: number;
  readonly at: number;
}

const CategorySalesResult = Type.Object({
  minuteMs: Type.Integer(),
  items: Type.Array(CategorySalesRow),
});
const TrendingResult = Type.Object({
  window: Type.Union([Type.Object({ start: Type.Integer(), end: Type.Integer() }), Type.Null()]),
  items: Type.Array(Type.Object({ sku: Type.String(), views: Type.Integer(), units: Type.Integer(), score: Type.Integer() })),
});

export interface StatsTopics {
  readonly sales: string;
  readonly productEvents: string;
}

export function statsTopics(ns: string): StatsTopics {
  return { sales: `${ns}-sales`, productEvents: `${ns}-product-events` };
}

/** The tables the jobs write and the service reads. */
export async function statsTables(store: Store) {
  const [categorySales, trending] = await Promise.all([
    store.table('shop_category_sales', { schema: CategorySalesRow, primaryKey: ['categoryId', 'minute'], indexes: { byMinute: ['minute'] } }),
    store.table('shop_trending', { schema: TrendingRow, primaryKey: ['sku', 'start'], indexes: { byScore: ['start', 'score'] } }),
  ]);
  return { categorySales, trending };
}
type Tables = Awaited<ReturnType<typeof statsTables>>;

/** The `stats` service: reads of the tables the jobs fill. */
export function statsService(tables: Tables, options: StatsOptions = {}) {
  const { minuteMs, hourMs } = { ...STATS_DEFAULTS, ...options };
  return defineService({
    name: 'stats',
    actions: {
      categories: action({
        params: Type.Object({ minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 60 })) }, { additionalProperties: false }),
        result: CategorySalesResult,
        idempotent: true,
        handler: async (_ctx, p): Promise<Static<typeof CategorySalesResult>> => {
          const latest = (await tables.categorySales.query({ index: 'byMinute', order: 'desc', limit: 1 })).items[0];
          if (latest === undefined) return { minuteMs, items: [] };
          const from = latest.row.minute - ((p.minutes ?? 10) - 1) * minuteMs;
          const page = await tables.categorySales.query({ index: 'byMinute', range: { gte: from }, order: 'desc', limit: 1000 });
          return { minuteMs, items: page.items.map((i) => i.row) };
        },
      }),
      trending: action({
        params: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })) }, { additionalProperties: false }),
        result: TrendingResult,
        idempotent: true,
        handler: async (_ctx, p): Promise<Static<typeof TrendingResult>> => {
          const latest = (await tables.trending.query({ index: 'byScore', order: 'desc', limit: 1 })).items[0];
          if (latest === undefined) return { window: null, items: [] };
          const start = latest.row.start;
          const page = await tables.trending.query({ index: 'byScore', where: { start }, order: 'desc', limit: p.limit ?? 10 });
          return { window: { start, end: start + hourMs }, items: page.items.map(({ row }) => ({ sku: row.sku, views: row.views, units: row.units, score: row.score })) };
        },
      }),
    },
  });
}

/**
 * Catalog reads as events: counted per product in memory and published every `viewFlushMs` (one
 * message per product viewed in that time, event time = the flush), so a read costs a Map
 * update, not a queue append. At most `viewKeysMax` products per flush; beyond, views are dropped
 * and counted.
 */
export class ViewRecorder {
  readonly #queue: Queue;
  readonly #topic: string;
  readonly #max: number;
  #counts = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  dropped = 0;
  published = 0;

  constructor(queue: Queue, topic: string, options: StatsOptions = {}) {
    this.#queue = queue;
    this.#topic = topic;
    this.#max = options.viewKeysMax ?? STATS_DEFAULTS.viewKeysMax;
    this.#timer = setInterval(() => void this.flush(), options.viewFlushMs ?? STATS_DEFAULTS.viewFlushMs);
    this.#timer.unref();
  }

  record(sku: string): void {
    const n = this.#counts.get(sku);
    if (n !== undefined) this.#counts.set(sku, n + 1);
    else if (this.#counts.size < this.#max) this.#counts.set(sku, 1);
    else this.dropped++;
  }

  async flush(): Promise<void> {
    if (this.#counts.size === 0) return;
    const batch = this.#counts;
    this.#counts = new Map();
    const at = Date.now();
    const sent = await Promise.allSettled([...batch].map(([sku, views]) => this.#queue.publish(this.#topic, { sku, views, units: 0, at } satisfies ProductEvent, { key: sku })));
    for (const r of sent) if (r.status === 'fulfilled') this.published++;
    else this.dropped++;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(() => undefined);
  }
}

export interface ShopStats {
  readonly jobs: readonly Job[];
  readonly outbox: Outbox;
  close(): Promise<void>;
}

/**
 * Starts the outbox that turns new orders into sale and product events, and the two jobs. Every
 * node running the orders service runs them: the outbox's messages carry ids of their change, so
 * several nodes publish each once; the jobs share the topics' partitions.
 */
export async function startShopStats(o: { store: Store; queue: Queue; ns: string; tables: Tables; product: (sku: string) => Promise<Product | undefined>; onError?: (err: unknown) => void; metrics?: MetricsRegistry; options?: StatsOptions }): Promise<ShopStats> {
  const { minuteMs, hourMs } = { ...STATS_DEFAULTS, ...o.options };
  const slideMs = o.options?.slideMs ?? hourMs / 6;
  if (!(Number.isInteger(slideMs) && slideMs > 0 && hourMs % slideMs === 0)) throw new RangeError(`stats.slideMs must divide stats.hourMs (got ${slideMs} and ${hourMs})`);
  const topics = statsTopics(o.ns);
  await Promise.all([o.queue.createTopic(topics.sales, { partitions: 4 }), o.queue.createTopic(topics.productEvents, { partitions: 4 })]);
  const outbox = await createOutbox({
    store: o.store,
    queue: o.queue,
    name: `${o.ns}-stats`,
    pollIntervalMs: 50,
    routes: {
      orders: async (c) => {
        if (c.op !== 'put' || c.version !== 1 || c.row === undefined) return undefined;
        const r = c.row as { items: { sku: string; qty: number; priceCents: number }[]; createdAt: number };
        const out = [];
        for (const it of r.items) {
          // The category is looked up once, here; the sale event then carries it (the job stays deterministic).
          const p = await o.product(it.sku);
          const sale: SaleEvent = { sku: it.sku, categoryId: p?.categoryId ?? 'unknown', units: it.qty, cents: it.qty * it.priceCents, at: r.createdAt };
          out.push({ topic: topics.sales, key: sale.categoryId, message: sale });
          out.push({ topic: topics.productEvents, key: it.sku, message: { sku: it.sku, views: 0, units: it.qty, at: r.createdAt } satisfies ProductEvent });
        }
        return out;
      },
    },
    ...(o.onError === undefined ? {} : { onError: o.onError }),
  });
  // `<ns>_<job>` when it fits a job name (33 characters, a letter first), else `<job>_<hash of ns>`:
  // never truncated, so two jobs of one namespace never share a name.
  const jobName = (s: string): string => {
    const plain = `${o.ns.replace(/[^A-Za-z0-9_]/g, '_')}_${s}`;
    return /^[A-Za-z]/.test(plain) && plain.length <= 33 ? plain : `${s}_${createHash('sha256').update(o.ns).digest('hex').slice(0, 16)}`;
  };
  const lateness = { outOfOrdernessMs: Math.min(5000, minuteMs / 4), allowedLatenessMs: minuteMs };

  const common = { store: o.store, queue: o.queue, ...(o.onError === undefined ? {} : { onError: o.onError }), ...(o.metrics === undefined ? {} : { metrics: o.metrics }) };
  const sales = createJob(jobName('sales'), common);
  sales
    .from<SaleEvent>(topics.sales, { timestamp: (e) => e.at })
    .keyBy((e) => e.categoryId)
    .window(tumbling(minuteMs), lateness)
    .aggregate<{ units: number; cents: number }, { units: number; cents: number }>({
      init: () => ({ units: 0, cents: 0 }),
      add: (a, e) => ({ units: a.units + e.units, cents: a.cents + e.cents }),
      result: (a) => a,
    })
    .toTable(o.tables.categorySales, (r) => ({ categoryId: r.key, minute: r.start, units: r.value.units, cents: r.value.cents }));

  const trending = createJob(jobName('trending'), common);
  trending
    .from<ProductEvent>(topics.productEvents, { timestamp: (e) => e.at })
    .keyBy((e) => e.sku)
    .window(sliding(hourMs, slideMs), lateness)
    .aggregate<{ views: number; units: number }, { views: number; units: number }>({
      init: () => ({ views: 0, units: 0 }),
      add: (a, e) => ({ views: a.views + e.views, units: a.units + e.units }),
      result: (a) => a,
    })
    .toTable(o.tables.trending, (r) => ({ sku: r.key, start: r.start, views: r.value.views, units: r.value.units, score: r.value.views + 10 * r.value.units }));

  await Promise.all([sales.start(), trending.start()]);
  return {
    jobs: [sales, trending],
    outbox,
    async close() {
      await outbox.close();
      await Promise.allSettled([sales.stop(), trending.stop()]);
    },
  };
}
