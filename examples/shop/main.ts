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
import { shopBanner } from './banner.js';
import { startShop, shopOptionsFromEnv } from './index.js';

const options = shopOptionsFromEnv(process.env);
const shop = await startShop(options);
process.stdout.write(shopBanner(shop, options));

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
