/**
 * `powerplant start <entry> [--port N] [--host H] [--nats URL]`: runs an application module (the
 * contract is in app.ts: `AppModule`, `StartContext`, `RunningApp`).
 *
 * `<entry>` is a file or a directory (package.json `main`, else index.ts, else index.js; entry.ts).
 * A module exporting `start(ctx)` owns its resources and is handed the resolved port, host, NATS
 * URL and environment (examples/shop: `powerplant start examples/shop`, which is `npm start`). A
 * module exporting `services` (defineService results) and optionally `routes` is hosted by the
 * CLI: a node on NATS (`--nats` or PP_NATS) or in-process, with the HTTP gateway in front.
 *
 * There is no default entry: without one, `start` is a command-line error that says to name a
 * module (the platform does not know any application, the shop included).
 *
 * The CLI prints one line `listening on <url>` first (scripts and tests read the URL from it),
 * then the app's banner (or a default one). SIGINT / SIGTERM stop it gracefully (drain, bounded);
 * a second signal exits at once.
 */
import { createGateway, type GatewayRoute } from '../gateway/index.js';
import { createNode, type ServiceDef } from '../service/index.js';
import type { RunningApp, StartContext, StartModule } from './app.js';
import { parseArgs, UsageError } from './args.js';
import { loadEntry } from './entry.js';

export const START_USAGE = `  start      run an application module: powerplant start <entry> (e.g. examples/shop, as npm start does)
             <entry>       a file, or a directory (package.json "main", else index.ts, else index.js),
                           exporting \`start(ctx)\` (an application that owns its resources) or
                           \`services\` (defineService results) and optionally \`routes\` (gateway routes)
             --port N      HTTP port (default $PP_PORT or 3000; 0 = a free port)
             --host H      interface to listen on (default $PP_HOST or 127.0.0.1)
             --nats URL    NATS transport, e.g. nats://127.0.0.1:4222 (default $PP_NATS, else in-process)
             an application reads the rest from the environment (the shop: PP_STORE, PP_SHARDS,
             PP_REDIS, PP_DATA_DIR, PP_NAMESPACE, PP_SERVICES, PP_GATEWAY, PP_SEED, …; examples/shop/CONTRACT.md)
`;

const START_FLAGS = {
  port: { kind: 'int', min: 0, max: 65_535 },
  host: { kind: 'string' },
  nats: { kind: 'string' },
} as const;

/** What a running `start` hands back: where it listens, and how to stop it. */
export type Started = RunningApp;

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

const withNewline = (s: string): string => (s.endsWith('\n') ? s : `${s}\n`);

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
  if (entry === undefined) {
    throw new UsageError('powerplant start: name the module to start, e.g. `powerplant start examples/shop` (what npm start runs) or `powerplant start ./services.ts`');
  }
  const mod = await loadEntry('start', entry, ['start', 'services']);
  const ctx: StartContext = { entry, port, host, nats, transport: nats ?? 'inproc://', env, out: io.out };
  let app: RunningApp;
  let banner: string;
  if (mod.start !== undefined) {
    if (typeof mod.start !== 'function') throw new UsageError(`powerplant start: ${entry} exports \`start\` that is not a function (expected start(ctx) => Promise<{ url, stop }>)`);
    app = await startApp(entry, mod.start as StartModule['start'], ctx);
    banner = app.banner ?? `${entry} is running.\n\nCtrl-C to stop.\n`;
  } else {
    const hosted = await hostServices(entry, mod, ctx);
    app = hosted;
    banner = hosted.banner;
  }
  io.out(app.url === '' ? withNewline(banner) : `listening on ${app.url}\n\n${withNewline(banner)}`);
  return app;
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

// ---- an application module: start(ctx) ------------------------------------------------------------

async function startApp(entry: string, start: StartModule['start'], ctx: StartContext): Promise<RunningApp> {
  let app: unknown;
  try {
    app = await start(ctx);
  } catch (err) {
    // The contract: a RangeError is the application's word for "your configuration is wrong".
    if (err instanceof RangeError) throw new UsageError(`powerplant start: ${entry}: ${err.message}`);
    throw err;
  }
  const a = app as Partial<RunningApp> | null | undefined;
  if (typeof a !== 'object' || a === null || typeof a.stop !== 'function') {
    throw new Error(`${entry}: start(ctx) must resolve to { url, stop(), banner? } (got ${a === null ? 'null' : typeof a})`);
  }
  if (typeof a.url !== 'string' || (a.banner !== undefined && typeof a.banner !== 'string')) {
    await a.stop();
    throw new Error(`${entry}: start(ctx) resolved to an object whose \`url\` is not a string${a.banner !== undefined && typeof a.banner !== 'string' ? ' or whose `banner` is not a string' : ''}`);
  }
  return a as RunningApp;
}

// ---- a services module: the CLI hosts it ---------------------------------------------------------

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

function servicesOf(entry: string, mod: Record<string, unknown>): { services: AnyService[]; routes: GatewayRoute[] } {
  const services = mod.services;
  if (services === undefined) {
    throw new UsageError(`powerplant start: ${entry} exports neither \`start(ctx)\` (an application) nor \`services\` (defineService results)`);
  }
  if (!Array.isArray(services) || services.length === 0 || !services.every(isService)) {
    throw new UsageError(`powerplant start: ${entry} must export \`services\`: a non-empty array of defineService(...) results`);
  }
  const routes = mod.routes ?? [];
  if (!Array.isArray(routes)) throw new UsageError(`powerplant start: ${entry} exports \`routes\` that is not an array`);
  routes.forEach((r: unknown, i) => {
    if (!isRoute(r)) throw new UsageError(`powerplant start: ${entry}: routes[${i}] must be { method: GET|POST|PUT|PATCH|DELETE, url: '/…', action: 'service.action' }`);
  });
  return { services, routes: routes as GatewayRoute[] };
}

async function hostServices(entry: string, mod: Record<string, unknown>, ctx: StartContext): Promise<RunningApp & { banner: string }> {
  const { services, routes } = servicesOf(entry, mod);
  const env = ctx.env;
  const node = createNode({
    transport: ctx.transport,
    services,
    ...(env.PP_NAMESPACE ? { namespace: env.PP_NAMESPACE } : {}),
    ...(env.PP_NODE_ID ? { nodeId: env.PP_NODE_ID } : {}),
    logger: { level: env.PP_LOG_LEVEL ?? 'warn' },
  });
  await node.start();
  const gateway = createGateway(node, { routes });
  let url: string;
  try {
    url = await gateway.listen(ctx.port, ctx.host);
  } catch (err) {
    await node.stop();
    throw err;
  }
  const width = Math.max(0, ...routes.map((r) => r.method.length + 1 + r.url.length));
  const actionCount = services.reduce((n, s) => n + Object.keys(s.actions).length, 0);
  const banner =
    `Powerplant node ${node.nodeId} (namespace ${node.namespace}, transport ${ctx.transport})\n` +
    `  services: ${services.map((s) => `${s.name}@${s.version}`).join(', ')} (${actionCount} actions)\n` +
    `\nRoutes:\n` +
    (routes.length === 0 ? '  (none: the module exports no `routes`)\n' : routes.map((r) => `  ${`${r.method} ${r.url}`.padEnd(width)}  -> ${r.action}\n`).join('')) +
    `  GET /health, /metrics, /status\n` +
    `\n  curl ${url}/health\n  npx powerplant status --url ${url}\n\nCtrl-C to stop.\n`;
  return {
    url,
    banner,
    async stop() {
      await gateway.close();
      await node.stop();
    },
  };
}
