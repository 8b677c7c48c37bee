/**
 * What `powerplant start <entry>` loads: the contract between the CLI and an application module.
 *
 * `<entry>` is a file (TypeScript or JavaScript, run through tsx) or a directory (its package.json
 * `main`, else `index.ts`, else `index.js`, the first that exists). The module (or its default
 * export) is one of two kinds:
 *
 * - a **services module** (`ServicesModule`): it exports `services`, an array of
 *   `defineService(...)` results, and optionally `routes` (gateway routes). The CLI owns
 *   everything else: it creates a node on the transport (`--nats` / PP_NATS, else in-process),
 *   puts the HTTP gateway in front, and prints the routes;
 * - an **application module** (`StartModule`): it exports `start(ctx)`, for an application that
 *   owns its resources (stores, caches, queues, seeding, its own nodes and gateway). The CLI
 *   resolves the command line and environment into a `StartContext`, awaits `start(ctx)`, and
 *   keeps the returned `RunningApp` until a signal. examples/shop is one
 *   (`powerplant start examples/shop`).
 *
 * When both `start` and `services` are exported, `start` wins. The CLI prints `listening on <url>`
 * as the first line of its own output (scripts and tests read the URL from it), then the app's
 * `banner`, or a default one. SIGINT / SIGTERM call `stop()` (bounded; a second signal exits at
 * once). A `start` that finds its configuration wrong (a bad PP_* variable, say) throws a
 * `RangeError` naming it: the CLI reports that as a command-line error (exit code 2); any other
 * failure exits 1.
 */
import type { GatewayRoute } from '../gateway/index.js';
import type { ServiceDef } from '../service/index.js';

/** What `powerplant start` hands an application module's `start`. */
export interface StartContext {
  /** The entry as given on the command line (for messages). */
  readonly entry: string;
  /** HTTP port to serve on: `--port`, else $PP_PORT, else 3000; 0 = a free port (report the real one in `url`). */
  readonly port: number;
  /** Interface to listen on: `--host`, else $PP_HOST, else 127.0.0.1. */
  readonly host: string;
  /** The NATS URL (`--nats`, else $PP_NATS), or undefined for one process (in-process transport). */
  readonly nats: string | undefined;
  /** The transport URL a node should use: `nats` when given, else `inproc://`. */
  readonly transport: string;
  /** The process environment, where the application reads the rest of its configuration. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Writes to the CLI's output (stdout). Text written before `start` resolves comes before the
   * `listening on` line: prefer `RunningApp.banner` for what to print once serving.
   */
  out(text: string): void;
}

/** What an application's `start` resolves to once it serves. */
export interface RunningApp {
  /** Where it serves HTTP, e.g. `http://127.0.0.1:3000`; '' when it serves no HTTP (then no `listening on` line). */
  readonly url: string;
  /** Stops everything `start` opened (drain first); the CLI bounds how long it waits. */
  stop(): Promise<void>;
  /** Printed after the `listening on <url>` line: what runs where, requests to try. Default: a line naming the entry. */
  readonly banner?: string;
}

/** A module that owns its resources: `export async function start(ctx) { …; return { url, stop } }`. */
export interface StartModule {
  start(ctx: StartContext): Promise<RunningApp>;
}

/** A module of services the CLI hosts on a node behind the gateway. */
export interface ServicesModule {
  /** `defineService(...)` results; at least one. */
  readonly services: readonly ServiceDef[];
  /** Gateway routes, `{ method, url, action: 'service.action' }`. Default none (only /health, /metrics, /status). */
  readonly routes?: readonly GatewayRoute[];
}

/** What `powerplant start <entry>` accepts. */
export type AppModule = StartModule | ServicesModule;
