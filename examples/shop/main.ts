/**
 * Runs the shop from the environment (CONTRACT.md "Running"):
 *
 *   npx tsx examples/shop/main.ts                         # embedded: http://127.0.0.1:3000, data in ./data/shop
 *   PP_STORE=postgres://127.0.0.1:5432/test?schema=shop PP_REDIS=redis://127.0.0.1:6379 \
 *     PP_NATS=nats://127.0.0.1:4222 npx tsx examples/shop/main.ts
 *   PP_PORT=3001 PP_SEED=0 … npx tsx examples/shop/main.ts   # a second node sharing them
 *
 * Prints the URL and a few requests to try; SIGINT / SIGTERM stop it gracefully.
 */
import { startShop, shopOptionsFromEnv } from './index.js';

const options = shopOptionsFromEnv(process.env);
const shop = await startShop(options);
const u = shop.url;
const where = options.store ?? `sqlite:${options.dataDir ?? './data/shop'}/store`;
process.stdout.write(
  `Powerplant shop (node ${shop.node.nodeId}) ${u === '' ? 'running without a gateway' : `serving ${u}`}\n` +
    `  store ${where}, ${options.redis === undefined ? 'L1 cache only' : `cache L2 ${options.redis}`}, ` +
    `${options.nats === undefined ? 'in-process transport, embedded queue' : `transport + queue ${options.nats}`}\n` +
    `  started in ${(shop.startup.ms / 1000).toFixed(1)} s${shop.startup.seeded ? ' (seeded)' : ''}\n\n` +
    (u === ''
      ? ''
      : `  curl ${u}/products/p00017\n` +
        `  curl '${u}/categories/c03/products?limit=5'\n` +
        `  curl '${u}/search?q=lamp&limit=5'\n` +
        `  TOKEN=$(curl -s -X POST ${u}/sessions -H 'content-type: application/json' \\\n` +
        `      -d '{"email":"user1@example.com","password":"password-1"}' | sed -E 's/.*"token":"([^"]+)".*/\\1/')\n` +
        `  curl -X POST ${u}/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\\n` +
        `      -d '{"items":[{"sku":"p00017","qty":2}],"idempotencyKey":"first-order"}'\n` +
        `  curl ${u}/orders -H "authorization: Bearer $TOKEN"\n` +
        `  curl ${u}/notifications -H "authorization: Bearer $TOKEN"\n` +
        `  curl ${u}/status        # nodes, services, partitions\n` +
        `  curl ${u}/metrics\n`) +
    `\nCtrl-C to stop.\n`,
);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\n${signal}: stopping…\n`);
  shop.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`error while stopping: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
