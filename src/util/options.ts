/**
 * Renamed options. A limit renamed to the house scheme (`<what><Unit>Max`, see
 * docs/contributing.md) keeps its old name for one release as a deprecated alias: the option type
 * keeps the old property marked `@deprecated`, and the reader of the options passes them through
 * here first.
 */
import { ppError } from '../errors/index.js';

/**
 * `renamedOptions(opts, { queueMax: 'maxQueue' }, 'groupCommit.')`: `opts` with each new name
 * taken from its old one when only the old one is given, the old one removed. Returns `opts` itself
 * when no old name is given (nothing is copied on the common path). Both names given with different
 * values is PP_ERR_INVALID_ARGUMENT naming both; `prefix` places them (`groupCommit.queueMax`).
 * Anything but an object is returned as it is, for the caller's own check to refuse.
 */
export function renamedOptions<O extends object>(opts: O, renames: { readonly [N in keyof O]?: keyof O }, prefix = ''): O {
  if (typeof opts !== 'object' || opts === null) return opts;
  let out: Record<PropertyKey, unknown> | undefined;
  for (const name of Object.keys(renames) as (keyof O & string)[]) {
    const old = renames[name] as keyof O & string;
    const was = opts[old];
    if (was === undefined) continue;
    const now = opts[name];
    if (now !== undefined && !Object.is(now, was)) {
      throw ppError('PP_ERR_INVALID_ARGUMENT', {
        field: `${prefix}${name}`,
        message: `${prefix}${name} and ${prefix}${old} (its deprecated old name) are both given, with different values: give ${prefix}${name} only`,
      });
    }
    out ??= { ...opts } as Record<PropertyKey, unknown>;
    out[name] = was;
    delete out[old];
  }
  return (out ?? opts) as O;
}
