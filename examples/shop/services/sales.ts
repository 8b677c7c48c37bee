/**
 * sales: the admin's sales report (`GET /admin/sales?from&to&groupBy=category|day|product`) on
 * columnar mirrors of the orders and products tables (DuckDB, kept in step by the store's change
 * feed). The report never reads the store's row tables: it runs one SQL query over the mirrors
 * (the order's items are JSON, unnested in SQL) and says how fresh the mirror is — feed records not
 * yet applied, the age of the oldest, and the recent commit-to-visible p99.
 *
 * Opt-in (`startShop({ analytics: true })`, PP_ANALYTICS=1): a node with it opens a DuckDB file in
 * its data folder and hosts this service; the route is added to its gateway.
 */
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { action, defineService, openAnalytics, ppError, routeFor, type Analytics, type GatewayRoute, type ParamsOf, type Store, type analytics } from 'powerplant';
import type { TokenPayload } from '../auth.js';
import { isAdmin } from '../routes.js';
import { EpochMs, type OrderRow, type Product } from '../schema.js';
import type { ShopTables } from './deps.js';

declare module 'powerplant/service' {
  interface ServiceRegistry {
    sales: ReturnType<typeof salesService>;
  }
}

const DAY_MS = 86_400_000;
/** Widest report, in ms (a year), and most groups returned. */
export const SALES_RANGE_MS_MAX = 366 * DAY_MS;
export const SALES_GROUPS_MAX = 500;

export const SalesParams = Type.Object(
  {
    from: Type.Optional(EpochMs),
    to: Type.Optional(EpochMs),
    groupBy: Type.Union([Type.Literal('category'), Type.Literal('day'), Type.Literal('product')]),
  },
  { additionalProperties: false },
);

export const SalesReport = Type.Object({
  groupBy: Type.String(),
  from: Type.Integer(),
  to: Type.Integer(),
  groups: Type.Array(Type.Object({ key: Type.String(), orders: Type.Integer(), units: Type.Integer(), revenueCents: Type.Integer() })),
  freshness: Type.Object({
    /** Feed records of the orders table's shards the mirror has not applied yet. */
    lagRecords: Type.Integer(),
    /** Age of the oldest of them, ms (0: caught up). */
    lagMs: Type.Number(),
    /** Store commit to visible in the mirror, p99 of the recent records, ms. */
    commitToVisibleP99Ms: Type.Number(),
  }),
  queryMs: Type.Number(),
});
export type SalesReport = Static<typeof SalesReport>;

export interface Sales {
  readonly analytics: Analytics;
  readonly orders: analytics.Mirror<OrderRow>;
  readonly products: analytics.Mirror<Product>;
  close(): Promise<void>;
}

/** Opens the node's DuckDB file (`<dataDir>/analytics.duckdb`) and mirrors orders and products. */
export async function openSales(store: Store, tables: ShopTables, dataDir: string): Promise<Sales> {
  const a = await openAnalytics(store, { path: join(dataDir, 'analytics.duckdb'), query: { timeoutMs: 5000, rowsMax: SALES_GROUPS_MAX } });
  try {
    const orders = await a.mirror(tables.orders, { partitionBy: { kind: 'time', column: 'createdAt', everyMs: 7 * DAY_MS } });
    const products = await a.mirror(tables.products);
    return { analytics: a, orders, products, close: () => a.close() };
  } catch (err) {
    await a.close();
    throw err;
  }
}

const ITEMS = `unnest(from_json(o.items, '[{"sku":"VARCHAR","qty":"BIGINT","priceCents":"BIGINT"}]')) AS t(it)`;
const KEYS = {
  product: { key: 'it.sku', join: '' },
  category: { key: "coalesce(p.categoryId, '(unknown)')", join: ' LEFT JOIN products p ON p.id = it.sku' },
  day: { key: 'CAST(CAST(to_timestamp(floor(o.createdAt / 86400000) * 86400) AS DATE) AS VARCHAR)', join: '' },
} as const;

export function salesService(sales: Sales) {
  return defineService({
    name: 'sales',
    actions: {
      report: action({
        params: SalesParams,
        result: SalesReport,
        idempotent: true,
        handler: async (_ctx, p): Promise<SalesReport> => {
          const to = p.to ?? Date.now();
          const from = p.from ?? to - 30 * DAY_MS;
          if (from > to) throw ppError('PP_ERR_VALIDATION', { field: 'params.from', message: 'params.from: must not be after params.to' });
          if (to - from > SALES_RANGE_MS_MAX) throw ppError('PP_ERR_VALIDATION', { field: 'params.from', message: `params.from: the range may span at most ${SALES_RANGE_MS_MAX} ms` });
          const k = KEYS[p.groupBy];
          const sql =
            `SELECT ${k.key} AS key, count(DISTINCT o.userId || '/' || o.orderId) AS orders, sum(it.qty) AS units, sum(it.qty * it.priceCents) AS revenueCents ` +
            `FROM orders o, ${ITEMS}${k.join} WHERE o.createdAt >= $1 AND o.createdAt < $2 GROUP BY 1 ORDER BY revenueCents DESC, key LIMIT ${SALES_GROUPS_MAX}`;
          const [r, lag] = await Promise.all([sales.analytics.query<SalesReport['groups'][number]>(sql, [from, to]), sales.orders.lag()]);
          return {
            groupBy: p.groupBy,
            from,
            to,
            groups: r.rows.map((g) => ({ key: String(g.key), orders: Number(g.orders), units: Number(g.units), revenueCents: Number(g.revenueCents) })),
            freshness: { lagRecords: lag.records, lagMs: lag.ms, commitToVisibleP99Ms: sales.orders.stats().freshnessMs.p99 },
            queryMs: Math.round(r.elapsedMs * 100) / 100,
          };
        },
      }),
    },
  });
}

/** A query-string epoch-ms integer as a number; anything else passed on for the schema to name. */
function epochMs(v: unknown): number {
  return (typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v) as number;
}

/** `GET /admin/sales?from&to&groupBy` (admin only). */
export function salesRoutes(): GatewayRoute<TokenPayload>[] {
  const route = routeFor<TokenPayload>();
  return [
    route({
      method: 'GET', url: '/admin/sales', action: 'sales.report', auth: 'required', authorize: isAdmin, resultSchema: SalesReport,
      params: (req) => {
        const q = req.query as Record<string, unknown>;
        const out = { groupBy: q.groupBy } as ParamsOf<'sales.report'>;
        if (q.from !== undefined) out.from = epochMs(q.from);
        if (q.to !== undefined) out.to = epochMs(q.to);
        return out;
      },
    }),
  ];
}
