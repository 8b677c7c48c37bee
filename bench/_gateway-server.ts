/**
 * Server side of the gateway benchmark, run as a child process:
 * `node --import tsx bench/_gateway-server.ts <ours|fastify|fastify-schema>`. Prints the listening port.
 *
 *   ours            gateway -> node (in-process) -> action `catalog.get`, which declares PRODUCT as its
 *                   result schema (the gateway then serializes with fast-json-stringify)
 *   fastify         a bare Fastify route (the peer the issue names): JSON.stringify
 *   fastify-schema  the same Fastify route with PRODUCT as its response schema (what a Fastify user
 *                   who declares schemas gets: shows how much of the ratio the schema explains)
 *
 * All three answer GET /products/:id with the same bytes: {"id":"<id>","name":"Lamp","priceCents":1999}.
 * Asked 'cpu' over IPC, replies with the process's user and system CPU microseconds so far.
 */
import { Type } from '@sinclair/typebox';
import Fastify from 'fastify';
import { createGateway } from '../src/gateway/index.js';
import { action, createNode, defineService } from '../src/service/index.js';

const impl = process.argv[2];
const PRODUCT = Type.Object({ id: Type.String(), name: Type.String(), priceCents: Type.Integer() });

async function main(): Promise<{ port: number; stop: () => Promise<void> }> {
  if (impl === 'ours') {
    const catalog = defineService({
      name: 'catalog',
      actions: {
        get: action({
          params: Type.Object({ id: Type.String() }),
          result: PRODUCT,
          idempotent: true,
          handler: (_ctx, p) => ({ id: p.id, name: 'Lamp', priceCents: 1999 }),
        }),
      },
    });
    const node = createNode({ nodeId: `gwb-${process.pid}`, logger: false, services: [catalog] });
    await node.start();
    const gw = createGateway(node, { routes: [{ method: 'GET', url: '/products/:id', action: 'catalog.get' }] });
    const address = await gw.listen(0);
    return { port: Number(new URL(address).port), stop: async () => { await gw.close(); await node.stop(); } };
  }
  if (impl !== 'fastify' && impl !== 'fastify-schema') throw new Error(`unknown server '${impl}'`);
  const app = Fastify();
  app.get('/products/:id', impl === 'fastify-schema' ? { schema: { response: { 200: PRODUCT } } } : {},
    async (req) => ({ id: (req.params as { id: string }).id, name: 'Lamp', priceCents: 1999 }));
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: Number(new URL(address).port), stop: () => app.close() };
}

const { port, stop } = await main();
process.stdout.write(`port ${port}\n`);
const shutdown = (): void => {
  void stop().finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('disconnect', shutdown);
// CPU time is far less sensitive to other processes on a shared machine than throughput is: the
// parent asks for it around each measured window. User time is our code and Fastify's; system
// time is mostly the loopback writev/read, the same work on every side but noisy under load.
process.on('message', (m) => {
  if (m === 'cpu') {
    const u = process.cpuUsage();
    process.send?.({ userUs: u.user, sysUs: u.system });
  }
});
