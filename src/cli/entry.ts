/**
 * Finding and loading the module a command names (`powerplant start <entry>`, `powerplant bench
 * <entry>`): a file, or a directory resolved to its package.json `main`, else `index.ts`, else
 * `index.js` (the first that exists). A missing or unloadable entry is a UsageError naming it.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from './args.js';

/** A directory entry's candidates, in order, after package.json `main`. */
export const INDEX_FILES: readonly string[] = ['index.ts', 'index.js'];

function stat(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function packageMain(command: string, dir: string): string | undefined {
  const pkgPath = join(dir, 'package.json');
  if (stat(pkgPath)?.isFile() !== true) return undefined;
  let pkg: unknown;
  try {
    pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
  } catch (err) {
    throw new UsageError(`powerplant ${command}: ${pkgPath} is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const main = typeof pkg === 'object' && pkg !== null ? (pkg as { main?: unknown }).main : undefined;
  return typeof main === 'string' && main !== '' ? main : undefined;
}

/** The file `entry` names, as an absolute path (relative to `cwd`). */
export function resolveEntry(command: string, entry: string, cwd: string = process.cwd()): string {
  const path = resolve(cwd, entry);
  const st = stat(path);
  if (st?.isFile() === true) return path;
  if (st?.isDirectory() !== true) throw new UsageError(`powerplant ${command}: no module at ${path}`);
  const main = packageMain(command, path);
  const candidates = [...(main === undefined ? [] : [main]), ...INDEX_FILES];
  for (const c of candidates) {
    const file = resolve(path, c);
    if (stat(file)?.isFile() === true) return file;
  }
  throw new UsageError(`powerplant ${command}: no module in the directory ${path} (looked for ${[...(main === undefined ? [] : [`package.json "main" (${main})`]), ...INDEX_FILES].join(', ')})`);
}

/**
 * Imports the module `entry` names. Its exports are returned as they are; when the module has
 * none of `names` but a default export that is an object, the default export stands in for it.
 */
export async function loadEntry(command: string, entry: string, names: readonly string[], cwd?: string): Promise<Record<string, unknown>> {
  const path = resolveEntry(command, entry, cwd);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && (e.message ?? '').includes(path)) throw new UsageError(`powerplant ${command}: no module at ${path}`);
    if (e.code === 'ERR_UNKNOWN_FILE_EXTENSION') throw new UsageError(`powerplant ${command}: ${entry} is not a JavaScript or TypeScript module (${path})`);
    throw err;
  }
  if (names.some((n) => mod[n] !== undefined)) return mod;
  const fallback = mod.default;
  return typeof fallback === 'object' && fallback !== null ? (fallback as Record<string, unknown>) : mod;
}
