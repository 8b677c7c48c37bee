/**
 * Runs the handwritten peer as a process: `tsx bench/shop-peer/server.ts --port N --data DIR`.
 * Prints `shop-peer listening on <url>` once it accepts requests; answers the bench's CPU requests
 * over IPC when it has a parent (bench/_util.ts).
 */
import { serveChild } from '../_util.js';
import { startPeer } from './app.js';

const arg = (flag: string): string | undefined => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

const dataDir = arg('--data');
if (dataDir === undefined) {
  process.stderr.write('usage: tsx bench/shop-peer/server.ts --port N --data DIR\n');
  process.exit(2);
}
const peer = await startPeer({ port: Number(arg('--port') ?? 3000), dataDir });
serveChild(() => peer.stop());
process.stdout.write(`shop-peer listening on ${peer.url}\n`);
