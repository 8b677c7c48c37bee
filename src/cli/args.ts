/**
 * Command-line arguments of the `powerplant` subcommands: `--name value`, `--name=value`, boolean
 * `--name`, and positionals. Anything the command does not declare is a UsageError naming it, which
 * the CLI turns into exit code 2.
 */

/** A wrong command line: the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type FlagSpec =
  | { kind: 'int'; min: number; max: number }
  /** A finite number in [min, max], or in (min, max] with `aboveMin`. */
  | { kind: 'number'; min: number; max: number; aboveMin?: boolean }
  | { kind: 'string' }
  | { kind: 'bool' };

type FlagValue<F extends FlagSpec> = F extends { kind: 'int' | 'number' } ? number : F extends { kind: 'bool' } ? boolean : string;

export interface Parsed<S extends Record<string, FlagSpec>> {
  flags: { [K in keyof S]?: FlagValue<S[K]> };
  positional: string[];
}

/**
 * Parses `argv` for `powerplant <command>` against `spec`; at most `positionalMax` positionals.
 * Integers must lie in [min, max]; a flag given twice keeps the last value.
 */
export function parseArgs<S extends Record<string, FlagSpec>>(command: string, argv: readonly string[], spec: S, positionalMax = 0): Parsed<S> {
  const flags: Record<string, number | string | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      if (positional.length >= positionalMax) throw new UsageError(`powerplant ${command}: unexpected argument "${arg}"`);
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const name = flag.startsWith('--') ? flag.slice(2) : '';
    const f = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (f === undefined) throw new UsageError(`powerplant ${command}: unknown option ${flag}`);
    if (f.kind === 'bool') {
      if (eq >= 0) throw new UsageError(`powerplant ${command}: ${flag} takes no value`);
      flags[name] = true;
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) raw = argv[++i];
    if (f.kind === 'string') {
      if (raw === undefined || raw === '') throw new UsageError(`powerplant ${command}: ${flag} needs a value`);
      flags[name] = raw;
      continue;
    }
    const n = raw === undefined || raw.trim() === '' ? Number.NaN : Number(raw);
    const int = f.kind === 'int';
    const aboveMin = f.kind === 'number' && f.aboveMin === true;
    if (!Number.isFinite(n) || (int && !Number.isInteger(n)) || n < f.min || (aboveMin && n === f.min) || n > f.max) {
      const range = aboveMin ? `greater than ${f.min} and at most ${f.max}` : `from ${f.min} to ${f.max}`;
      throw new UsageError(`powerplant ${command}: ${flag} must be ${int ? 'an integer' : 'a number'} ${range} (got ${raw ?? 'nothing'})`);
    }
    flags[name] = n;
  }
  return { flags: flags as Parsed<S>['flags'], positional };
}
