/**
 * Server side of the gateway benchmark, run as a child process: `tsx bench/_gateway-server.ts <ours|fastify>`.
 * Prints the listening port. `ours`: gateway -> node (in-process) -> action; `fastify`: a bare route.
 * Both return the same small JSON for GET /products/:id.
 */
import { Type } from '@sinclair/typebox';
import Fastify from 'fastify';
import { createGateway } from '../src/gateway/index.js';
import { action, createNode, defineService } from '../src/service/index.js';

const impl = process.argv[2];

async function main(): Promise<{ port: number; stop: () => Promise<void> }> {
  if (impl === 'ours') {
    const catalog = defineService({
      name: 'catalog',
      actions: {
        get: action({
          params: Type.Object({ id: Type.String() }),
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
  const app = Fastify();
  app.get('/products/:id', async (req) => ({ id: (req.params as { id: string }).id, name: 'Lamp', priceCents: 1999 }));
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
// parent asks for it around each round to report CPU microseconds per request.
process.on('message', (m) => {
  if (m === 'cpu') {
    const u = process.cpuUsage();
    process.send?.({ cpuUs: u.user + u.system });
  }
});
