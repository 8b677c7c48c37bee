/**
 * Server side of the rpc benchmark, run as a child process: `tsx bench/_rpc-server.ts <ours|moleculer> <namespace>`.
 * Serves `bench.echo` (returns its params) over NATS and prints "ready" when it can be called.
 * Excluded from `npm run bench` by its leading underscore.
 */
import { Type } from '@sinclair/typebox';
import { ServiceBroker } from 'moleculer';
import { action, createNode, defineService } from '../src/service/index.js';

const [impl, namespace] = process.argv.slice(2);
const NATS_URL = process.env.PP_NATS_URL ?? 'nats://127.0.0.1:4222';

async function main(): Promise<() => Promise<void>> {
  if (impl === 'ours') {
    const bench = defineService({
      name: 'bench',
      actions: { echo: action({ params: Type.Object({ data: Type.String() }), idempotent: true, handler: (_ctx, p) => p }) },
    });
    const node = createNode({ nodeId: `srv-${process.pid}`, namespace: namespace ?? 'bench', transport: NATS_URL, services: [bench], logger: false });
    await node.start();
    return () => node.stop();
  }
  const broker = new ServiceBroker({ nodeID: `msrv-${process.pid}`, namespace: namespace ?? 'bench', transporter: NATS_URL, logger: false });
  broker.createService({ name: 'bench', actions: { echo: { handler: (ctx: { params: unknown }) => ctx.params } } });
  await broker.start();
  return () => broker.stop();
}

const stop = await main();
process.stdout.write('ready\n');
const shutdown = (): void => {
  void stop().finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// If the parent dies, do not linger.
process.on('disconnect', shutdown);
