#!/usr/bin/env node
/**
 * The `powerplant` command.
 *
 *   powerplant start <entry> [--port N] [--host H] [--nats URL]   an application or services module
 *   powerplant status [--url URL] [--json]                         a running system, as tables
 *   powerplant bench <entry> [...]                                 a module's request mix (loadMix) over HTTP
 *   powerplant simulate [--keys N] [--servers N] [--requests N]    the foundation's two simulations
 *   powerplant help
 *
 * `run(argv)` resolves to the exit code: 0 done (for `start`: serving), 1 the command failed
 * (nothing answers, the port is taken), 2 a wrong command line (the message names the command or
 * option). The bin (bin/powerplant.js) calls run(); so does `tsx src/cli/main.ts`
 * (npm start: `tsx src/cli/main.ts start examples/shop`).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hashKeys, partitionReport } from '../partition/index.js';
import { simulateBalance, simulationCells } from '../balance/index.js';
import { isPowerplantError } from '../errors/index.js';
import { formatTable } from '../util/index.js';
import { parseArgs, UsageError } from './args.js';
import { START_USAGE, startCommand } from './start.js';
import { STATUS_USAGE, statusCommand } from './status.js';

interface SimulateOptions {
  keys: number;
  servers: number;
  requests: number;
}

const BENCH_USAGE = `  bench      drive the request mix a module exports (\`loadMix\`) over HTTP against a running server
             and print throughput and latency percentiles per endpoint: powerplant bench examples/shop
             (powerplant bench --help for its options)
`;

const SIMULATE_USAGE = `  simulate   run the partitioning and load-balancing simulations and print their tables
             --keys N      keys to place (default 1000000)
             --servers N   simulated servers (default 1000)
             --requests N  simulated requests (default 100000)
`;

export const USAGE = `usage: powerplant <command> [options]

commands:
${START_USAGE}${STATUS_USAGE}${BENCH_USAGE}${SIMULATE_USAGE}  help       this text
`;

const SIMULATE_FLAGS = {
  keys: { kind: 'int', min: 1, max: 10_000_000 },
  servers: { kind: 'int', min: 1, max: 100_000 },
  requests: { kind: 'int', min: 1, max: 10_000_000 },
} as const;

/** `simulate`'s options; a bad one is a UsageError naming the flag. */
export function parseSimulateArgs(argv: readonly string[]): SimulateOptions {
  const { flags } = parseArgs('simulate', argv, SIMULATE_FLAGS);
  return { keys: flags.keys ?? 1_000_000, servers: flags.servers ?? 1_000, requests: flags.requests ?? 100_000 };
}

function simulate(opts: SimulateOptions): void {
  const out = process.stdout;
  out.write(`Powerplant — foundation simulations\n\n`);

  out.write(`Partitioning: ${opts.keys.toLocaleString('en-US')} keys "user:<n>" over 10 and 100 shards\n`);
  out.write(`(cv = coefficient of variation of keys per shard; moved/ideal = share of keys that move when one\n`);
  out.write(` shard is added, divided by the minimum possible 1/(N+1))\n\n`);
  const keys = Array.from({ length: opts.keys }, (_, i) => `user:${i}`);
  let t0 = performance.now();
  const rows = partitionReport({ hashes: hashKeys(keys) });
  out.write(
    formatTable(
      rows.map((r) => ({
        strategy: r.strategy,
        shards: r.shards,
        'cv %': r.cvPct,
        'max/mean': r.maxOverMean,
        'moved/ideal': r.movedOverIdeal,
      })),
    ),
  );
  out.write(`\n(${((performance.now() - t0) / 1000).toFixed(1)} s)\n\n`);

  out.write(
    `Load balancing: ${opts.servers.toLocaleString('en-US')} simulated servers with skewed, changing latencies, ` +
      `${opts.requests.toLocaleString('en-US')} requests\n`,
  );
  out.write(`(load = time-averaged outstanding requests per slot; max/mean over servers)\n\n`);
  t0 = performance.now();
  const sim = simulateBalance({ servers: opts.servers, requests: opts.requests });
  out.write(formatTable(simulationCells(sim)));
  out.write(`\n(${((performance.now() - t0) / 1000).toFixed(1)} s)\n\n`);
  out.write(`Benchmarks against peers: npm run bench -- partition | balance\n`);
}

async function bench(argv: readonly string[]): Promise<number> {
  // Loaded on demand: the load generator pulls in undici and the histograms, which the other
  // commands do not need at start-up.
  const { benchCommand } = await import('./bench.js');
  return benchCommand([...argv]);
}

const wantsHelp = (argv: readonly string[]): boolean => argv.includes('--help') || argv.includes('-h');

/** Runs one `powerplant` command line; resolves to the process's exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
        if (wantsHelp(rest)) return help(START_USAGE);
        return await startCommand(rest);
      case 'status':
        if (wantsHelp(rest)) return help(STATUS_USAGE);
        return await statusCommand(rest);
      case 'bench':
        return await bench(rest);
      case 'simulate':
        if (wantsHelp(rest)) return help(SIMULATE_USAGE);
        simulate(parseSimulateArgs(rest));
        return 0;
      case undefined:
        process.stderr.write(USAGE);
        return 2;
      case 'help':
      case '--help':
      case '-h':
        return help(USAGE);
      default:
        process.stderr.write(`powerplant: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message.startsWith('powerplant') ? '' : 'powerplant: '}${err.message}\n(powerplant help lists the commands and their options)\n`);
      return 2;
    }
    const msg = isPowerplantError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
    process.stderr.write(`powerplant ${command ?? ''}: ${msg}\n`);
    return 1;
  }
}

function help(text: string): number {
  process.stdout.write(text);
  return 0;
}

/** True when this file is the process's main module (`tsx src/cli/main.ts …`, i.e. npm start). */
function isMain(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) process.exitCode = await run(process.argv.slice(2));
