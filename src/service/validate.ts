/**
 * Run-time validation from the same TypeBox schema that gives the static type. Schemas are
 * compiled once per action (TypeCompiler generates a specialised check function), so a valid
 * request costs one generated function call; only an invalid one walks the errors to name the
 * first bad field.
 */
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ppError, type PowerplantError } from '../errors/index.js';

export interface Validator {
  /** undefined when valid, else PP_ERR_VALIDATION naming the first bad field (`params.id`). */
  check(value: unknown): PowerplantError | undefined;
}

/** `/items/0/id` -> `params.items.0.id`; the root -> `params`. */
function fieldOf(root: string, path: string): string {
  return path === '' ? root : `${root}${path.replace(/\//g, '.')}`;
}

export function compileValidator(schema: TSchema, root: string): Validator {
  const compiled: TypeCheck<TSchema> = TypeCompiler.Compile(schema);
  return {
    check(value: unknown): PowerplantError | undefined {
      if (compiled.Check(value)) return undefined;
      const first = compiled.Errors(value).First();
      const field = fieldOf(root, first?.path ?? '');
      return ppError('PP_ERR_VALIDATION', {
        field,
        message: `${field}: ${first?.message ?? 'invalid'}`,
      });
    },
  };
}
