/**
 * Runs the handwritten peer as a process: `tsx bench/shop-peer/server.ts --port N --data DIR`.
 * Prints `shop-peer listening on <url>` once it accepts requests; answers the bench's CPU requests
 * over IPC when it has a parent (bench/_util.ts). PP_PAYMENTS_* configure the simulated payment provider.
 */
import { serveChild, serverArgs } from '../_util.js';
import { startPeer } from './app.js';
import { paymentsFromEnv } from './payments.js';

const { port, dataDir } = serverArgs('tsx bench/shop-peer/server.ts --port N --data DIR');
const peer = await startPeer({ port, dataDir, payments: paymentsFromEnv() });
serveChild(() => peer.stop());
process.stdout.write(`shop-peer listening on ${peer.url}\n`);
