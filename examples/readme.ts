import { Type, type Static } from '@sinclair/typebox';
import { action, createCache, createGateway, createNode, defineService, openStore, ppError } from 'powerplant';

const Product = Type.Object({ id: Type.String(), name: Type.String(), priceCents: Type.Integer({ minimum: 0 }) });
const store = await openStore({ engine: 'sqlite:./data', shards: 2 });     // or 'postgres://…'
const products = await store.table('products', { schema: Product, primaryKey: ['id'] });
const cache = await createCache<Static<typeof Product>>({ ttlMs: 60_000 }); // l2: 'redis://…' adds Redis

const catalog = defineService({
  name: 'catalog',
  actions: {
    get: action({
      params: Type.Object({ id: Type.String({ minLength: 1 }) }),          // validated; types inferred
      result: Product,
      idempotent: true,                                                     // may be retried elsewhere
      handler: async (_ctx, { id }) => {
        const p = await cache.getOrLoad(`product:${id}`, async () => (await products.get({ id }))?.row);
        if (p === undefined) throw ppError('PP_ERR_NOT_FOUND', { field: 'params.id' });
        return p;
      },
    }),
  },
});

const node = createNode({ transport: 'inproc://', services: [catalog] }); // or 'nats://…'
await node.start();
await createGateway(node, { routes: [{ method: 'GET', url: '/products/:id', action: 'catalog.get' }] }).listen(3000);
