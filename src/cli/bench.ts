/**
 * `powerplant bench`: drives the shop's request mix (src/cli/loadgen.ts) against a running shop,
 * shows progress on stderr, prints the per-endpoint table on stdout and writes HDR histograms.
 *
 *   powerplant bench [--url http://127.0.0.1:3000] [--connections 64] [--duration 20] [--warmup 3]
 *                    [--users N] [--seed N] [--hgrm ./bench-shop.hgrm] [--json]
 *
 * Files: `--hgrm PATH` gets the merged histogram of every endpoint as HdrHistogram
 * percentile-distribution text (milliseconds; loads in the HdrHistogram plotter), and each endpoint
 * gets its own file next to it, `<PATH without .hgrm>.<endpoint>.hgrm` (e.g.
 * `bench-shop.product.hgrm`, `bench-shop.placeOrder.hgrm`), so they can be plotted side by side.
 * `--json` prints one JSON object (the result without the histograms) instead of the table.
 *
 * Progress: on a TTY one line redrawn in place; otherwise a plain line every PLAIN_PROGRESS_EVERY_MS.
 * Ctrl-C ends the run early and still reports the measured part.
 *
 * Exit codes: 0 done (even with request errors: they are in the table), 1 the run failed (no shop
 * at the URL, a sign-in failed, a file could not be written), 2 bad options.
 */
import { writeFileSync } from 'node:fs';
import { DEFAULT_WEIGHTS, ENDPOINT_NAMES, MAX_CONNECTIONS, MAX_USERS, formatMixTable, runMix, type MixResult } from './loadgen.js';
import { parseArgs, UsageError, type FlagSpec } from './args.js';

export const BENCH_USAGE = `usage: powerplant bench [options]

Drives the shop's request mix over HTTP (browse 80%, recent orders and search 15%, place order 5%)
with a closed loop per connection, then prints throughput and latency percentiles per endpoint and
writes HDR histogram files.

  --url URL          the shop (default http://127.0.0.1:3000)
  --connections N    concurrent connections, one request outstanding each (default 64)
  --duration S       measured seconds (default 20)
  --warmup S         warm-up seconds before measuring, not counted (default 3; 0 = none)
  --users N          seed users to sign in (default min(connections, 100))
  --seed N           seed of the request mix (default 1)
  --hgrm PATH        merged histogram file (default ./bench-shop.hgrm); one
                     <PATH without .hgrm>.<endpoint>.hgrm per endpoint next to it
  --json             print the result as one JSON object instead of the table
  --help             this text
`;

const PLAIN_PROGRESS_EVERY_MS = 5_000;
const BAR_WIDTH = 30;

export interface BenchArgs {
  url: string;
  connections: number;
  durationS: number;
  warmupS: number;
  users: number | undefined;
  seed: number;
  hgrm: string;
  json: boolean;
  help: boolean;
}

/** Writable ends the command reports to (process.stdout / process.stderr by default). */
export interface BenchIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
}

const BENCH_FLAGS = {
  url: { kind: 'string' },
  connections: { kind: 'int', min: 1, max: MAX_CONNECTIONS },
  duration: { kind: 'number', min: 0, max: 86_400, aboveMin: true },
  warmup: { kind: 'number', min: 0, max: 86_400 },
  users: { kind: 'int', min: 1, max: MAX_USERS },
  seed: { kind: 'int', min: -(2 ** 31), max: 2 ** 31 - 1 },
  hgrm: { kind: 'string' },
  json: { kind: 'bool' },
  help: { kind: 'bool' },
} as const satisfies Record<string, FlagSpec>;

/** Parses the flags; throws a UsageError naming the flag on anything unknown or out of range. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const { flags: f } = parseArgs('bench', argv.map((x) => (x === '-h' ? '--help' : x)), BENCH_FLAGS);
  const url = f.url ?? 'http://127.0.0.1:3000';
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw new UsageError(`powerplant bench: --url must be an http:// or https:// URL (got ${url})`);
  if (f.hgrm !== undefined && f.hgrm.trim() === '') throw new UsageError('powerplant bench: --hgrm needs a file path');
  return {
    url, connections: f.connections ?? 64, durationS: f.duration ?? 20, warmupS: f.warmup ?? 3, users: f.users, seed: f.seed ?? 1,
    hgrm: f.hgrm ?? './bench-shop.hgrm', json: f.json ?? false, help: f.help ?? false,
  };
}

/** `bench-shop.hgrm` -> `bench-shop.product.hgrm`; a path without `.hgrm` gets `.product.hgrm` appended. */
export function endpointHgrmPath(path: string, endpoint: string): string {
  return path.endsWith('.hgrm') ? `${path.slice(0, -5)}.${endpoint}.hgrm` : `${path}.${endpoint}.hgrm`;
}

function progressBar(p: { elapsedMs: number; totalMs: number; requests: number; errors: number }, warmupMs: number): string {
  const frac = p.totalMs > 0 ? Math.min(1, p.elapsedMs / p.totalMs) : 1;
  const filled = Math.round(frac * BAR_WIDTH);
  const phase = p.elapsedMs < warmupMs ? 'warm-up' : 'measuring';
  const rate = p.elapsedMs > 0 ? Math.round((p.requests * 1000) / p.elapsedMs) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${(p.elapsedMs / 1000).toFixed(1)}/${(p.totalMs / 1000).toFixed(1)} s ${phase}  ${p.requests} requests (${rate}/s)  ${p.errors} errors`;
}

/** The JSON form: the result without the histogram objects. */
export function mixResultJson(r: MixResult, hgrm: string): Record<string, unknown> {
  const { histogram: _h, perEndpoint: _p, ...rest } = r;
  return { ...rest, hgrm };
}

/** `powerplant bench`; resolves to the exit code (see the file comment). */
export async function benchCommand(argv: string[], io: BenchIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`${err.message}\n\n${BENCH_USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(BENCH_USAGE);
    return 0;
  }

  const tty = io.stderr.isTTY === true;
  const warmupMs = args.warmupS * 1000;
  let lastPlainAt = -PLAIN_PROGRESS_EVERY_MS;
  let lastPhaseWasWarmup = true;
  let printedFinal = false;
  const controller = new AbortController();
  let interrupted = 0;
  const onSigint = (): void => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    io.stderr.write(`${tty ? '\n' : ''}powerplant bench: interrupted, finishing the requests in flight (Ctrl-C again to quit)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  io.stderr.write(`powerplant bench: ${args.url}, ${args.connections} connections, ${args.warmupS} s warm-up + ${args.durationS} s; ` +
    `mix ${ENDPOINT_NAMES.map((n) => `${n} ${DEFAULT_WEIGHTS[n]}%`).join(', ')}; signing in and discovering the catalog…\n`);
  let result: MixResult;
  try {
    result = await runMix({
      url: args.url, connections: args.connections, durationMs: args.durationS * 1000, warmupMs,
      users: args.users, seed: args.seed, signal: controller.signal,
      onProgress: (p) => {
        if (tty) {
          io.stderr.write(`\r\x1b[2K${progressBar(p, warmupMs)}`);
        } else {
          const warm = p.elapsedMs < warmupMs;
          const final = p.elapsedMs >= p.totalMs;
          if (final ? printedFinal : p.elapsedMs - lastPlainAt < PLAIN_PROGRESS_EVERY_MS && warm === lastPhaseWasWarmup) return;
          printedFinal ||= final;
          lastPlainAt = p.elapsedMs;
          lastPhaseWasWarmup = warm;
          io.stderr.write(`${progressBar(p, warmupMs)}\n`);
        }
      },
    });
  } catch (err) {
    if (tty) io.stderr.write('\n');
    io.stderr.write(`powerplant bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (tty) io.stderr.write('\n');

  const files = [args.hgrm, ...ENDPOINT_NAMES.map((n) => endpointHgrmPath(args.hgrm, n))];
  try {
    writeFileSync(args.hgrm, result.histogram.toHgrm());
    ENDPOINT_NAMES.forEach((n, i) => writeFileSync(files[i + 1]!, result.perEndpoint[n].toHgrm()));
  } catch (err) {
    io.stderr.write(`powerplant bench: cannot write the histogram files: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (args.json) {
    io.stdout.write(`${JSON.stringify(mixResultJson(result, args.hgrm))}\n`);
  } else {
    io.stdout.write(formatMixTable(result));
    io.stdout.write(`\nHDR histograms (ms, HdrHistogram percentile-distribution text): ${args.hgrm} (all endpoints), ${files.slice(1).join(', ')}\n`);
  }
  return 0;
}
