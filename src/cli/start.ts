/**
 * `powerplant start [entry] [--port N] [--host H] [--nats URL]`.
 *
 * Without an entry it starts the reference backend, examples/shop, as `examples/shop/main.ts`
 * does: on the embedded default (SQLite shards, in-process cache, queue and transport) at
 * http://127.0.0.1:3000 with seed data; the contract's PP_* variables (examples/shop/CONTRACT.md)
 * select PostgreSQL, Redis and NATS, the namespace, the services of this node, and so on.
 *
 * With an entry (a path to a module, TypeScript or JavaScript) it hosts the user's services: the
 * module exports `services` (an array of defineService(...) results) and optionally `routes`
 * (gateway routes, `{ method, url, action }`). The CLI creates a node on NATS (`--nats` or
 * PP_NATS) or in-process, puts the HTTP gateway in front, and prints the URL and the routes.
 *
 * Both print one line `listening on <url>` first (scripts and tests read the URL from it), then
 * what to try. SIGINT / SIGTERM stop the node gracefully (drain, bounded); a second signal exits
 * at once.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createGateway, type GatewayRoute } from '../gateway/index.js';
import { createNode, type ServiceDef } from '../service/index.js';
import { parseArgs, UsageError } from './args.js';

export const START_USAGE = `  start      start the shop (examples/shop) on the embedded default, or a services module
             [entry]       a module exporting \`services\` (defineService results) and optionally
                           \`routes\` (gateway routes); without it, the shop
             --port N      HTTP port (default $PP_PORT or 3000; 0 = a free port)
             --host H      interface to listen on (default $PP_HOST or 127.0.0.1)
             --nats URL    NATS transport, e.g. nats://127.0.0.1:4222 (default $PP_NATS, else in-process)
             the shop also reads PP_STORE, PP_SHARDS, PP_REDIS, PP_DATA_DIR, PP_NAMESPACE, PP_SERVICES,
             PP_GATEWAY, PP_SEED, PP_NODE_ID, PP_SESSION_SECRET (examples/shop/CONTRACT.md)
`;

const START_FLAGS = {
  port: { kind: 'int', min: 0, max: 65_535 },
  host: { kind: 'string' },
  nats: { kind: 'string' },
} as const;

/** What a running `start` hands back: where it listens, and how to stop it. */
export interface Started {
  url: string;
  stop(): Promise<void>;
}

export interface StartIo {
  out: (s: string) => void;
}

const defaultIo: StartIo = { out: (s) => process.stdout.write(s) };

/** On stop, the node gets this long to drain before the process exits anyway. */
const STOP_TIMEOUT_MS = 15_000;

function envPort(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env.PP_PORT;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new UsageError(`powerplant start: PP_PORT must be an integer from 0 to 65535 (got ${raw})`);
  return n;
}

/**
 * Starts what `powerplant start <argv>` starts and prints where it listens. Resolves once it
 * serves; the process then lives on the open server until a signal (installed by `startCommand`).
 */
export async function startServices(argv: readonly string[], io: StartIo = defaultIo, env: NodeJS.ProcessEnv = process.env): Promise<Started> {
  const { flags, positional } = parseArgs('start', argv, START_FLAGS, 1);
  const port = flags.port ?? envPort(env) ?? 3000;
  const host = flags.host ?? (env.PP_HOST || '127.0.0.1');
  const nats = flags.nats ?? (env.PP_NATS || undefined);
  const entry = positional[0];
  return entry === undefined ? startShop(io, env, port, host, nats) : startEntry(io, env, entry, port, host, nats);
}

/** `powerplant start`: starts, then stops gracefully on SIGINT / SIGTERM. Resolves to 0 once serving. */
export async function startCommand(argv: readonly string[], io: StartIo = defaultIo): Promise<number> {
  const started = await startServices(argv, io);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    stopping = true;
    io.out(`\n${signal}: stopping (draining in-flight requests; ${signal} again to exit at once)\n`);
    const force = setTimeout(() => process.exit(1), STOP_TIMEOUT_MS);
    force.unref();
    started.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`powerplant: stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return 0;
}

// ---- the shop --------------------------------------------------------------------------------------

/** The part of examples/shop/index.ts this command uses (the file is loaded at run time, see below). */
interface ShopModule {
  /** CONTRACT.md's PP_* environment as startShop options; a RangeError names a bad variable. */
  shopOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): Record<string, unknown>;
  startShop(options: Record<string, unknown>): Promise<ShopRunning>;
  /** What a started shop prints: `listening on <url>` first, then where it runs and what to try. */
  shopBanner(shop: ShopRunning, options: Record<string, unknown>): string;
}

interface ShopRunning {
  url: string;
  node: { nodeId: string };
  startup: { ms: number; seeded: boolean };
  stop(): Promise<void>;
}

async function startShop(io: StartIo, env: NodeJS.ProcessEnv, port: number, host: string, nats: string | undefined): Promise<Started> {
  // Loaded by URL at run time rather than imported: examples/ is not part of the compiled package
  // (tsconfig.build.json builds src/ only); the bin runs everything through tsx.
  const shopUrl = new URL('../../examples/shop/index.ts', import.meta.url);
  const shop = (await import(shopUrl.href)) as ShopModule;
  let fromEnv: Record<string, unknown>;
  try {
    fromEnv = shop.shopOptionsFromEnv(env);
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(`powerplant start: ${err.message}`);
    throw err;
  }
  const options: Record<string, unknown> = { ...fromEnv, port, host };
  if (nats !== undefined) options.nats = nats;
  const running = await shop.startShop(options);
  io.out(shop.shopBanner(running, options));
  return running;
}

// ---- a user's services module ----------------------------------------------------------------------

type AnyService = ServiceDef;
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

function isService(v: unknown): v is AnyService {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as { name?: unknown; actions?: unknown };
  return typeof s.name === 'string' && typeof s.actions === 'object' && s.actions !== null;
}

function isRoute(v: unknown): v is GatewayRoute {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as { method?: unknown; url?: unknown; action?: unknown };
  return typeof r.method === 'string' && METHODS.has(r.method) && typeof r.url === 'string' && r.url.startsWith('/') && typeof r.action === 'string';
}

async function loadEntry(entry: string): Promise<{ services: AnyService[]; routes: GatewayRoute[] }> {
  const path = resolve(entry);
  let mod: { services?: unknown; routes?: unknown; default?: { services?: unknown; routes?: unknown } };
  try {
    mod = (await import(pathToFileURL(path).href)) as typeof mod;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && (e.message ?? '').includes(path)) throw new UsageError(`powerplant start: no module at ${path}`);
    throw err;
  }
  const from = mod.services !== undefined ? mod : (mod.default ?? {});
  const services = from.services;
  if (!Array.isArray(services) || services.length === 0 || !services.every(isService)) {
    throw new UsageError(`powerplant start: ${entry} must export \`services\`: a non-empty array of defineService(...) results`);
  }
  const routes = from.routes ?? [];
  if (!Array.isArray(routes)) throw new UsageError(`powerplant start: ${entry} exports \`routes\` that is not an array`);
  routes.forEach((r: unknown, i) => {
    if (!isRoute(r)) throw new UsageError(`powerplant start: ${entry}: routes[${i}] must be { method: GET|POST|PUT|PATCH|DELETE, url: '/…', action: 'service.action' }`);
  });
  return { services, routes: routes as GatewayRoute[] };
}

async function startEntry(io: StartIo, env: NodeJS.ProcessEnv, entry: string, port: number, host: string, nats: string | undefined): Promise<Started> {
  const { services, routes } = await loadEntry(entry);
  const transport = nats ?? 'inproc://';
  const node = createNode({
    transport,
    services,
    ...(env.PP_NAMESPACE ? { namespace: env.PP_NAMESPACE } : {}),
    ...(env.PP_NODE_ID ? { nodeId: env.PP_NODE_ID } : {}),
    logger: { level: env.PP_LOG_LEVEL ?? 'warn' },
  });
  await node.start();
  const gateway = createGateway(node, { routes });
  let url: string;
  try {
    url = await gateway.listen(port, host);
  } catch (err) {
    await node.stop();
    throw err;
  }
  io.out(`listening on ${url}\n`);
  const width = Math.max(0, ...routes.map((r) => r.method.length + 1 + r.url.length));
  const actionCount = services.reduce((n, s) => n + Object.keys(s.actions).length, 0);
  io.out(
    `\nPowerplant node ${node.nodeId} (namespace ${node.namespace}, transport ${transport})\n` +
      `  services: ${services.map((s) => `${s.name}@${s.version}`).join(', ')} (${actionCount} actions)\n` +
      `\nRoutes:\n` +
      (routes.length === 0 ? '  (none: the module exports no `routes`)\n' : routes.map((r) => `  ${`${r.method} ${r.url}`.padEnd(width)}  -> ${r.action}\n`).join('')) +
      `  GET /health, /metrics, /status\n` +
      `\n  curl ${url}/health\n  npx powerplant status --url ${url}\n\nCtrl-C to stop.\n`,
  );
  return {
    url,
    async stop() {
      await gateway.close();
      await node.stop();
    },
  };
}
