/**
 * Our side of the shop benchmark, run as a child process:
 * `tsx bench/_shop-server.ts --port N --data DIR` starts examples/shop on the embedded default
 * (SQLite shards + queue log under DIR, in-process cache and transport; seeds DIR once) and prints
 * `shop listening on <url>`. Answers the bench's CPU requests over IPC (bench/_util.ts).
 */
import { shopOptionsFromEnv, startShop } from '../examples/shop/index.js';
import { serveChild, serverArgs } from './_util.js';

const { port, dataDir } = serverArgs('tsx bench/_shop-server.ts --port N --data DIR');
// PP_* variables (CONTRACT.md) apply too, e.g. PP_SHARDS=2 npm run bench -- shop.
const shop = await startShop({ ...shopOptionsFromEnv(process.env), port, dataDir });
serveChild(() => shop.stop());
process.stdout.write(`shop listening on ${shop.url} (started in ${shop.startup.ms} ms${shop.startup.seeded ? ', seeded' : ''})\n`);
