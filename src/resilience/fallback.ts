/** Fallback: answer from somewhere else (a cache, a default) when the primary call fails. */
import { isBreakerFailure } from './circuit-breaker.js';

export interface FallbackOptions {
  /**
   * Which errors to fall back on. Default: the breaker's failure predicate, i.e. every error except
   * client errors (non-retryable 4xx catalogue errors such as PP_ERR_VALIDATION, PP_ERR_NOT_FOUND,
   * PP_ERR_ABORTED). A bad request must reach the caller, not be masked by a default value.
   */
  when?: (err: unknown) => boolean;
}

/**
 * Runs `fn`; if it rejects with an error `when` accepts, returns `fallbackFn(err)` instead. Errors
 * `when` rejects, and errors thrown by the fallback itself, propagate unchanged.
 */
export async function withFallback<T>(
  fn: () => Promise<T>,
  fallbackFn: (err: unknown) => T | Promise<T>,
  options: FallbackOptions = {},
): Promise<T> {
  const when = options.when ?? isBreakerFailure;
  try {
    return await fn();
  } catch (err) {
    if (!when(err)) throw err;
    return await fallbackFn(err);
  }
}
