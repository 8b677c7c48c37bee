/**
 * Benchmark runner: `npm run bench -- <name> [args...]`.
 *
 * Each bench/<name>.ts exports `default async function main(args): Promise<Record<string, unknown>>`
 * that prints its human-readable tables and returns the result object; this runner prints that
 * object as the LAST line, as one JSON line (`{"bench":"<name>", ...}`), so scripts can `tail -1`.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function available(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function runOne(name: string, args: string[]): Promise<void> {
  const mod = (await import(pathToFileURL(join(here, `${name}.ts`)).href)) as {
    default: (args: string[]) => Promise<Record<string, unknown>>;
  };
  const result = await mod.default(args);
  process.stdout.write(`${JSON.stringify({ bench: name, ...result })}\n`);
}

const [name, ...args] = process.argv.slice(2);
const names = available();
if (name === undefined || (name !== 'all' && !names.includes(name))) {
  process.stderr.write(`usage: npm run bench -- <name> [args]\n  names: ${names.join(', ')}, all\n`);
  process.exit(2);
}
for (const n of name === 'all' ? names : [name]) await runOne(n, args);
