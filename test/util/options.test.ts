import { describe, expect, it } from 'vitest';
import { isPowerplantError } from '../../src/errors/index.js';
import { renamedOptions } from '../../src/util/index.js';

interface Opts {
  queueMax?: number;
  /** @deprecated use queueMax */
  maxQueue?: number;
  name?: string;
}

describe('renamedOptions', () => {
  it('returns the options themselves when no old name is given', () => {
    const o: Opts = { queueMax: 5, name: 'a' };
    expect(renamedOptions(o, { queueMax: 'maxQueue' })).toBe(o);
  });

  it('takes the new name from the old one, and drops the old one', () => {
    const o: Opts = { maxQueue: 7, name: 'a' };
    expect(renamedOptions(o, { queueMax: 'maxQueue' })).toEqual({ queueMax: 7, name: 'a' });
    expect(o).toEqual({ maxQueue: 7, name: 'a' }); // the caller's object is not changed
  });

  it('accepts both names with the same value', () => {
    expect(renamedOptions<Opts>({ queueMax: 3, maxQueue: 3 }, { queueMax: 'maxQueue' })).toEqual({ queueMax: 3 });
  });

  it('refuses both names with different values, naming both (with the prefix)', () => {
    let err: unknown;
    try {
      renamedOptions<Opts>({ queueMax: 3, maxQueue: 4 }, { queueMax: 'maxQueue' }, 'groupCommit.');
    } catch (e) {
      err = e;
    }
    expect(isPowerplantError(err, 'PP_ERR_INVALID_ARGUMENT')).toBe(true);
    expect((err as Error & { field: string }).field).toBe('groupCommit.queueMax');
    expect((err as Error).message).toContain('groupCommit.queueMax');
    expect((err as Error).message).toContain('groupCommit.maxQueue');
  });

  it('passes anything but an object through for the caller to refuse', () => {
    expect(renamedOptions(null as unknown as Opts, { queueMax: 'maxQueue' })).toBe(null);
  });
});
