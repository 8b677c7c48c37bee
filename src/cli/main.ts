#!/usr/bin/env node
/**
 * The `powerplant` command.
 *
 *   powerplant start [--keys N] [--servers N] [--requests N]
 *
 * Until the reference backend (examples/shop) exists, `start` runs the two simulations that show
 * the foundation at work and prints their tables: how the partitioning strategies spread keys and
 * how many keys move when a shard is added, and how the load balancers spread requests over a fleet
 * of heterogeneous servers whose latencies change during the run.
 */
import { formatTable as formatPartitionTable, hashKeys, partitionReport } from '../partition/index.js';
import { formatTable as formatBalanceTable, simulateBalance } from '../balance/index.js';
import { isPowerplantError } from '../errors/index.js';

interface StartOptions {
  keys: number;
  servers: number;
  requests: number;
}

const USAGE = `usage: powerplant <command> [options]

commands:
  start      run the partitioning and load-balancing simulations and print their tables
             --keys N      keys to place (default 1000000)
             --servers N   simulated servers (default 1000)
             --requests N  simulated requests (default 100000)
  help       this text
`;

/** Parses `--name value` pairs; unknown flags and non-positive integers are errors naming the flag. */
export function parseStartArgs(argv: readonly string[]): StartOptions {
  const opts: StartOptions = { keys: 1_000_000, servers: 1_000, requests: 100_000 };
  const limits: Record<keyof StartOptions, number> = { keys: 10_000_000, servers: 100_000, requests: 10_000_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const name = flag.startsWith('--') ? flag.slice(2) : '';
    if (!(name in opts)) throw new Error(`unknown option ${flag}`);
    const raw = argv[i + 1];
    const n = raw === undefined ? Number.NaN : Number(raw);
    const key = name as keyof StartOptions;
    if (!Number.isInteger(n) || n < 1 || n > limits[key]) {
      throw new Error(`${flag} must be an integer from 1 to ${limits[key]} (got ${raw ?? 'nothing'})`);
    }
    opts[key] = n;
  }
  return opts;
}

function start(opts: StartOptions): void {
  const out = process.stdout;
  out.write(`Powerplant — foundation simulations\n\n`);

  out.write(`Partitioning: ${opts.keys.toLocaleString('en-US')} keys "user:<n>" over 10 and 100 shards\n`);
  out.write(`(cv = coefficient of variation of keys per shard; moved/ideal = share of keys that move when one\n`);
  out.write(` shard is added, divided by the minimum possible 1/(N+1))\n\n`);
  const keys = Array.from({ length: opts.keys }, (_, i) => `user:${i}`);
  let t0 = performance.now();
  const rows = partitionReport({ hashes: hashKeys(keys) });
  out.write(
    formatPartitionTable(
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
  out.write(formatBalanceTable(sim));
  out.write(`\n(${((performance.now() - t0) / 1000).toFixed(1)} s)\n\n`);
  out.write(`Benchmarks against peers: npm run bench -- partition | balance\n`);
}

export function main(argv: readonly string[]): number {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
        start(parseStartArgs(rest));
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    const msg = isPowerplantError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
    process.stderr.write(`powerplant: ${msg}\n`);
    return 2;
  }
}

// Run when executed directly (`tsx src/cli/main.ts start`), not when imported by tests.
if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  process.exitCode = main(process.argv.slice(2));
}
