/**
 * A node process for the fault test: `node --import tsx test/service/fault-node.ts <namespace> <nodeId>`.
 * Hosts `tfault.work` over NATS and prints "ready". The test SIGKILLs one of these.
 */
import { Type } from '@sinclair/typebox';
import { action, createNode, defineService } from '../../src/service/index.js';
import { FAULT_TIMING } from './fault-config.js';

const [namespace, nodeId] = process.argv.slice(2);
const work = defineService({
  name: 'tfault',
  actions: {
    work: action({
      params: Type.Object({ seq: Type.Integer() }),
      result: Type.Object({ seq: Type.Integer(), by: Type.String() }),
      idempotent: true,
      handler: async (ctx, p) => {
        // A little asynchronous work, so calls are in flight when the kill lands.
        await new Promise((r) => setTimeout(r, 2));
        return { seq: p.seq, by: ctx.nodeId };
      },
    }),
  },
});
const node = createNode({ nodeId, namespace, transport: 'nats://127.0.0.1:4222', services: [work], logger: false, ...FAULT_TIMING });
await node.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void node.stop().finally(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
