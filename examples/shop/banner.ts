/**
 * What a started shop prints (examples/shop/main.ts, and `powerplant start examples/shop` through
 * `start(ctx)` in index.ts): the URL on the first line (`listening on <url>`: scripts and tests
 * read it), where each part runs, and requests to try.
 */
import type { Shop, ShopOptions } from './index.js';

type StartedShop = Pick<Shop, 'url' | 'startup'> & { node: { nodeId: string } };

/** The whole text: `listening on <url>`, a blank line, then `shopDetails` (main.ts prints it). */
export function shopBanner(shop: StartedShop, o: ShopOptions): string {
  return shop.url === '' ? shopDetails(shop, o) : `listening on ${shop.url}\n\n${shopDetails(shop, o)}`;
}

/**
 * Everything after the `listening on` line: the banner `start(ctx)` hands the CLI, which prints
 * that line itself. Without a gateway (PP_GATEWAY=0), one line saying so.
 */
export function shopDetails(shop: StartedShop, o: ShopOptions): string {
  const u = shop.url;
  const transport = o.nats ?? 'in-process';
  if (u === '') {
    return `running without a gateway (PP_GATEWAY=0): node ${shop.node.nodeId} serves its services over ${transport}\n\nCtrl-C to stop.\n`;
  }
  return (
    `Powerplant shop (examples/shop, node ${shop.node.nodeId}) started in ${(shop.startup.ms / 1000).toFixed(1)} s` +
    `${shop.startup.seeded ? ', seed data written' : ''}\n` +
    `  store:     ${o.store ?? `sqlite:${o.dataDir ?? './data/shop'}/store`} (${o.shards ?? 4} shards)\n` +
    `  cache:     ${o.redis === undefined ? 'in-process L1' : `L1 + Redis L2 (${o.redis})`}\n` +
    `  transport: ${transport} (queue: ${o.nats === undefined ? 'embedded log' : 'NATS JetStream'})\n` +
    `  namespace: ${o.namespace ?? 'shop'}\n` +
    `\nTry:\n` +
    `  curl ${u}/products/p00017\n` +
    `  curl '${u}/categories/c03/products?limit=5'\n` +
    `  curl '${u}/search?q=lamp&limit=5'\n` +
    `  TOKEN=$(curl -s -X POST ${u}/sessions -H 'content-type: application/json' \\\n` +
    `      -d '{"email":"user1@example.com","password":"password-1"}' | sed -E 's/.*"token":"([^"]+)".*/\\1/')\n` +
    `  curl -X POST ${u}/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\\n` +
    `      -d '{"items":[{"sku":"p00017","qty":2}],"idempotencyKey":"first-order"}'\n` +
    `  curl ${u}/orders -H "authorization: Bearer $TOKEN"\n` +
    `  curl ${u}/notifications -H "authorization: Bearer $TOKEN"\n` +
    `  curl ${u}/metrics\n` +
    `  npx powerplant status --url ${u}      # nodes, services, partitions\n` +
    `\nCtrl-C to stop.\n`
  );
}
