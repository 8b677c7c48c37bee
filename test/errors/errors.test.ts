import { describe, expect, it } from 'vitest';
import { ERRORS, PowerplantError, errorFromJSON, isPowerplantError, isRetryable, ppError, requireArg } from '../../src/errors/index.js';

describe('error catalogue', () => {
  it('every code is PP_ERR_ prefixed, has a message, a boolean retryable and an HTTP status', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^PP_ERR_[A-Z_]+$/);
      expect(spec.message.length).toBeGreaterThan(0);
      expect(typeof spec.retryable).toBe('boolean');
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
    }
  });

  it('errors carry code, retryability, status and field, and survive a JSON round trip', () => {
    const e = ppError('PP_ERR_VALIDATION', { field: 'params.id', message: 'params.id must be an integer' });
    expect(e).toBeInstanceOf(PowerplantError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('PP_ERR_VALIDATION');
    expect(e.status).toBe(400);
    expect(e.retryable).toBe(false);
    const back = errorFromJSON(JSON.parse(JSON.stringify(e)));
    expect(back.code).toBe('PP_ERR_VALIDATION');
    expect(back.field).toBe('params.id');
    expect(back.message).toBe('params.id must be an integer');
  });

  it('retryability: catalogue decides for its errors; foreign errors must opt in', () => {
    expect(isRetryable(ppError('PP_ERR_TIMEOUT'))).toBe(true);
    expect(isRetryable(ppError('PP_ERR_CONFLICT'))).toBe(false);
    expect(isRetryable(new Error('boom'))).toBe(false);
    expect(isRetryable(Object.assign(new Error('flaky'), { retryable: true }))).toBe(true);
    expect(isRetryable('a string')).toBe(false);
  });

  it('malformed remote errors become PP_ERR_INTERNAL instead of throwing', () => {
    expect(errorFromJSON(null).code).toBe('PP_ERR_INTERNAL');
    expect(errorFromJSON({ code: 'NOT_A_CODE' }).code).toBe('PP_ERR_INTERNAL');
    expect(errorFromJSON({ code: 'toString' }).code).toBe('PP_ERR_INTERNAL');
  });

  it('requireArg names the argument', () => {
    expect(() => requireArg(false, 'shards', 'must not be empty')).toThrowError(/shards: must not be empty/);
    let caught: unknown;
    try {
      requireArg(false, 'epsilon', 'must be > 0');
    } catch (e) {
      caught = e;
    }
    expect(isPowerplantError(caught, 'PP_ERR_INVALID_ARGUMENT')).toBe(true);
    expect((caught as PowerplantError).field).toBe('epsilon');
    expect(() => requireArg(true, 'x', 'never')).not.toThrow();
  });
});
