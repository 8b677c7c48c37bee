/**
 * `powerplant bench <entry>`: drives the request mix a module exports (`loadMix`, a `LoadMix`; the
 * shop's is examples/shop/loadmix.ts) with the load generator (loadgen.ts) against a running
 * server, shows progress on stderr, prints the per-endpoint table on stdout and writes HDR
 * histograms.
 *
 *   powerplant bench examples/shop [--url http://127.0.0.1:3000] [--connections 64] [--duration 20]
 *                    [--warmup 3] [--users N] [--seed N] [--hgrm ./bench-shop.hgrm] [--json]
 *
 * `<entry>` resolves as `start`'s does (a file, or a directory by package.json `main`, else
 * index.ts / index.js); there is no default: the CLI knows no application.
 *
 * Files: `--hgrm PATH` (default `./bench-<mix name>.hgrm`) gets the merged histogram of every
 * endpoint as HdrHistogram percentile-distribution text (milliseconds; loads in the HdrHistogram
 * plotter), and each endpoint gets its own file next to it, `<PATH without .hgrm>.<endpoint>.hgrm`
 * (e.g. `bench-shop.product.hgrm`, `bench-shop.placeOrder.hgrm`), so they can be plotted side by
 * side. `--json` prints one JSON object (the result without the histograms) instead of the table.
 *
 * Progress: on a TTY one line redrawn in place; otherwise a plain line every PLAIN_PROGRESS_EVERY_MS.
 * Ctrl-C ends the run early and still reports the measured part.
 *
 * Exit codes: 0 done (even with request errors: they are in the table), 1 the run failed (no server
 * at the URL, the mix's setup failed, a file could not be written), 2 bad options or entry.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs, UsageError, type FlagSpec } from './args.js';
import { loadEntry } from './entry.js';
import { CONNECTIONS_MAX, USERS_MAX, formatMixTable, runMix, type LoadMix, type MixResult } from './loadgen.js';

export const BENCH_USAGE = `usage: powerplant bench <entry> [options]

Drives the request mix a module exports as \`loadMix\` over HTTP against a running server (the
shop's: powerplant bench examples/shop, browse 80%, recent orders and search 15%, place order 5%)
with a closed loop per connection, then prints throughput and latency percentiles per endpoint and
writes HDR histogram files.

  <entry>            a file, or a directory (package.json "main", else index.ts, else index.js),
                     exporting \`loadMix\`, e.g. examples/shop
  --url URL          the server (default http://127.0.0.1:3000)
  --connections N    concurrent connections, one request outstanding each (default 64)
  --duration S       measured seconds (default 20)
  --warmup S         warm-up seconds before measuring, not counted (default 3; 0 = none)
  --users N          users for the mix to sign in (default min(connections, 100))
  --seed N           seed of the request mix (default 1)
  --hgrm PATH        merged histogram file (default ./bench-<mix>.hgrm, e.g. ./bench-shop.hgrm); one
                     <PATH without .hgrm>.<endpoint>.hgrm per endpoint next to it
  --json             print the result as one JSON object instead of the table
  --help             this text
`;

const PLAIN_PROGRESS_EVERY_MS = 5_000;
const BAR_WIDTH = 30;

export interface BenchArgs {
  /** The module exporting `loadMix` (undefined: none given, a usage error once help is ruled out). */
  entry: string | undefined;
  url: string;
  connections: number;
  durationS: number;
  warmupS: number;
  users: number | undefined;
  seed: number;
  /** undefined: `./bench-<mix name>.hgrm` */
  hgrm: string | undefined;
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
  connections: { kind: 'int', min: 1, max: CONNECTIONS_MAX },
  duration: { kind: 'number', min: 0, max: 86_400, aboveMin: true },
  warmup: { kind: 'number', min: 0, max: 86_400 },
  users: { kind: 'int', min: 1, max: USERS_MAX },
  seed: { kind: 'int', min: -(2 ** 31), max: 2 ** 31 - 1 },
  hgrm: { kind: 'string' },
  json: { kind: 'bool' },
  help: { kind: 'bool' },
} as const satisfies Record<string, FlagSpec>;

/** Parses the flags; throws a UsageError naming the flag on anything unknown or out of range. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const { flags: f, positional } = parseArgs('bench', argv.map((x) => (x === '-h' ? '--help' : x)), BENCH_FLAGS, 1);
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
    entry: positional[0], url, connections: f.connections ?? 64, durationS: f.duration ?? 20, warmupS: f.warmup ?? 3, users: f.users, seed: f.seed ?? 1,
    hgrm: f.hgrm, json: f.json ?? false, help: f.help ?? false,
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

/** The `loadMix` export of `entry`; a missing one or one that is not a mix is a UsageError. */
async function loadMix(entry: string): Promise<LoadMix> {
  const mod = await loadEntry('bench', entry, ['loadMix']);
  const mix = mod.loadMix as Partial<LoadMix> | undefined;
  if (mix === undefined) throw new UsageError(`powerplant bench: ${entry} exports no \`loadMix\` (a LoadMix: { name, endpoints, setup })`);
  if (typeof mix !== 'object' || mix === null || !Array.isArray(mix.endpoints) || typeof mix.setup !== 'function' || typeof mix.name !== 'string') {
    throw new UsageError(`powerplant bench: ${entry} exports a \`loadMix\` that is not a LoadMix ({ name, endpoints: [{ name, label, weight }], setup(http, ctx) })`);
  }
  return mix as LoadMix;
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
  let mix: LoadMix;
  try {
    if (args.entry === undefined) throw new UsageError('powerplant bench: name the module whose `loadMix` to drive, e.g. `powerplant bench examples/shop`');
    mix = await loadMix(args.entry);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`${err.message}\n\n${BENCH_USAGE}`);
    return 2;
  }
  const hgrm = args.hgrm ?? `./bench-${mix.name}.hgrm`;
  const names = mix.endpoints.map((e) => e.name);
  const weightSum = mix.endpoints.reduce((a, e) => a + (Number.isFinite(e.weight) ? e.weight : 0), 0);

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
    `mix ${mix.name} (${mix.endpoints.map((e) => `${e.name} ${+((100 * e.weight) / (weightSum || 1)).toFixed(1)}%`).join(', ')}); running its setup…\n`);
  let result: MixResult;
  try {
    result = await runMix({
      mix, url: args.url, connections: args.connections, durationMs: args.durationS * 1000, warmupMs,
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

  const files = [hgrm, ...names.map((n) => endpointHgrmPath(hgrm, n))];
  try {
    writeFileSync(hgrm, result.histogram.toHgrm());
    names.forEach((n, i) => writeFileSync(files[i + 1]!, result.perEndpoint[n]!.toHgrm()));
  } catch (err) {
    io.stderr.write(`powerplant bench: cannot write the histogram files: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (args.json) {
    io.stdout.write(`${JSON.stringify(mixResultJson(result, hgrm))}\n`);
  } else {
    io.stdout.write(formatMixTable(result));
    io.stdout.write(`\nHDR histograms (ms, HdrHistogram percentile-distribution text): ${hgrm} (all endpoints), ${files.slice(1).join(', ')}\n`);
  }
  return 0;
}
