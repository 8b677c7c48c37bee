/**
 * Quickstart: a typed service over a partitioned table, read through a cache, behind the HTTP
 * gateway — all embedded (SQLite files, in-process cache and transport), using only the public API.
 *
 *   npx tsx examples/quickstart.ts            # serves http://127.0.0.1:3000
 *
 * The same code runs across machines by changing URLs only: `engine: 'postgres://…'`,
 * `transport: 'nats://…'`, `l2: 'redis://…'`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { action, createCache, createGateway, createNode, defineService, openStore, ppError, type Cache, type Table } from 'powerplant';

const Product = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  name: Type.String({ minLength: 1 }),
  priceCents: Type.Integer({ minimum: 0 }),
});
type Product = Static<typeof Product>;

/** The products service over a table and a cache (a factory, so the registry can name its type). */
function productsService(products: Table<Product>, cache: Cache<Product>) {
  return defineService({
    name: 'products',
    actions: {
      get: action({
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
        result: Product,
        idempotent: true,
        handler: async (_ctx, { id }) => {
          // One loader call per key however many requests miss at once (single-flight).
          const p = await cache.getOrLoad(`product:${id}`, async () => (await products.get({ id }))?.row);
          if (p === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.id', message: `no product '${id}'` });
          return p;
        },
      }),
      put: action({
        params: Product,
        result: Type.Object({ id: Type.String(), version: Type.Integer() }),
        handler: async (_ctx, p) => {
          const w = await products.upsert(p); // resolves once the group-committed transaction is durable
          await cache.delete(`product:${p.id}`);
          return { id: p.id, version: w.version };
        },
      }),
    },
  });
}

// Registering the service's type makes `node.call('products.get', …)` type-checked everywhere.
// The registry lives in 'powerplant/service' (augmenting the root 'powerplant' does not reach it:
// TypeScript does not merge an augmentation into an interface the root only re-exports). One
// compilation has one registry, so service names are unique across it (examples/shop has 'catalog').
declare module 'powerplant/service' {
  interface ServiceRegistry {
    products: ReturnType<typeof productsService>;
  }
}

export interface Quickstart {
  url: string;
  stop(): Promise<void>;
}

export async function startQuickstart(options: { dataDir: string; port?: number }): Promise<Quickstart> {
  // Two SQLite shards; rows are placed by a hash of the partition key (the primary key here).
  const store = await openStore({ engine: `sqlite:${options.dataDir}`, shards: 2 });
  const products = await store.table('products', { schema: Product, primaryKey: ['id'] });
  const cache = await createCache<Product>({ l1: { entriesMax: 10_000 }, ttlMs: 60_000 });

  const node = createNode({ transport: 'inproc://quickstart', services: [productsService(products, cache)], logger: false });
  await node.start();
  const gateway = createGateway(node, {
    routes: [
      { method: 'GET', url: '/products/:id', action: 'products.get' },
      { method: 'PUT', url: '/products/:id', action: 'products.put' },
    ],
  });
  const url = await gateway.listen(options.port ?? 3000, '127.0.0.1');
  return {
    url,
    async stop() {
      await gateway.close();
      await node.stop();
      await cache.close();
      await store.close();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  const dataDir = mkdtempSync(join(tmpdir(), 'powerplant-quickstart-'));
  const qs = await startQuickstart({ dataDir });
  process.stdout.write(
    `Quickstart serving ${qs.url} (data in ${dataDir})\n\n` +
      `  curl -X PUT ${qs.url}/products/p1 -H 'content-type: application/json' -d '{"name":"Lamp","priceCents":1999}'\n` +
      `  curl ${qs.url}/products/p1\n` +
      `  curl ${qs.url}/products/nope        # 404 with a JSON error naming params.id\n` +
      `  curl ${qs.url}/metrics\n\nCtrl-C to stop.\n`,
  );
  process.once('SIGINT', () => void qs.stop().then(() => process.exit(0)));
}
